"""A real Prometheus (Debian's `prometheus` binary) for the tests, on loopback, with a generated config.

Its config comes from `cluster.observability.scrape`, the one an operator is given, so the tests
check the scrape and the `ray_` relabel as they run in production; its storage is a temp dir,
and it stops (and is waited for) at the end. Queries go through its HTTP API.
"""

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from cluster.observability.scrape import ScrapeTargets, prometheus_config
from tests.camera_sources import closed_port
from tests.waiting import scaled

PROMETHEUS = shutil.which("prometheus")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class PrometheusStartError(RuntimeError):
    """Prometheus did not become ready; the message carries the end of its log."""


@dataclass(frozen=True)
class Series:
    """One series of a query's answer: its labels and its (time, value) samples."""

    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    process: subprocess.Popen
    workdir: Path

    @classmethod
    def start(cls, targets: ScrapeTargets, workdir: Path) -> "PrometheusServer":
        if PROMETHEUS is None:
            raise PrometheusStartError("prometheus is not installed: apt-get install -y prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(targets)))
        port = closed_port()
        command = [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ]  # fmt: skip
        with open(workdir / "prometheus.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = cls(f"http://127.0.0.1:{port}", process, workdir)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + scaled(START_TIMEOUT_S)
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusStartError(f"prometheus did not become ready; its log ends:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def _api(self, path: str, params: dict[str, str]) -> dict:
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        if body.get("status") != "success":
            raise AssertionError(f"prometheus refused {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        """`promql` evaluated now, or at `at` (Unix seconds)."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        data = self._api("query", params)
        return [Series(r["metric"], ((float(r["value"][0]), float(r["value"][1])),)) for r in data["result"]]

    def query_range(self, promql: str, start: float, end: float, step_s: float = 1.0) -> list[Series]:
        """`promql` evaluated every `step_s` from `start` to `end` (Unix seconds)."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step_s)}
        data = self._api("query_range", params)
        return [Series(r["metric"], tuple((float(t), float(v)) for t, v in r["values"])) for r in data["result"]]

    def targets_health(self) -> dict[str, list[str]]:
        """Each job's targets' health ("up", "down", "unknown")."""
        health: dict[str, list[str]] = {}
        for target in self._api("targets", {"state": "active"})["activeTargets"]:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
        return health

    def rule_groups(self) -> list[dict]:
        return self._api("rules", {})["groups"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=scaled(STOP_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
