"""The embedded backend: one milvus-lite server process, on a Unix socket, that owns a data directory.

milvus-lite (3.2.x, pure Python over faiss) lets exactly one process open its data directory
(it holds an flock on `<data>/milvus/LOCK`). So `lfr` never opens the data in-process; the
first `lfr` process that needs the gallery starts a server process over it, records its pid
and socket in `server.json`, and every later process (CLI commands, Ray actors) connects to
that server. Starting is serialised by an flock on `server.lock`, so two processes that start
at once end up with one server. The server outlives the process that started it, so CLI
commands do not pay its start-up each time; `EmbeddedMilvus.stop` ends it. A restarted server
listens on the same socket, so clients that hold the URI (long-lived actors) reconnect by
themselves.

milvus-lite has no authentication, so the server never listens on a TCP port (where any local
user could reach it): `cluster.gallery.lite_server` binds only `<data_dir>/milvus.sock`, and
the data directory is kept at mode 0700, so only its owner (and root) can connect or read the
data. Clients on other machines cannot reach it; use a Milvus server (`type: milvus`, with
authentication) for a cluster of several machines.

The server runs with one gRPC worker: milvus-lite's engine is not safe for concurrent writes
to one collection, and one worker serialises every request.

Layout of `data_dir` (0700): `milvus/` (milvus-lite's data and LOCK), `milvus.sock`, `server.json`,
`server.lock`, `server.log`.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import grpc
import structlog

from cluster.gallery.config import LiteBackendConfig, TimeoutsConfig
from cluster.gallery.endpoint import MilvusEndpoint
from cluster.gallery.errors import EmbeddedServerError
from cluster.processes import command_line, process_running

log = structlog.get_logger(__name__)

MILVUS_SUBDIR = "milvus"
SOCKET_FILE = "milvus.sock"
MAX_SOCKET_PATH = 107
"""Longest Unix socket path Linux accepts (sun_path holds 108 bytes with its terminating NUL)."""
DATA_DIR_MODE = 0o700
SERVER_MODULE = "cluster.gallery.lite_server"
STATE_FILE = "server.json"
START_LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
MILVUS_LITE_LOCK = "LOCK"
GRPC_WORKERS = 1
POLL_SECONDS = 0.1
STOP_WAIT_SECONDS = 15.0
LOG_TAIL_BYTES = 2000


@dataclass(frozen=True)
class EmbeddedServerState:
    """The running server, as recorded in `server.json`."""

    pid: int
    socket: str
    started_at: float

    @property
    def uri(self) -> str:
        return f"unix:{self.socket}"


def _grpc_ready(socket_path: str, timeout_s: float) -> bool:
    """Whether a gRPC server accepts connections on the socket (no pymilvus call, so nothing is logged)."""
    channel = grpc.insecure_channel(f"unix:{socket_path}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


class EmbeddedMilvus:
    """Starts, finds and stops the one milvus-lite server of a data directory."""

    def __init__(self, config: LiteBackendConfig, timeouts: TimeoutsConfig) -> None:
        self.config = config
        self.timeouts = timeouts
        self.data_dir = config.data_dir.expanduser().resolve()
        self.milvus_dir = self.data_dir / MILVUS_SUBDIR
        self.state_path = self.data_dir / STATE_FILE
        self.socket_path = self.data_dir / SOCKET_FILE
        self.log_path = self.data_dir / LOG_FILE
        self._started: subprocess.Popen | None = None

    def endpoint(self) -> MilvusEndpoint:
        """The running server's endpoint, starting the server first when none runs."""
        state = self.ensure_running()
        return MilvusEndpoint(
            uri=state.uri,
            token="",
            shards=1,
            hnsw=self.config.index,
            remedy=(
                f"the embedded milvus-lite server (pid {state.pid}, data {self.milvus_dir}) stopped or hangs;"
                f" see {self.log_path}, then run the command again to restart it"
            ),
        )

    def ensure_running(self) -> EmbeddedServerState:
        """The server of this data directory: the recorded one when it answers, else a new one."""
        self._prepare_data_dir()
        with self._start_lock():
            state = self._recorded_state()
            if state is not None and self._is_our_server(state.pid):
                if _grpc_ready(state.socket, self.timeouts.connect_s):
                    return state
                raise EmbeddedServerError(
                    f"the embedded milvus-lite server (pid {state.pid}, socket {state.socket}) runs but does not"
                    f" answer within {self.timeouts.connect_s} s; see {self.log_path}, stop it (kill -INT"
                    f" {state.pid}) and try again"
                )
            self._refuse_if_data_open_elsewhere()
            return self._start()

    def _prepare_data_dir(self) -> None:
        """Create the data directory owner-only (0700), or make it so; refuse a socket path Linux cannot bind."""
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise EmbeddedServerError(
                f"the server's socket {self.socket_path} would be {len(str(self.socket_path))} bytes long, over the"
                f" {MAX_SOCKET_PATH} a Unix socket path may have; set gallery.backend.data_dir to a shorter path"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=DATA_DIR_MODE)
        self.data_dir.chmod(DATA_DIR_MODE)

    def running(self) -> EmbeddedServerState | None:
        """The recorded server when it is alive, without starting one."""
        state = self._recorded_state()
        if state is not None and self._is_our_server(state.pid):
            return state
        return None

    def stop(self, timeout_s: float = STOP_WAIT_SECONDS) -> bool:
        """Stop the server (SIGINT, so milvus-lite closes its data cleanly); False when none ran."""
        with self._start_lock():
            state = self.running()
            if state is None:
                return False
            os.kill(state.pid, signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            while self._alive(state.pid) and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            if self._alive(state.pid):
                os.kill(state.pid, signal.SIGKILL)
                log.warning("milvus_lite_killed", pid=state.pid, after_s=timeout_s)
                while self._alive(state.pid):
                    time.sleep(POLL_SECONDS)
            self._wait_for_data_released(time.monotonic() + timeout_s)
            log.info("milvus_lite_stopped", pid=state.pid, data_dir=str(self.milvus_dir))
            return True

    def _wait_for_data_released(self, deadline: float) -> None:
        """Until milvus-lite's data lock is free: the server's process can be gone a moment before the lock
        its processes held is released, and the next start must not find the data still open."""
        lock_path = self.milvus_dir / MILVUS_LITE_LOCK
        if not lock_path.exists():
            return
        with open(lock_path, "a") as lock_file:
            while True:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return
                    time.sleep(POLL_SECONDS)
                    continue
                fcntl.flock(lock_file, fcntl.LOCK_UN)
                return

    def _alive(self, pid: int) -> bool:
        if self._started is not None and self._started.pid == pid:
            return self._started.poll() is None
        return process_running(pid)

    def _is_our_server(self, pid: int) -> bool:
        """Whether the pid runs milvus-lite over this data directory (not a recycled pid)."""
        if not self._alive(pid):
            return False
        command = command_line(pid)
        return SERVER_MODULE in command and str(self.milvus_dir) in command

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeouts.start_s
        with open(self.data_dir / START_LOCK_FILE, "a") as lock_file:
            while True:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedServerError(
                            f"another process has been starting or stopping the milvus-lite server of"
                            f" {self.data_dir} for over {self.timeouts.start_s} s; wait for it or stop it"
                        ) from None
                    time.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _recorded_state(self) -> EmbeddedServerState | None:
        try:
            return EmbeddedServerState(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise EmbeddedServerError(
                f"{self.state_path} is unreadable ({exc}); delete it once no milvus-lite server runs over"
                f" {self.milvus_dir}"
            ) from exc

    def _refuse_if_data_open_elsewhere(self) -> None:
        """A process other than a recorded server holds milvus-lite's lock: never open the data twice."""
        lock_path = self.milvus_dir / MILVUS_LITE_LOCK
        if not lock_path.exists():
            return
        with open(lock_path, "a") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EmbeddedServerError(
                    f"the milvus-lite data in {self.milvus_dir} is open in another process that is not the"
                    f" gallery's server (no live server is recorded in {self.state_path}); close that process,"
                    " or set gallery.backend.data_dir to another directory"
                ) from None
            fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _start(self) -> EmbeddedServerState:
        socket_path = str(self.socket_path)
        self.socket_path.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", SERVER_MODULE,
            "--data-dir", str(self.milvus_dir),
            "--socket", socket_path,
            "--max-workers", str(GRPC_WORKERS),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started = process
        deadline = time.monotonic() + self.timeouts.start_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"the milvus-lite server exited with code {process.returncode} while starting on {socket_path};"
                    f" log {self.log_path}:\n{self._log_tail()}"
                )
            if _grpc_ready(socket_path, POLL_SECONDS * 5):
                state = EmbeddedServerState(pid=process.pid, socket=socket_path, started_at=time.time())
                self._record(state)
                log.info("milvus_lite_started", pid=process.pid, socket=socket_path, data_dir=str(self.milvus_dir))
                return state
        process.kill()
        process.wait()
        raise EmbeddedServerError(
            f"the milvus-lite server did not answer on {socket_path} within {self.timeouts.start_s} s;"
            f" log {self.log_path}:\n{self._log_tail()}"
        )

    def _record(self, state: EmbeddedServerState) -> None:
        partial = self.state_path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(asdict(state)))
        partial.replace(self.state_path)

    def _log_tail(self) -> str:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - LOG_TAIL_BYTES))
            return log_file.read().decode("utf-8", "replace")
