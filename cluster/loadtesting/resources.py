"""CPU and memory per process role, read from /proc (`cluster.processes`) at a step's start and end.

The load test starts its own Ray cluster, so every process of the run is this process (the driver)
or one of its descendants: Ray's workers carry their actor's class in their process title
(`ray::CameraActor.run`), which names their role. Processes that end during a step take their CPU
time with them; those that start during it count from zero.
"""

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.loadtesting.measurements import RoleUsage
from cluster.processes import ProcessMemory, command_line, descendant_pids, process_cpu_seconds, process_memory

DRIVER = "driver"
ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("camera actors", ("ray::CameraActor",)),
    ("forwarders + matching", ("ray::StreamForwarder",)),
    ("face service replicas", ("ray::ServeReplica:",)),
    ("coordinator", ("ray::Coordinator",)),
    ("rtsp replay (load)", ("gst_rtsp_serve.py",)),
    ("milvus", ("milvus",)),
    ("ray system", ("raylet", "gcs_server", "ray::", "ray/", "/ray")),
)
"""Role names and what their command lines contain, first match wins; `other` for the rest."""
OTHER = "other"


def role_of(command: Sequence[str]) -> str:
    """The role of a process by its command line (Ray's process title for a worker)."""
    line = " ".join(command)
    return next((role for role, marks in ROLES if any(mark in line for mark in marks)), OTHER)


@dataclass(frozen=True)
class ProcessSample:
    role: str
    cpu_seconds: float
    memory: ProcessMemory


def sample_processes(root: int | None = None) -> dict[int, ProcessSample]:
    """Each process of the run now: `root` (this process when None) as the driver, and its descendants."""
    root = os.getpid() if root is None else root
    found: dict[int, ProcessSample] = {}
    for pid in (root, *descendant_pids(root)):
        try:
            role = DRIVER if pid == root else role_of(command_line(pid))
            found[pid] = ProcessSample(role, process_cpu_seconds(pid), process_memory(pid))
        except ProcessLookupError:
            continue
    return found


def usage_by_role(
    before: dict[int, ProcessSample], after: dict[int, ProcessSample], seconds: float
) -> tuple[RoleUsage, ...]:
    """CPU per second between the samples and memory at `after`, summed per role, busiest role first."""
    if seconds <= 0:
        raise ValueError(f"seconds between samples must be above 0, got {seconds}")
    cpu: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    resident: dict[str, int] = defaultdict(int)
    own: dict[str, int] = defaultdict(int)
    for pid, sample in after.items():
        earlier = before.get(pid)
        start = earlier.cpu_seconds if earlier is not None and earlier.role == sample.role else 0.0
        cpu[sample.role] += max(0.0, sample.cpu_seconds - start)
        count[sample.role] += 1
        resident[sample.role] += sample.memory.resident_bytes
        own[sample.role] += sample.memory.own_bytes
    usages = [
        RoleUsage(
            role=role,
            processes=count[role],
            cpu_cores=cpu[role] / seconds,
            resident_bytes=resident[role],
            own_bytes=max(0, own[role]),
        )
        for role in count
    ]
    return tuple(sorted(usages, key=lambda usage: (-usage.cpu_cores, usage.role)))
