"""The evaluation's figures through the product's own path: import, freeze and retro give the same decisions.

A small version of `python -m loadtest.reproduce_evaluation` (whose full run is in docs/benchmarks.md):
20 lfw-public people enrolled with `lfr watchlist import`, frozen with `lfr watchlist freeze`, and
150 probe photos searched with `lfr retro`; every probe's outcome at the frozen threshold must be
the one the evaluation's embeddings give.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cluster.enrolment.faces import portrait_face
from cluster.evaluation.protocol import split_by_rule
from cluster.matching.scoring import match_scoring
from cluster.vision.image_io import load_image
from tests.test_watchlist_cli import lfr, lite_lfr_config

pytestmark = pytest.mark.slow

RATE = 1e-2


def test_import_freeze_retro_decide_every_probe_as_the_evaluation_does(lfw_public, face_pipeline, tmp_path):
    data = lfw_public
    split = split_by_rule(data, watchlist_share=0.1, seed=5)
    listed = set(data.people[split.gallery])
    rng = np.random.default_rng(5)
    mated = [row for row in split.probes if data.people[row] in listed and data.acquired[row]]
    nonmated = [row for row in split.probes if data.people[row] not in listed and data.acquired[row]]
    probes = sorted(rng.choice(mated, 60, replace=False).tolist() + rng.choice(nonmated, 90, replace=False).tolist())

    manifest = tmp_path / "gallery.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "photo", "face"])
        for row in split.gallery:
            image = load_image(data.paths[row])
            faces = face_pipeline.process([image])[0]
            writer.writerow([data.people[row], data.paths[row], faces.index(portrait_face(image.shape, faces))])
    footage = tmp_path / "probes"
    footage.mkdir()
    for row in probes:
        (footage / f"{row:05d}.jpg").symlink_to(Path(data.paths[row]).resolve())

    with lite_lfr_config(tmp_path / "run") as config:
        assert (
            lfr(config, "watchlist", "create", "eval", "--authorised-by", "A", "--reason", "r", "--expires", "+1").code
            == 0
        )
        imported = lfr(config, "watchlist", "import", "eval", "--manifest", manifest)
        assert imported.code == 0, imported.err
        assert lfr(config, "watchlist", "freeze", "eval", "--target-fpir", RATE).code == 0
        searched = lfr(
            config,
            "retro",
            footage,
            "--watchlist",
            "eval",
            "--out",
            tmp_path / "out",
            "--officer",
            "A",
            "--reason",
            "r",
        )
        assert searched.code == 0, searched.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["calibration"]["list_size"] == len(split.gallery) and report["calibration"]["target_fpir"] == RATE
    threshold = report["threshold"]

    named: dict[int, set[str]] = {}
    for match in report["matches"]:
        named.setdefault(int(Path(match["source"]).stem), set()).add(match["person_id"])
    models = tuple(data.vectors)
    fusion = match_scoring(models).fusion
    gallery = split.gallery
    expected = {}
    for row in probes:
        scores = fusion.fuse({m: data.vectors[m][gallery] @ data.vectors[m][row] for m in models})
        best = int(np.argmax(scores))
        expected[row] = {str(data.people[gallery[best]])} if scores[best] >= threshold else set()
    disagreements = {
        row: (expected[row], named.get(row, set())) for row in probes if expected[row] != named.get(row, set())
    }
    assert not disagreements, f"{len(disagreements)} of {len(probes)} probes decided differently: {disagreements}"
    assert sum(bool(expected[row]) for row in mated if row in expected) > 0, "no mated probe was matched at all"
