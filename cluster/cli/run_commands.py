"""`lfr run`: the live pipeline, cameras -> face service -> matching -> alerts, until Ctrl-C or --duration.

A thin view over `cluster.application.live_run.LiveRun`: it starts a local Ray cluster (or
joins one with --address), the configuration's cameras, the face service and, with a
`deployment:` section, matching and the Coordinator; it rewrites one status line per camera
while it runs (the run also publishes the control room's status board, runs retention and
reloads the cameras when the file changes or on SIGHUP), and prints a summary with the
per-stage timing breakdown when it stops.
"""

import argparse
import getpass
import sys

from cluster.application.live_run import LiveRun, LiveRunSettings, LiveSnapshot, stop_and_reload_signals
from cluster.config import LfrConfig
from cluster.gallery.errors import GalleryError
from cluster.live.face_service import STAGES
from cluster.live.forwarding import StreamStats
from cluster.live.matching import MatchingSummary

STATUS_PERIOD_S = 1.0


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="Run the live pipeline: the configuration's cameras through the face service."
    )
    run.add_argument("--address", default=None, help="Ray cluster to join (e.g. 127.0.0.1:6379); default: start one.")
    run.add_argument("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
    run.set_defaults(handler=run_live)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def status_line(stats: StreamStats) -> str:
    """One camera's live figures on one line."""
    return (
        f"{stats.camera_id:<16} in {stats.fps_in:5.1f} fps  out {stats.fps_out:5.1f} fps"
        f"  faces {stats.faces_per_s:5.1f}/s  dropped {stats.dropped:6d}  failed {stats.failed_requests:4d}"
        f"  p50 {_ms(stats.latency_p50_s):>7}  p99 {_ms(stats.latency_p99_s):>7}"
    )


def summary(stats: list[StreamStats], seconds: float) -> str:
    """The run's totals per camera and the mean time per stage."""
    lines = [f"ran {seconds:.1f} s with {len(stats)} camera{'s' if len(stats) != 1 else ''}"]
    for camera in stats:
        lines.append(
            f"  {camera.camera_id}: {camera.frames_in} frames in, {camera.frames_sent} sent, {camera.results_ok} ok,"
            f" {camera.results_error} refused, {camera.failed_requests} failed, {camera.dropped_full} dropped"
            f" (queue full), {camera.dropped_stale} dropped (stale), {camera.dropped_at_camera} dropped in the camera,"
            f" {camera.faces} faces,"
            f" latency p50 {_ms(camera.latency_p50_s)} p99 {_ms(camera.latency_p99_s)},"
            f" largest batch {camera.max_batch_size}"
        )
        if camera.last_failure:
            lines.append(f"    last failure: {camera.last_failure}")
    timed = [camera.mean_timings for camera in stats if camera.mean_timings is not None]
    if timed:
        stages = tuple(f"{stage}_s" for stage in STAGES)
        means = {stage: sum(getattr(t, stage) for t in timed) / len(timed) for stage in stages}
        lines.append(
            "  mean per frame: "
            + ", ".join(
                f"{stage.removesuffix('_s').replace('_', ' ')} {means[stage] * 1000:.1f} ms" for stage in stages
            )
        )
    return "\n".join(lines) + "\n"


def run_live(args: argparse.Namespace, config: LfrConfig) -> int:
    if not config.cameras:
        sys.stderr.write(
            "lfr: the configuration lists no cameras; add some under `cameras:` (see configs/west_end.yaml)\n"
        )
        return 2
    if args.duration is not None and args.duration <= 0:
        sys.stderr.write(f"lfr: --duration must be above 0 seconds, got {args.duration}\n")
        return 2
    settings = LiveRunSettings(
        actor=f"cli:{getpass.getuser()}",
        address=args.address,
        config_path=getattr(args, "config", None),
        period_s=STATUS_PERIOD_S,
    )
    run = LiveRun(config, settings)
    if config.deployment is None:
        sys.stdout.write("no deployment configured: faces are found but not matched (add a `deployment:` section)\n")
    try:
        run.start(progress=_say)
    except (GalleryError, LookupError, ValueError) as exc:
        sys.stderr.write(f"lfr: the deployment did not start: {exc}\n")
        return 2
    if run.plan is not None:
        sys.stdout.write(
            f"deployment {run.plan.deployment_id}: watchlist {run.plan.watchlist_version},"
            f" stated FPIR {run.plan.target_fpir:g}, {len(run.plan.cameras)} camera(s);"
            f" alerts in {config.database.url}\n"
        )
    pipeline = run.pipeline
    if pipeline is not None:
        sys.stdout.write(
            f"face service: {pipeline.plan.num_replicas} replica(s) on {pipeline.plan.device},"
            f" {pipeline.plan.torch_threads} torch thread(s) each; Ctrl-C stops\n"
        )
    view = StatusLines()
    try:
        with stop_and_reload_signals() as (stopping, reload_requested):
            run.run(stopping, reload_requested, view.show, duration_s=args.duration)
        sys.stdout.write("stopping...\n")
    finally:
        result = run.stop()
        sys.stdout.write(summary(list(result.streams), result.seconds))
        sys.stdout.write(matching_summary(result.matching))
    return 0


def _say(message: str) -> None:
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


class StatusLines:
    """One line per camera, rewritten in place on a terminal, appended otherwise."""

    def __init__(self) -> None:
        self._shown = 0

    def show(self, snapshot: LiveSnapshot) -> None:
        lines = [status_line(stats) for stats in snapshot.streams]
        tty = sys.stdout.isatty()
        if self._shown and tty:
            sys.stdout.write(f"\x1b[{self._shown}F")
        sys.stdout.write("".join(f"{line}\x1b[K\n" if tty else f"{line}\n" for line in lines))
        sys.stdout.flush()
        self._shown = len(lines)


def matching_summary(sinks: tuple[MatchingSummary, ...]) -> str:
    """What the match stage did per camera: counts only (faces seen, deleted at once, sightings)."""
    lines = []
    for sink in sinks:
        counts = sink.tracker
        lines.append(
            f"  {sink.camera_id}: {counts.faces_seen} faces seen, {counts.tracklets_searched} tracklets searched,"
            f" {counts.tracklets_deleted_no_match} deleted (no match), {sink.sightings} sightings,"
            f" {sink.frames_outside_window} frames outside the deployment window,"
            f" {sink.frames_excluded} frames in an exclusion window"
        )
    return "".join(f"{line}\n" for line in lines)
