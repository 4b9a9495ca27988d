"""Running the app under uvicorn: in the foreground for `lfr serve`, or on a thread for tests and benchmarks.

Loopback by default: the control room shows faces, so reaching it from the network must be a
decision (`--host`), taken together with TLS in front of it.

Forwarding headers (X-Forwarded-For) are believed only from the proxies named in
`trusted_proxies`: uvicorn would otherwise believe them from any process on 127.0.0.1, which
could then put any client address it likes in the audit log and in another client's rate limit.
"""

import gc
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn
from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8600
SHUTDOWN_GRACE_S = 2.0
"""Open event streams end only when their key or lifetime does: they are cut this long after shutdown starts."""
START_TIMEOUT_S = 30.0
LISTEN_BACKLOG = 2048
"""Listening from construction on: connections made before uvicorn starts wait in this queue."""


class ApiServer:
    """uvicorn serving `app` on host:port (port 0: any free port, see `url` once started).

    trusted_proxies: addresses or networks whose X-Forwarded-For and X-Forwarded-Proto are believed;
    none: the connection's peer is the client, whatever headers say.
    """

    def __init__(
        self, app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, trusted_proxies: Sequence[str] = ()
    ) -> None:
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            self._socket.listen(LISTEN_BACKLOG)
        except OSError as exc:
            self._socket.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from exc
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
            backlog=LISTEN_BACKLOG,
            lifespan="on",
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C, SIGTERM).

        Everything imported by now lives as long as the process, so it is moved out of the garbage
        collector's sight first: a full collection over those ~100k objects stalled the event
        stream for 50-250 ms (measured under load, loadtest/bench_api.py).
        """
        gc.freeze()
        self._server.run(sockets=[self._socket])

    def start(self) -> "ApiServer":
        """Serve on a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="lfr-api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url} within {START_TIMEOUT_S:g} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"the API server on {self.url} did not stop within {timeout_s:g} s")
        self._socket.close()

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
