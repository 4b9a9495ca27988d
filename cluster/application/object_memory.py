"""Where Ray may keep objects (camera frames, face crops, embeddings): in memory only, never on disk.

Left to itself Ray writes objects to disk in three ways: it spills objects to
`<session>/ray_spilled_objects_*` when its object store is full; when spilling is off or cannot
free room it "fallback-allocates" new objects as memory-mapped files in the session directory
(unlinked at once, so a listing of the directory shows nothing while the frames sit on disk);
and when /dev/shm is smaller than the object store it puts the whole store in the temp dir.
Any of them would leave the frames and embeddings of people who matched nobody on disk.

So a run that starts Ray creates one directory of its own on a tmpfs (`/dev/shm`), mode 0700,
and gives it to Ray as the plasma directory and the spilling (hence fallback) directory, with
automatic spilling turned off. Under memory pressure a put then waits for room, takes overflow
room in that tmpfs (memory, bounded by its size), and beyond that fails with
`ObjectStoreFullError`/`OutOfDiskError`: back-pressure and failed puts, never a write to disk.
The directory is removed when the run ends.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from cluster.application.ray_system_config import SYSTEM_CONFIG

log = structlog.get_logger(__name__)

MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")
DEFAULT_BASE = Path("/dev/shm")
DIRECTORY_PREFIX = "lfr-ray-objects-"


class ObjectMemoryError(RuntimeError):
    """No memory-only file system to keep Ray's objects in; the message says what to do."""


def filesystem_type(path: Path) -> str:
    """The type (tmpfs, ext4, ...) of the file system holding `path`: its longest mount point in /proc/self/mounts."""
    resolved = str(path.resolve())
    best, kind = "", ""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            mount_point = fields[1].replace("\\040", " ")
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fields[2]
    return kind


@dataclass(frozen=True)
class ObjectMemory:
    """A 0700 directory on a tmpfs that holds all of one Ray cluster's objects; `wipe` removes it."""

    directory: Path

    @classmethod
    def create(cls, base: Path = DEFAULT_BASE) -> "ObjectMemory":
        """A new directory under `base`, which must be a memory-only file system."""
        kind = filesystem_type(base) if base.is_dir() else ""
        if kind not in MEMORY_FILESYSTEMS:
            raise ObjectMemoryError(
                f"{base} is {'not there' if not kind else f'a {kind} file system'}, not a tmpfs: Ray would keep camera"
                f" frames and embeddings on disk; mount a tmpfs there (Docker: --shm-size=2g) and start again"
            )
        directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX, dir=base))
        os.chmod(directory, 0o700)
        log.info("ray_object_memory_created", directory=str(directory), filesystem=kind)
        return cls(directory)

    def init_options(self) -> dict[str, Any]:
        """Keyword arguments of `ray.init` for a local cluster that keeps its objects here."""
        return {
            "_plasma_directory": str(self.directory),
            "object_spilling_directory": str(self.directory),
            "_system_config": dict(SYSTEM_CONFIG),
        }

    def start_arguments(self) -> list[str]:
        """Arguments of `ray start --head` for a head node that keeps its objects here."""
        return [*self.join_arguments(), "--system-config", json.dumps(SYSTEM_CONFIG)]

    def join_arguments(self) -> list[str]:
        """Arguments of `ray start --address` for a node that joins a cluster and keeps its objects here.

        The system config (spilling off) is the head's: Ray refuses it on a joining node and hands the
        head's to every node that joins.
        """
        return ["--plasma-directory", str(self.directory), "--object-spilling-directory", str(self.directory)]

    def wipe(self) -> None:
        """Remove the directory and whatever Ray left in it."""
        shutil.rmtree(self.directory, ignore_errors=True)
        log.info("ray_object_memory_wiped", directory=str(self.directory))
