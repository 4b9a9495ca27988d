"""Face detection speed: our batched MTCNN detector against facenet-pytorch's MTCNN.

    python -m loadtest.bench_detector [--repeat R] [--threads N] [--device cpu|cuda] [--batch B]

Frames of 640x480, 1280x720 and 1920x1080 are synthesised deterministically: the lfw10 photos
(shipped with the crowd assets) at several sizes on a smooth, noisy grey background. Both detectors
run in the same process on the same frames, one frame per call and as one batch of `--batch` frames; each figure
is the median of `--repeat` timed rounds after a warm-up. The `agree` column checks our faces
against facenet-pytorch on CPU (on a GPU it runs fp32 convolutions in TF32, which moves its own
boxes by a pixel or two): every face either side scores >= 0.9 needs a counterpart with
IoU >= 0.9 and landmarks within 2 px.
Peak RSS is read from a fresh process per detector that loads it and detects one batch of each
size. Run it on an idle machine: the last line says how much CPU other processes (or the
hypervisor) took during the timings, which skews them badly with OpenMP.
"""

import argparse
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cluster.crowd.photos import LFW10
from cluster.logging_setup import configure_logging
from cluster.processes import process_memory
from cluster.vision.detector import MTCNNDetector
from loadtest.detector_agreement import PERFECT, Agreement, compare, reference_detections
from loadtest.machine import describe_machine, peak_rss_mib

FACES = LFW10
FRAME_SIZES = ((640, 480), (1280, 720), (1920, 1080))
FACES_PER_FRAME = 4
FACE_SIDE_RANGE = (0.22, 0.45)
"""Pasted photo side as a fraction of the frame height (an LFW face fills ~40% of its photo)."""
BACKGROUND_GREY = 118
BACKGROUND_TEXTURE = 40
SEED = 20240611


def load_photos() -> list[np.ndarray]:
    paths = sorted(FACES.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no test photos under {FACES}")
    photos = []
    for path in paths:
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("RGB")))
    return photos


def synthesise_frame(width: int, height: int, photos: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A textured grey frame with FACES_PER_FRAME photos pasted side by side without overlap."""
    coarse = rng.normal(BACKGROUND_GREY, BACKGROUND_TEXTURE, size=(height // 16, width // 16, 3))
    texture = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8))
    frame = np.array(texture.resize((width, height), Image.Resampling.BILINEAR))
    columns = width // FACES_PER_FRAME
    for slot in range(FACES_PER_FRAME):
        photo = photos[int(rng.integers(len(photos)))]
        side = min(int(height * rng.uniform(*FACE_SIDE_RANGE)), columns - 4)
        face = np.asarray(Image.fromarray(photo).resize((side, side), Image.Resampling.BILINEAR))
        x = slot * columns + int(rng.integers(0, columns - side))
        y = int(rng.integers(0, height - side))
        frame[y : y + side, x : x + side] = face
    return frame


def median_ms_per_frame(run: Callable[[], object], frames: int, repeat: int, device: str) -> float:
    """Median wall time of `run` over `repeat` rounds after one warm-up, per frame, in ms."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / frames


def benchmark_frames(batch: int) -> dict[tuple[int, int], list[np.ndarray]]:
    """`batch` synthetic frames per size, the same on every call."""
    photos = load_photos()
    rng = np.random.default_rng(SEED)
    return {size: [synthesise_frame(*size, photos, rng) for _ in range(batch)] for size in FRAME_SIZES}


def reference_detector(device: str) -> Callable[[np.ndarray], tuple[object, object, object]]:
    """facenet-pytorch's MTCNN returning every face: `detect(images, landmarks=True)`."""
    from facenet_pytorch import MTCNN

    model = MTCNN(keep_all=True, device=torch.device(device))
    return lambda images: model.detect(images, landmarks=True)


def memory_mib(peak: bool = False) -> float:
    """This process's resident memory now (or its peak) in MiB, from /proc; else the rusage peak.

    The rusage peak survives exec, so in a spawned child it starts at the parent's peak; the
    kernel's per-process peak (VmHWM) does not.
    """
    try:
        memory = process_memory()
    except OSError:
        return peak_rss_mib()
    return (memory.peak_resident_bytes if peak else memory.resident_bytes) / 2**20


def memory_of(name: str, device: str, batch: int, threads: int) -> tuple[float, float]:
    """(RSS once loaded, peak RSS) in MiB of a process that runs one detector on one batch per size.

    Runs in a child process, so the peak belongs to that detector alone.
    """
    torch.set_num_threads(threads)
    configure_logging("warning")
    frames = benchmark_frames(batch)
    if name == "ours":
        detect = MTCNNDetector(device=device).detect
    else:
        reference = reference_detector(device)

        def detect(images: list[np.ndarray]) -> object:
            return reference(np.stack(images))

    loaded = memory_mib()
    for size in FRAME_SIZES:
        detect(frames[size])
    return loaded, memory_mib(peak=True)


class CpuWatch:
    """CPU time that other processes and the hypervisor (steal) took while timings ran."""

    def __init__(self) -> None:
        self.start_busy, self.start_steal = self._system()
        self.start_own = self._own()

    @staticmethod
    def _system() -> tuple[float, float]:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return 0.0, 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return (user + nice + system + irq + softirq) / ticks, steal / ticks

    @staticmethod
    def _own() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def report(self) -> str:
        busy, steal = self._system()
        others = max(0.0, (busy - self.start_busy) - (self._own() - self.start_own))
        stolen = steal - self.start_steal
        return f"during the timings other processes used {others:.1f} CPU-s; the hypervisor stole {stolen:.1f} s"


@dataclass(frozen=True)
class Row:
    size: str
    ours_single: float
    reference_single: float
    ours_batch: float
    reference_batch: float
    agreement: Agreement


def bench_size(
    width: int,
    height: int,
    frames: list[np.ndarray],
    ours: MTCNNDetector,
    reference: Callable[[np.ndarray], tuple[object, object, object]],
    truth: Callable[[np.ndarray], tuple[object, object, object]],
    args: argparse.Namespace,
) -> Row:
    """Time both detectors on one frame size; check ours against `truth` (the CPU reference)."""
    batch = np.stack(frames)

    def timed(run: Callable[[], object]) -> float:
        return median_ms_per_frame(run, len(frames), args.repeat, args.device)

    ours_single = timed(lambda: [ours.detect([f]) for f in frames])
    ours_batch = timed(lambda: ours.detect(frames))
    reference_single = timed(lambda: [reference(f) for f in frames])
    reference_batch = timed(lambda: reference(batch))
    agreement = PERFECT
    for frame, found in zip(frames, ours.detect(frames), strict=True):
        agreement = agreement.merge(compare(found, reference_detections(*truth(frame))))
    return Row(f"{width}x{height}", ours_single, reference_single, ours_batch, reference_batch, agreement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per figure; the median counts")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="cpu", help="torch device for both detectors (cpu, cuda)")
    parser.add_argument("--batch", type=int, default=4, help="frames per size, and the batch size")
    args = parser.parse_args()

    configure_logging("warning")
    torch.set_num_threads(args.threads)
    frames = benchmark_frames(args.batch)
    ours = MTCNNDetector(device=args.device)
    reference = reference_detector(args.device)
    truth = reference if args.device == "cpu" else reference_detector("cpu")
    watch = CpuWatch()
    rows = [bench_size(*size, frames[size], ours, reference, truth, args) for size in FRAME_SIZES]
    load_report = watch.report()
    spawn = multiprocessing.get_context("spawn")
    memory = {}
    for name in ("ours", "facenet-pytorch"):
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            memory[name] = pool.submit(memory_of, name, args.device, args.batch, args.threads).result()

    print(describe_machine())
    print(f"device {args.device}, {args.batch} frames per size, median of {args.repeat}")
    header = (
        f"{'frame':>9} | {'ours 1':>7} | {'ref 1':>7} | {'x':>5} | {'ours B':>7} | {'ref B':>7} | {'x':>5} | "
        f"{'agree':>5} | {'IoU min':>7} | {'lm px':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        a = row.agreement
        print(
            f"{row.size:>9} | {row.ours_single:>7.1f} | {row.reference_single:>7.1f} | "
            f"{row.reference_single / row.ours_single:>4.2f}x | {row.ours_batch:>7.1f} | {row.reference_batch:>7.1f} | "
            f"{row.reference_batch / row.ours_batch:>4.2f}x | {'yes' if a.ok else 'NO':>5} | "
            f"{a.worst_iou:>7.4f} | {a.worst_landmark_px:>5.2f}"
        )
    print(f"ms/frame; '1' = one frame per call, 'B' = batches of {args.batch}; x = ref/ours")
    for name, (loaded, peak) in memory.items():
        print(f"{name}: RSS {loaded:.0f} MiB once loaded, peak {peak:.0f} MiB over one batch of each size")
    print(load_report)


if __name__ == "__main__":
    main()
