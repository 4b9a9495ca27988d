"""What Linux's /proc says about a process: whether it runs, its command line, its children, its memory and CPU time.

The one place that reads /proc, so that its formats (the command name in parentheses inside
`stat`, kilobytes in `status`, NUL-separated `cmdline`) are parsed once. Each function raises
nothing for a process that has gone: it is simply not running, and has no children.
"""

import os
from dataclasses import dataclass

ZOMBIE = "Z"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""The unit of the CPU times in /proc/PID/stat, per second."""
"""The state letter of a process that has exited and waits for its parent to reap it."""


@dataclass(frozen=True)
class ProcessMemory:
    """A process's memory in bytes, from /proc/PID/status.

    resident_bytes: VmRSS, everything it holds in RAM, the shared memory it has mapped included.
    shared_bytes: RssShmem, the shared-memory part of that (in a Ray worker, mostly pages of the
        object store that belong to the store, not to the worker).
    peak_resident_bytes: VmHWM, the most it has held in RAM at once.
    A kernel thread has no user memory: all three are 0.
    """

    resident_bytes: int
    shared_bytes: int
    peak_resident_bytes: int

    @property
    def own_bytes(self) -> int:
        """Resident memory that is the process's own: resident less shared."""
        return self.resident_bytes - self.shared_bytes


def process_memory(pid: int | None = None) -> ProcessMemory:
    """The memory of process `pid` (this process when None); ProcessLookupError when it has gone."""
    path = f"/proc/{'self' if pid is None else pid}/status"
    try:
        with open(path) as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except FileNotFoundError as exc:
        raise ProcessLookupError(f"no process {pid}: {path} does not exist (it exited, or this is not Linux)") from exc

    def kilobytes(name: str) -> int:
        value = fields.get(name)
        return int(value.split()[0]) * 1024 if value else 0

    return ProcessMemory(kilobytes("VmRSS"), kilobytes("RssShmem"), kilobytes("VmHWM"))


def process_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds process `pid` (this process when None) has used so far, user and system, all its threads.

    ProcessLookupError when it has gone.
    """
    path = f"/proc/{'self' if pid is None else pid}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError as exc:
        raise ProcessLookupError(f"no process {pid}: {path} does not exist (it exited, or this is not Linux)") from exc
    # After the command name: state is field 3 of stat(5), utime and stime fields 14 and 15, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, which has exited but is not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != ZOMBIE
    except FileNotFoundError:
        return False


def command_line(pid: int) -> list[str]:
    """The process's arguments, its program first; empty when it has gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return [part.decode("utf-8", "replace") for part in cmdline.read().split(b"\0") if part]
    except FileNotFoundError:
        return []


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (of each of its threads); empty when it has gone."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                children.extend(int(value) for value in listing.read().split())
    except FileNotFoundError:
        return []
    return children


def descendant_pids(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...); empty when it has gone or has none."""
    found: list[int] = []
    pending = child_pids(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(child_pids(child))
    return found


def running_pids() -> list[int]:
    """Every process id on the machine now (of this PID namespace)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]
