"""Embedding throughput: our torch port of dlib's face ResNet against dlib itself, on CPU.

    python -m loadtest.bench_embedder [--threads N] [--repeat R] [--batches 1 8 32] [--no-dlib]

Both run on the same 150x150 chips in the same process. dlib is given a list of chips for
batches (its batched overload) and a single chip at batch 1. Rates are the best of `--repeat`
timed rounds after a warm-up. The torch port is measured in both memory layouts, so the
embedder's `channels_last` default can be checked on the machine at hand. Run it on an idle
machine: with OpenMP, a second busy process on the same cores slows torch down many times over.
"""

import argparse
import importlib.util
import inspect
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cluster.crowd.photos import LFW10
from cluster.vision.embedder import CHIP_SIZE, FaceEmbedder

FACES = LFW10
MIN_ROUND_SECONDS = 0.3


def load_chips(count: int, size: int = CHIP_SIZE) -> np.ndarray:
    """`count` size x size chips from the LFW sample photos (face-centred, so a plain resize is a fair chip)."""
    paths = sorted(FACES.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no test photos under {FACES}")
    chips = []
    for i in range(count):
        with Image.open(paths[i % len(paths)]) as image:
            chips.append(np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
    return np.stack(chips)


def faces_per_second(run: Callable[[], object], batch: int, repeat: int) -> float:
    """Best rate over `repeat` rounds; each round repeats `run` for at least MIN_ROUND_SECONDS."""
    run()
    best = 0.0
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while True:
            run()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= MIN_ROUND_SECONDS:
                break
        best = max(best, calls * batch / elapsed)
    return best


def dlib_runner(chips: np.ndarray) -> Callable[[], object] | None:
    """A call of dlib's descriptor on `chips`, or None where dlib is not installed."""
    try:
        import dlib
    except ImportError:
        return None
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    model = dlib.face_recognition_model_v1(str(path))
    if len(chips) == 1:
        chip = chips[0]
        return lambda: model.compute_face_descriptor(chip)
    batch = list(chips)
    return lambda: model.compute_face_descriptor(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per measurement; the best counts")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32], help="batch sizes to time")
    parser.add_argument("--no-dlib", action="store_true", help="time only the torch port")
    args = parser.parse_args()

    chips = load_chips(max(args.batches))
    layouts = {"NHWC": FaceEmbedder(threads=args.threads, channels_last=True)}
    layouts["NCHW"] = FaceEmbedder(threads=args.threads, channels_last=False)
    default_layout = "NHWC" if inspect.signature(FaceEmbedder).parameters["channels_last"].default else "NCHW"

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}, default layout {default_layout}"
    )
    header = f"{'batch':>5} | {'ours NHWC':>10} | {'ours NCHW':>10} | {'dlib':>8} | {'ours/dlib':>9}"
    print(header)
    print("-" * len(header))
    for batch in args.batches:
        subset = chips[:batch]
        ours = {
            name: faces_per_second(lambda e=embedder, x=subset: e.descriptors(x), batch, args.repeat)
            for name, embedder in layouts.items()
        }
        runner = None if args.no_dlib else dlib_runner(subset)
        theirs = faces_per_second(runner, batch, args.repeat) if runner is not None else float("nan")
        ratio = ours[default_layout] / theirs
        print(f"{batch:>5} | {ours['NHWC']:>10.1f} | {ours['NCHW']:>10.1f} | {theirs:>8.1f} | {ratio:>8.1f}x")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"faces/s; ratio uses the default layout ({default_layout}); peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
