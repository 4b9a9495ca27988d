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


def as_embedding_batch(embeddings: np.ndarray, what: str = "embeddings", size: int = EMBEDDING_SIZE) -> np.ndarray:
    """The batch as a contiguous (n, size) float32 array (128: the primary model), rows finite and of unit length.

    Raises InvalidEmbeddingError naming the shape or the first bad row and how to fix it.
    """
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[1] != size:
        raise InvalidEmbeddingError(
            f"{what}: expected shape (n, {size}), got {array.shape};"
            f" pass one {size}-d face embedding per row (stack single vectors with np.stack)"
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


def as_embedding(embedding: np.ndarray, what: str = "embedding", size: int = EMBEDDING_SIZE) -> np.ndarray:
    """One (size,) float32 unit vector, checked as `as_embedding_batch` checks a row."""
    array = np.asarray(embedding)
    if array.shape != (size,):
        raise InvalidEmbeddingError(f"{what}: expected shape ({size},), got {array.shape}")
    return as_embedding_batch(array[np.newaxis], what, size)[0]
