"""The evaluation's figures again, through the product's own path: import, freeze, retrospective search.

    python -m loadtest.reproduce_evaluation --folder tests/data/faces/lfw-public --work /tmp/repro \
        [--embeddings cache.npz] [--target-fpir 0.01]

It takes the split `lfr evaluate` makes by rule (same seed), writes the listed people's enrolment
photos as a manifest (naming, for a photo with several faces, the portrait face's index, as an
operator would with `lfr faces`), and runs the CLI as an operator would, in one embedded gallery:
`lfr watchlist create`, `lfr watchlist import --manifest`, `lfr watchlist freeze --target-fpir`,
then `lfr retro` over every probe photo. From retro's report.json it counts, at the frozen
version's calibrated threshold, the listed people's probes matched to the right person (TPIR)
and the other people's probes matched to anyone (FPIR), and prints them beside the same figures
computed from the evaluation's embeddings at the same threshold. The two may differ a little:
retro searches every face of a photo (a bystander can alarm) and shortlists the primary model's
`gallery.top_k` candidates before fusing, where the evaluation scores the portrait face against
every entry.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from cluster.config import LfrConfig
from cluster.enrolment.faces import portrait_face
from cluster.evaluation.dataset import labelled_photos
from cluster.evaluation.openset import fpir_at_threshold, tpir_at_threshold
from cluster.evaluation.protocol import FUSED, LabelledEmbeddings, split_by_rule, system_outcomes
from cluster.matching.cohort import ImpostorCohort
from cluster.matching.scoring import match_scoring
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import FacePipeline

WATCHLIST = "lfw_public_eval"


def lfr(config: Path, *args: object) -> str:
    command = [sys.executable, "-m", "cluster.cli.main", "--config", str(config), *map(str, args)]
    print("$ lfr", *map(str, args[:6]), "..." if len(args) > 6 else "", flush=True)
    ran = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if ran.returncode not in (0, 1):
        raise SystemExit(f"lfr {' '.join(map(str, args[:3]))} failed ({ran.returncode}):\n{ran.stderr[-3000:]}")
    return ran.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--embeddings", type=Path, default=None, help="lfr evaluate's --embeddings cache.")
    parser.add_argument("--target-fpir", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    config = LfrConfig()
    cohort = set(ImpostorCohort.load().labels.tolist())
    if args.embeddings is not None and args.embeddings.exists():
        data = LabelledEmbeddings.load(args.embeddings)
    else:
        photos = [p for p in labelled_photos(args.folder) if p.person not in cohort]
        data = LabelledEmbeddings.embed(FacePipeline(config.face_models), photos)
    data = data.without_people(cohort)
    split = split_by_rule(data, seed=args.seed)
    print(split.describe(data), flush=True)

    config_path = args.work / "lfr.yaml"
    config_path.write_text(
        "gallery:\n"
        f"  backend: {{type: milvus-lite, data_dir: {args.work / 'milvus'}}}\n"
        "  consistency: Strong\n"
        f"database:\n  url: {args.work / 'lfr.sqlite3'}\n"
    )
    manifest = args.work / "gallery.csv"
    pipeline = FacePipeline(config.face_models)
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "photo", "face"])
        for row in split.gallery:
            image = load_image(data.paths[row])
            faces = pipeline.process([image])[0]
            face = faces.index(portrait_face(image.shape, faces))
            writer.writerow([data.people[row], str(Path(data.paths[row]).resolve()), face])
    probes = args.work / "probes"
    probes.mkdir(exist_ok=True)
    for row in split.probes:
        link = probes / f"{row:05d}_{Path(data.paths[row]).name}"
        if not link.exists():
            link.symlink_to(Path(data.paths[row]).resolve())

    lfr(
        config_path,
        "watchlist",
        "create",
        WATCHLIST,
        "--authorised-by",
        "Evaluation",
        "--reason",
        "reproduce",
        "--expires",
        "+1",
    )
    lfr(config_path, "watchlist", "import", WATCHLIST, "--manifest", manifest)
    lfr(config_path, "watchlist", "freeze", WATCHLIST, "--target-fpir", args.target_fpir)
    lfr(config_path, "gallery", "stop")
    lfr(
        config_path,
        "retro",
        probes,
        "--watchlist",
        WATCHLIST,
        "--out",
        args.work / "retro",
        "--officer",
        "reproduce",
        "--reason",
        "reproducing the evaluation's figures",
    )
    lfr(config_path, "gallery", "stop")

    report = json.loads((args.work / "retro" / "report.json").read_text())
    threshold = report["threshold"]
    named: dict[int, set[str]] = {}
    for match in report["matches"]:
        named.setdefault(int(Path(match["source"]).name[:5]), set()).add(match["person_id"])
    listed = set(data.people[split.gallery])
    mated = [row for row in split.probes if data.people[row] in listed]
    nonmated = [row for row in split.probes if data.people[row] not in listed]
    product_tpir = sum(data.people[row] in named.get(row, set()) for row in mated) / len(mated)
    product_fpir = sum(bool(named.get(row)) for row in nonmated) / len(nonmated)
    outcomes = system_outcomes(data, split, match_scoring(config.face_models.models).fusion)[FUSED]
    print(
        json.dumps(
            {
                "threshold": threshold,
                "target_fpir": args.target_fpir,
                "mated_probes": len(mated),
                "nonmated_probes": len(nonmated),
                "product_path": {"tpir": round(product_tpir, 4), "fpir": round(product_fpir, 5)},
                "evaluation": {
                    "tpir": round(tpir_at_threshold(outcomes, threshold), 4),
                    "fpir": round(fpir_at_threshold(outcomes, threshold), 5),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
