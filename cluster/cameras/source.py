"""Opening a camera's source with PyAV so that no call can block forever, and saying why one failed.

Two guards bound every blocking call. PyAV's `timeout=(open_s, read_s)` installs FFmpeg's
interrupt callback, which FFmpeg polls while it waits on the network: opening gives up after
`open_s`, each packet read after `read_s`. The protocols' own socket timeouts (RTSP `timeout`,
HTTP `rw_timeout`, in microseconds) are set as well, so a dead peer is noticed even inside
calls that do not poll the callback.
"""

import time
from urllib.parse import urlsplit, urlunsplit

import av
from av.container import InputContainer

from cluster.cameras.config import CameraConfig

PROBE_DURATION_US = 500_000
"""How much of a live stream FFmpeg reads to learn its format (default 5 s). A camera's codec is
in its SDP or its first packets; probing longer only delays every (re)connection, by ~1.5 s."""

TIMEOUT_FRACTION = 0.9
"""An open that failed after this fraction of its timeout failed because of the timeout."""


class SourceError(Exception):
    """The source could not be opened or read; the message is the reason shown to operators."""


def redact(url: str) -> str:
    """The URL without its password, fit for logs and status tables."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))


def source_options(config: CameraConfig) -> dict[str, str]:
    """FFmpeg options for the source's protocol: RTSP over TCP (no lost UDP packets), socket timeouts, short probing."""
    read_us = str(int(config.timeouts.read_s * 1_000_000))
    probe = {"analyzeduration": str(PROBE_DURATION_US)}
    if config.source_kind == "rtsp":
        return {"rtsp_transport": "tcp", "timeout": read_us, **probe}
    if config.source_kind == "http":
        return {"rw_timeout": read_us, **probe}
    return {}


def open_source(config: CameraConfig) -> InputContainer:
    """Open the camera's source for reading; raises SourceError with a reason an operator can act on."""
    target = str(config.file_path) if config.source_kind == "file" else config.source
    started = time.monotonic()
    try:
        container = av.open(
            target,
            mode="r",
            options=source_options(config),
            timeout=(config.timeouts.open_s, config.timeouts.read_s),
        )
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(describe_open_error(config, exc, time.monotonic() - started)) from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{redact(config.source)} holds no video stream")
    return container


def describe_open_error(config: CameraConfig, exc: Exception, elapsed_s: float) -> str:
    source = redact(config.source)
    detail = getattr(exc, "strerror", None) or str(exc)
    if config.source_kind == "file":
        if isinstance(exc, FileNotFoundError):
            return f"file not found: {config.file_path}"
        if isinstance(exc, av.InvalidDataError):
            return f"cannot read {config.file_path}: not a playable video (corrupt, truncated or not a video file)"
        return f"cannot open {config.file_path}: {detail}"
    if elapsed_s >= TIMEOUT_FRACTION * config.timeouts.open_s:
        return f"no answer from {source} within {config.timeouts.open_s:g} s (open timeout)"
    if isinstance(exc, TimeoutError):
        return f"no data from {source} for {config.timeouts.read_s:g} s while opening (read timeout)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {source}: nothing is listening there (is the camera or server up?)"
    return f"cannot open {source}: {detail}"


def describe_read_error(config: CameraConfig, exc: Exception) -> str:
    if isinstance(exc, (av.ExitError, TimeoutError)):
        seconds = config.timeouts.read_s
        return f"no data from {redact(config.source)} for {seconds:g} s (read timeout): the stream stalled"
    detail = getattr(exc, "strerror", None) or str(exc)
    return f"lost {redact(config.source)}: {detail}"
