"""The embedded milvus-lite server: one per data directory, found again by later processes, never opened twice."""

import json
import subprocess
import sys

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


def test_a_stale_record_starts_a_new_server_on_the_same_port_and_stop_ends_it(tmp_path):
    """server.json left by a server that died (pid gone): a new server starts, on the recorded port when free."""
    embedded = _embedded(tmp_path)
    first = embedded.ensure_running()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    embedded.state_path.write_text(json.dumps({"pid": gone.pid, "port": first.port, "started_at": 0.0}))
    assert embedded.running() is None
    try:
        with pytest.raises(EmbeddedServerError, match="open in another process"):
            embedded.ensure_running()
    finally:
        embedded.state_path.write_text(json.dumps({"pid": first.pid, "port": first.port, "started_at": 0.0}))
        assert embedded.stop()
    assert not process_running(first.pid)
    assert embedded.running() is None
    embedded.state_path.write_text(json.dumps({"pid": gone.pid, "port": first.port, "started_at": 0.0}))
    second = embedded.ensure_running()
    try:
        assert second.pid != first.pid and second.port == first.port
    finally:
        assert embedded.stop()
    assert not process_running(second.pid)
    assert not embedded.stop(), "nothing left to stop"
