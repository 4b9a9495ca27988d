"""`lfr demo` end to end (real Ray, Serve, embedded Milvus, SQLite), and the privacy promise checked on disk.

One run of a short synthetic crowd: the watchlist people who walk by are alerted, nobody else
is, each person's cameras fuse into one alert, and afterwards nothing of anyone who matched
nobody is held in memory or stored: the scanner looks for their face embeddings in every byte
the run wrote (alert store, watchlist catalogue, Milvus data) and for vectors in Ray's logs.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from cluster.config import LfrConfig
from cluster.vision.image_io import load_image
from loadtest.crowd_truth import CrowdTruth, resolve_repo_path
from loadtest.demo import DemoOptions, DemoReport, run_demo
from tests.privacy_scan import unit_vectors

SAME_PERSON = 0.92
"""Cosine at which a stored vector is taken to be of the reference person (the match threshold)."""
FLOATS_IN_A_ROW = re.compile(r"(-?\d\.\d{3,}[,\s]+){16}")
"""Sixteen decimals in a row: what a vector printed into a log looks like."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[DemoReport, Path]:
    workdir = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    report = run_demo(DemoOptions(workdir=workdir, seconds=24.0), LfrConfig(), messages.append)
    assert any("left" in message for message in messages), "the demo showed no progress"
    return report, workdir


@pytest.fixture(scope="module")
def people(demo, face_pipeline) -> dict[str, np.ndarray]:
    """Every person's appearance-photo embeddings (the faces the videos show), by person id."""
    _, workdir = demo
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    found = {}
    for person in truth.people:
        images = [load_image(resolve_repo_path(photo)) for photo in person.appearance_photos]
        faces = [
            min(detected, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - 125.0)))
            for detected in face_pipeline.process(images)
            if detected
        ]
        found[person.id] = np.stack([face.embedding for face in faces])
    return found


def test_watchlist_people_are_alerted_once_and_nobody_else(demo):
    report, _ = demo
    score = report.score
    assert score.false_alerts == 0, f"false alerts: {[a.person_id for a in report.alerts]}"
    assert score.true_alerts >= 1 and score.people_alerted >= 1
    assert score.alerts_per_person <= 1.5, "one person's sightings on several cameras were not fused"
    assert all(alert.threshold == LfrConfig().matching.similarity_threshold for alert in report.alerts)


def test_non_matches_are_deleted_and_only_counted(demo):
    report, _ = demo
    assert sum(c.tracker.tracklets_deleted_no_match for c in report.cameras) > 0, "no passer-by was ever decided"
    for camera in report.cameras:
        held = camera.holdings
        assert (held.embeddings, held.crops, held.faces) == (0, 0, 0), f"{camera.camera_id} still holds {held}"
    assert report.faces_seen > 0


def test_nothing_of_people_off_the_watchlist_is_stored(demo, people):
    report, workdir = demo
    truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
    watchlist = {person.id for person in truth.watchlist}
    names = sorted(people)
    references = np.concatenate([people[name] for name in names])
    owner = np.concatenate([[name] * len(people[name]) for name in names])
    stored_by_person: dict[str, int] = {}
    for path in sorted(p for p in workdir.rglob("*") if p.is_file() and "crowd" not in p.parts):
        for _, vector in unit_vectors(path.read_bytes()):
            similarities = references @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= SAME_PERSON:
                stored_by_person[owner[best]] = stored_by_person.get(owner[best], 0) + 1
    assert set(stored_by_person) & watchlist, "the scanner found no stored watchlist vector; it cannot be trusted"
    leaked = {name: count for name, count in stored_by_person.items() if name not in watchlist}
    assert not leaked, f"embeddings of people who matched nobody were stored: {leaked}"
    for alert in report.alerts:
        assert alert.person_id in watchlist and all(s.person_id in watchlist for s in alert.sightings)


def test_no_vector_reaches_the_logs(demo):
    logs = Path("/tmp/ray/session_latest/logs")
    assert logs.is_dir(), "Ray's session logs are missing"
    for path in logs.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out", ".err"):
            text = path.read_text(errors="replace")
            assert not FLOATS_IN_A_ROW.search(text), f"{path} holds what looks like a printed vector"
