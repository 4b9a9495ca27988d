"""Face models on a GPU: fp16 against fp32, speed and agreement, in one short run.

    python -m loadtest.gpu_check [--repeat R]

Embedder: faces/s at batch 8, 32 and 64 in fp32 and fp16, on chips aligned by our own
detector and aligner from the lfw10 sample photos, and how far the fp16 embeddings fall from
the fp32 ones (max abs difference, lowest cosine) and whether lfw10 rank-1 stays the same.
Detector: ms/frame at 1920x1080 for batches of 8 and 32 frames in fp32 and fp16, and whether
the fp16 faces agree with the fp32 ones (IoU >= 0.9, landmarks within 2 px).
"""

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from cluster.logging_setup import configure_logging
from cluster.vision.aligner import FaceAligner
from cluster.vision.detector import MTCNNDetector
from cluster.vision.embedder import FaceEmbedder
from cluster.vision.identification import rank1_accuracy
from loadtest.bench_detector import FACES, load_photos, synthesise_frame
from loadtest.detector_agreement import compare
from loadtest.machine import describe_machine, peak_rss_mib

EMBED_BATCHES = (8, 32, 64)
DETECT_BATCHES = (8, 32)
CHIPS_TOTAL = 640


def timed_rate(run: Callable[[], object], items: int, repeat: int) -> float:
    """Best items/s over `repeat` synchronised rounds after a warm-up."""
    run()
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        best = max(best, items / (time.perf_counter() - start))
    return best


def lfw10_chips(detector: MTCNNDetector, aligner: FaceAligner) -> tuple[np.ndarray, list[str], list[str]]:
    """One chip per lfw10 photo (the face nearest the centre), with person and file names."""
    paths = sorted(FACES.glob("*/*.jpg"))
    photos = load_photos()
    chips, people, names = [], [], []
    for path, photo, found in zip(paths, photos, detector.detect(photos)):
        if not len(found):
            continue
        centres = np.hypot(*((found.boxes[:, :2] + found.boxes[:, 2:]) / 2 - 125).T)
        chips.append(aligner.align(photo, found.landmarks[[int(np.argmin(centres))]])[0])
        people.append(path.parent.name)
        names.append(path.name)
    return np.stack(chips), people, names


def check_embedder(chips: np.ndarray, people: list[str], names: list[str], repeat: int) -> None:
    fp32 = FaceEmbedder(device="cuda", half=False)
    fp16 = FaceEmbedder(device="cuda", half=True)
    many = np.concatenate([chips] * (CHIPS_TOTAL // len(chips) + 1))[:CHIPS_TOTAL]
    print("embedder faces/s (chips 150x150):")
    print("  batch     fp32      fp16   fp16/fp32")
    for batch in EMBED_BATCHES:
        fp32.max_batch = fp16.max_batch = batch
        rate32 = timed_rate(lambda e=fp32: e.embed(many), len(many), repeat)
        rate16 = timed_rate(lambda e=fp16: e.embed(many), len(many), repeat)
        print(f"  {batch:5d} {rate32:8.0f}  {rate16:8.0f}   {rate16 / rate32:6.2f}x")
    e32, e16 = fp32.embed(chips), fp16.embed(chips)
    cosines = (e32 * e16).sum(axis=1)
    enrolled = [i for i, n in enumerate(names) if n.endswith("_0001.jpg")]
    queries = [i for i in range(len(names)) if i not in enrolled]

    def rank1(embeddings: np.ndarray) -> float:
        return rank1_accuracy(
            embeddings[enrolled], [people[i] for i in enrolled], embeddings[queries], [people[i] for i in queries]
        )

    print(
        f"fp16 vs fp32 embeddings over {len(chips)} faces: max abs diff {np.abs(e32 - e16).max():.2e},"
        f" lowest cosine {cosines.min():.6f}; lfw10 rank-1 fp32 {rank1(e32):.3f}, fp16 {rank1(e16):.3f}"
    )


def check_detector(repeat: int) -> None:
    rng = np.random.default_rng(7)
    photos = load_photos()
    frames = [synthesise_frame(1920, 1080, photos, rng) for _ in range(max(DETECT_BATCHES))]
    fp32 = MTCNNDetector(device="cuda", half=False)
    fp16 = MTCNNDetector(device="cuda", half=True)
    print("detector at 1920x1080, ms/frame:")
    print("  batch     fp32      fp16")
    for batch in DETECT_BATCHES:
        subset = frames[:batch]
        ms32 = 1000 / timed_rate(lambda d=fp32, s=subset: d.detect(s), batch, repeat)
        ms16 = 1000 / timed_rate(lambda d=fp16, s=subset: d.detect(s), batch, repeat)
        print(f"  {batch:5d} {ms32:8.2f}  {ms16:8.2f}")
    agreements = [compare(b, a) for a, b in zip(fp32.detect(frames), fp16.detect(frames))]
    print(
        f"fp16 vs fp32 detections on {len(frames)} frames: all agree {all(a.ok for a in agreements)},"
        f" worst IoU {min(a.worst_iou for a in agreements):.3f},"
        f" worst landmark {max(a.worst_landmark_px for a in agreements):.2f} px,"
        f" unmatched {sum(a.unmatched_reference + a.unmatched_ours for a in agreements)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning")
    if not torch.cuda.is_available():
        raise SystemExit("no GPU visible to torch: this check needs cuda")
    print(describe_machine())
    detector = MTCNNDetector(device="cuda")
    chips, people, names = lfw10_chips(detector, FaceAligner(device="cuda"))
    check_embedder(chips, people, names, args.repeat)
    check_detector(args.repeat)
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
