"""Face crops: cut from a frame while it is at hand, encoded as JPEG only for a positive decision.

A crop is always a copy: a numpy view would keep the whole frame alive in memory, and frames
of people who matched nobody must not outlive their processing.
"""

import io

import numpy as np
from PIL import Image

CROP_MARGIN = 0.25
"""Context added around the face box on every side, as a fraction of the box's width and height."""
JPEG_QUALITY = 90


def check_frame(frame: np.ndarray) -> None:
    """Raise ValueError unless `frame` is RGB uint8 pixels of shape (height, width, 3)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        described = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"expected an RGB uint8 frame of shape (height, width, 3), got {described}")


def cut_face_crop(frame: np.ndarray, box: np.ndarray, margin: float = CROP_MARGIN) -> np.ndarray:
    """A copy of the face `box` (x1 y1 x2 y2) with `margin` around it, clipped to the frame."""
    check_frame(frame)
    if np.shape(box) != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"expected a finite box x1 y1 x2 y2, got {box!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    pad_x, pad_y = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = frame.shape[:2]
    left, top = max(0, int(np.floor(x1 - pad_x))), max(0, int(np.floor(y1 - pad_y)))
    right, bottom = min(width, int(np.ceil(x2 + pad_x))), min(height, int(np.ceil(y2 + pad_y)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {x1:g} {y1:g} {x2:g} {y2:g} lies outside the {width}x{height} frame; nothing to crop")
    return np.array(frame[top:bottom, left:right], copy=True)


def encode_jpeg(crop: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB uint8 crop as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def face_crop_jpeg(frame: np.ndarray, box: np.ndarray, margin: float = CROP_MARGIN) -> bytes:
    """The face `box` of `frame`, with margin, as JPEG: for a positive decision's evidence only."""
    return encode_jpeg(cut_face_crop(frame, box, margin))
