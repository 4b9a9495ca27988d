"""Live pipeline efficiency: N cameras through Ray + Serve against a bare decode-detect-embed loop.

    python -m loadtest.bench_pipeline_live [--cameras 3] [--seconds 6] [--width 640 --height 360]
        [--batch 8] [--wait-ms 50] [--measure-s 10] [--second-stage [--pairs 3]]

One run, one machine: it synthesises a crowd (one H.264 file per camera), times a bare loop
that decodes every camera's frames and runs them through `FacePipeline` in batches, then runs
the live pipeline with the same files replayed in real time: first saturated (every camera at
the files' full frame rate), which gives the efficiency figure and the cluster's capacity, then
at 50% and 100% of that capacity for latency; then the bare loop again (the faster of the two
is the baseline: other work on a shared machine only ever slows a run down). The bare loop runs
as one Ray task, so that it has the same scheduling priority as the actors (Ray starts its
workers at nice 15); on a shared machine a loop at nice 0 would win for that reason alone. It prints faces/s
(cluster / bare), frame-to-result latency p50/p99 and the service's overhead per frame (its
time beyond the model stages and the batch wait).

With --second-stage it instead measures what the second face model costs the live pipeline: in
one process, on the same files, saturated runs with every camera's faces tracked and every ready
tracklet decided against an empty watchlist (`loadtest.passerby_sinks`), alternately with the
second model off and on (`--pairs` of each, so that a shared machine's load drifts into both
alike), and what one tracklet's patches cost the second model on this machine (a Ray task at the
actors' priority).
"""

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import ray
from ray import serve

from actors.camera_registry import NAMESPACE
from actors.face_service import APP_NAME
from actors.live_pipeline import LivePipeline
from actors.matching_sinks import SecondStageLink
from cluster.application.ray_system_config import SYSTEM_CONFIG
from cluster.cameras.decoding import rgb_pixels
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.live.config import FaceServiceConfig
from cluster.live.face_service import PatchProcessor, PatchRequest
from cluster.live.forwarding import StreamStats
from cluster.live.matching import MatchingSummary
from cluster.logging_setup import configure_logging
from cluster.tracking.patches import cut_face_patch
from cluster.vision.config import FaceModelsConfig
from cluster.vision.pipeline import FacePipeline
from loadtest.live_bench import looping_cameras, warm_up
from loadtest.machine import describe_machine
from loadtest.passerby_sinks import PasserBySinks

WARMUP_S = 3.0
STARTUP_TIMEOUT_S = 60.0
LOADS = (0.5, 1.0)
"""Offered load for the latency runs, as a share of the capacity the saturated run measured."""


@dataclass(frozen=True)
class Throughput:
    frames_per_s: float
    faces_per_s: float


@ray.remote(max_retries=0)
def bare_loop(files: list[Path], models: FaceModelsConfig, batch: int) -> Throughput:
    """Decode every frame of every file and run them through one pipeline, `batch` frames per call."""
    pipeline = FacePipeline(models)
    with av.open(str(files[0])) as container:
        warm = [rgb_pixels(frame) for _, frame in zip(range(batch), container.decode(video=0))]
    pipeline.process(warm)
    frames = faces = 0
    started = time.perf_counter()
    for path in files:
        with av.open(str(path)) as container:
            pending: list[np.ndarray] = []
            for frame in container.decode(video=0):
                pending.append(rgb_pixels(frame))
                if len(pending) == batch:
                    faces += sum(len(found) for found in pipeline.process(pending))
                    frames += len(pending)
                    pending = []
            if pending:
                faces += sum(len(found) for found in pipeline.process(pending))
                frames += len(pending)
    seconds = time.perf_counter() - started
    return Throughput(frames / seconds, faces / seconds)


@dataclass(frozen=True)
class LiveRun:
    load: str
    offered_fps: float
    throughput: Throughput
    latency_p50_s: float
    latency_p99_s: float
    overhead_s: float
    dropped: int
    failed: int
    largest_batch: int
    decided_per_s: float = 0.0
    """Tracklets decided per second (with a match stage only)."""
    second_stage_failures: int = 0


def live_run(
    files: list[Path],
    fps: float,
    models: FaceModelsConfig,
    service: FaceServiceConfig,
    measure_s: float,
    load: str,
    sinks: PasserBySinks | None = None,
) -> LiveRun:
    cameras = looping_cameras(files, fps)
    pipeline = LivePipeline.start(cameras, models, service, sinks, registry_name=f"bench_registry_{load.rstrip('%')}")
    try:
        warm_up(pipeline, STARTUP_TIMEOUT_S, WARMUP_S)
        before, t0, since = pipeline.stats(), time.monotonic(), time.time()
        decided_before = _decided(pipeline)
        time.sleep(measure_s)
        after, t1 = pipeline.stats(since=since), time.monotonic()
        decided_after = _decided(pipeline)
    finally:
        pipeline.stop(remove_service=False)
    matching = [s for s in pipeline.sink_summaries if isinstance(s, MatchingSummary)]
    seconds = t1 - t0
    results = sum(a.results_ok - b.results_ok for a, b in zip(after, before))
    faces = sum(a.faces - b.faces for a, b in zip(after, before))
    return LiveRun(
        load=load,
        offered_fps=fps * len(files),
        throughput=Throughput(results / seconds, faces / seconds),
        latency_p50_s=float(np.median([s.latency_p50_s for s in after])),
        latency_p99_s=max(s.latency_p99_s for s in after),
        overhead_s=float(np.mean([_overhead(s) for s in after])),
        dropped=sum(a.dropped - b.dropped for a, b in zip(after, before)),
        failed=sum(s.failed_requests for s in after),
        largest_batch=max(s.max_batch_size for s in after),
        decided_per_s=(decided_after - decided_before) / seconds,
        second_stage_failures=sum(s.second_stage_failures for s in matching),
    )


def _decided(pipeline: LivePipeline) -> int:
    """Tracklets decided so far by every camera's match stage (0 without one)."""
    summaries = [s for s in pipeline.current_sink_summaries() if isinstance(s, MatchingSummary)]
    return sum(s.tracker.tracklets_deleted_no_match + s.tracker.tracklets_matched for s in summaries)


@ray.remote(max_retries=0)
def patch_cost(files: list[Path], models: FaceModelsConfig, faces_per_tracklet: int, repeats: int) -> float:
    """Seconds the second model takes for one tracklet's patches, cut from the crowd's own faces (median of repeats)."""
    pipeline = FacePipeline(models)
    processor = PatchProcessor(pipeline.second_stage)
    patches = []
    with av.open(str(files[0])) as container:
        for frame in container.decode(video=0):
            pixels = rgb_pixels(frame)
            patches += [cut_face_patch(pixels, f.landmarks, f.quality.overall) for f in pipeline.process([pixels])[0]]
            if len(patches) >= faces_per_tracklet:
                break
    if len(patches) < faces_per_tracklet:
        raise RuntimeError(f"{files[0]} shows fewer than {faces_per_tracklet} faces; make a longer crowd")
    request = PatchRequest("bench", (tuple(patches[:faces_per_tracklet]),))
    processor.process(request)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        processor.process(request)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def compare_second_stage(files: list[Path], fps: float, service: FaceServiceConfig, args: argparse.Namespace) -> None:
    """Saturated runs with the second model off and on, alternating, then its cost per tracklet; printed as tables."""
    on = FaceModelsConfig(device="auto")
    off = on.model_copy(update={"second_stage": None})
    link = SecondStageLink(on.second_stage, APP_NAME)
    runs: list[tuple[str, LiveRun]] = []
    for pair in range(1, args.pairs + 1):
        for label, models, sinks in (("off", off, PasserBySinks(None)), ("on", on, PasserBySinks(link))):
            run = live_run(files, fps, models, service, args.measure_s, f"{label}-{pair}", sinks)
            runs.append((label, run))
    serve.shutdown()
    threads = args.threads or 1
    per_tracklet = ray.get(
        patch_cost.options(num_cpus=ray.cluster_resources()["CPU"]).remote(
            files, on.model_copy(update={"threads": threads}), on.second_stage.faces_per_tracklet, 20
        )
    )
    print(
        f"{args.cameras} cameras, saturated ({fps:g} fps each offered), batch {args.batch}, wait {args.wait_ms:g} ms,"
        f" {args.in_flight} in flight per camera, every tracklet decided against an empty watchlist"
    )
    print("| run | second model | frames/s | faces/s | tracklets decided/s | p50 | p99 | dropped | failed calls |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, run in runs:
        print(
            f"| {run.load} | {label} | {run.throughput.frames_per_s:.1f} | {run.throughput.faces_per_s:.1f}"
            f" | {run.decided_per_s:.2f} | {run.latency_p50_s * 1000:.0f} ms | {run.latency_p99_s * 1000:.0f} ms"
            f" | {run.dropped} | {run.second_stage_failures} |"
        )
    frames = {label: [run.throughput.frames_per_s for name, run in runs if name == label] for label in ("off", "on")}
    decided_on = float(np.mean([run.decided_per_s for name, run in runs if name == "on"]))
    change = float(np.median(frames["on"]) / np.median(frames["off"]) - 1.0)
    print(
        f"median frames/s: off {np.median(frames['off']):.1f}, on {np.median(frames['on']):.1f} ({change:+.1%});"
        f" second model: {per_tracklet * 1000:.0f} ms per tracklet of {on.second_stage.faces_per_tracklet} patches"
        f" ({threads} torch thread{'s' if threads > 1 else ''}), x {decided_on:.2f} tracklets/s ="
        f" {per_tracklet * decided_on:.0%} of a core"
    )


def _overhead(stats: StreamStats) -> float:
    """Mean service time per frame beyond the model stages and the configured batch wait: routing, transfer, Python."""
    t = stats.mean_timings
    return t.total_s - t.batch_wait_s - t.detect_s - t.align_s - t.embed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each synthesised camera file")
    parser.add_argument("--fps", type=int, default=25, help="frame rate of the synthesised files")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--wait-ms", type=float, default=50.0)
    parser.add_argument("--measure-s", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=4, help="requests each camera may have open")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per replica (default: the cores)")
    parser.add_argument("--replicas", type=int, default=None, help="face replicas (default: one on CPU)")
    parser.add_argument(
        "--second-stage", action="store_true", help="compare saturated runs with the second face model off and on"
    )
    parser.add_argument("--pairs", type=int, default=3, help="off/on run pairs with --second-stage")
    args = parser.parse_args()
    configure_logging("warning")
    print(describe_machine())
    with tempfile.TemporaryDirectory() as folder:
        spec = CrowdSpec(
            cameras=args.cameras, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height, seed=3
        )
        make_crowd(spec, Path(folder))
        files = [Path(folder) / f"cam{i}.mp4" for i in range(args.cameras)]
        models = FaceModelsConfig(device="auto")
        service = FaceServiceConfig.model_validate(
            {
                "batching": {"max_batch_size": args.batch, "batch_wait_timeout_s": args.wait_ms / 1000},
                "forwarding": {"max_in_flight": args.in_flight},
                "threads_per_replica": args.threads or "auto",
                "replicas": args.replicas or "auto",
            }
        )
        ray.init(namespace=NAMESPACE, include_dashboard=False, log_to_driver=False, _system_config=dict(SYSTEM_CONFIG))
        if args.second_stage:
            serve.start(proxy_location="Disabled")
            try:
                compare_second_stage(files, float(args.fps), service, args)
            finally:
                ray.shutdown()
            return
        bare_task = bare_loop.options(num_cpus=ray.cluster_resources()["CPU"])
        first_bare = ray.get(bare_task.remote(files, models, args.batch))
        serve.start(proxy_location="Disabled")
        runs = []
        try:
            saturated = live_run(files, float(args.fps), models, service, args.measure_s, "saturated")
            runs.append(saturated)
            for load in LOADS:
                fps = min(float(args.fps), load * saturated.throughput.frames_per_s / args.cameras)
                runs.append(live_run(files, fps, models, service, args.measure_s, f"{load:.0%}"))
            serve.shutdown()
            last_bare = ray.get(bare_task.remote(files, models, args.batch))
        finally:
            ray.shutdown()
    bare = max(first_bare, last_bare, key=lambda run: run.faces_per_s)
    for name, run in (("before", first_bare), ("after", last_bare)):
        print(
            f"bare loop {name} ({args.width}x{args.height}, batch {args.batch}):"
            f" {run.frames_per_s:.1f} frames/s, {run.faces_per_s:.1f} faces/s"
        )
    print(
        f"{args.cameras} cameras, batch {args.batch}, wait {args.wait_ms:g} ms, {args.in_flight} in flight per camera,"
        f" {args.replicas or 'auto'} replica(s), {args.threads or 'auto'} torch threads per replica"
    )
    print(
        "| load | offered frames/s | frames/s | faces/s | faces/s vs bare | p50 | p99 | overhead/frame"
        " | dropped | failed | largest batch |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        print(
            f"| {run.load} | {run.offered_fps:.1f} | {run.throughput.frames_per_s:.1f}"
            f" | {run.throughput.faces_per_s:.1f}"
            f" | {run.throughput.faces_per_s / bare.faces_per_s:.2f} | {run.latency_p50_s * 1000:.0f} ms"
            f" | {run.latency_p99_s * 1000:.0f} ms | {run.overhead_s * 1000:.1f} ms | {run.dropped} | {run.failed}"
            f" | {run.largest_batch} |"
        )


if __name__ == "__main__":
    main()
