"""Camera configuration: where a camera's video comes from, where it stands, and how it is read.

One `CameraConfig` per camera checks what can be checked on its own; `verify_cameras` checks
what needs the whole list (unique ids, neighbours that exist). Neither does any I/O: a source
that cannot be opened is a run-time state of the camera, not a configuration error.

Neighbours are undirected: a pair listed on one side only holds both ways, with the walking
time given. When both sides list each other, their walking times must agree within a factor
of `WALKING_TIME_MAX_RATIO` (uphill and downhill may differ a little; a larger difference is
almost always a typo such as minutes written as seconds).
"""

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from cluster.section import Section

CAMERA_ID_PATTERN = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"
"""Lower-case words joined by single underscores, such as `oxford_st_2`."""

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
WALKING_TIME_MAX_RATIO = 2.0

SourceKind = Literal["rtsp", "http", "file"]


CAMERA_ACTOR_CPUS = 0.25
"""Logical CPUs reserved per camera actor: decoding one 1080p stream at 25 fps takes about a quarter of a core."""


class Location(Section):
    """Where a camera stands, for maps and for reasoning about who can walk where."""

    name: str = Field(min_length=1, description="A place people recognise, e.g. 'Oxford Circus, north-east corner'.")
    lat: float = Field(ge=-90.0, le=90.0, description="Latitude in degrees (WGS84).")
    lon: float = Field(ge=-180.0, le=180.0, description="Longitude in degrees (WGS84).")


class Neighbour(Section):
    """A camera a person can walk to from this one, and how long that typically takes."""

    camera_id: str = Field(pattern=CAMERA_ID_PATTERN)
    walking_seconds: float = Field(gt=0.0, le=24 * 3600, description="Typical walking time between the two cameras.")


class Timeouts(Section):
    """How long a source may keep us waiting before it counts as down."""

    open_s: float = Field(10.0, gt=0.0, le=120.0, description="Connecting and reading the stream's header.")
    read_s: float = Field(5.0, gt=0.0, le=120.0, description="Waiting for the next packet of a running stream.")


class BackoffConfig(Section):
    """Delays between reconnection attempts: exponential, capped, with jitter so cameras do not retry in step."""

    initial_s: float = Field(0.25, gt=0.0, le=60.0)
    max_s: float = Field(2.0, gt=0.0, le=600.0)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)
    jitter: float = Field(0.25, ge=0.0, lt=1.0, description="Each delay is cut by a random fraction up to this.")

    @model_validator(mode="after")
    def _initial_within_max(self) -> "BackoffConfig":
        if self.initial_s > self.max_s:
            raise ValueError(f"initial_s ({self.initial_s}) must not exceed max_s ({self.max_s})")
        return self


class RestartBudget(Section):
    """When a camera that keeps failing is declared failed (Frigate's watchdog rule).

    After `max_failures` failures within `window_s` the camera is `failed`: it still retries,
    but only every `failed_retry_s`, so a camera that comes back is picked up again without an
    operator while a dead one costs almost nothing.
    """

    max_failures: int = Field(10, ge=1, le=10_000)
    window_s: float = Field(60.0, gt=0.0, le=86_400.0)
    failed_retry_s: float = Field(30.0, gt=0.0, le=86_400.0)


class CameraConfig(Section):
    """One camera of a deployment."""

    id: str = Field(pattern=CAMERA_ID_PATTERN, max_length=64, description="Unique slug, e.g. oxford_st_2.")
    source: str = Field(
        min_length=1,
        description="rtsp:// or rtsps:// URL, http(s):// URL of an MPEG-TS stream, file:// URL or file path.",
    )
    loop: bool = Field(False, description="Files only: start again at the end, like a camera that never stops.")
    realtime: bool = Field(
        True, description="Files only: replay at the file's own frame rate; false decodes as fast as possible."
    )
    location: Location | None = None
    neighbours: tuple[Neighbour, ...] = ()
    sample_fps: float = Field(5.0, gt=0.0, le=60.0, description="Frames per second handed downstream.")
    max_width: int = Field(1920, ge=16, le=7680, description="Wider frames are downscaled, keeping the aspect ratio.")
    max_height: int = Field(1080, ge=16, le=4320, description="Taller frames are downscaled, keeping the aspect ratio.")
    signage_notice: str = Field(
        min_length=1, description="The notice displayed to the public at this camera; required by law and policy."
    )
    timeouts: Timeouts = Timeouts()
    backoff: BackoffConfig = BackoffConfig()
    restart_budget: RestartBudget = RestartBudget()
    queue_size: int = Field(8, ge=1, le=1024, description="Frames held for a slow consumer before the oldest drop.")

    @field_validator("signage_notice")
    @classmethod
    def _signage_says_something(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the signage notice must say something: the public must be told they are filmed")
        return text.strip()

    @field_validator("source")
    @classmethod
    def _source_is_supported(cls, source: str) -> str:
        scheme = urlsplit(source).scheme.lower()
        if len(scheme) > 1 and scheme not in (*NETWORK_SCHEMES, "file"):
            raise ValueError(
                f"unsupported source scheme '{scheme}://'; use rtsp://, rtsps://, http(s):// (MPEG-TS),"
                " file:// or a plain file path"
            )
        return source

    @model_validator(mode="after")
    def _options_fit_the_source(self) -> "CameraConfig":
        if self.source_kind != "file" and self.loop:
            raise ValueError("loop: only file sources can loop; a live stream never ends by design")
        if self.source_kind != "file" and not self.realtime:
            raise ValueError("realtime: only file sources can be read faster than real time")
        seen: set[str] = set()
        for index, neighbour in enumerate(self.neighbours):
            if neighbour.camera_id == self.id:
                raise ValueError(f"neighbours[{index}].camera_id: a camera cannot be its own neighbour")
            if neighbour.camera_id in seen:
                raise ValueError(f"neighbours[{index}].camera_id: '{neighbour.camera_id}' is listed twice")
            seen.add(neighbour.camera_id)
        return self

    @property
    def source_kind(self) -> SourceKind:
        """How the source is read: an RTSP session, an HTTP MPEG-TS stream or a local file."""
        scheme = urlsplit(self.source).scheme.lower()
        if scheme in ("rtsp", "rtsps"):
            return "rtsp"
        if scheme in ("http", "https"):
            return "http"
        return "file"

    @property
    def file_path(self) -> Path:
        """The local file of a file source (file:// URLs decoded)."""
        if self.source_kind != "file":
            raise ValueError(f"camera {self.id} reads {self.source}, which is not a file")
        parts = urlsplit(self.source)
        if parts.scheme.lower() == "file":
            return Path(unquote(parts.path))
        return Path(self.source)


def verify_cameras(cameras: list[CameraConfig]) -> None:
    """Check what one camera cannot check alone; the message names each bad YAML path."""
    problems: list[str] = []
    first_index: dict[str, int] = {}
    for index, camera in enumerate(cameras):
        if camera.id in first_index:
            problems.append(f"cameras[{index}].id: duplicate id '{camera.id}' (also cameras[{first_index[camera.id]}])")
        else:
            first_index[camera.id] = index
    walking = {
        (camera.id, n.camera_id): (ci, ni, n.walking_seconds)
        for ci, camera in enumerate(cameras)
        for ni, n in enumerate(camera.neighbours)
    }
    for (source, target), (ci, ni, seconds) in walking.items():
        path = f"cameras[{ci}].neighbours[{ni}]"
        if target not in first_index:
            problems.append(f"{path}.camera_id: unknown camera '{target}'; known: {', '.join(sorted(first_index))}")
            continue
        back = walking.get((target, source))
        if back is not None and source < target:
            ratio = max(seconds, back[2]) / min(seconds, back[2])
            if ratio > WALKING_TIME_MAX_RATIO:
                problems.append(
                    f"{path}.walking_seconds: {seconds:g} s from '{source}' to '{target}' but {back[2]:g} s back"
                    f" (cameras[{back[0]}].neighbours[{back[1]}]); the two should agree within a factor of"
                    f" {WALKING_TIME_MAX_RATIO:g}"
                )
    if problems:
        raise ValueError("; ".join(problems))
