"""`lfr run`: the live pipeline, cameras -> face service -> per-camera results, until Ctrl-C or --duration.

Starts a local Ray cluster (or joins one with --address), deploys the face service, starts the
configuration's cameras and their forwarders, rewrites one status line per camera while it
runs, and prints a summary with the per-stage timing breakdown when it stops.
"""

import argparse
import sys
import time

import ray

from actors.camera_registry import NAMESPACE
from actors.live_assembly import LiveAssembly
from actors.live_pipeline import LivePipeline
from cluster.alerts.opening import open_alert_store
from cluster.alerts.retention import RetentionScheduler
from cluster.config import LfrConfig
from cluster.deployment.plan import plan_from_config
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
        stages = ("decode_s", "queue_s", "batch_wait_s", "detect_s", "align_s", "embed_s", "total_s")
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
    ray.init(address=args.address, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    if config.deployment is None:
        sys.stdout.write("no deployment configured: faces are found but not matched (add a `deployment:` section)\n")
        return _run(args, LivePipeline.start(config.cameras, config.face_models, config.face_service), None)
    plan = plan_from_config(config)
    sys.stdout.write(
        f"deployment {plan.deployment_id}: watchlist {plan.watchlist_version}, stated FPIR {plan.target_fpir:g},"
        f" {len(plan.cameras)} camera(s); alerts in {config.database.url}\n"
    )
    retention = RetentionScheduler(open_alert_store(config.database, config.audit), config.retention)
    retention.start()
    try:
        deployment = LiveAssembly.start(plan, config)
        return _run(args, deployment.pipeline, deployment)
    finally:
        retention.stop()


def _run(args: argparse.Namespace, pipeline: LivePipeline, deployment: LiveAssembly | None) -> int:
    """Show live status until --duration or Ctrl-C, then stop and print the summary."""
    started = time.monotonic()
    sys.stdout.write(
        f"face service: {pipeline.plan.num_replicas} replica(s) on {pipeline.plan.device},"
        f" {pipeline.plan.torch_threads} torch thread(s) each; Ctrl-C stops\n"
    )
    shown = 0
    try:
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(STATUS_PERIOD_S)
            lines = [status_line(stats) for stats in pipeline.stats()]
            if shown and sys.stdout.isatty():
                sys.stdout.write(f"\x1b[{shown}F")
            sys.stdout.write("".join(f"{line}\x1b[K\n" if sys.stdout.isatty() else f"{line}\n" for line in lines))
            sys.stdout.flush()
            shown = len(lines)
    except KeyboardInterrupt:
        sys.stdout.write("stopping...\n")
    finally:
        final = pipeline.stop() if deployment is None else deployment.stop()
        sys.stdout.write(summary(final, time.monotonic() - started))
        sys.stdout.write(matching_summary(pipeline.sink_summaries))
        ray.shutdown()
    return 0


def matching_summary(sinks: list) -> str:
    """What the match stage did per camera: counts only (faces seen, deleted at once, sightings)."""
    lines = []
    for sink in sinks:
        if isinstance(sink, MatchingSummary):
            counts = sink.tracker
            lines.append(
                f"  {sink.camera_id}: {counts.faces_seen} faces seen, {counts.tracklets_searched} tracklets searched,"
                f" {counts.tracklets_deleted_no_match} deleted (no match), {sink.sightings} sightings,"
                f" {sink.frames_outside_window} frames outside the deployment window"
            )
    return "".join(f"{line}\n" for line in lines)
