"""What a camera is doing and how well: the answer to "is this camera working?"."""

from dataclasses import dataclass
from enum import StrEnum


class CameraState(StrEnum):
    """The life of a camera's reader.

    connecting -> streaming (a frame was decoded) -> backing_off (the source failed; a retry is
    scheduled) -> connecting ... -> failed (too many failures within the restart budget's
    window; it keeps retrying, slowly, and stays failed until a frame arrives) -> streaming.
    stopped: asked to stop, or a file that does not loop came to its end.
    """

    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKING_OFF = "backing_off"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class CameraHealth:
    """A snapshot of one camera; rates are over a sliding window, counts since the camera was made.

    Times are wall-clock seconds (`time.time()`). `frames_dropped` counts frames evicted from the
    queue because the consumer was slower than the camera; `frames_corrupt` counts packets or
    frames that could not be decoded and were skipped; `reconnects` counts the times the stream
    came back after it was lost; `failures` counts failed connections and lost streams.
    """

    camera_id: str
    state: CameraState
    since: float
    fps_in: float
    fps_out: float
    frames_decoded: int
    frames_sampled: int
    frames_dropped: int
    frames_corrupt: int
    queue_length: int
    reconnects: int
    failures: int
    last_error: str | None
    last_error_time: float | None
    last_frame_time: float | None
