"""H.264 test videos whose frames carry their own index, readable back after compression.

The index is drawn as a row of black and white cells across the top quarter of the frame
(one bit each, most significant first), large enough to survive H.264 at any quality and any
downscaling a camera applies. Below it, a textured background scrolls, so that the encoder
and the decoder do realistic work (motion, texture), not the trivial work of a flat frame.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

COUNTER_BITS = 16
COUNTER_ROWS_FRACTION = 0.25
"""The counter occupies this top fraction of the frame's height."""


def counter_pixels(index: int, width: int, height: int, texture: np.ndarray) -> np.ndarray:
    """The RGB frame with `index` drawn on top of the background scrolled by `index` pixels."""
    if not 0 <= index < 2**COUNTER_BITS:
        raise ValueError(f"index must be within [0, {2**COUNTER_BITS}), got {index}")
    frame = np.roll(texture, shift=(index * 2, index * 3), axis=(0, 1))[:height, :width].copy()
    band = max(8, int(height * COUNTER_ROWS_FRACTION))
    for bit in range(COUNTER_BITS):
        x0, x1 = bit * width // COUNTER_BITS, (bit + 1) * width // COUNTER_BITS
        frame[:band, x0:x1] = 255 if (index >> (COUNTER_BITS - 1 - bit)) & 1 else 0
    return frame


def read_counter(pixels: np.ndarray) -> int:
    """The index drawn by `counter_pixels`, read from the centre of each cell (any frame size)."""
    height, width = pixels.shape[:2]
    row = int(height * COUNTER_ROWS_FRACTION / 2)
    value = 0
    for bit in range(COUNTER_BITS):
        x = int((bit + 0.5) * width / COUNTER_BITS)
        value = (value << 1) | int(pixels[row, x].mean() > 127)
    return value


def background_texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture a little larger than the frame, to scroll under the counter."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, size=(height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)


def write_counter_video(
    path: Path,
    *,
    seconds: float,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    gop: int | None = None,
    preset: str = "ultrafast",
    bit_rate: int | None = None,
    x264_options: dict[str, str] | None = None,
) -> Path:
    """Write an H.264 video of `seconds` at `fps` (container from the suffix: .mp4, .ts, ...).

    No B-frames, like an IP camera. The default preset is the quickest to write; for decoding
    benchmarks use an IP camera's kind of stream: preset="faster" (High profile, CABAC) at a
    bit rate such as 6_000_000 for 1080p. `x264_options` replaces the encoder options
    (preset and zero-latency tuning) whole, e.g. to write High profile with B-frames.
    """
    frames = round(seconds * fps)
    texture = background_texture(width, height)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop or fps
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        stream.options = x264_options or {"preset": preset, "tune": "zerolatency"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(counter_pixels(index, width, height, texture), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
