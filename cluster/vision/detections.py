"""The detector's output for one frame: parallel arrays, one row per face.

Boolean or integer indexing returns a new `Detections`, so later stages can filter faces
(by size, by score) without unpacking the arrays.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Faces found in one frame.

    boxes: (n, 4) float32, x1 y1 x2 y2 in frame pixels.
    scores: (n,) float32, detector confidence in 0..1.
    landmarks: (n, 5, 2) float32, x y of left eye, right eye, nose tip, left and right mouth
        corner (left and right as seen in the image).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.boxes)
        expected = {"boxes": (n, 4), "scores": (n,), "landmarks": (n, 5, 2)}
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise ValueError(f"Detections.{name}: expected shape {shape}, got {actual}")

    @classmethod
    def empty(cls) -> "Detections":
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> "Detections":
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index])


def nearest_centre(image_shape: tuple[int, ...], boxes: np.ndarray) -> int | None:
    """The index of the box (n, 4 x1 y1 x2 y2) whose centre is nearest the image's centre; None for no box."""
    if not len(boxes):
        return None
    height, width = image_shape[:2]
    corners = np.asarray(boxes, np.float32)
    centres = (corners[:, :2] + corners[:, 2:]) / 2
    return int(np.argmin(np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)))
