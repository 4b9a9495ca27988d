"""Embedding throughput: faceres (224x224, 1024-d) against our dlib port (150x150, 128-d), on CPU.

    python -m loadtest.bench_faceres [--threads N] [--repeat R] [--batches 1 8 32]

Both embedders run in the same process on chips from the same LFW photos, each at its own chip
size, timed as `loadtest.bench_embedder` times them (a round of at least 0.3 s after a warm-up call),
so the ratio tells what switching the live pipeline to faceres costs on the machine at hand. The
rounds of the embedders alternate and each keeps its best of `--repeat`, so other jobs on a shared
machine disturb both alike. faceres is timed in both memory layouts. Run it on an idle machine.
"""

import argparse
import os
import resource

import torch

from cluster.vision.embedder import CHIP_SIZE as DLIB_CHIP_SIZE
from cluster.vision.embedder import FaceEmbedder
from cluster.vision.faceres import CHIP_SIZE as FACERES_CHIP_SIZE
from cluster.vision.faceres import FaceresEmbedder, compile_layers, load_faceres_graph
from loadtest.bench_embedder import faces_per_second, load_chips


def faceres_gmacs() -> float:
    """Multiply-accumulates per face, in billions, counted from the compiled convolutions."""
    size, total = FACERES_CHIP_SIZE, 0
    for layer in compile_layers(load_faceres_graph()):
        out_channels, in_per_group, kh, kw = layer.weight.shape
        top, bottom, _, _ = layer.padding
        size = (size + top + bottom - kh) // layer.stride + 1
        total += size * size * out_channels * in_per_group * kh * kw
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per measurement; the best counts")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32], help="batch sizes to time")
    args = parser.parse_args()

    largest = max(args.batches)
    dlib_chips = load_chips(largest, DLIB_CHIP_SIZE)
    faceres_chips = load_chips(largest, FACERES_CHIP_SIZE)
    dlib = FaceEmbedder(threads=args.threads)
    faceres = {"NHWC": FaceresEmbedder(threads=args.threads), "NCHW": FaceresEmbedder(channels_last=False)}

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; faceres {faceres_gmacs():.2f} GMAC per face"
    )
    header = f"{'batch':>5} | {'dlib port':>10} | {'faceres NHWC':>12} | {'faceres NCHW':>12} | {'faceres/dlib':>12}"
    print(header)
    print("-" * len(header))
    for batch in args.batches:
        runs = {"dlib": lambda x=dlib_chips[:batch]: dlib.embed(x)}
        runs.update({name: lambda e=e, x=faceres_chips[:batch]: e.embed(x) for name, e in faceres.items()})
        best = dict.fromkeys(runs, 0.0)
        for _ in range(args.repeat):
            for name, run in runs.items():
                best[name] = max(best[name], faces_per_second(run, batch, 1))
        ratio = best["NHWC"] / best["dlib"]
        print(f"{batch:>5} | {best['dlib']:>10.1f} | {best['NHWC']:>12.1f} | {best['NCHW']:>12.1f} | {ratio:>11.2f}x")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"faces/s, NHWC is both embedders' default; load average now {os.getloadavg()[0]:.2f}; "
        f"peak RSS {peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
