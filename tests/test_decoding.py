"""The shared decode loop (`cluster.cameras.decoding`) on real H.264 files, intact, damaged and corrupt throughout."""

import random
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from cluster.cameras.decoding import MAX_UNDECODABLE_IN_A_ROW, CorruptVideoError, decode_frames, rgb_pixels

FRAMES = MAX_UNDECODABLE_IN_A_ROW + 20


def write_video(path: Path) -> Path:
    """An H.264 MP4 of FRAMES noise frames with its index at the front, so every packet lies after it."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(FRAMES):
            pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("decoding") / "noise.mp4")


def overwrite(video: Path, path: Path, start: int, length: int) -> Path:
    data = bytearray(video.read_bytes())
    data[start : start + length] = random.Random(7).randbytes(len(data[start : start + length]))
    path.write_bytes(data)
    return path


def decode(path: Path, stopping: threading.Event | None = None) -> tuple[list[int], int]:
    """The pts of every decoded frame and how many packets were reported undecodable."""
    undecodable: list[None] = []
    with av.open(str(path)) as container:
        frames = decode_frames(
            container, container.streams.video[0], stopping=stopping, on_undecodable=lambda: undecodable.append(None)
        )
        return [decoded.frame.pts for decoded in frames], len(undecodable)


def test_an_intact_video_decodes_every_frame_in_order(video):
    with av.open(str(video)) as container:
        decoded = list(decode_frames(container, container.streams.video[0]))
    assert len(decoded) == FRAMES
    pts = [d.frame.pts for d in decoded]
    assert pts == sorted(pts)
    assert all(d.decode_s >= 0 for d in decoded) and sum(d.decode_s for d in decoded) > 0


def test_damage_mid_video_is_skipped_counted_and_decoding_goes_on_to_the_end(video, tmp_path):
    intact, intact_undecodable = decode(video)
    size = video.stat().st_size
    damaged = overwrite(video, tmp_path / "damaged.mp4", size // 2, size // 20)
    pts, undecodable = decode(damaged)
    assert intact_undecodable == 0
    assert 0 < undecodable < MAX_UNDECODABLE_IN_A_ROW
    assert len(pts) < FRAMES and pts[-1] == intact[-1], "frames after the damage are decoded to the last one"


def test_a_video_corrupt_throughout_is_refused_after_the_limit(video, tmp_path):
    data = video.read_bytes()
    corrupt = overwrite(video, tmp_path / "corrupt.mp4", data.index(b"mdat") + 4, len(data))
    undecodable: list[None] = []
    with av.open(str(corrupt)) as container, pytest.raises(CorruptVideoError, match="undecodable packets in a row"):
        for _ in decode_frames(container, container.streams.video[0], on_undecodable=lambda: undecodable.append(None)):
            pass
    assert len(undecodable) == MAX_UNDECODABLE_IN_A_ROW


def test_a_set_stop_event_ends_decoding_before_the_first_frame(video):
    stopping = threading.Event()
    stopping.set()
    assert decode(video, stopping) == ([], 0)


VIDEO = Path(__file__).resolve().parent / "data" / "video" / "vtest_3s.avi"


@pytest.mark.parametrize("which", ["mpeg4 footage", "h264 noise"])
def test_rgb_pixels_match_the_default_conversion(which: str, video: Path) -> None:
    """The camera's conversion (one thread, fast path) gives exactly the pixels PyAV's default gives, at the
    frame's size; downscaled, those of the default bilinear filter. Contiguous RGB uint8 either way."""
    with av.open(str(VIDEO if which == "mpeg4 footage" else video)) as container:
        frames = [decoded.frame for decoded in decode_frames(container, container.streams.video[0])]
    assert len(frames) > 20
    for frame in frames:
        pixels = rgb_pixels(frame)
        assert pixels.flags.c_contiguous and pixels.dtype == np.uint8
        assert pixels.shape == (frame.height, frame.width, 3)
        assert np.array_equal(pixels, frame.to_ndarray(format="rgb24"))
    width, height = frames[0].width // 2, frames[0].height // 2
    small = rgb_pixels(frames[0], width, height)
    assert small.shape == (height, width, 3)
    assert np.array_equal(small, frames[0].to_ndarray(format="rgb24", width=width, height=height))
