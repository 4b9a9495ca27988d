"""Ray keeps frames and embeddings in memory only: no spilling, no fallback files on disk, the directory wiped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.application.object_memory import MEMORY_FILESYSTEMS, ObjectMemory, ObjectMemoryError, filesystem_type
from cluster.application.ray_system_config import SYSTEM_CONFIG
from tests.waiting import scaled

REPO = Path(__file__).resolve().parent.parent
PROBE_TIMEOUT_S = 180.0


def test_the_object_directory_is_private_on_a_tmpfs_and_wiped():
    memory = ObjectMemory.create()
    try:
        assert filesystem_type(memory.directory) in MEMORY_FILESYSTEMS
        assert memory.directory.stat().st_mode & 0o777 == 0o700
        options = memory.init_options()
        assert options["_plasma_directory"] == options["object_spilling_directory"] == str(memory.directory)
        assert options["_system_config"] == SYSTEM_CONFIG
        assert options["_system_config"]["automatic_object_spilling_enabled"] is False
    finally:
        memory.wipe()
    assert not memory.directory.exists()


def test_a_directory_on_disk_is_refused_with_what_to_do():
    assert filesystem_type(REPO) not in MEMORY_FILESYSTEMS, "the repository is expected on a disk"
    with pytest.raises(ObjectMemoryError, match=r"not a tmpfs: Ray would keep camera frames .* mount a tmpfs"):
        ObjectMemory.create(base=REPO)


@pytest.mark.slow
def test_under_memory_pressure_no_object_reaches_disk():
    """Twice the object store's size put while every reference is held: all of it stays in the run's tmpfs."""
    probe = subprocess.run(
        [sys.executable, "-m", "tests.object_store_probe"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=scaled(PROBE_TIMEOUT_S),
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    object_dir = result["object_dir"]
    if result["error"] is None:
        assert result["put_bytes"] > result["store_bytes"] and result["readable"], result
    else:
        assert result["error"].startswith(("ObjectStoreFullError", "OutOfDiskError")), result["error"]
    assert result["spilled"] == [], "Ray spilled objects to the session directory"
    assert result["large_files_in_session"] == [], "frames were written under Ray's session directory"
    plasma = [path for path in result["mapped"] if "/plasma" in path]
    assert len(plasma) > 1, "the overflow past the store's size is fallback-allocated (mapped files)"
    assert all(path.startswith(object_dir + "/") for path in plasma), plasma
    assert not result["object_dir_left"], "the run's object directory is wiped when Ray stops"
