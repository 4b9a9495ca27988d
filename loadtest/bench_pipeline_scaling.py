"""How the live pipeline's throughput grows with cameras and with batch size: a table and a plot.

    python -m loadtest.bench_pipeline_scaling [--cameras 1 2 4 8] [--batches 1 2 4 8 16]
        [--camera-batch 8] [--batch-cameras 4] [--measure-s 8] [--plot docs/pipeline_scaling.png]

Every run is saturated (each camera replays its synthesised file at the file's full rate), so
frames/s is what the cluster can serve with that many cameras or that batch size; the drop
share says how much of what the cameras offered it had to leave. Ray gets enough logical CPUs
for every camera's reservation (8 cameras reserve 2), whatever the cores. One crowd is synthesised for
the largest camera count and shared by all runs; the bare loop (one process decoding, detecting
and embedding every camera's frames in batches) is the reference line.
"""

import argparse
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import ray
from ray import serve

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from actors.camera_registry import NAMESPACE  # noqa: E402
from cluster.application.ray_system_config import SYSTEM_CONFIG
from cluster.cameras.config import CAMERA_ACTOR_CPUS  # noqa: E402
from cluster.config import FaceModelsConfig  # noqa: E402
from cluster.crowd.spec import CrowdSpec  # noqa: E402
from cluster.crowd.synthesis import make_crowd  # noqa: E402
from cluster.live.config import FaceServiceConfig  # noqa: E402
from cluster.logging_setup import configure_logging  # noqa: E402
from loadtest.bench_pipeline_live import LiveRun, Throughput, bare_loop, live_run  # noqa: E402
from loadtest.machine import describe_machine  # noqa: E402


@dataclass(frozen=True)
class ScalingPoint:
    cameras: int
    batch: int
    run: LiveRun

    @property
    def drop_share(self) -> float:
        offered = self.run.offered_fps
        return max(0.0, 1.0 - self.run.throughput.frames_per_s / offered) if offered else 0.0


def service_for(batch: int, cameras: int, wait_ms: float) -> FaceServiceConfig:
    """Batching as asked, with enough requests in flight across the cameras to fill two batches."""
    in_flight = max(2, math.ceil(2 * batch / cameras))
    return FaceServiceConfig.model_validate(
        {
            "batching": {"max_batch_size": batch, "batch_wait_timeout_s": wait_ms / 1000},
            "forwarding": {"max_in_flight": in_flight},
        }
    )


def measure(files: list[Path], fps: float, cameras: int, batch: int, wait_ms: float, measure_s: float) -> ScalingPoint:
    models = FaceModelsConfig(device="auto")
    service = service_for(batch, cameras, wait_ms)
    run = live_run(files[:cameras], fps, models, service, measure_s, f"{cameras}cams-b{batch}")
    print(
        f"{cameras} cameras, batch {batch}: {run.throughput.frames_per_s:.1f} frames/s,"
        f" {run.throughput.faces_per_s:.1f} faces/s, p50 {run.latency_p50_s * 1000:.0f} ms,"
        f" p99 {run.latency_p99_s * 1000:.0f} ms, largest batch {run.largest_batch}",
        flush=True,
    )
    return ScalingPoint(cameras, batch, run)


def table(points: list[ScalingPoint], bare: Throughput) -> str:
    rows = [
        "| cameras | batch | offered frames/s | frames/s | faces/s | vs bare (frames) | dropped share | p50 | p99"
        " | largest batch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for point in points:
        run = point.run
        rows.append(
            f"| {point.cameras} | {point.batch} | {run.offered_fps:.0f} | {run.throughput.frames_per_s:.1f}"
            f" | {run.throughput.faces_per_s:.1f} | {run.throughput.frames_per_s / bare.frames_per_s:.2f}"
            f" | {point.drop_share:.0%} | {run.latency_p50_s * 1000:.0f} ms | {run.latency_p99_s * 1000:.0f} ms"
            f" | {run.largest_batch} |"
        )
    return "\n".join(rows)


def plot(by_cameras: list[ScalingPoint], by_batch: list[ScalingPoint], bare: Throughput, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, points, key, label in (
        (left, by_cameras, "cameras", "cameras (batch {batch})"),
        (right, by_batch, "batch", "max batch size ({cameras} cameras)"),
    ):
        if not points:
            axis.set_visible(False)
            continue
        xs = [getattr(point, key) for point in points]
        axis.plot(xs, [p.run.throughput.frames_per_s for p in points], "o-", label="cluster frames/s")
        axis.plot(xs, [p.run.throughput.faces_per_s for p in points], "s--", label="cluster faces/s")
        axis.axhline(bare.frames_per_s, color="grey", linestyle=":", label="bare loop frames/s")
        axis.set_xscale("log", base=2)
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.set_xlabel(label.format(batch=points[0].batch, cameras=points[0].cameras))
        axis.set_ylabel("per second")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Live pipeline throughput, saturated cameras")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--camera-batch", type=int, default=8, help="batch size of the camera sweep")
    parser.add_argument("--batch-cameras", type=int, default=4, help="cameras of the batch-size sweep")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each synthesised camera file")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--wait-ms", type=float, default=50.0)
    parser.add_argument("--measure-s", type=float, default=8.0)
    parser.add_argument("--plot", type=Path, default=Path("docs/pipeline_scaling.png"))
    args = parser.parse_args()
    configure_logging("warning")
    print(describe_machine())
    largest = max([*args.cameras, args.batch_cameras])
    with tempfile.TemporaryDirectory() as folder:
        spec = CrowdSpec(
            cameras=largest, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height, seed=3
        )
        make_crowd(spec, Path(folder))
        files = [Path(folder) / f"cam{i}.mp4" for i in range(largest)]
        logical_cpus = max(os.cpu_count() or 1, math.ceil(largest * CAMERA_ACTOR_CPUS + 1))
        ray.init(
            num_cpus=logical_cpus,
            namespace=NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            _system_config=dict(SYSTEM_CONFIG),
        )
        try:
            bare_task = bare_loop.options(num_cpus=os.cpu_count() or 1)
            bare = ray.get(bare_task.remote(files[: args.batch_cameras], FaceModelsConfig(), args.camera_batch))
            print(f"bare loop: {bare.frames_per_s:.1f} frames/s, {bare.faces_per_s:.1f} faces/s", flush=True)
            serve.start(proxy_location="Disabled")
            fps = float(args.fps)
            by_cameras = [measure(files, fps, n, args.camera_batch, args.wait_ms, args.measure_s) for n in args.cameras]
            by_batch = [measure(files, fps, args.batch_cameras, b, args.wait_ms, args.measure_s) for b in args.batches]
            serve.shutdown()
        finally:
            ray.shutdown()
    print(f"\n{args.width}x{args.height} H.264 at {args.fps} fps per camera, wait {args.wait_ms:g} ms")
    print(table(by_cameras + by_batch, bare))
    plot(by_cameras, by_batch, bare, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
