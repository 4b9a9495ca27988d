"""Whether two face detectors found the same faces: matched boxes and landmarks, confident faces only.

Our batched MTCNN is checked against facenet-pytorch's MTCNN (the reference) by the detector
benchmark and the detector tests, and fp16 against fp32 by the GPU check, all with the same
rule: every face either side that scores >= 0.9 needs a counterpart with IoU >= 0.9 and all
five landmarks within 2 px.
"""

from dataclasses import dataclass

import numpy as np

from cluster.vision.detections import Detections

MIN_SCORE = 0.9
MIN_IOU = 0.9
MAX_LANDMARK_PX = 2.0


@dataclass(frozen=True)
class Agreement:
    """How two detectors' faces on one or more frames line up (confident faces only)."""

    worst_iou: float
    worst_landmark_px: float
    unmatched_reference: int
    unmatched_ours: int

    @property
    def ok(self) -> bool:
        return (
            self.unmatched_reference == 0
            and self.unmatched_ours == 0
            and self.worst_iou >= MIN_IOU
            and self.worst_landmark_px <= MAX_LANDMARK_PX
        )

    def merge(self, other: "Agreement") -> "Agreement":
        return Agreement(
            min(self.worst_iou, other.worst_iou),
            max(self.worst_landmark_px, other.worst_landmark_px),
            self.unmatched_reference + other.unmatched_reference,
            self.unmatched_ours + other.unmatched_ours,
        )


PERFECT = Agreement(worst_iou=1.0, worst_landmark_px=0.0, unmatched_reference=0, unmatched_ours=0)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n, 4) with every box in b (m, 4), xyxy."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def compare(ours: Detections, reference: Detections, min_score: float = MIN_SCORE) -> Agreement:
    """Match confident faces both ways by best IoU; landmarks are compared on matched pairs."""
    iou = pairwise_iou(reference.boxes, ours.boxes)
    worst_iou, worst_px, missing, extra = 1.0, 0.0, 0, 0
    for i in np.flatnonzero(reference.scores >= min_score):
        if iou.shape[1] == 0 or iou[i].max() < MIN_IOU:
            missing += 1
            worst_iou = min(worst_iou, float(iou[i].max()) if iou.shape[1] else 0.0)
            continue
        j = int(iou[i].argmax())
        worst_iou = min(worst_iou, float(iou[i, j]))
        distance = np.linalg.norm(reference.landmarks[i] - ours.landmarks[j], axis=1).max()
        worst_px = max(worst_px, float(distance))
    for j in np.flatnonzero(ours.scores >= min_score):
        if iou.shape[0] == 0 or iou[:, j].max() < MIN_IOU:
            extra += 1
    return Agreement(worst_iou, worst_px, missing, extra)


def reference_detections(boxes: object, scores: object, landmarks: object) -> Detections:
    """facenet-pytorch's `detect(img, landmarks=True)` output for one image as Detections."""
    if boxes is None:
        return Detections.empty()
    return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(landmarks, np.float32))
