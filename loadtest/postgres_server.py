"""A throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.

`initdb` into a temporary folder, `pg_ctl start` on a free port with the socket in that folder,
`pg_ctl stop` and delete it all at the end. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user that Debian's `postgresql` package creates.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import psycopg
import structlog

log = structlog.get_logger(__name__)

BIN_GLOB = "/usr/lib/postgresql/*/bin"
DEBIAN_PACKAGE = "postgresql"
SERVER_USER = "postgres"
DATABASE_USER = "lfr"
START_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed, or the server did not start."""


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None."""
    candidates = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name), reverse=True)
    return next((path for path in candidates if (path / "initdb").is_file()), None)


def install_hint() -> str:
    return f"install Debian's PostgreSQL server: apt-get install -y --no-install-recommends {DEBIAN_PACKAGE}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server in a temporary folder, reachable only on 127.0.0.1, with trust auth for `lfr`.

    durable: keep fsync and synchronous commit on; tests turn them off for speed.
    """

    def __init__(self, *, durable: bool = False) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(f"no PostgreSQL server programs under {BIN_GLOB}: {install_hint()}")
        self._bin = bin_dir
        self._durable = durable
        self._root = Path(tempfile.mkdtemp(prefix="lfr-postgres-"))
        self._data = self._root / "data"
        self.port = _free_port()
        self._started = False

    def start(self) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self._root, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self._data), "-U", DATABASE_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root}"
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(self._data), "-l", str(self._root / "server.log"), "-w",
            "-t", str(START_TIMEOUT_S), "-o", options, "start",
        )  # fmt: skip
        self._started = True
        log.info("postgres_started", port=self.port, data=str(self._data))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"lfr_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def empty_database(self, name: str = "lfr_scratch") -> str:
        """The URL of database `name`, emptied (created the first time).

        Emptying its schema takes milliseconds where CREATE DATABASE takes about 0.3 s, which
        adds up over a test module. Close every engine on it before asking for it again.
        """
        with psycopg.connect(self.url(), autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(f'CREATE DATABASE "{name}"')
                return self.url(name)
        with psycopg.connect(self.url(name), autocommit=True) as connection:
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")
        return self.url(name)

    def stop(self) -> None:
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, cwd=self._root, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        if done.returncode != 0:
            server_log = self._root / "server.log"
            tail = server_log.read_text()[-2000:] if server_log.is_file() else ""
            raise PostgresUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}".rstrip()
            )

    def __enter__(self) -> "PostgresServer":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
