"""`Tracklet`: the evidence one track gathers for its watchlist decision.

It keeps only the best few faces by quality (their embeddings, boxes and times, never the
frame) and at most one crop: that of the best face that came with its frame. The pooled
embedding weights each kept face by its quality, so one sharp frontal face outweighs several
blurred ones.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cluster.vision.face import Face

MIN_WEIGHT = 1e-6
"""Weight of a face whose quality is zero, so that a tracklet of only such faces still pools."""


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One kept face: its embedding (128,), quality (0..1), box (4,) and capture time."""

    embedding: np.ndarray
    quality: float
    box: np.ndarray
    captured_at: float


@dataclass(frozen=True, eq=False)
class FaceCrop:
    """The pixels around one kept face (a copy, never a view of the frame), its box and quality."""

    pixels: np.ndarray
    box: np.ndarray
    quality: float


class Tracklet:
    """The best `capacity` faces of one track by quality, and the crop of the best face given with a frame."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a tracklet must keep at least one face, got capacity {capacity}")
        self.capacity = capacity
        self._faces: list[TrackedFace] = []
        self._crop: FaceCrop | None = None

    def __len__(self) -> int:
        return len(self._faces)

    @property
    def faces(self) -> tuple[TrackedFace, ...]:
        """The kept faces, best first."""
        return tuple(self._faces)

    @property
    def crop(self) -> FaceCrop | None:
        return self._crop

    def offer(self, face: Face, captured_at: float, cut_crop: Callable[[np.ndarray], np.ndarray] | None) -> bool:
        """Keep `face` if it is among the best; True if kept. `cut_crop(box)` is called only for a new best crop."""
        quality = float(face.quality.overall)
        if len(self._faces) == self.capacity and quality <= self._faces[-1].quality:
            return False
        kept = TrackedFace(face.embedding, quality, np.array(face.box, dtype=np.float32), captured_at)
        position = next((i for i, f in enumerate(self._faces) if quality > f.quality), len(self._faces))
        self._faces.insert(position, kept)
        del self._faces[self.capacity :]
        if cut_crop is not None and (self._crop is None or quality > self._crop.quality):
            self._crop = FaceCrop(cut_crop(kept.box), kept.box, quality)
        return True

    @property
    def pooled_quality(self) -> float:
        """Mean quality of the kept faces (0 when none is kept)."""
        return float(np.mean([f.quality for f in self._faces])) if self._faces else 0.0

    def pooled_embedding(self) -> np.ndarray:
        """Quality-weighted mean of the kept faces' embeddings, L2-normalised, float32 (128,)."""
        if not self._faces:
            raise ValueError("the tracklet keeps no face yet; offer faces before pooling")
        weights = np.maximum([f.quality for f in self._faces], MIN_WEIGHT)
        pooled = np.average(np.stack([f.embedding for f in self._faces]), axis=0, weights=weights)
        norm = float(np.linalg.norm(pooled))
        if not np.isfinite(norm) or norm < MIN_WEIGHT:
            return np.array(self._faces[0].embedding, dtype=np.float32)
        return (pooled / norm).astype(np.float32)

    def best_box(self) -> np.ndarray:
        """The box of the crop's face when there is a crop, else of the best kept face."""
        if self._crop is not None:
            return self._crop.box
        if not self._faces:
            raise ValueError("the tracklet keeps no face yet")
        return self._faces[0].box

    def clear(self) -> None:
        """Forget every kept face and the crop."""
        self._faces.clear()
        self._crop = None
