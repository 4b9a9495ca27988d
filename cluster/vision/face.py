"""`Face`: one recognised face, the unit that tracking, matching and alerts share."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cluster.vision.quality import FaceQuality

EMBEDDING_SIZE = 128
PRIMARY_MODEL = "dlib_resnet_v1"
"""The model every face is embedded with (tracking, shortlisting); others are second-stage models."""


@dataclass(frozen=True, eq=False)
class Face:
    """A face found in a frame.

    box: (4,) float32 x1 y1 x2 y2 in the frame's pixels.
    landmarks: (5, 2) float32 eyes, nose tip, mouth corners in the frame's pixels.
    score: detector confidence in 0..1.
    quality: how useful the face is for recognition (see `cluster.vision.quality`).
    embedding: (128,) float32, L2-normalised primary-model embedding; cosine similarity is a dot product.
    extra_embeddings: second-stage model name -> its L2-normalised embedding, for the faces
        that were given to those models (enrolment, retrospective search, a tracklet's best faces).
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    quality: FaceQuality
    embedding: np.ndarray
    extra_embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = {"box": (4,), "landmarks": (5, 2), "embedding": (EMBEDDING_SIZE,)}
        for name, shape in expected.items():
            actual = np.shape(getattr(self, name))
            if actual != shape:
                raise ValueError(f"Face.{name}: expected shape {shape}, got {actual}")

    @property
    def embeddings(self) -> dict[str, np.ndarray]:
        """Every model's embedding of this face, the primary one included, by model name."""
        return {PRIMARY_MODEL: self.embedding, **self.extra_embeddings}

    def similarity(self, other: "Face") -> float:
        """Cosine similarity of the two faces' embeddings, in -1..1."""
        return float(np.dot(self.embedding, other.embedding))
