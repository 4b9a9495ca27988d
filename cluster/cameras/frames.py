"""The frame a camera hands downstream: pixels plus where and when they were seen."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """One sampled frame of one camera.

        `seq` counts the frames the camera's sampler kept, from 0, across reconnections: a gap in
        the seqs a consumer receives is exactly the frames dropped because it was too slow.
        `pts` is the stream's own timestamp in seconds (it restarts when a file loops or a stream
        reconnects); `captured_at` is the wall-clock time (`time.time()`) it was decoded; `decode_s`
    is what decoding and converting it cost the camera.
    """

    camera_id: str
    seq: int
    pts: float
    captured_at: float
    pixels: np.ndarray
    decode_s: float = 0.0

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 3 or self.pixels.dtype != np.uint8:
            raise ValueError(
                f"camera {self.camera_id}: expected RGB uint8 pixels of shape (height, width, 3),"
                f" got {self.pixels.dtype} {self.pixels.shape}"
            )
        if self.seq < 0:
            raise ValueError(f"camera {self.camera_id}: seq must be >= 0, got {self.seq}")
        self.pixels.flags.writeable = False


def capped_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The size to convert a frame to: within the caps, aspect ratio kept, never upscaled."""
    scale = min(1.0, max_width / width, max_height / height)
    if scale == 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))
