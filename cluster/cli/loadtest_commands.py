"""`lfr loadtest`: replay a recorded crowd as RTSP cameras through the real deployment, ramped until it saturates.

Prints a status line a second while the steps run, then writes report.json and report.html to the
output folder; with `--compare BASELINE.json` it exits 1 naming each figure that regressed beyond
the tolerance (for CI). Bad input (a folder without a ground truth, a ramp that does not rise, an
unreadable baseline, a chaos scenario a load test cannot run) is refused on stderr with exit status 2
before anything starts.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cluster.config import LfrConfig
from cluster.demo.scenario import DEMO_TARGET_FPIR
from cluster.loadtesting.chaos_runs import LOAD_TEST_SCENARIOS, check_chaos_names
from cluster.loadtesting.comparison import DEFAULT_TOLERANCE, compare
from cluster.loadtesting.html_report import write_html
from cluster.loadtesting.ramp import RampPlan, ramp_values
from cluster.loadtesting.report import LoadReport
from cluster.loadtesting.runner import LoadTestOptions, load_crowd, run_loadtest
from cluster.loadtesting.saturation import SaturationRule
from cluster.matching.rate import rate_argument

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
EXIT_REGRESSED = 1
EXIT_BAD_INPUT = 2


def register(commands: argparse._SubParsersAction) -> None:
    loadtest = commands.add_parser(
        "loadtest",
        help="Replay a recorded crowd as N RTSP cameras through the live cluster, ramped; report.json + report.html.",
        description=(
            "Replay a crowd (from `lfr crowd make`) as RTSP cameras on 127.0.0.1 through the real deployment, adding"
            " cameras (or frames per second) step by step until the cluster saturates, and report throughput, drops,"
            " latency, resources per process role and accuracy against the crowd's ground truth."
        ),
    )
    loadtest.add_argument("crowd", type=Path, metavar="CROWD_DIR", help="Videos and ground_truth.json of a crowd.")
    loadtest.add_argument(
        "--cameras",
        nargs="+",
        default=["1", "2", "4"],
        metavar="N",
        help="Cameras per step: values (1 2 4 8) or a range (1-8x2 doubles, 2-8+2 adds 2); default 1 2 4.",
    )
    loadtest.add_argument(
        "--fps",
        nargs="+",
        default=["5"],
        metavar="FPS",
        help="Frames per second each camera samples, or a ramp of them at one camera count (default 5).",
    )
    loadtest.add_argument("--step-seconds", type=float, default=20.0, help="Seconds each step is measured (20).")
    loadtest.add_argument(
        "--warmup-seconds", type=float, default=3.0, help="Seconds after a step's cameras change, not measured (3)."
    )
    loadtest.add_argument(
        "--max-drop-rate", type=float, default=0.05, help="Saturated above this share of frames dropped (0.05)."
    )
    loadtest.add_argument(
        "--min-gain",
        type=float,
        default=0.25,
        help="Saturated when frames/s grows by less than this share of the added load (0.25).",
    )
    loadtest.add_argument(
        "--target-fpir",
        type=rate_argument,
        default=DEMO_TARGET_FPIR,
        metavar="RATE",
        help="False alerts per passer-by the load test's deployment states (default 1/100, as lfr demo).",
    )
    loadtest.add_argument(
        "--out", type=Path, default=Path("loadtest-report"), help="Folder for report.json and report.html."
    )
    loadtest.add_argument(
        "--workdir", type=Path, default=None, help="Keep Milvus data and the records here (default: temporary)."
    )
    loadtest.add_argument(
        "--compare", type=Path, default=None, metavar="BASELINE.json", help="Exit 1 on a regression against it."
    )
    loadtest.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"Share a figure may worsen by before --compare fails ({DEFAULT_TOLERANCE}).",
    )
    loadtest.add_argument(
        "--chaos",
        action="append",
        default=[],
        metavar="NAME",
        help=f"A chaos scenario run after the ramp on its last step (repeatable): {', '.join(LOAD_TEST_SCENARIOS)}.",
    )
    loadtest.add_argument("--soak-seconds", type=float, default=1800.0, help="How long `--chaos soak` runs (1800).")
    loadtest.set_defaults(handler=run_loadtest_command)


def run_loadtest_command(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        plan, saturation, baseline = _checked(args)
    except ValueError as exc:
        sys.stderr.write(f"lfr loadtest: {exc}\n")
        return EXIT_BAD_INPUT
    status = _StatusLine()
    started = time.monotonic()

    def progress(message: str) -> None:
        status.clear()
        sys.stdout.write(f"[{time.monotonic() - started:6.1f} s] {message}\n")
        sys.stdout.flush()

    if args.workdir is not None:
        report = run_loadtest(_options(args, plan, saturation, args.workdir), config, progress, status.show)
    else:
        with tempfile.TemporaryDirectory(prefix="lfr-loadtest-") as folder:
            report = run_loadtest(_options(args, plan, saturation, Path(folder)), config, progress, status.show)
    status.clear()
    args.out.mkdir(parents=True, exist_ok=True)
    report.save(args.out / REPORT_JSON)
    write_html(report, args.out / REPORT_HTML)
    sys.stdout.write(f"report: {args.out / REPORT_JSON} and {args.out / REPORT_HTML}\n")
    if baseline is None:
        return 0
    comparison = compare(baseline, report, args.tolerance)
    if comparison.passed:
        sys.stdout.write(
            f"no regression against {args.compare}: {comparison.compared} figures within {args.tolerance:.0%}\n"
        )
        return 0
    sys.stdout.write(f"regressed against {args.compare} (tolerance {args.tolerance:.0%}):\n")
    for regression in comparison.regressions:
        sys.stdout.write(f"  {regression.describe()}\n")
    return EXIT_REGRESSED


def _checked(args: argparse.Namespace) -> tuple[RampPlan, SaturationRule, LoadReport | None]:
    """Everything the command line says, checked before anything starts; ValueError says what to change."""
    check_chaos_names(args.chaos)
    if args.soak_seconds <= 0:
        raise ValueError(f"--soak-seconds must be above 0, got {args.soak_seconds}")
    if not 0 <= args.tolerance < 1:
        raise ValueError(f"--tolerance is a share, 0 to below 1 (0.15 = 15 %), got {args.tolerance}")
    try:
        cameras = [_whole(value) for value in ramp_values(args.cameras)]
        plan = RampPlan.of(cameras, ramp_values(args.fps), args.step_seconds, args.warmup_seconds)
        saturation = SaturationRule(max_drop_rate=args.max_drop_rate, min_gain=args.min_gain)
    except ValidationError as exc:
        raise ValueError("; ".join(_problem(error) for error in exc.errors())) from None
    load_crowd(args.crowd)
    baseline = LoadReport.load(args.compare) if args.compare is not None else None
    return plan, saturation, baseline


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _options(args: argparse.Namespace, plan: RampPlan, saturation: SaturationRule, workdir: Path) -> LoadTestOptions:
    return LoadTestOptions(
        crowd=args.crowd.resolve(),
        workdir=workdir,
        plan=plan,
        saturation=saturation,
        target_fpir=args.target_fpir,
        command=("lfr", *sys.argv[1:]),
        chaos=tuple(args.chaos),
        soak_seconds=args.soak_seconds,
    )


def _whole(value: float) -> int:
    if value != int(value):
        raise ValueError(f"--cameras takes whole numbers, got {value:g}")
    return int(value)


class _StatusLine:
    """One line, rewritten in place on a terminal; elsewhere (a CI log) a line per update."""

    def __init__(self) -> None:
        self._tty = sys.stdout.isatty()
        self._shown = False

    def show(self, line: str) -> None:
        if self._tty:
            sys.stdout.write(f"\r{line}\033[K")
            self._shown = True
        else:
            sys.stdout.write(f"{line}\n")
        sys.stdout.flush()

    def clear(self) -> None:
        if self._shown:
            sys.stdout.write("\r\033[K")
            self._shown = False
