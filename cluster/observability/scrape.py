"""The Prometheus configuration that scrapes lfr-cluster: the control room's /metrics and every Ray node.

Ray's metrics agent serves each node's metrics on its export port (`ray start
--metrics-export-port`) with a `ray_` prefix: `ray_lfr_camera_state_info`. The scrape of the Ray
nodes strips it, so rules and dashboards name one metric the same whichever side exported it.
Ray's own series (`ray_tasks`, `ray_node_*`) keep their prefix.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONTROL_ROOM_JOB = "lfr-control-room"
RAY_JOB = "lfr-ray"
RAY_PREFIX_RELABEL = {
    "source_labels": ["__name__"],
    "regex": "ray_(lfr_.*)",
    "target_label": "__name__",
    "replacement": "$1",
}
"""`ray_lfr_x` becomes `lfr_x` (Prometheus anchors the regex at both ends)."""


@dataclass(frozen=True)
class ScrapeTargets:
    """Where to scrape: `host:port` of each control room (`lfr serve`) and of each Ray node's metrics export port."""

    control_rooms: tuple[str, ...]
    ray_nodes: tuple[str, ...]
    interval_s: float = 15.0
    rule_files: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"interval_s must be above 0 seconds, got {self.interval_s}")
        for target in (*self.control_rooms, *self.ray_nodes):
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"scrape target {target!r} is not HOST:PORT")


def prometheus_config(targets: ScrapeTargets) -> dict:
    """The whole `prometheus.yml`, as the dict to dump as YAML."""
    interval = _duration(targets.interval_s)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in targets.rule_files],
        "scrape_configs": [
            _job(CONTROL_ROOM_JOB, targets.control_rooms),
            {**_job(RAY_JOB, targets.ray_nodes), "metric_relabel_configs": [dict(RAY_PREFIX_RELABEL)]},
        ],
    }


def _job(name: str, hosts: Sequence[str]) -> dict:
    return {"job_name": name, "metrics_path": "/metrics", "static_configs": [{"targets": list(hosts)}]}


def _duration(seconds: float) -> str:
    """Prometheus's duration syntax: whole milliseconds."""
    return f"{round(seconds * 1000)}ms"
