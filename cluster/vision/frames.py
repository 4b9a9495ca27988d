"""Validation of decoded frames before they reach a model.

Frames are RGB uint8 arrays of shape (height, width, 3). Anything else is refused here with a
message that says how to fix it, so that one bad frame never reaches a batched model call.
"""

import numpy as np

from cluster.vision.errors import InvalidImageError

MIN_FRAME_SIDE = 12
"""The smallest side MTCNN's first stage can look at (its 12x12 window)."""


def validate_frame(frame: object) -> np.ndarray:
    """Return `frame` if it is a usable RGB uint8 image, else raise InvalidImageError."""
    if not isinstance(frame, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(frame).__name__}; decode the image first")
    if frame.size == 0:
        raise InvalidImageError(f"empty image of shape {frame.shape}; pass a decoded, non-empty frame")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidImageError(
            f"expected an RGB image of shape (height, width, 3), got {frame.shape}; "
            "convert grayscale or RGBA images to RGB first"
        )
    if frame.dtype != np.uint8:
        raise InvalidImageError(f"expected dtype uint8, got {frame.dtype}; scale pixel values to 0..255 uint8")
    height, width = frame.shape[:2]
    if min(height, width) < MIN_FRAME_SIDE:
        raise InvalidImageError(
            f"image of {width}x{height} pixels is too small to hold a face; "
            f"both sides must be at least {MIN_FRAME_SIDE} pixels"
        )
    return frame
