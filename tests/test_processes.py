"""`cluster.processes`, the one /proc reader, on this process and on a real child: running, zombie, reaped."""

import json
import os
import subprocess
import sys
import time
from multiprocessing import shared_memory

import numpy as np
import pytest

from cluster.processes import (
    child_pids,
    command_line,
    descendant_pids,
    process_cpu_seconds,
    process_memory,
    process_running,
    running_pids,
)
from tests.waiting import scaled, wait_for

WAIT_S = 10.0


GROWTH_PROBE = """
import json, numpy as np
from cluster.processes import process_memory
before = process_memory()
held = np.ones(64 * 1024 * 1024, dtype=np.uint8)
after = process_memory()
print(json.dumps([before.resident_bytes, after.resident_bytes, after.peak_resident_bytes, after.own_bytes,
                  after.shared_bytes, held.nbytes]))
"""


def test_this_process_memory_grows_with_what_it_holds():
    """Measured in a small process of its own: in the test runner, which has held and freed gigabytes, the
    allocator may serve the block from pages already resident, and its RSS need not move."""
    probe = subprocess.run([sys.executable, "-c", GROWTH_PROBE], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    before, after, peak, own, shared, held = json.loads(probe.stdout.strip().splitlines()[-1])
    assert after - before >= 0.9 * held
    assert peak >= after >= own > 0
    assert own == after - shared
    assert process_memory(os.getpid()).resident_bytes > 0


def test_shared_memory_it_touches_counts_as_shared_not_as_its_own():
    size = 32 * 1024 * 1024
    block = shared_memory.SharedMemory(create=True, size=size)
    try:
        before = process_memory()
        pages = np.ndarray((size,), dtype=np.uint8, buffer=block.buf)
        pages[:] = 1
        after = process_memory()
        del pages
    finally:
        block.close()
        block.unlink()
    assert after.shared_bytes - before.shared_bytes >= 0.9 * size
    assert abs(after.own_bytes - before.own_bytes) < 0.5 * size


def test_a_child_is_seen_running_then_a_zombie_is_not_running_then_it_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert process_running(child.pid)
        # Between fork and exec (or while exec swaps the memory map) /proc shows no command line yet.
        wait_for(lambda: command_line(child.pid), scaled(WAIT_S), "the child's command line after exec")
        assert command_line(child.pid) == [sys.executable, "-c", "import sys; sys.stdin.read()"]
        assert child.pid in child_pids(os.getpid()) and child.pid in running_pids()
        assert process_memory(child.pid).resident_bytes > 0
        child.stdin.close()
        deadline = time.monotonic() + WAIT_S
        while process_running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not process_running(child.pid), "an exited child that is not reaped yet is a zombie, not running"
    finally:
        if not child.stdin.closed:
            child.stdin.close()
        child.wait(WAIT_S)
    assert not process_running(child.pid) and command_line(child.pid) == [] and child_pids(child.pid) == []
    with pytest.raises(ProcessLookupError, match=f"no process {child.pid}"):
        process_memory(child.pid)


BUSY_CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
started = time.process_time()
while time.process_time() - started < 0.5:
    pass
print(grandchild.pid, time.process_time(), flush=True)
sys.stdin.read()
grandchild.stdin.close()
grandchild.wait()
"""


def test_cpu_seconds_are_what_the_process_itself_counted_and_descendants_reach_grandchildren():
    """A child burns half a second of CPU and says how much it used; /proc must say the same (to a tick or two)."""
    child = subprocess.Popen(
        [sys.executable, "-c", BUSY_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        grandchild, own_count = child.stdout.readline().split()
        used = process_cpu_seconds(child.pid)
        assert float(own_count) - 0.05 <= used <= float(own_count) + 0.1
        assert set(descendant_pids(os.getpid())) >= {child.pid, int(grandchild)}
        assert descendant_pids(child.pid) == [int(grandchild)]
    finally:
        child.stdin.close()
        child.wait(WAIT_S)
        child.stdout.close()
    assert process_cpu_seconds() > 0
    with pytest.raises(ProcessLookupError, match=f"no process {child.pid}"):
        process_cpu_seconds(child.pid)
    assert descendant_pids(child.pid) == []
