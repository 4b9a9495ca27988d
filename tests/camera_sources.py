"""Video sources for camera tests: real H.264 files, and network peers that misbehave on purpose.

Everything listens on 127.0.0.1 only. The misbehaving peers are the faults we inject: a port
where nothing listens, a server that accepts and never answers, and an HTTP MPEG-TS server
that can be told to stall mid-stream while keeping the connection open.
"""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cluster.cameras.config import CameraConfig

TS_CHUNK_BYTES = 188 * 7


def camera_config(source: str | Path, **fields) -> CameraConfig:
    """A camera with test-sized timeouts and backoff (seconds, not tens of seconds)."""
    defaults = {
        "id": "test_cam",
        "source": str(source),
        "signage_notice": "Live facial recognition in use (test)",
        "timeouts": {"open_s": 2.0, "read_s": 1.5},
        "backoff": {"initial_s": 0.1, "max_s": 0.5, "jitter": 0.2},
    }
    return CameraConfig.model_validate({**defaults, **fields})


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(2)
        for connection in accepted:
            connection.close()
        listener.close()


class StallableTsServer:
    """Serves an MPEG-TS file over HTTP at `bytes_per_second`; `stall()` stops sending, keeping the connection.

    While stalled, new connections are accepted but get nothing either (a wedged encoder).
    """

    def __init__(self, path: Path, bytes_per_second: float) -> None:
        self._data = path.read_bytes()
        self._bytes_per_second = bytes_per_second
        self._running = threading.Event()
        self._running.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/live.ts"

    def stall(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def __enter__(self) -> "StallableTsServer":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._running.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                while not server._running.wait(0.1):
                    pass
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                started = time.monotonic()
                for offset in range(0, len(server._data), TS_CHUNK_BYTES):
                    while not server._running.is_set():
                        time.sleep(0.05)
                    due = started + offset / server._bytes_per_second
                    time.sleep(max(0.0, due - time.monotonic()))
                    try:
                        self.wfile.write(server._data[offset : offset + TS_CHUNK_BYTES])
                    except OSError:
                        return

        return Handler
