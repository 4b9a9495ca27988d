"""Start and stop a real Milvus 2.3 server (PyPI `milvus`: `milvus-server --data DIR`) for tests and benchmarks.

Milvus listens on all interfaces (19530, 9091 and more), so it never runs in the host's
network namespace:

- When this process already runs in a loopback-only namespace (its only interface is `lo`,
  e.g. under `unshare -n`), the wrapper runs directly and clients use http://127.0.0.1:19530.
- Otherwise `unshare --net` gives the server a namespace of its own. A small supervisor in
  that namespace brings `lo` up, starts the wrapper, waits for /healthz, and relays a Unix
  socket (reachable from the host through the file system, from no network) to
  127.0.0.1:19530 inside it; clients use `unix:<DATA_DIR>/milvus.sock`, the same path
  across restarts. As root (CI, the development machines) that is `unshare --net`; other users
  get `unshare --map-root-user --net` (needs unprivileged user namespaces).

The server runs with authorisation on (`common.security.authorizationEnabled`). Its `root` user
starts with Milvus' well-known default password; `start` changes it, on first start over a data
directory, to the password given (standalone: the one in LFR_MILVUS_TOKEN, `root:PASSWORD`), and
clients connect with `token` (root:PASSWORD).

Stopping sends SIGINT to the wrapper, which stops its `milvus` child; `stop` then checks that
the wrapper, the server and (when isolated) the supervisor are all gone.

The wrapper unpacks 257 MB of binaries into every new data directory (3 s of CPU). They are
unpacked once per machine into ~/.cache/lfr/ instead and the data directory links to them;
the wrapper sees them current (it compares checksums) and skips its own unpacking.

Run standalone: LFR_MILVUS_TOKEN=root:PASSWORD python -m loadtest.milvus_server DATA_DIR   (serves until Ctrl-C)
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import lzma
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from cluster.gallery.config import DEFAULT_TOKEN_ENV
from cluster.processes import child_pids, process_running

GRPC_PORT = 19530
SESSION_TTL_S = 8
"""etcd session lease of the server's components (Milvus' default is 30 s). The wrapper kills
its child 1 s after SIGTERM, before it deregisters, so a restarted server waits out the old
lease before it serves the collections again: 24 s with the default, a few with this."""
HEALTH_URL = "http://127.0.0.1:9091/healthz"
SOCKET_NAME = "milvus.sock"
MAX_SOCKET_PATH = 108
STOP_WAIT_SECONDS = 30.0
KILL_WAIT_SECONDS = 5.0
LOG_TAIL_BYTES = 3000
ROOT_USER = "root"
DEFAULT_ROOT_PASSWORD = "Milvus"
"""What Milvus gives `root` on a new data directory: everyone knows it, so `start` replaces it."""
CLIENT_TIMEOUT_S = 10.0
LOGIN_RETRY_S = 0.5
ROOT_SECURED_MARKER = "root-password-set"
LOGGED_IN, REFUSED, UNREACHABLE = "logged in", "refused", "unreachable"

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"


class MilvusServerError(RuntimeError):
    """The server could not be started or did not stop; the message carries the log tail or the pids left."""


@dataclass(frozen=True)
class ServerPids:
    """The processes of one running server: the wrapper, its `milvus` child, and the supervisor when isolated."""

    wrapper: int
    server: int
    supervisor: int | None


def in_loopback_only_namespace() -> bool:
    """Whether this process's network namespace has no interface but `lo`."""
    return {name for _, name in socket.if_nameindex()} == {"lo"}


def bring_loopback_up() -> None:
    """Set `lo` up in this namespace (a new namespace starts with it down), without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


def wrapper_command(data_dir: Path) -> list[str]:
    """`milvus-server --data DIR` from the same environment as this interpreter."""
    beside = Path(sys.executable).parent / "milvus-server"
    program = str(beside) if beside.exists() else shutil.which("milvus-server")
    if program is None:
        raise MilvusServerError("milvus-server is not installed: pip install milvus==2.3.5")
    return [
        program, "--data", str(data_dir), "--extra-config", f"common.session.ttl={SESSION_TTL_S}",
        "--authorization-enabled", "true",
    ]  # fmt: skip


def binaries_cache() -> Path:
    version = importlib.metadata.version("milvus")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lfr" / f"milvus-{version}-bin"


def link_unpacked_binaries(data_dir: Path) -> None:
    """Unpack the wrapper's binaries into the per-machine cache (once, under a lock) and link DATA_DIR/bin to it."""
    spec = importlib.util.find_spec("milvus")
    if spec is None or spec.origin is None:
        raise MilvusServerError("the milvus package is not installed: pip install milvus==2.3.5")
    packed = Path(spec.origin).parent / "data" / "bin"
    cache = binaries_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for archive in sorted(packed.glob("*.lzma")):
            checksum = hashlib.md5(archive.read_bytes()).hexdigest()
            target = cache / archive.stem
            marker = cache / f"{archive.stem}.lzma.md5"
            if marker.exists() and marker.read_text().strip() == checksum and target.exists():
                continue
            partial = target.with_suffix(target.suffix + ".partial")
            with lzma.open(archive) as source, open(partial, "wb") as unpacked:
                shutil.copyfileobj(source, unpacked)
            partial.chmod(0o755)
            partial.replace(target)
            marker.write_text(checksum)
    link = data_dir / "bin"
    if not link.exists():
        link.symlink_to(cache, target_is_directory=True)


def _is_auth_failure(error: BaseException | None) -> bool:
    """Whether a client error was caused by refused credentials (not by an unreachable server).

    pymilvus reports both as "Fail connecting to server"; only the gRPC error it was raised from
    (UNAUTHENTICATED) tells them apart.
    """
    while error is not None:
        if isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return True
        error = error.__cause__ or error.__context__
    return False


def wait_healthy(wrapper: subprocess.Popen, deadline: float) -> None:
    """Return once /healthz says OK; raise when the wrapper exits or the deadline passes."""
    while time.monotonic() < deadline:
        if wrapper.poll() is not None:
            raise MilvusServerError(f"milvus-server exited with code {wrapper.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(HEALTH_URL, timeout=1.0) as response:
                if b"OK" in response.read():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise MilvusServerError(f"Milvus was not healthy at {HEALTH_URL} in time")


def server_child(wrapper_pid: int, deadline: float) -> int:
    """The wrapper's `milvus` child (it is started before /healthz answers, so it is there)."""
    while time.monotonic() < deadline:
        children = child_pids(wrapper_pid)
        if children:
            return children[0]
        time.sleep(0.05)
    raise MilvusServerError(f"milvus-server (pid {wrapper_pid}) has no milvus child")


def log_tail(path: Path) -> str:
    """The end of a log file, for error messages."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - LOG_TAIL_BYTES))
            return log_file.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log)"


class MilvusServer:
    """One real Milvus server over `data_dir`, started in a network namespace of its own unless already in one."""

    def __init__(self, data_dir: Path, password: str, start_timeout_s: float = 90.0) -> None:
        if not password or password == DEFAULT_ROOT_PASSWORD:
            raise MilvusServerError("give the server a root password of its own (not Milvus' default)")
        self.data_dir = Path(data_dir)
        self.password = password
        self.start_timeout_s = start_timeout_s
        self.uri = ""
        self.pids: ServerPids | None = None
        self.isolated = False
        self._process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "harness.log"

    @property
    def token(self) -> str:
        """What clients connect with: root:PASSWORD."""
        return f"{ROOT_USER}:{self.password}"

    def start(self) -> None:
        """Start the server and wait until it is healthy (about 7 s on 2 cores)."""
        if self._process is not None:
            raise MilvusServerError("the server is already running; stop it first")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        link_unpacked_binaries(self.data_dir)
        deadline = time.monotonic() + self.start_timeout_s
        self.isolated = not in_loopback_only_namespace()
        with open(self.log_path, "ab") as log_file:
            if self.isolated:
                self._start_isolated(log_file, deadline)
            else:
                self._start_direct(log_file, deadline)
        if (self.data_dir / ROOT_SECURED_MARKER).exists():
            return
        try:
            self._secure_root(deadline)
            (self.data_dir / ROOT_SECURED_MARKER).touch()
        except (MilvusException, grpc.RpcError, MilvusServerError) as error:
            self._abandon()
            raise MilvusServerError(f"could not secure the server's root user: {error}") from error

    def _secure_root(self, deadline: float) -> None:
        """Replace root's default password by ours, unless it is ours already.

        Done once per data directory (a marker records it): a restart makes no pymilvus call, as
        pymilvus serialises connection recovery behind one process-wide lock, which a gallery
        retrying across the restart holds for seconds at a time. A server just started may be
        healthy before its proxy takes logins, so logging in is retried until the deadline.
        """
        while True:
            login = self._log_in(self.token)
            if login == LOGGED_IN:
                return
            if login == REFUSED:
                break
            if time.monotonic() > deadline:
                raise MilvusServerError(f"the server took no login within {self.start_timeout_s:.0f} s")
            time.sleep(LOGIN_RETRY_S)
        client = MilvusClient(
            uri=self.uri, token=f"{ROOT_USER}:{DEFAULT_ROOT_PASSWORD}", timeout=CLIENT_TIMEOUT_S, dedicated=True
        )
        try:
            client.update_password(ROOT_USER, DEFAULT_ROOT_PASSWORD, self.password, timeout=CLIENT_TIMEOUT_S)
        finally:
            client.close()

    def _log_in(self, token: str) -> str:
        """LOGGED_IN, REFUSED (wrong user or password) or UNREACHABLE (the server does not answer yet)."""
        try:
            client = MilvusClient(uri=self.uri, token=token, timeout=CLIENT_TIMEOUT_S, dedicated=True)
            try:
                client.list_collections(timeout=CLIENT_TIMEOUT_S)
            finally:
                client.close()
        except (MilvusException, grpc.RpcError) as error:
            return REFUSED if _is_auth_failure(error) else UNREACHABLE
        return LOGGED_IN

    def _start_direct(self, log_file, deadline: float) -> None:
        self._process = subprocess.Popen(
            wrapper_command(self.data_dir), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(self._process, deadline)
            server = server_child(self._process.pid, deadline)
        except MilvusServerError as error:
            self._abandon()
            raise MilvusServerError(f"{error}; log {self.log_path}:\n{log_tail(self.log_path)}") from error
        self.pids = ServerPids(wrapper=self._process.pid, server=server, supervisor=None)
        self.uri = f"http://127.0.0.1:{GRPC_PORT}"

    def _start_isolated(self, log_file, deadline: float) -> None:
        if shutil.which("unshare") is None:
            raise MilvusServerError("unshare (util-linux) is needed to isolate the server's network")
        socket_path = self.data_dir.resolve() / SOCKET_NAME
        if len(str(socket_path)) >= MAX_SOCKET_PATH:
            raise MilvusServerError(f"{socket_path} is too long for a Unix socket; use a shorter data directory")
        socket_path.unlink(missing_ok=True)
        unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
        command = [
            *unshare, "--", sys.executable, "-m", "loadtest.milvus_server",
            "--supervise", "--socket", str(socket_path), str(self.data_dir),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            ready = self._read_ready_line(deadline)
        except MilvusServerError as error:
            self._abandon()
            raise MilvusServerError(f"{error}; log {self.log_path}:\n{log_tail(self.log_path)}") from error
        self.pids = ServerPids(wrapper=ready["wrapper"], server=ready["server"], supervisor=self._process.pid)
        self.uri = f"unix:{socket_path}"

    def _read_ready_line(self, deadline: float) -> dict:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([stdout], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
            if readable:
                line = stdout.readline()
                if not line:
                    code = self._process.wait(timeout=KILL_WAIT_SECONDS)
                    raise MilvusServerError(f"the isolated server's supervisor exited with code {code}")
                return json.loads(line)
        raise MilvusServerError(f"Milvus was not healthy within {self.start_timeout_s:.0f} s")

    def stop(self, timeout_s: float = STOP_WAIT_SECONDS) -> None:
        """SIGINT to the wrapper (which stops its child); raise unless every process of the server is gone."""
        if self._process is None or self.pids is None:
            return
        pids = self.pids
        os.kill(pids.wrapper, signal.SIGINT)
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._abandon()
            raise MilvusServerError(f"the server did not stop within {timeout_s:.0f} s of SIGINT; killed it") from None
        finally:
            self._cleanup()
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline and any(process_running(pid) for pid in (pids.wrapper, pids.server)):
            time.sleep(0.05)
        left = [pid for pid in (pids.wrapper, pids.server, pids.supervisor) if pid is not None and process_running(pid)]
        if left:
            raise MilvusServerError(f"processes still running after stop: {left}")

    def _abandon(self) -> None:
        """Kill whatever was started (after a failed start or stop)."""
        if self._process is not None and self._process.poll() is None:
            for pid in child_pids(self._process.pid):
                for grandchild in child_pids(pid):
                    os.kill(grandchild, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            self._process.kill()
            self._process.wait(timeout=KILL_WAIT_SECONDS)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> MilvusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _relay_connection(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", GRPC_PORT)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))


async def _relay_until_exit(wrapper: subprocess.Popen, socket_path: Path) -> None:
    """Relay the Unix socket to the server until the wrapper exits; SIGINT/SIGTERM are passed to the wrapper."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, wrapper.send_signal, signal.SIGINT)
    relay = await asyncio.start_unix_server(_relay_connection, path=str(socket_path))
    async with relay:
        await loop.run_in_executor(None, wrapper.wait)


def supervise(data_dir: Path, socket_path: Path, start_timeout_s: float) -> int:
    """Inside the new network namespace: start the wrapper, report its pids when healthy, relay until it exits."""
    bring_loopback_up()
    deadline = time.monotonic() + start_timeout_s
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "milvus-server.log", "ab") as log_file:
        wrapper = subprocess.Popen(
            wrapper_command(data_dir), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(wrapper, deadline)
        server = server_child(wrapper.pid, deadline)
    except MilvusServerError as error:
        wrapper.kill()
        wrapper.wait(timeout=KILL_WAIT_SECONDS)
        sys.stderr.write(f"{error}\n{log_tail(data_dir / 'milvus-server.log')}\n")
        return 1
    asyncio.run(_ready_then_relay(wrapper, server, socket_path))
    return 0


async def _ready_then_relay(wrapper: subprocess.Popen, server: int, socket_path: Path) -> None:
    relay_task = asyncio.ensure_future(_relay_until_exit(wrapper, socket_path))
    while not socket_path.exists() and not relay_task.done():
        await asyncio.sleep(0.01)
    sys.stdout.write(json.dumps({"wrapper": wrapper.pid, "server": server}) + "\n")
    sys.stdout.flush()
    await relay_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--start-timeout", type=float, default=90.0)
    parser.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--socket", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.supervise:
        sys.exit(supervise(args.data_dir, args.socket, args.start_timeout))
    user, _, password = os.environ.get(DEFAULT_TOKEN_ENV, "").partition(":")
    if user != ROOT_USER or not password:
        sys.exit(f"set {DEFAULT_TOKEN_ENV}=root:PASSWORD: the server's root password, and what clients connect with")
    server = MilvusServer(args.data_dir, password, args.start_timeout)
    server.start()
    sys.stdout.write(f"Milvus at {server.uri} (pids {server.pids}); Ctrl-C stops it\n")
    sys.stdout.flush()
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.sigwait(stop_signals)
    finally:
        server.stop()
        sys.stdout.write("stopped; every process is gone\n")


if __name__ == "__main__":
    main()
