"""`lfr demo`: the project's main job on embedded defaults (see cluster/demo/scenario.py), with progress and a score.

It prints each step as it happens, then the fused alerts and how they compare with the crowd's
ground truth: faces seen (a count only), alerts, true and false alerts, watchlist people missed,
and how many tracklets were deleted at once because they matched nobody.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cluster.config import LfrConfig
from cluster.demo.scenario import DEMO_TARGET_FPIR, DemoOptions, DemoReport, run_demo
from cluster.matching.rate import rate_argument


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="Run the whole cluster on a synthetic crowd and score its alerts (embedded Milvus, SQLite, local Ray).",
        description="Synthesise a recorded crowd, enrol a watchlist, run the live cluster on it, report the alerts.",
    )
    demo.add_argument("--cameras", type=int, default=3, help="Cameras along the street (default 3).")
    demo.add_argument("--seconds", type=float, default=40.0, help="Length of the recorded crowd (default 40).")
    demo.add_argument("--seed", type=int, default=1, help="Same seed, same crowd (default 1).")
    demo.add_argument(
        "--target-fpir",
        type=rate_argument,
        default=DEMO_TARGET_FPIR,
        metavar="RATE",
        help="False alerts per passer-by not on the list the demo deployment states (default 1/100).",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Keep the videos, Milvus data and alert database here (default: a temporary folder, removed).",
    )
    demo.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace, config: LfrConfig) -> int:
    started = time.monotonic()

    def progress(message: str) -> None:
        sys.stdout.write(f"[{time.monotonic() - started:6.1f} s] {message}\n")
        sys.stdout.flush()

    if args.workdir is not None:
        report = run_demo(_options(args, args.workdir), config, progress)
        sys.stdout.write(describe(report))
        sys.stdout.write(f"records (alerts, audit log): {report.alert_db}\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="lfr-demo-") as folder:
        report = run_demo(_options(args, Path(folder)), config, progress)
        sys.stdout.write(describe(report))
        sys.stdout.write(
            f"records (alerts, audit log): {report.alert_db}, removed now with the demo's temporary folder;"
            " pass --workdir DIR to keep them\n"
        )
    return 0


def _options(args: argparse.Namespace, workdir: Path) -> DemoOptions:
    return DemoOptions(
        workdir=workdir, cameras=args.cameras, seconds=args.seconds, seed=args.seed, target_fpir=args.target_fpir
    )


def describe(report: DemoReport) -> str:
    score = report.score
    lines = ["", f"alerts ({len(report.alerts)}):"]
    for alert in sorted(report.alerts, key=lambda a: a.created_at):
        lines.append(
            f"  {alert.alert_id[:8]}  {alert.person_id:<22} cameras {' -> '.join(alert.cameras):<18}"
            f" sightings {len(alert.sightings)}  confidence {alert.confidence:.2f}  {alert.state.value}"
        )
    lines += [
        "",
        "summary against the ground truth:",
        f"  faces seen (count only)       {report.faces_seen}",
        f"  tracklets deleted, no match   {report.deleted_no_match}",
        f"  alerts                        {score.alerts} ({score.true_alerts} true, {score.false_alerts} false)",
        f"  watchlist people who passed   {score.watchlist_people_seen} ({score.watchlist_visits} visits)",
        f"  people alerted / missed       {score.people_alerted} / {len(score.people_missed)}"
        + (f" ({', '.join(score.people_missed)})" if score.people_missed else ""),
        f"  alerts per true person        {score.alerts_per_person:.2f} (1.00 = fully fused)",
        f"  watchlist version             {report.watchlist_version} ({report.enrolled} enrolment photos)",
        f"  match threshold               {report.calibration.summary()}",
        f"  wall time                     {report.wall_s:.0f} s",
        "",
    ]
    return "\n".join(lines)
