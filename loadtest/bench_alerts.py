"""Alerts on a synthetic crowd, with cross-camera fusion on and off; `lfr demo`'s wall time and memory.

    python -m loadtest.bench_alerts [--cameras 4] [--seconds 60] [--seed 1]

One live run (`cluster.demo.scenario.run_demo`: real cameras, face service, tracking, Milvus,
Coordinator) gives the sightings, fused as configured. The same sightings are then fused again
with fusion switched off (every sighting its own alert), so both figures come from identical
evidence. For each: alerts, true and false alerts (precision), watchlist people alerted of
those who walked by (recall), and alerts per true person (target 1.0). Memory is the peak of
the summed resident memory of every process the run started (Ray's workers included).
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from cluster.alerts.model import Alert
from cluster.config import LfrConfig
from cluster.crowd.scoring import AlertScore, score_alerts
from cluster.crowd.truth import CrowdTruth
from cluster.demo.scenario import DEPLOYMENT_ID, DemoOptions, cameras_of, run_demo
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser, FusionKind
from cluster.fusion.topology import CameraTopology
from cluster.logging_setup import configure_logging
from cluster.processes import process_memory, running_pids
from cluster.vision.pipeline import MODEL_NAME
from loadtest.machine import describe_machine

FUSION_OFF = FusionConfig(fusion_threshold=0.9999, same_camera_window_s=0.0)
SAMPLE_S = 0.5


class ProcessMemory:
    """Samples the summed RSS of processes that did not exist when it started (the run's own)."""

    def __init__(self) -> None:
        self._before = set(running_pids()) - {os.getpid()}
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "ProcessMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            total = sum(_rss(pid) for pid in running_pids() if pid not in self._before)
            self.peak_bytes = max(self.peak_bytes, total)


def _rss(pid: int) -> int:
    """The process's resident bytes; 0 once it has gone."""
    try:
        return process_memory(pid).resident_bytes
    except OSError:
        return 0


def refuse(alerts: tuple[Alert, ...], truth: CrowdTruth, crowd_dir: Path, config: LfrConfig) -> list[Alert]:
    """The same sightings through a Fuser with fusion switched off."""
    fuser = Fuser(
        CameraTopology.from_config(cameras_of(truth, crowd_dir)),
        FUSION_OFF,
        deployment_id=DEPLOYMENT_ID,
        threshold=config.matching.similarity_threshold,
        model=MODEL_NAME,
    )
    sightings = sorted((s for alert in alerts for s in alert.sightings), key=lambda s: s.first_seen)
    raised = {}
    for sighting in sightings:
        outcome = fuser.add(sighting)
        if outcome.kind is not FusionKind.DUPLICATE:
            raised[outcome.alert.alert_id] = outcome.alert
    return list(raised.values())


def row(name: str, score: AlertScore) -> str:
    return (
        f"| {name} | {score.alerts} | {score.true_alerts} | {score.false_alerts} | {score.precision:.2f}"
        f" | {score.people_alerted}/{score.watchlist_people_seen} | {score.recall:.2f}"
        f" | {score.alerts_per_person:.2f} | {score.watchlist_visits} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging("warning")
    print(describe_machine(), flush=True)
    config = LfrConfig()
    with tempfile.TemporaryDirectory(prefix="lfr-bench-alerts-") as folder:
        workdir = Path(folder)
        started = time.monotonic()
        with ProcessMemory() as memory:
            report = run_demo(
                DemoOptions(workdir=workdir, cameras=args.cameras, seconds=args.seconds, seed=args.seed),
                config,
                lambda message: print(message, flush=True),
            )
        wall = time.monotonic() - started
        truth = CrowdTruth.load(workdir / "crowd" / "ground_truth.json")
        unfused = score_alerts(refuse(report.alerts, truth, workdir / "crowd", config), truth)
    print(f"\n{args.cameras} cameras x {args.seconds:g} s, seed {args.seed}; {report.faces_seen} faces seen")
    print(
        "| fusion | alerts | true | false | precision | people alerted | recall | alerts per true person"
        " | their visits |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(row("on", report.score))
    print(row("off", unfused))
    print(f"demo wall time {wall:.0f} s, peak memory of its processes {memory.peak_bytes / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
