"""Replay video files as live RTSP cameras on 127.0.0.1, for tests, load replays and chaos runs.

The GStreamer work happens in gst_rtsp_serve.py beside this module, a child process under Debian's
/usr/bin/python3 (python3-gi is built for that interpreter only, not for our venv's). This
module starts, watches, crashes and restarts that child from the venv.

Run standalone: python -m cluster.replay.rtsp_server VIDEO... [--port 8554]. `lfr loadtest` serves its
crowd's videos through it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import structlog

from cluster.logging_setup import configure_logging

log = structlog.get_logger(__name__)

DEBIAN_PYTHON = Path("/usr/bin/python3")
CHILD_PROGRAM = Path(__file__).resolve().parent / "gst_rtsp_serve.py"
# gst_rtsp_serve.py exits with this code when gi or a GStreamer element is missing.
EXIT_MISSING_GSTREAMER = 3
STOP_GRACE_SECONDS = 5.0
KILL_WAIT_SECONDS = 5.0
STDERR_TAIL_BYTES = 4000


class RtspServerError(RuntimeError):
    """The replay server could not be started or stopped; the message carries the child's stderr tail."""


GSTREAMER_PACKAGES = (
    "python3-gi",
    "gir1.2-gstreamer-1.0",
    "gir1.2-gst-plugins-base-1.0",
    "gir1.2-gst-rtsp-server-1.0",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-libav",
)
"""The Debian packages the GStreamer child needs; loadtest/debian-packages.txt lists them for CI too (a test
keeps the two in step). Named here because the installed package does not ship that file."""


def install_hint() -> str:
    return (
        "install the Debian packages listed in loadtest/debian-packages.txt: "
        f"apt-get install -y --no-install-recommends {' '.join(GSTREAMER_PACKAGES)}"
    )


def camera_path(index: int) -> str:
    return f"/cam{index}"


class RtspReplayServer:
    """N video files as N RTSP cameras (rtsp://HOST:PORT/cam0, /cam1, ...), looping at real time.

    H.264 MP4 files are passed through; anything else is re-encoded to H.264 constrained baseline
    with a keyframe a second. Each camera is shared by all of its clients.
    """

    def __init__(
        self,
        videos: Sequence[Path],
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 20.0,
        *,
        reencode: bool = False,
        fps_cap: float | None = None,
    ) -> None:
        """`port` None picks a free one at the first start; `reencode` also re-encodes H.264 MP4 files;
        `fps_cap` drops frames above that rate (and so re-encodes every file)."""
        if not videos:
            raise ValueError("RtspReplayServer needs at least one video file to serve")
        missing = [str(video) for video in videos if not Path(video).is_file()]
        if missing:
            raise ValueError(f"video files not found: {', '.join(missing)}; pass paths to existing video files")
        self.videos = [Path(video).resolve() for video in videos]
        self.host = _loopback_host(host)
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be in 1..65535 (or None to pick a free one), got {port}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be positive seconds, got {startup_timeout}")
        if fps_cap is not None and fps_cap <= 0:
            raise ValueError(f"fps_cap must be positive frames per second (or None), got {fps_cap}")
        self.startup_timeout = startup_timeout
        self.reencode = reencode
        self.fps_cap = fps_cap
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RtspServerError("the port is picked at the first start(): call start() before asking for it")
        return self._port

    @property
    def urls(self) -> list[str]:
        """One URL per video, in the order given."""
        return [f"rtsp://{self.host}:{self.port}{camera_path(index)}" for index in range(len(self.videos))]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The GStreamer child's process id while one was started and not yet reaped."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the GStreamer child and wait until it accepts clients."""
        if self.running:
            raise RtspServerError(f"the RTSP replay server already runs on port {self._port}; stop() it first")
        self._discard_child()
        if self._stderr is not None:
            self._stderr.close()
        if not DEBIAN_PYTHON.is_file():
            raise RtspServerError(f"{DEBIAN_PYTHON} not found, which runs the GStreamer server: {install_hint()}")
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        started = time.monotonic()
        try:
            self._port = self._wait_ready()
        except RtspServerError:
            self.kill()
            raise
        log.info(
            "rtsp_replay_server_started",
            pid=self._process.pid,
            port=self._port,
            cameras=len(self.videos),
            seconds=round(time.monotonic() - started, 3),
        )

    def _command(self) -> list[str]:
        command = [str(DEBIAN_PYTHON), "-I", str(CHILD_PROGRAM), "--watch-parent"]
        command += ["--host", self.host, "--port", str(self._port or 0)]
        for index, video in enumerate(self.videos):
            command += ["--mount", f"{camera_path(index)}={video}"]
        if self.reencode:
            command.append("--reencode")
        if self.fps_cap is not None:
            command += ["--fps-cap", str(self.fps_cap)]
        return command

    def _wait_ready(self) -> int:
        """Read the child's stdout until `READY <port>`, its exit, or the startup timeout."""
        assert self._process is not None and self._process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        output = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while b"\n" not in output:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(timeout=remaining):
                    raise RtspServerError(
                        f"the RTSP replay server did not get ready within {self.startup_timeout} s; "
                        f"stderr: {self.stderr_tail()}"
                    )
                chunk = os.read(self._process.stdout.fileno(), 4096)
                if not chunk:
                    raise self._exited_error()
                output += chunk
        line = output.split(b"\n", 1)[0].decode(errors="replace").strip()
        word, _, port = line.partition(" ")
        if word != "READY" or not port.isdigit():
            raise RtspServerError(f"the RTSP replay server said {line!r} instead of 'READY <port>'")
        return int(port)

    def _exited_error(self) -> RtspServerError:
        assert self._process is not None
        code = self._process.wait(timeout=KILL_WAIT_SECONDS)
        tail = self.stderr_tail()
        if code == EXIT_MISSING_GSTREAMER:
            return RtspServerError(f"GStreamer is missing for {DEBIAN_PYTHON}: {install_hint()}; stderr: {tail}")
        return RtspServerError(f"the RTSP replay server exited with code {code} before it was ready; stderr: {tail}")

    def stderr_tail(self) -> str:
        """The end of the child's stderr, kept until the next start(): what GStreamer said before a failure."""
        if self._stderr is None:
            return ""
        size = self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))
        return self._stderr.read().decode(errors="replace").strip() or "(empty)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the child has not gone within a few seconds. Safe to call twice."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("rtsp_replay_server_stop_timeout", pid=process.pid, seconds=STOP_GRACE_SECONDS)
                process.kill()
                process.wait(timeout=KILL_WAIT_SECONDS)
            log.info("rtsp_replay_server_stopped", pid=process.pid, exit_code=process.returncode)
        self._discard_child()

    def kill(self) -> None:
        """SIGKILL the child with no chance to clean up, as a crash would; for chaos tests."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=KILL_WAIT_SECONDS)
            log.info("rtsp_replay_server_killed", pid=process.pid)
        self._discard_child()

    def restart(self) -> None:
        """Start again on the same port, so clients reconnect to the same URLs."""
        self.stop()
        self.start()

    def _discard_child(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    pipe.close()
            self._process = None

    def __enter__(self) -> RtspReplayServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _loopback_host(host: str) -> str:
    """Load and chaos tests only ever target this machine: refuse anything but an IPv4 loopback address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be an IPv4 loopback address such as 127.0.0.1, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(
            f"host {host!r} is not on loopback: the replay server only serves 127.0.0.0/8, "
            "since load and chaos tests only target 127.0.0.1"
        )
    return host


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve video files as looping, real-time RTSP cameras.")
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    parser.add_argument("--host", default="127.0.0.1", help="an IPv4 loopback address")
    parser.add_argument("--port", type=int, default=8554, help="0 picks a free port")
    parser.add_argument("--reencode", action="store_true", help="re-encode H.264 MP4 files too")
    parser.add_argument("--fps-cap", type=float, help="drop frames above this rate")
    args = parser.parse_args(argv)
    configure_logging("info")
    try:
        port = args.port or None
        server = RtspReplayServer(args.videos, args.host, port, reencode=args.reencode, fps_cap=args.fps_cap)
        server.start()
    except (ValueError, RtspServerError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    for video, url in zip(server.videos, server.urls, strict=True):
        sys.stdout.write(f"{url}  <- {video}\n")
    sys.stdout.write("serving; Ctrl-C stops\n")
    sys.stdout.flush()
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()
        return 0
    sys.stderr.write(f"error: the RTSP replay server exited unexpectedly; stderr: {server.stderr_tail()}\n")
    server.stop()
    return 1


if __name__ == "__main__":
    sys.exit(main())
