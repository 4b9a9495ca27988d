"""Footage for a retrospective search: still images and video files, read as sampled RGB frames.

Videos are decoded with PyAV and sampled by timestamp (`FpsSampler`), so `--fps 2` keeps two
frames per second of video whatever the file's own rate. Each frame carries its source and its
time in the video, which the report shows beside every match. A file that cannot be read
raises `FootageError` naming it; the search goes on with the other sources.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from cluster.cameras.decoding import CorruptVideoError, decode_frames, rgb_pixels
from cluster.cameras.sampler import FpsSampler
from cluster.vision.errors import InvalidImageError
from cluster.vision.frames import validate_frame
from cluster.vision.image_io import IMAGE_SUFFIXES, load_frame

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".mpg", ".mpeg", ".h264"})

SourceKind = Literal["image", "video"]


class FootageError(ValueError):
    """A source that cannot be read; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class FootageSource:
    """One file to search: a still image or a video."""

    path: Path
    kind: SourceKind


@dataclass(frozen=True, eq=False)
class FootageFrame:
    """One frame to search.

    index: the frame's number among the source's decoded frames (0 for an image).
    time_s: seconds from the video's first frame; None for a still image.
    pixels: (h, w, 3) uint8 RGB.
    """

    source: FootageSource
    index: int
    time_s: float | None
    pixels: np.ndarray


def source_of(path: Path) -> FootageSource:
    """A file named on the command line: a video by its suffix, else an image (a bad one fails when read)."""
    return FootageSource(path, "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image")


def find_footage(paths: Sequence[Path]) -> list[FootageSource]:
    """Files named directly, plus the images and videos found (sorted) under any folders named."""
    found: list[FootageSource] = []
    for path in paths:
        if path.is_dir():
            suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            found.extend(source_of(file) for file in files)
        else:
            found.append(source_of(path))
    return found


def read_frames(source: FootageSource, fps: float) -> Iterator[FootageFrame]:
    """The source's frames: an image once, a video sampled at `fps`. Raises FootageError naming the file."""
    if source.kind == "image":
        yield FootageFrame(source, 0, None, read_image(source.path))
        return
    yield from _video_frames(source, FpsSampler(fps))


def read_image(path: Path) -> np.ndarray:
    """A still image as (h, w, 3) uint8 RGB; FootageError naming the file when it cannot be used."""
    try:
        return load_frame(path)
    except InvalidImageError as exc:
        raise FootageError(str(exc)) from exc


def _video_frames(source: FootageSource, sampler: FpsSampler) -> Iterator[FootageFrame]:
    path = source.path
    if not path.is_file():
        raise FootageError(f"{path}: no such file")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError) as exc:
        raise FootageError(
            f"{path}: not a playable video (corrupt, truncated or not a video file: {exc}); check the file"
        ) from exc
    with container:
        if not container.streams.video:
            raise FootageError(f"{path}: holds no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        first_time: float | None = None
        for index, frame in enumerate(_decoded(path, container, stream)):
            stamp = frame.time if frame.time is not None else index / rate
            first_time = stamp if first_time is None else first_time
            if sampler.accept(stamp):
                pixels = _frame_pixels(path, frame)
                yield FootageFrame(source, index, round(stamp - first_time, 3), pixels)


def _frame_pixels(path: Path, frame: VideoFrame) -> np.ndarray:
    try:
        return validate_frame(rgb_pixels(frame))
    except InvalidImageError as exc:
        raise FootageError(f"{path}: {exc}") from exc


def _decoded(path: Path, container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]:
    """The shared decode loop over the video: damaged packets skipped, a run of them or a read failure FootageError."""
    try:
        for decoded in decode_frames(container, stream):
            yield decoded.frame
    except CorruptVideoError as exc:
        raise FootageError(f"{path}: {exc}; the video is corrupt") from exc
    except (av.FFmpegError, OSError) as exc:
        raise FootageError(f"{path}: reading the video failed ({exc}); the file is damaged or truncated") from exc
