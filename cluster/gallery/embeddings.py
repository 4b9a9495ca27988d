"""Checks on face embeddings before they reach Milvus.

Milvus would store a 127-d or unnormalised vector without complaint (or fail deep inside a
batch); cosine scores then stop meaning what the match threshold assumes. So every vector is
checked here, once, with a message that names the offending row.
"""

import numpy as np

from cluster.gallery.errors import InvalidEmbeddingError
from cluster.vision.face import EMBEDDING_SIZE

NORM_TOLERANCE = 1e-3
"""How far an embedding's L2 norm may be from 1 (float32 normalisation lands within ~1e-7)."""


def as_embedding_batch(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """The batch as a contiguous (n, 128) float32 array, every row finite and of unit length.

    Raises InvalidEmbeddingError naming the shape or the first bad row and how to fix it.
    """
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[1] != EMBEDDING_SIZE:
        raise InvalidEmbeddingError(
            f"{what}: expected shape (n, {EMBEDDING_SIZE}), got {array.shape};"
            f" pass one {EMBEDDING_SIZE}-d face embedding per row (stack single vectors with np.stack)"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidEmbeddingError(f"{what}: expected floating-point values, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise InvalidEmbeddingError(f"{what}: row {row} holds NaN or infinite values; drop that face")
    norms = np.linalg.norm(array, axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise InvalidEmbeddingError(
            f"{what}: row {row} has L2 norm {norms[row]:.4f}, expected 1;"
            " L2-normalise embeddings (v / np.linalg.norm(v)) before enrolling or searching"
        )
    return array


def as_embedding(embedding: np.ndarray, what: str = "embedding") -> np.ndarray:
    """One (128,) float32 unit vector, checked as `as_embedding_batch` checks a row."""
    array = np.asarray(embedding)
    if array.shape != (EMBEDDING_SIZE,):
        raise InvalidEmbeddingError(f"{what}: expected shape ({EMBEDDING_SIZE},), got {array.shape}")
    return as_embedding_batch(array[np.newaxis], what)[0]
