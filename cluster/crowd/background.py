"""Backgrounds for the crowd: a street clip scaled to cover the frame, or a drawn street if none is found.

A video background is stretched in time to the output rate (each source frame repeats, e.g.
2.5 times for 10 fps into 25 fps), loops at its end, and starts at a per-camera offset so the
cameras do not show the same picture. The drawn background is a seeded street of coloured
blocks and soft texture that pans slowly, so an encoder still sees motion.
"""

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from cluster.crowd.truth import ASSETS, GENERATED_BACKGROUND, asset_name, resolve_asset

STREET = ASSETS / "street.mp4"
"""The first 8 s of OpenCV's vtest.avi, shipped with the package (see assets/PROVENANCE.md)."""
DEFAULT_BACKGROUNDS = (STREET,)
"""Tried in order when no background is given; if none exists, the background is drawn."""
PAN_PIXELS_PER_FRAME = 0.4


def choose_background(background: Path | None) -> str:
    """The truth's name for the background to use: a given file, the first default found, or 'generated'."""
    if background is not None:
        if not Path(background).is_file():
            raise FileNotFoundError(f"background video {background} does not exist; pass a video file or omit it")
        return asset_name(Path(background))
    for candidate in DEFAULT_BACKGROUNDS:
        if candidate.is_file():
            return asset_name(candidate)
    return GENERATED_BACKGROUND


class VideoBackground:
    """A video file as an endless sequence of frames at the output size and rate."""

    def __init__(self, path: Path, width: int, height: int, fps: int) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                self.source_fps = Fraction(0) if rate is None else Fraction(rate)
                self.source_frames = stream.frames or sum(1 for _ in container.decode(stream))
        except (av.error.FFmpegError, IndexError) as exc:
            raise ValueError(f"background {path} is not a readable video ({exc}); pass an AVI/MP4 file") from exc
        if self.source_frames < 1 or self.source_fps <= 0:
            raise ValueError(
                f"background {path} holds no frames or states no frame rate; pass a video with at least one frame"
                " and a frame rate"
            )

    def _source_loop(self, offset: int) -> Iterator[np.ndarray]:
        """Source frames from `offset` on, looping, each scaled to cover the output and centre-cropped."""
        skip = offset % self.source_frames
        while True:
            with av.open(str(self.path)) as container:
                for frame in container.decode(video=0):
                    if skip:
                        skip -= 1
                        continue
                    yield self._cover(frame)

    def _cover(self, frame: av.VideoFrame) -> np.ndarray:
        scale = max(self.width / frame.width, self.height / frame.height)
        scaled_w = max(self.width, round(frame.width * scale))
        scaled_h = max(self.height, round(frame.height * scale))
        rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24", interpolation="BILINEAR").to_ndarray()
        left, top = (scaled_w - self.width) // 2, (scaled_h - self.height) // 2
        return rgb[top : top + self.height, left : left + self.width]

    def frames(self, offset: int, count: int) -> Iterator[np.ndarray]:
        """`count` output frames (read-only views) starting at source frame `offset`."""
        source = self._source_loop(offset)
        current, index = next(source), 0
        for k in range(count):
            wanted = int(Fraction(k) * self.source_fps / self.fps)
            while index < wanted:
                current, index = next(source), index + 1
            yield current


class GeneratedBackground:
    """A drawn street: sky, building blocks with windows, pavement, soft texture; pans slowly."""

    def __init__(self, width: int, height: int, fps: int, seed: int) -> None:
        self.width, self.height, self.fps, self.seed = width, height, fps, seed

    def _canvas(self, camera_seed: int, span: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, camera_seed])
        width, height = self.width + span, self.height
        rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        sky = np.array([150, 180, 215], np.float32) * (1 - rows) + np.array([205, 210, 215], np.float32) * rows
        canvas = np.broadcast_to(sky, (height, width, 3)).copy()
        horizon = int(height * rng.uniform(0.55, 0.7))
        x = 0
        while x < width:
            block_w = int(rng.uniform(0.08, 0.25) * self.width)
            top = int(height * rng.uniform(0.05, 0.4))
            colour = rng.uniform(60, 200, 3)
            canvas[top:horizon, x : x + block_w] = colour
            for wy in range(top + 12, horizon - 20, 28):
                for wx in range(x + 8, x + block_w - 16, 24):
                    canvas[wy : wy + 14, wx : wx + 10] = colour * rng.uniform(0.4, 0.7)
            x += block_w
        canvas[horizon:] = np.array([95, 95, 100], np.float32) + rng.uniform(-10, 10, 3)
        coarse = rng.normal(0.0, 18.0, (height // 24 + 1, width // 24 + 1)).astype(np.float32)
        texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
        canvas += texture[..., None]
        return np.clip(canvas, 0, 255).astype(np.uint8)

    def frames(self, offset: int, count: int) -> Iterator[np.ndarray]:
        """`count` frames panning across a street drawn from the seed and `offset` (the camera's)."""
        span = int(count * PAN_PIXELS_PER_FRAME) + 1
        canvas = self._canvas(offset, span)
        for k in range(count):
            left = int(k * PAN_PIXELS_PER_FRAME)
            yield canvas[:, left : left + self.width]


def open_background(name: str, width: int, height: int, fps: int, seed: int) -> VideoBackground | GeneratedBackground:
    """The background a truth record names (see `choose_background`)."""
    if name == GENERATED_BACKGROUND:
        return GeneratedBackground(width, height, fps, seed)
    return VideoBackground(resolve_asset(name), width, height, fps)


def background_length(background: VideoBackground | GeneratedBackground) -> int:
    """Frames after which a background repeats (offsets are drawn below it)."""
    return background.source_frames if isinstance(background, VideoBackground) else 2**31 - 1
