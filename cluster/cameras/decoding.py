"""The one PyAV decode loop, shared by live cameras and retrospective footage.

A video's packets are decoded in order, with FFmpeg's own threads. An undecodable packet is
skipped and counted: a frame or two of damage must not cost the rest of the video. A run of
`MAX_UNDECODABLE_IN_A_ROW` of them means the stream itself is broken, and `CorruptVideoError`
says so. A failure to read the next packet (a lost connection, a read timeout, a truncated
file) goes up as PyAV raised it, for the caller to name its source and say what to do.
"""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

MAX_UNDECODABLE_IN_A_ROW = 100
"""Undecodable packets in a row after which a stream counts as corrupt rather than damaged.

A decoder that joins a live stream between key frames may refuse every packet until the next
one, and cameras send a key frame every 2 to 4 s (50 to 100 packets at 25 fps), so a lower
limit would fail healthy cameras; a file that is corrupt throughout is still refused after a
few seconds' worth of packets.
"""


SAME_SIZE_INTERPOLATION = "FAST_BILINEAR"
"""How swscale converts a frame kept at its size: the same pixels as its default, about twice as fast."""
RESIZE_INTERPOLATION = "BILINEAR"
"""How swscale converts a frame it also downscales: its default filter."""


class CorruptVideoError(Exception):
    """`MAX_UNDECODABLE_IN_A_ROW` packets in a row could not be decoded; the caller names the source."""


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """A decoded frame and the seconds decoding it took.

    decode_s: the frame's share of its packet's decode call (with threaded decoding, the time the
    calling thread spent in it).
    """

    frame: VideoFrame
    decode_s: float


def decode_frames(
    container: InputContainer,
    stream: VideoStream,
    *,
    stopping: threading.Event | None = None,
    on_undecodable: Callable[[], None] | None = None,
) -> Iterator[DecodedFrame]:
    """The stream's frames in order, until its end or until `stopping` is set.

    Each undecodable packet is skipped and reported to `on_undecodable`; a run of them raises
    CorruptVideoError. Read failures raise PyAV's error (av.FFmpegError) or OSError.
    """
    stream.thread_type = "AUTO"
    packets = container.demux(stream)
    undecodable_in_a_row = 0

    def skip_undecodable() -> None:
        nonlocal undecodable_in_a_row
        undecodable_in_a_row += 1
        if on_undecodable is not None:
            on_undecodable()
        if undecodable_in_a_row >= MAX_UNDECODABLE_IN_A_ROW:
            raise CorruptVideoError(f"{MAX_UNDECODABLE_IN_A_ROW} undecodable packets in a row")

    while stopping is None or not stopping.is_set():
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.InvalidDataError:
            skip_undecodable()
            packets = container.demux(stream)
            continue
        decoding = time.perf_counter()
        try:
            frames = stream.decode(packet)
        except av.FFmpegError:
            skip_undecodable()
            continue
        undecodable_in_a_row = 0
        if frames:
            share = (time.perf_counter() - decoding) / len(frames)
            yield from (DecodedFrame(frame, share) for frame in frames)


def rgb_pixels(frame: VideoFrame, width: int | None = None, height: int | None = None) -> np.ndarray:
    """The frame as a contiguous RGB uint8 array of (height, width, 3), at its own size unless one is given.

    swscale runs on the calling thread: its default thread pool hands every frame out and back,
    which on a busy machine cost a 640x360 frame 2-3 ms of waiting for 0.2-0.5 ms of work
    (docs/benchmarks.md, "Where a frame's time goes"). At the frame's own size the fast path gives
    exactly the pixels of the default one.
    """
    width = frame.width if width is None else width
    height = frame.height if height is None else height
    same_size = (width, height) == (frame.width, frame.height)
    rgb = frame.reformat(
        width=width,
        height=height,
        format="rgb24",
        interpolation=SAME_SIZE_INTERPOLATION if same_size else RESIZE_INTERPOLATION,
        threads=1,
    )
    return np.ascontiguousarray(rgb.to_ndarray())
