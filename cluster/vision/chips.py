"""Checking batches of aligned face chips before an embedder sees them.

Every embedder takes (n, size, size, 3) uint8 RGB chips from the aligner; a wrong shape or dtype
would otherwise surface as an obscure torch error or, worse, as garbage embeddings. The message
names what was expected, what came, and how to produce the right thing.
"""

import numpy as np

from cluster.vision.errors import InvalidImageError


def validate_chips(chips: object, chip_size: int, aligner_hint: str) -> np.ndarray:
    """`chips` as a C-contiguous, writable uint8 array (what torch.from_numpy needs), or InvalidImageError.

    aligner_hint: how to make such chips (which aligner template), appended to every error.
    """
    expected = f"expected face chips as one array of shape (n, {chip_size}, {chip_size}, 3), dtype uint8, RGB"
    if not isinstance(chips, np.ndarray):
        raise InvalidImageError(f"{expected}; got {type(chips).__name__}; {aligner_hint}")
    if chips.shape == (chip_size, chip_size, 3):
        raise InvalidImageError(f"{expected}; got a single chip of shape {chips.shape}, pass chip[None] for one face")
    if chips.ndim != 4 or chips.shape[1:] != (chip_size, chip_size, 3):
        raise InvalidImageError(f"{expected}; got shape {chips.shape}; {aligner_hint}")
    if chips.dtype != np.uint8:
        raise InvalidImageError(f"{expected}; got dtype {chips.dtype}; {aligner_hint}")
    return np.require(chips, requirements=["C_CONTIGUOUS", "WRITEABLE"])
