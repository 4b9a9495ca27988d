"""`lfr evaluate` and `lfr cohort build`: accuracy of the configured face models, and the cohort they are calibrated on.

    lfr evaluate FOLDER --out DIR [--groups gender.json] [--manifest split.csv] [--fpir 1e-3 ...]
    lfr cohort build FOLDER --people people.txt --out cohort.npz

`lfr evaluate` embeds every photo of a labelled folder (`FOLDER/<person>/<photo>`) with every
configured model, leaves out the impostor cohort's people, splits the rest into a watchlist and
probes (by rule or manifest), and reports open-set identification for each model alone and
fused: TPIR at the stated FPIRs with bootstrap intervals, rank-1, DET curves, score histograms,
a breakdown by group, the FPIR observed at the thresholds the calibration gives (for this
watchlist, and on random lists of the `--trial-sizes`), as report.json, report.html and det.png.
`lfr cohort build` embeds the named people's photos into a new impostor cohort, for a force that
plugs in another model or calibrates on faces of its own; point `matching` at it by replacing the
shipped file (see cluster/matching/data/README.md).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cluster.config import LfrConfig
from cluster.evaluation.calibration_trials import calibration_trials
from cluster.evaluation.dataset import labelled_photos
from cluster.evaluation.html_report import write_html_report
from cluster.evaluation.plots import det_png
from cluster.evaluation.protocol import (
    FUSED,
    LabelledEmbeddings,
    split_by_rule,
    split_from_manifest,
    system_outcomes,
)
from cluster.evaluation.report import CalibrationSpec, Dataset, EvaluationInput, build_report, write_json_report
from cluster.matching.cohort import ImpostorCohort
from cluster.matching.scoring import match_scoring
from cluster.private_files import private_folder, write_private
from cluster.vision.pipeline import FacePipeline, models_name

DEFAULT_FPIRS = (1 / 6000, 1e-3, 1e-2)
DEFAULT_TRIAL_SIZES = (50, 100, 250)
DEFAULT_TRIAL_RATES = (1e-2, 1e-3)
DET_NAME = "det.png"
"""The DET plot also as its own file, for documents that link to it."""


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="Open-set accuracy of the configured face models on labelled photos."
    )
    evaluate.add_argument("folder", type=Path, metavar="FOLDER", help="Labelled photos: FOLDER/<person>/<photo>.")
    evaluate.add_argument("--out", type=Path, required=True, metavar="DIR", help="Folder for report.json and .html.")
    evaluate.add_argument("--manifest", type=Path, default=None, help="CSV photo,person,role (gallery|probe).")
    evaluate.add_argument("--watchlist-share", type=float, default=0.5, help="Share of listable people listed.")
    evaluate.add_argument("--seed", type=int, default=0, help="Seed of the split, trials and bootstrap.")
    evaluate.add_argument("--groups", type=Path, default=None, help="JSON {person: group} for the breakdown.")
    evaluate.add_argument(
        "--group-fpir", type=float, default=1e-2, help="FPIR whose threshold the group breakdown is read at."
    )
    evaluate.add_argument("--fpir", type=float, nargs="+", default=list(DEFAULT_FPIRS), help="FPIRs to report TPIR at.")
    evaluate.add_argument("--rounds", type=int, default=1000, help="Bootstrap rounds.")
    evaluate.add_argument(
        "--trial-sizes", type=int, nargs="*", default=list(DEFAULT_TRIAL_SIZES), help="Random list sizes to test."
    )
    evaluate.add_argument("--trial-draws", type=int, default=20, help="Random lists drawn per size.")
    evaluate.add_argument(
        "--embeddings", type=Path, default=None, help="Cache of the folder's embeddings (.npz): read if present."
    )
    evaluate.set_defaults(handler=run_evaluate)

    cohort = commands.add_parser("cohort", help="The impostor cohort thresholds are calibrated on.")
    actions = cohort.add_subparsers(dest="cohort_action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="Embed the named people's photos into a new cohort file.")
    build.add_argument("folder", type=Path, metavar="FOLDER", help="Labelled photos: FOLDER/<person>/<photo>.")
    build.add_argument("--people", type=Path, required=True, help="Text file: one person (folder name) per line.")
    build.add_argument("--out", type=Path, required=True, help="The cohort file to write (.npz).")
    build.add_argument("--description", default="", help="Where the faces came from, stored in the file.")
    build.set_defaults(handler=run_cohort_build)


def _embed(config: LfrConfig, folder: Path, people: set[str] | None, cache: Path | None) -> LabelledEmbeddings:
    if cache is not None and cache.exists():
        return LabelledEmbeddings.load(cache)
    photos = [photo for photo in labelled_photos(folder) if people is None or photo.person in people]
    pipeline = FacePipeline(config.face_models)
    with tqdm(total=len(photos), unit="photo", file=sys.stderr, disable=None) as progress:
        data = LabelledEmbeddings.embed(pipeline, photos, on_photo=lambda: progress.update(1))
    if cache is not None:
        data.save(cache)
    return data


def run_evaluate(args: argparse.Namespace, config: LfrConfig) -> int:
    models = config.face_models.models
    scoring = match_scoring(models)
    cohort_people = set(ImpostorCohort.load().labels.tolist())
    data = _embed(config, args.folder, None, args.embeddings).without_people(cohort_people)
    missing = [model for model in models if model not in data.vectors]
    if missing:
        sys.stderr.write(f"lfr: the embeddings lack {', '.join(missing)}; delete --embeddings and run again\n")
        return 2
    split = (
        split_from_manifest(data, args.manifest)
        if args.manifest
        else split_by_rule(data, args.watchlist_share, args.seed)
    )
    outcomes = system_outcomes(data, split, scoring.fusion)
    entries = len(split.gallery)
    checks = []
    for rate in args.fpir:
        threshold = scoring.threshold_for(rate, entries).threshold
        checks.append(CalibrationSpec(FUSED, threshold, rate, f"calibration for {entries} entries"))
    groups = None
    if args.groups is not None:
        by_person = json.loads(args.groups.read_text())
        groups = tuple(str(by_person.get(person, "unknown")) for person in data.people[split.probes])
    trials = calibration_trials(
        data, scoring.fusion, scoring.calibration, args.trial_sizes, DEFAULT_TRIAL_RATES, args.trial_draws, args.seed
    )
    dataset = Dataset(
        name=args.folder.name,
        description=(
            f"{args.folder}: {split.describe(data)}; {len(cohort_people)} impostor-cohort people left out;"
            f" models {models_name(config.face_models)}, fused as {scoring.fusion.describe()}"
        ),
        gallery_people=len(set(data.people[split.gallery])),
        gallery_entries=entries,
    )
    report = build_report(
        EvaluationInput(
            dataset=dataset,
            systems=outcomes,
            fpirs=tuple(args.fpir),
            baseline=models[0],
            groups=groups,
            group_fpir=args.group_fpir,
            calibration=tuple(checks),
            trials=tuple(trials),
            rounds=args.rounds,
            seed=args.seed,
            notes=(
                f"Thresholds calibrated on the impostor cohort ({len(cohort_people)} people, safety factor"
                f" {scoring.calibration.safety_factor:.2f} from resampling its people).",
            ),
        )
    )
    private_folder(args.out)
    json_path = write_json_report(report, args.out)
    html_path = write_html_report(report, args.out)
    write_private(args.out / DET_NAME, det_png(report))
    for system in report.systems:
        figures = ", ".join(
            f"TPIR {estimate.tpir:.3f} [{estimate.low:.3f}, {estimate.high:.3f}] at FPIR {estimate.fpir_target:.2g}"
            for estimate in system.estimates
        )
        sys.stdout.write(f"{system.name}: rank-1 {system.rank1:.3f}; {figures}\n")
    for trial in trials:
        sys.stdout.write(
            f"list of {trial.list_size} at stated FPIR {trial.stated_fpir:g}: observed {trial.observed_fpir:.2e}"
            f" ({trial.false_alarms}/{trial.searches}), ratio {trial.ratio:.2f}\n"
        )
    sys.stdout.write(f"report: {html_path} and {json_path}\n")
    return 0


def run_cohort_build(args: argparse.Namespace, config: LfrConfig) -> int:
    people = {line.strip() for line in args.people.read_text().splitlines() if line.strip()}
    if len(people) < 2:
        sys.stderr.write(f"lfr: {args.people} names fewer than two people; a cohort needs many\n")
        return 2
    data = _embed(config, args.folder, people, None)
    kept = np.flatnonzero(data.acquired)
    cohort = ImpostorCohort(
        data.people[kept],
        {model: vectors[kept] for model, vectors in data.vectors.items()},
        args.description or f"{len(people)} people of {args.folder}",
    )
    cohort.save(args.out)
    sys.stdout.write(
        f"cohort of {len(kept)} faces of {len(set(cohort.labels))} people ({', '.join(cohort.models)}):"
        f" {args.out}, digest {cohort.digest}\n"
    )
    return 0
