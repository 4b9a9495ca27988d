"""`Tracklet`: the evidence one track gathers for its watchlist decision.

It keeps only the best few faces by quality (their embeddings, boxes and times, never the
frame), at most one crop: that of the best face that came with its frame, and, when the second
face model is on, a `FacePatch` for each of its best `patches` faces (cut when a face enters
them, dropped when a better face pushes it out). The pooled embedding weights each kept face by
its quality, so one sharp frontal face outweighs several blurred ones.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cluster.tracking.patches import FacePatch
from cluster.vision.face import Face

MIN_WEIGHT = 1e-6
"""Weight of a face whose quality is zero, so that a tracklet of only such faces still pools."""


def pool_embeddings(vectors: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """Quality-weighted mean of `vectors` (n, d), best first, L2-normalised float32 (d,).

    Should the weighted mean cancel out (or be unusable), the first (best) vector stands for them all.
    """
    if len(vectors) == 0:
        raise ValueError("no embeddings to pool")
    weights = np.maximum(np.asarray(qualities, dtype=np.float64), MIN_WEIGHT)
    pooled = np.average(np.asarray(vectors, dtype=np.float64), axis=0, weights=weights)
    norm = float(np.linalg.norm(pooled))
    if not np.isfinite(norm) or norm < MIN_WEIGHT:
        return np.array(vectors[0], dtype=np.float32)
    return (pooled / norm).astype(np.float32)


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One kept face: its embedding (128,), quality (0..1), box (4,), capture time and, among the best, its patch."""

    embedding: np.ndarray
    quality: float
    box: np.ndarray
    captured_at: float
    patch: FacePatch | None = None


@dataclass(frozen=True, eq=False)
class FaceCrop:
    """The pixels around one kept face (a copy, never a view of the frame), its box and quality."""

    pixels: np.ndarray
    box: np.ndarray
    quality: float


class Tracklet:
    """The best `capacity` faces of one track by quality, the crop of the best face given with a frame, and
    the patches of the best `patches` faces given with a frame."""

    def __init__(self, capacity: int, patches: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"a tracklet must keep at least one face, got capacity {capacity}")
        if not 0 <= patches <= capacity:
            raise ValueError(f"a tracklet keeps patches of at most its {capacity} faces, got patches {patches}")
        self.capacity = capacity
        self.patch_places = patches
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

    @property
    def patches(self) -> tuple[FacePatch, ...]:
        """The patches of the best faces, best first (a face given without its frame has none)."""
        return tuple(f.patch for f in self._faces if f.patch is not None)

    def offer(
        self,
        face: Face,
        captured_at: float,
        cut_crop: Callable[[np.ndarray], np.ndarray] | None,
        cut_patch: Callable[[Face], FacePatch | None] | None = None,
    ) -> bool:
        """Keep `face` if it is among the best; True if kept.

        `cut_crop(box)` is called only for a new best crop, `cut_patch(face)` (None: no patch) only
        for a face that enters the best `patches`; the face it pushes out of them loses its patch.
        """
        quality = float(face.quality.overall)
        if len(self._faces) == self.capacity and quality <= self._faces[-1].quality:
            return False
        position = next((i for i, f in enumerate(self._faces) if quality > f.quality), len(self._faces))
        patch = cut_patch(face) if cut_patch is not None and position < self.patch_places else None
        kept = TrackedFace(face.embedding, quality, np.array(face.box, dtype=np.float32), captured_at, patch)
        self._faces.insert(position, kept)
        del self._faces[self.capacity :]
        if len(self._faces) > self.patch_places and self._faces[self.patch_places].patch is not None:
            self._faces[self.patch_places] = replace(self._faces[self.patch_places], patch=None)
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
        return pool_embeddings(np.stack([f.embedding for f in self._faces]), np.array([f.quality for f in self._faces]))

    def best_box(self) -> np.ndarray:
        """The box of the crop's face when there is a crop, else of the best kept face."""
        if self._crop is not None:
            return self._crop.box
        if not self._faces:
            raise ValueError("the tracklet keeps no face yet")
        return self._faces[0].box

    def clear(self) -> None:
        """Forget every kept face, its patch, and the crop."""
        self._faces.clear()
        self._crop = None
