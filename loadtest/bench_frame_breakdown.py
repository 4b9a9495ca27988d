"""Where a frame's time goes: per-stage milliseconds per frame, bare loop against the cluster path.

    python -m loadtest.bench_frame_breakdown [--cameras 3] [--seconds 6] [--fps 25] [--width 640 --height 360]
        [--batch 8] [--wait-ms 50] [--in-flight 4] [--measure-s 10] [--variants auto,auto,4 1,1,1 ...]
        [--inline-bytes 102400 4194304 ...]

One process tree, one machine, the same synthesised crowd files. The bare loop (one Ray task at
the actors' priority) times each of its steps per frame: decoding, colour conversion, detection,
alignment, embedding, and the CPU its process used. The cluster path runs the live pipeline
saturated (every camera replaying its file in real time) with a sink that records every result's
timings, and reads the CPU every process of this tree used over the measured window, by role
(cameras, forwarders, face replicas, Serve's controller, Ray's own processes, this driver).
Model stages are per frame (a batch's time shared by its frames). "hand-over" is a frame's
time outside the service: camera queue, the pull into the forwarder, the forwarder's window,
and the result's way back. "service overhead" is the service's time beyond the model stages
and the batch wait: routing, serialisation, the object store, the replica's event loop.
The figures are printed as markdown for docs/benchmarks.md; the bare loop runs before and after
the cluster and the faster run is the baseline. Ray is started with the product's system config
(`cluster.application.ray_system_config`); `--inline-bytes` runs the variants again in a fresh Ray
cluster for each size given, so the object-passing setting can be compared in one process tree.
"""

import argparse
import os
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import ray
from ray import serve

from actors.camera_registry import NAMESPACE
from actors.live_pipeline import LivePipeline
from cluster.application.ray_system_config import INLINE_OBJECT_BYTES, SYSTEM_CONFIG
from cluster.cameras.config import CAMERA_ACTOR_CPUS
from cluster.cameras.decoding import rgb_pixels
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.live.config import FaceServiceConfig
from cluster.live.face_service import FrameResult
from cluster.logging_setup import configure_logging
from cluster.processes import child_pids, command_line
from cluster.vision.config import FaceModelsConfig
from cluster.vision.pipeline import FacePipeline
from loadtest.live_bench import looping_cameras, warm_up
from loadtest.machine import describe_machine

WARMUP_S = 3.0
STARTUP_TIMEOUT_S = 120.0
SAMPLES = 8192
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
ROLES = ("cameras", "forwarders", "face replicas", "serve controller", "ray system", "driver")


@dataclass(frozen=True)
class BareBreakdown:
    """Sums over every frame of the bare loop (seconds), and what it did."""

    frames: int
    faces: int
    wall_s: float
    cpu_s: float
    decode_s: float
    convert_s: float
    detect_s: float
    align_s: float
    embed_s: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.wall_s


@ray.remote(max_retries=0)
def bare_breakdown(files: list[Path], models: FaceModelsConfig, batch: int) -> BareBreakdown:
    """Decode, convert and run every frame of every file through one pipeline, `batch` frames per call, timed."""
    pipeline = FacePipeline(models)
    with av.open(str(files[0])) as container:
        warm = [rgb_pixels(frame) for _, frame in zip(range(batch), container.decode(video=0))]
    pipeline.process(warm)
    frames = faces = 0
    decode = convert = detect = align = embed = 0.0

    def run(pending: list[np.ndarray]) -> None:
        nonlocal faces, frames, detect, align, embed
        timed = pipeline.process_timed(pending)
        faces += sum(len(found) for found in timed.faces)
        frames += len(pending)
        detect, align, embed = detect + timed.times.detect_s, align + timed.times.align_s, embed + timed.times.embed_s

    cpu_started, started = time.process_time(), time.perf_counter()
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = container.decode(stream)
            pending: list[np.ndarray] = []
            while True:
                t0 = time.perf_counter()
                frame = next(decoded, None)
                t1 = time.perf_counter()
                decode += t1 - t0
                if frame is None:
                    break
                pending.append(rgb_pixels(frame))
                convert += time.perf_counter() - t1
                if len(pending) == batch:
                    run(pending)
                    pending = []
            if pending:
                run(pending)
    return BareBreakdown(
        frames=frames,
        faces=faces,
        wall_s=time.perf_counter() - started,
        cpu_s=time.process_time() - cpu_started,
        decode_s=decode,
        convert_s=convert,
        detect_s=detect,
        align_s=align,
        embed_s=embed,
    )


@dataclass(frozen=True)
class FrameSample:
    """One result's timings as the forwarder's sink saw them (seconds; model stages are this frame's share)."""

    answered_at: float
    latency_s: float
    decode_s: float
    handover_s: float
    queue_s: float
    batch_wait_s: float
    detect_s: float
    align_s: float
    embed_s: float
    overhead_s: float
    faces: int


@dataclass(frozen=True)
class TimingSummary:
    camera_id: str
    samples: tuple[FrameSample, ...]


@dataclass
class TimingSink:
    """A result sink that keeps each result's timings (the last SAMPLES), for the breakdown."""

    camera_id: str
    _samples: deque[FrameSample] = field(default_factory=lambda: deque(maxlen=SAMPLES))

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None:
        now = time.time()
        t = result.timings
        share = 1.0 / max(1, result.batch_size)
        latency = max(0.0, now - result.captured_at)
        self._samples.append(
            FrameSample(
                answered_at=now,
                latency_s=latency,
                decode_s=t.decode_s,
                handover_s=max(0.0, latency - t.total_s),
                queue_s=t.queue_s,
                batch_wait_s=t.batch_wait_s,
                detect_s=t.detect_s * share,
                align_s=t.align_s * share,
                embed_s=t.embed_s * share,
                overhead_s=max(0.0, t.total_s - t.batch_wait_s - t.detect_s - t.align_s - t.embed_s),
                faces=len(result.faces),
            )
        )

    def tick(self, now: float) -> None:
        """Nothing expires."""

    def close(self) -> None:
        """Nothing to finish."""

    def summary(self) -> TimingSummary:
        return TimingSummary(self.camera_id, tuple(self._samples))


def _role(pid: int, driver: int) -> str:
    if pid == driver:
        return "driver"
    line = " ".join(command_line(pid))
    for marker, role in (
        ("CameraActor", "cameras"),
        ("StreamForwarder", "forwarders"),
        ("ServeReplica", "face replicas"),
        ("ServeController", "serve controller"),
    ):
        if marker in line:
            return role
    return "ray system"


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(child_pids(pid))
    return pids


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def _machine_busy_s() -> float:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS_PER_S


@dataclass(frozen=True)
class CpuSnapshot:
    by_pid: dict[int, tuple[str, float]]
    machine_busy_s: float


def cpu_snapshot() -> CpuSnapshot:
    driver = os.getpid()
    by_pid = {}
    for pid in _tree(driver):
        seconds = _cpu_seconds(pid)
        if seconds is not None:
            by_pid[pid] = (_role(pid, driver), seconds)
    return CpuSnapshot(by_pid, _machine_busy_s())


def cpu_by_role(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    roles: dict[str, float] = defaultdict(float)
    for pid, (role, seconds) in after.by_pid.items():
        roles[role] += seconds - before.by_pid.get(pid, (role, 0.0))[1]
    return dict(roles)


@dataclass(frozen=True)
class ClusterBreakdown:
    frames: int
    faces: int
    seconds: float
    samples: list[FrameSample]
    cpu_s: dict[str, float]
    machine_busy_s: float
    dropped: int
    offered_fps: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds


def cluster_breakdown(
    files: list[Path], fps: float, models: FaceModelsConfig, service: FaceServiceConfig, measure_s: float
) -> ClusterBreakdown:
    cameras = looping_cameras(files, min(fps, 60.0))
    pipeline = LivePipeline.start(cameras, models, service, TimingSink, registry_name=f"bd_{time.monotonic_ns()}")
    try:
        warm_up(pipeline, STARTUP_TIMEOUT_S, WARMUP_S)
        before, since, cpu_before, t0 = pipeline.stats(), time.time(), cpu_snapshot(), time.monotonic()
        time.sleep(measure_s)
        cpu_after, t1 = cpu_snapshot(), time.monotonic()
        after = pipeline.stats()
        summaries = pipeline.current_sink_summaries()
    finally:
        pipeline.stop(remove_service=False)
    samples = [s for summary in summaries for s in summary.samples if since <= s.answered_at]
    return ClusterBreakdown(
        frames=sum(a.results_ok - b.results_ok for a, b in zip(after, before)),
        faces=sum(a.faces - b.faces for a, b in zip(after, before)),
        seconds=t1 - t0,
        samples=samples,
        cpu_s=cpu_by_role(cpu_before, cpu_after),
        machine_busy_s=cpu_after.machine_busy_s - cpu_before.machine_busy_s,
        dropped=sum(a.dropped - b.dropped for a, b in zip(after, before)),
        offered_fps=min(fps, 60.0) * len(files),
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(bare: BareBreakdown, cluster: ClusterBreakdown) -> str:
    """The breakdown as markdown tables: wall-clock stages per frame, then CPU per frame by process role."""
    n = bare.frames

    def mean(name: str) -> float:
        return float(np.mean([getattr(s, name) for s in cluster.samples])) if cluster.samples else float("nan")

    def median(name: str) -> float:
        return float(np.median([getattr(s, name) for s in cluster.samples])) if cluster.samples else float("nan")

    rows = [
        ("decode (packet to frame)", bare.decode_s / n, None),
        ("colour conversion to RGB", bare.convert_s / n, None),
        ("decode + conversion (camera)", (bare.decode_s + bare.convert_s) / n, mean("decode_s")),
        ("hand-over: camera queue, pull, window, result back", None, mean("handover_s")),
        ("service overhead: routing, serialisation, object store", None, mean("overhead_s")),
        ("batch wait (incl. behind the running batch)", None, mean("batch_wait_s")),
        ("detection (share of its batch)", bare.detect_s / n, mean("detect_s")),
        ("alignment", bare.align_s / n, mean("align_s")),
        ("embedding + quality", bare.embed_s / n, mean("embed_s")),
    ]
    lines = [
        "| stage, wall-clock ms per frame (mean) | bare loop | cluster |",
        "| --- | ---: | ---: |",
    ]
    for name, bare_s, cluster_s in rows:
        bare_ms = "" if bare_s is None else _ms(bare_s)
        lines.append(f"| {name} | {bare_ms} | {'' if cluster_s is None else _ms(cluster_s)} |")
    lines.append(
        f"| service overhead p50 / frame-to-result p50 / p99 | | {_ms(median('overhead_s'))} /"
        f" {_ms(median('latency_s'))} / {_ms(float(np.percentile([s.latency_s for s in cluster.samples], 99)))} |"
    )
    lines += [
        "",
        "| CPU ms per frame processed, by process role | bare loop | cluster |",
        "| --- | ---: | ---: |",
    ]
    frames = max(1, cluster.frames)
    for role in ROLES:
        cluster_cpu = cluster.cpu_s.get(role, 0.0) / frames
        lines.append(f"| {role} | {_ms(bare.cpu_s / n) if role == 'driver' else ''} | {_ms(cluster_cpu)} |")
    ours = sum(cluster.cpu_s.values())
    lines.append(f"| all of this process tree | {_ms(bare.cpu_s / n)} | {_ms(ours / frames)} |")
    lines.append(
        f"| the whole machine (other users included) | | {_ms(cluster.machine_busy_s / frames)}"
        f" ({cluster.machine_busy_s / cluster.seconds:.2f} cores busy) |"
    )
    lines += [
        "",
        f"bare loop: {bare.frames_per_s:.1f} frames/s, {bare.faces_per_s:.1f} faces/s;"
        f" cluster: {cluster.frames_per_s:.1f} frames/s, {cluster.faces_per_s:.1f} faces/s"
        f" (offered {cluster.offered_fps:.0f}, dropped {cluster.dropped});"
        f" cluster / bare: {cluster.frames_per_s / bare.frames_per_s:.2f} frames,"
        f" {cluster.faces_per_s / bare.faces_per_s:.2f} faces",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each synthesised camera file")
    parser.add_argument("--fps", type=int, default=25, help="frame rate of the synthesised files (all replayed)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--wait-ms", type=float, default=50.0)
    parser.add_argument("--in-flight", type=int, default=4, help="requests each camera may have open")
    parser.add_argument("--measure-s", type=float, default=10.0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["auto,auto,4"],
        help="cluster set-ups to run one after the other, each REPLICAS,THREADS,FRAMES_PER_REQUEST (auto allowed"
        " for the first two), e.g. 1,1,1 2,1,4",
    )
    parser.add_argument(
        "--inline-bytes",
        type=int,
        nargs="+",
        default=[INLINE_OBJECT_BYTES],
        help="Ray's max_direct_call_object_size for the cluster runs (default: the product's); several values, in"
        " turn, each in a Ray cluster of its own (102400 is Ray's default), e.g. 102400 4194304 102400 4194304",
    )
    args = parser.parse_args()
    if any(size < 0 for size in args.inline_bytes):
        raise SystemExit(f"--inline-bytes must be sizes in bytes (0 or more), got {args.inline_bytes}")
    configure_logging("warning")
    print(describe_machine())
    print(f"load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        spec = CrowdSpec(
            cameras=args.cameras, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height, seed=3
        )
        make_crowd(spec, Path(folder))
        files = [Path(folder) / f"cam{i}.mp4" for i in range(args.cameras)]
        models = FaceModelsConfig(device="auto", second_stage=None)
        services = {variant: service_for(variant, args) for variant in args.variants}
        cores = os.cpu_count() or 1
        bare_task = bare_breakdown.options(num_cpus=cores)
        clusters: dict[str, ClusterBreakdown] = {}
        bare_runs: list[BareBreakdown] = []
        for turn, inline_bytes in enumerate(args.inline_bytes):
            ray.init(
                num_cpus=max(cores, int(np.ceil(args.cameras * CAMERA_ACTOR_CPUS + 1))),
                namespace=NAMESPACE,
                include_dashboard=False,
                log_to_driver=False,
                _system_config={**SYSTEM_CONFIG, "max_direct_call_object_size": inline_bytes},
            )
            try:
                if turn == 0:
                    bare_runs.append(ray.get(bare_task.remote(files, models, args.batch)))
                serve.start(proxy_location="Disabled")
                for variant, service in services.items():
                    name = variant if len(args.inline_bytes) == 1 else f"{variant}, inline {inline_bytes // 1024} KiB"
                    if name in clusters:
                        name = f"{name} (turn {turn + 1})"
                    clusters[name] = cluster_breakdown(files, float(args.fps), models, service, args.measure_s)
                serve.shutdown()
                if turn == len(args.inline_bytes) - 1:
                    bare_runs.append(ray.get(bare_task.remote(files, models, args.batch)))
            finally:
                ray.shutdown()
    first, last = bare_runs[0], bare_runs[-1]
    bare = max(first, last, key=lambda run: run.frames_per_s)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(
        f"bare loop runs: {first.frames_per_s:.1f} and {last.frames_per_s:.1f} frames/s (the faster is the baseline);"
        f" {args.cameras} cameras {args.width}x{args.height} at {args.fps} fps, batch {args.batch},"
        f" wait {args.wait_ms:g} ms, {args.in_flight} in flight per camera"
    )
    for variant, cluster in clusters.items():
        print(f"\n### replicas, threads, frames per request: {variant}\n")
        print(report(bare, cluster))
    print("\n" + summary(bare, clusters))


def service_for(variant: str, args: argparse.Namespace) -> FaceServiceConfig:
    """The face service of one REPLICAS,THREADS,FRAMES_PER_REQUEST variant."""
    try:
        replicas, threads, group = variant.split(",")
        return FaceServiceConfig.model_validate(
            {
                "batching": {"max_batch_size": args.batch, "batch_wait_timeout_s": args.wait_ms / 1000},
                "forwarding": {"max_in_flight": args.in_flight, "max_frames_per_request": int(group)},
                "threads_per_replica": threads if threads == "auto" else int(threads),
                "replicas": replicas if replicas == "auto" else int(replicas),
            }
        )
    except ValueError as exc:
        raise SystemExit(f"--variants {variant!r}: expected REPLICAS,THREADS,FRAMES_PER_REQUEST ({exc})") from exc


def summary(bare: BareBreakdown, clusters: dict[str, ClusterBreakdown]) -> str:
    """One line per variant: throughput against the bare loop, service overhead, latency, CPU per frame."""
    lines = [
        "| replicas, threads, frames/request | frames/s | faces/s | vs bare (frames) | vs bare (faces)"
        " | overhead p50 | p50 | p99 | CPU ms/frame (tree) | dropped |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, run in clusters.items():
        latencies = [s.latency_s for s in run.samples]
        overheads = [s.overhead_s for s in run.samples]
        lines.append(
            f"| {variant} | {run.frames_per_s:.1f} | {run.faces_per_s:.1f} | {run.frames_per_s / bare.frames_per_s:.2f}"
            f" | {run.faces_per_s / bare.faces_per_s:.2f} | {_ms(float(np.median(overheads)))} ms"
            f" | {_ms(float(np.median(latencies)))} ms | {_ms(float(np.percentile(latencies, 99)))} ms"
            f" | {_ms(sum(run.cpu_s.values()) / max(1, run.frames))} | {run.dropped} |"
        )
    lines.append(
        f"| bare loop | {bare.frames_per_s:.1f} | {bare.faces_per_s:.1f} | 1.00 | 1.00 | | | |"
        f" {_ms(bare.cpu_s / bare.frames)} | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
