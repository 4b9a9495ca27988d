"""The whole face pipeline in one process: end-to-end speed and peak memory.

    python -m loadtest.bench_pipeline [--repeat R] [--threads N] [--batch B]

Holds the detector and the embedder together (as a face-service replica will), runs
detection, alignment, embedding and quality on 1920x1080 frames with four real faces each
(synthesised from the lfw10 photos, deterministic), and prints frames/s, faces/s and the
process's peak RSS against the 1.5 GiB target.
"""

import argparse
import time

import numpy as np

from cluster.logging_setup import configure_logging
from cluster.vision.config import FaceModelsConfig
from cluster.vision.pipeline import FacePipeline
from loadtest.bench_detector import load_photos, synthesise_frame
from loadtest.machine import describe_machine, peak_rss_mib

RSS_TARGET_MIB = 1536


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=4, help="frames per process() call")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    configure_logging("warning")
    pipeline = FacePipeline(FaceModelsConfig(device=args.device, threads=args.threads))
    print(describe_machine())
    print(f"after loading both models: peak RSS {peak_rss_mib():.0f} MiB")
    rng = np.random.default_rng(11)
    photos = load_photos()
    frames = [synthesise_frame(1920, 1080, photos, rng) for _ in range(args.batch)]
    pipeline.process(frames)
    best_seconds, faces = float("inf"), 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        faces = sum(len(f) for f in pipeline.process(frames))
        best_seconds = min(best_seconds, time.perf_counter() - start)
    rss = peak_rss_mib()
    print(
        f"1920x1080, batch {args.batch}: {args.batch / best_seconds:.2f} frames/s,"
        f" {faces / best_seconds:.1f} faces/s ({faces} faces per batch)"
    )
    verdict = "meets" if rss <= RSS_TARGET_MIB else "MISSES"
    print(f"peak RSS {rss:.0f} MiB: {verdict} the {RSS_TARGET_MIB} MiB target ({rss / RSS_TARGET_MIB:.2f} of it)")


if __name__ == "__main__":
    main()
