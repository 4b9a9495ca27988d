"""One local Ray cluster for the whole test session, started as an operator starts one: `ray start --head`.

Starting Ray takes 10-15 s on two cores, and clusters started back to back collide on Ray's fixed
ports (its dashboard agent's 52365, its client server's 10001) while the previous cluster's
processes exit; on a slow machine the raylet then dies waiting for its agent (Ray issue 65983).
So the tests share one cluster, started once with every port free (`ray.init` cannot choose the
agent's port; `ray start` can), in a temp dir of its own so that `ray.init(address="auto")`
elsewhere on the machine never finds it. `ray start --block` stops every process it started when
it gets SIGTERM, and they die with it if it is killed, so stopping it leaves nothing behind.

Its metrics agent serves the cluster's metrics on a free port of its own (`metrics_port`), reported
every METRICS_REPORT_MS so that a short run's metrics reach a scrape within seconds.

The cluster keeps its objects in memory only, as the product's own clusters do
(`cluster/application/object_memory.py`): a tmpfs directory of its own, no spilling, wiped at the end.

A test whose `lfr` process starts a cluster of its own, as the product does (`ray.init`, on the
agent's fixed port), waits for that port to be free before and after (`wait_for_agent_port`).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cluster.application.object_memory import ObjectMemory
from cluster.processes import child_pids
from tests.camera_sources import closed_port
from tests.waiting import scaled

RAY = Path(sys.executable).parent / "ray"
START_ATTEMPTS = 3
START_TIMEOUT_S = 60.0
"""On an idle machine; stretched by load (tests/waiting.py)."""
STOP_TIMEOUT_S = 60.0
"""On an idle machine; stretched by load. `ray start` stops its processes within seconds (drain off, below)."""
DRAIN_ON_STOP_S = "0"
"""RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S of the tests' `ray start`: on SIGTERM Ray first marks the node draining
and waits up to 30 s (its default) for the raylet to let go of its leases, so that a Kubernetes pod's Serve
proxy stops taking traffic before its replicas go. A test's cluster has no traffic to move, its head never
finishes draining, and every stop sat out the whole 30 s (the two-node test's teardown, the session's end)."""
AGENT_PORT = 52365
"""Ray's DEFAULT_DASHBOARD_AGENT_LISTEN_PORT, where every cluster started by `ray.init` puts its dashboard agent."""
AGENT_PORT_WAIT_S = 30.0
METRICS_REPORT_MS = 1000
"""How often workers report their metrics to the agent (Ray's default: every 10 s)."""


class RayClusterStartError(RuntimeError):
    """`ray start` failed on every attempt; the message carries the end of its log."""


@dataclass(frozen=True)
class LocalRayCluster:
    """A running `ray start --head --block` process, the GCS address to join, its temp dir, object memory and
    the port where its metrics agent serves Prometheus."""

    address: str
    temp_dir: Path
    process: subprocess.Popen
    memory: ObjectMemory
    metrics_port: int

    @classmethod
    def start(
        cls, num_cpus: int, labels: dict[str, str] | None = None, settings: dict[str, str] | None = None
    ) -> "LocalRayCluster":
        """Start a cluster with `num_cpus` logical CPUs (its head node carrying `labels`, its GCS and raylet the
        Ray system `settings`, e.g. {"health_check_period_ms": "1000"}), trying again when a start fails on a
        loaded machine."""
        failures = []
        for _ in range(START_ATTEMPTS):
            temp_dir = Path(tempfile.mkdtemp(prefix="ray-tests-"))
            memory = ObjectMemory.create()
            metrics_port = closed_port()
            process = _launch(
                [*_head_arguments(num_cpus, temp_dir, labels, metrics_port), *memory.start_arguments()],
                temp_dir,
                settings=settings,
            )
            address = _wait_for_address(process, temp_dir)
            if address is not None:
                return cls(address, temp_dir, process, memory, metrics_port)
            _stop(process)
            failures.append(_log_tail(temp_dir))
            shutil.rmtree(temp_dir, ignore_errors=True)
            memory.wipe()
        raise RayClusterStartError(
            f"`ray start` failed {START_ATTEMPTS} times; if the machine is busy, run the tests when it is quieter."
            f" Its last log ends:\n{failures[-1]}"
        )

    def stop(self) -> None:
        """Stop every process of the cluster and wait for them to exit."""
        _stop(self.process)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.memory.wipe()


@dataclass(frozen=True)
class RayWorkerNode:
    """A second node joined to a running cluster (`ray start --address ... --block`), in a process group of its own.

    `kill()` ends the whole node at once (SIGKILL to `ray start` and every process under it: the
    raylet, its object store and every worker process on it), as a machine that loses power would.
    """

    temp_dir: Path
    process: subprocess.Popen
    memory: ObjectMemory

    @classmethod
    def join(cls, address: str, num_cpus: int, labels: dict[str, str]) -> "RayWorkerNode":
        temp_dir = Path(tempfile.mkdtemp(prefix="ray-tests-node-"))
        memory = ObjectMemory.create()
        command = [
            str(RAY), "start", "--address", address, "--block", "--disable-usage-stats",
            "--num-cpus", str(num_cpus), "--labels", json.dumps(labels), "--dashboard-agent-listen-port", "0",
        ]  # fmt: skip
        return cls(temp_dir, _launch([*command, *memory.join_arguments()], temp_dir, new_session=True), memory)

    def kill(self) -> None:
        """End every process of the node at once, without letting it drain: all are stopped first, then killed,
        so none of them notices the others going and reacts."""
        tree = _descendants(self.process.pid)
        for pid in tree:
            _signal(pid, signal.SIGSTOP)
        for pid in tree:
            _signal(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            _stop(self.process)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.memory.wipe()

    def log_tail(self) -> str:
        return _log_tail(self.temp_dir)


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        waiting.extend(child_pids(current))
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _head_arguments(num_cpus: int, temp_dir: Path, labels: dict[str, str] | None, metrics_port: int) -> list[str]:
    return [
        str(RAY), "start", "--head", "--block", "--disable-usage-stats", "--include-dashboard", "false",
        "--num-cpus", str(num_cpus), "--temp-dir", str(temp_dir),
        "--port", "0", "--dashboard-port", "0", "--dashboard-agent-listen-port", "0",
        "--ray-client-server-port", str(closed_port()), "--metrics-export-port", str(metrics_port),
        *(["--labels", json.dumps(labels)] if labels else []),
    ]  # fmt: skip


def _launch(
    command: list[str], temp_dir: Path, new_session: bool = False, settings: dict[str, str] | None = None
) -> subprocess.Popen:
    # Token authentication follows whether ~/.ray holds a token; drivers in tests join without one.
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_metrics_report_interval_ms": str(METRICS_REPORT_MS),
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": DRAIN_ON_STOP_S,
        **{f"RAY_{name}": value for name, value in (settings or {}).items()},
    }
    with open(temp_dir / "ray-start.log", "wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=new_session,
        )


def _wait_for_address(process: subprocess.Popen, temp_dir: Path) -> str | None:
    """The GCS address `ray start` writes once the cluster is up; None if it exited or took too long."""
    address_file = temp_dir / "ray_current_cluster"
    deadline = time.monotonic() + scaled(START_TIMEOUT_S)
    while process.poll() is None and time.monotonic() < deadline:
        if address_file.is_file() and (address := address_file.read_text().strip()):
            return address
        time.sleep(0.2)
    return None


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=scaled(STOP_TIMEOUT_S))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _log_tail(temp_dir: Path) -> str:
    log = temp_dir / "ray-start.log"
    return log.read_text(errors="replace")[-3000:] if log.is_file() else "(no log)"


def agent_port_free() -> bool:
    """Whether a new cluster's dashboard agent could listen on AGENT_PORT now (binding as its aiohttp server does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", AGENT_PORT))
        except OSError:
            return False
        return True


def wait_for_agent_port(timeout_s: float = AGENT_PORT_WAIT_S) -> bool:
    """Wait until an earlier cluster's agent has let go of AGENT_PORT; False if it still holds it at the deadline.

    Not a failure then: a developer's own cluster may hold the port for good, and Ray then runs the
    new agent without its HTTP server, a few seconds later.
    """
    deadline = time.monotonic() + scaled(timeout_s)
    while not agent_port_free():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
