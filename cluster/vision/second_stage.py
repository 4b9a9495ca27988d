"""`SecondStage`: the second face model, by name, with its own alignment.

The primary model (dlib's ResNet) embeds every face of every frame: it is cheap and it drives
tracking. The second model is stronger and about nine times dearer per face, so it runs only
where it pays: on enrolment photos, on retrospective faces and on a live tracklet's few best
faces when the tracklet is decided. It is a named, pluggable stage: `SECOND_MODELS` maps each
name to how it is built (aligner template and embedder), so a force can put in a model it
licenses by adding one entry, and every alert records which model scored it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cluster.vision.aligner import FaceAligner
from cluster.vision.faceres import ALIGNER_TEMPLATE as FACERES_TEMPLATE
from cluster.vision.faceres import CHIP_SIZE as FACERES_CHIP
from cluster.vision.faceres import FaceresEmbedder


@dataclass(frozen=True)
class SecondModelSpec:
    """How a named second model aligns faces and which embedder class runs it."""

    template: str
    chip_size: int
    embedder: Callable[..., FaceresEmbedder]


SECOND_MODELS = {"faceres": SecondModelSpec(FACERES_TEMPLATE, FACERES_CHIP, FaceresEmbedder)}


class SecondStage:
    """Aligns faces to the second model's template and embeds them (optionally with the mirror image)."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        half: bool = False,
        threads: int | None = None,
        channels_last: bool = True,
        max_batch: int = 32,
        flip: bool = False,
    ) -> None:
        spec = SECOND_MODELS.get(model)
        if spec is None:
            raise ValueError(f"unknown second face model {model!r}; expecting one of {', '.join(SECOND_MODELS)}")
        self.name = model
        self.flip = flip
        self.aligner = FaceAligner(chip_size=spec.chip_size, device=device, template=spec.template)
        self.embedder = spec.embedder(
            device=device, threads=threads, channels_last=channels_last, half=half, max_batch=max_batch
        )

    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, d) unit vectors for every face of every image, in order; landmarks[i] is (k_i, 5, 2) in image i."""
        chips = [self.aligner.align(image, points) for image, points in zip(images, landmarks)]
        batch = np.concatenate(chips) if chips else np.zeros((0, 1, 1, 3), np.uint8)
        if len(batch) == 0:
            return np.zeros((0, 0), np.float32)
        vectors = self.embedder.embed(batch)
        if self.flip:
            vectors = vectors + self.embedder.embed(np.ascontiguousarray(batch[:, :, ::-1]))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32, copy=False)
