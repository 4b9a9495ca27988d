"""The embedded milvus-lite server: one per data directory, found again by later processes, never opened twice,
reachable only through a socket in its owner-only data directory (milvus-lite has no authentication)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.errors import EmbeddedServerError
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.processes import process_running

pytestmark = pytest.mark.slow

HOLD_LOCK = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def _embedded(data_dir) -> EmbeddedMilvus:
    config = GalleryConfig(backend=LiteBackendConfig(data_dir=data_dir))
    return EmbeddedMilvus(config.backend, config.timeouts)


def test_a_second_user_of_the_data_directory_connects_to_the_running_server(embedded_milvus):
    running = embedded_milvus.running()
    assert running is not None
    again = _embedded(embedded_milvus.data_dir).ensure_running()
    assert again == running
    assert _embedded(embedded_milvus.data_dir).endpoint().uri == running.uri


def test_data_opened_by_another_process_is_refused_with_what_to_do(tmp_path):
    """A process that holds milvus-lite's lock (not the gallery's server) is never raced for the data."""
    embedded = _embedded(tmp_path)
    embedded.milvus_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(embedded.milvus_dir / "LOCK")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(EmbeddedServerError, match="open in another process.*set gallery.backend.data_dir"):
            embedded.ensure_running()
        assert embedded.running() is None
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_stale_record_starts_a_new_server_on_the_same_socket_and_stop_ends_it(tmp_path):
    """server.json left by a server that died (pid gone): a new server starts, on the same socket."""
    embedded = _embedded(tmp_path)
    first = embedded.ensure_running()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    embedded.state_path.write_text(json.dumps({"pid": gone.pid, "socket": first.socket, "started_at": 0.0}))
    assert embedded.running() is None
    try:
        with pytest.raises(EmbeddedServerError, match="open in another process"):
            embedded.ensure_running()
    finally:
        embedded.state_path.write_text(json.dumps({"pid": first.pid, "socket": first.socket, "started_at": 0.0}))
        assert embedded.stop()
    assert not process_running(first.pid)
    assert embedded.running() is None
    embedded.state_path.write_text(json.dumps({"pid": gone.pid, "socket": first.socket, "started_at": 0.0}))
    second = embedded.ensure_running()
    try:
        assert second.pid != first.pid and second.uri == first.uri
    finally:
        assert embedded.stop()
    assert not process_running(second.pid)
    assert not embedded.stop(), "nothing left to stop"


def test_the_server_listens_on_no_tcp_port_and_only_its_owner_can_connect(embedded_milvus):
    """No TCP socket of the server process; its Unix socket lies in a 0700 directory."""
    running = embedded_milvus.running()
    assert running is not None and running.uri == f"unix:{embedded_milvus.data_dir / 'milvus.sock'}"
    assert stat.S_IMODE(embedded_milvus.data_dir.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(running.socket).st_mode)
    assert _listening_tcp_ports(running.pid) == set(), "milvus-lite has no authentication: it must not listen on TCP"


def test_a_data_directory_opened_to_others_is_closed_again(tmp_path):
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    embedded = _embedded(data_dir)
    embedded.ensure_running()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    finally:
        assert embedded.stop()


def test_a_socket_path_too_long_for_linux_is_refused_with_what_to_do(tmp_path):
    deep = tmp_path / ("d" * 120)
    with pytest.raises(
        EmbeddedServerError, match="over the 107 a Unix socket path may have; set gallery.backend.data_dir"
    ):
        _embedded(deep).ensure_running()


def _listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports the process listens on: its socket inodes matched against /proc/net/tcp and tcp6 (state 0A)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
