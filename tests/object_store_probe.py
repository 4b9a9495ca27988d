"""Fill a small Ray object store past its size, as `lfr` starts Ray, and report where the objects went.

Run as `python -m tests.object_store_probe`: it starts a local cluster through `start_ray` with
an 80 MiB object store, puts twice that in 10 MiB frames while holding every reference, and
prints one JSON object: how many puts succeeded (or the error that stopped them), which files
the raylet has mapped (a fallback allocation is a mapped file, unlinked at once, so only the
mappings show it), what Ray spilled, and whether the run's object directory is gone after
`stop_ray`. A process of its own, because the test session is already connected to a cluster.
"""

import json
import sys
from pathlib import Path

import numpy as np
import ray
from ray._private import ray_constants
from ray.exceptions import ObjectStoreFullError, OutOfDiskError

from cluster.application import ray_runtime

STORE_BYTES = 80 * 1024 * 1024
FRAME_BYTES = 10 * 1024 * 1024
FRAMES = 16
LARGE_FILE_BYTES = FRAME_BYTES // 2


def _mapped_files(pid: int) -> list[str]:
    """Files the process has memory-mapped, with ` (deleted)` on those already unlinked."""
    files = set()
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                files.add(fields[5].strip())
    return sorted(files)


def main() -> None:
    ray_runtime.start_ray(num_cpus=1, object_store_memory=STORE_BYTES)
    memory = ray_runtime._object_memory
    assert memory is not None, "a local cluster keeps its objects in a directory of its own"
    node = ray._private.worker._global_node
    session = Path(node.get_session_dir_path())
    refs, error = [], None
    for frame in range(FRAMES):
        try:
            refs.append(ray.put(np.full(FRAME_BYTES, frame, dtype=np.uint8)))
        except (ObjectStoreFullError, OutOfDiskError) as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            break
    readable = all(int(ray.get(ref)[-1]) == frame for frame, ref in enumerate(refs))
    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    mapped = _mapped_files(raylet)
    on_disk = [str(path) for path in session.rglob("*") if path.is_file() and path.stat().st_size >= LARGE_FILE_BYTES]
    spilled = [str(path) for path in session.glob("ray_spilled_objects*")]
    ray_runtime.stop_ray()
    json.dump(
        {
            "object_dir": str(memory.directory),
            "puts": len(refs),
            "put_bytes": len(refs) * FRAME_BYTES,
            "store_bytes": STORE_BYTES,
            "error": error,
            "readable": readable,
            "mapped": mapped,
            "large_files_in_session": on_disk,
            "spilled": spilled,
            "object_dir_left": memory.directory.exists(),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
