"""Grafana dashboards as code (grafana-foundation-sdk): cameras, face service, matching and alerts, control room.

Each dashboard is a list of panels, each panel a few PromQL queries over the metrics listed in
`actors/metrics.py` and `cluster/api/metrics.py` (with the Ray prefix stripped by the scrape,
`cluster.observability.scrape`). The queries live here as data, so the tests run every one
against a real Prometheus that watched a real run, and `lfr dashboards render` writes the JSON a
Grafana imports. A counter that only grows on a fault (errors, reconnects, drops) has no series
until the first one; its query falls back to `0 * (the activity it belongs to)`, so a quiet
camera shows 0 while a camera that sends nothing shows no data.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = dashboard_model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
TAG = "lfr-cluster"
RATE_WINDOW = "1m"
PANEL_HEIGHT = 8
PANEL_WIDTH = 12
REF_IDS = "ABCDEFGH"
"""A panel's queries are named A, B, ...: at most this many."""


class PanelKind(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named in the legend."""

    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: PanelKind = PanelKind.TIMESERIES

    def __post_init__(self) -> None:
        if not 1 <= len(self.queries) <= len(REF_IDS):
            raise ValueError(f"panel {self.title!r} has {len(self.queries)} queries: give 1 to {len(REF_IDS)}")


@dataclass(frozen=True)
class DashboardSpec:
    """One dashboard: its uid (stable, so a push replaces the dashboard it pushed before) and its panels."""

    uid: str
    title: str
    description: str
    panels: tuple[PanelSpec, ...]


def _rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}[{RATE_WINDOW}]))"


def _quantile(q: float, histogram: str, by: str = "") -> str:
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[{RATE_WINDOW}])))"


def _fault(metric: str, activity: str, by: str = "") -> str:
    """The rate of a counter that only exists after its first fault, or 0 while `activity` goes on."""
    return f"{_rate(metric, by)} or 0 * {_rate(activity, by)}"


CAMERAS = DashboardSpec(
    "lfr-cameras",
    "lfr / Cameras",
    "Each camera's state, frames in and out, drops, reconnects and capture-to-result latency.",
    (
        PanelSpec(
            "Streaming",
            "1 while the camera streams; 0 when it connects, reconnects, failed or stopped.",
            "none",
            (Query('max by (camera_id) (lfr_camera_state_info{state="streaming"})', "{{camera_id}}"),),
        ),
        PanelSpec(
            "Frames in and out",
            "Decoded frames per second (fps in) and frames sampled for the face service (fps out).",
            "fps",
            (
                Query(_rate("lfr_camera_decoded_frames_total", "camera_id"), "{{camera_id}} in"),
                Query(_rate("lfr_camera_sampled_frames_total", "camera_id"), "{{camera_id}} out"),
            ),
        ),
        PanelSpec(
            "Dropped frames",
            "Frames dropped per second, in the camera's queue and by the forwarder (face service short of capacity).",
            "fps",
            (
                Query(
                    _fault("lfr_camera_dropped_frames_total", "lfr_camera_sampled_frames_total", "camera_id"),
                    "{{camera_id}} at camera",
                ),
                Query(
                    _fault("lfr_forward_dropped_frames_total", "lfr_camera_sampled_frames_total", "camera_id"),
                    "{{camera_id}} forwarding",
                ),
            ),
        ),
        PanelSpec(
            "Reconnects and failures",
            "Streams that came back, and failed connections or lost streams, per second.",
            "ops",
            (
                Query(
                    _fault("lfr_camera_reconnects_total", "lfr_camera_decoded_frames_total", "camera_id"),
                    "{{camera_id}} reconnects",
                ),
                Query(
                    _fault("lfr_camera_failures_total", "lfr_camera_decoded_frames_total", "camera_id"),
                    "{{camera_id}} failures",
                ),
            ),
        ),
        PanelSpec(
            "Queued and in flight",
            "Sampled frames waiting in the camera's queue, and requests open at the face service.",
            "none",
            (
                Query("max by (camera_id) (lfr_camera_queue_frames)", "{{camera_id}} queued"),
                Query("max by (camera_id) (lfr_forward_in_flight_requests)", "{{camera_id}} in flight"),
            ),
        ),
        PanelSpec(
            "Capture to result",
            "Seconds from a frame's capture to its face service result (95th and 50th percentile).",
            "s",
            (
                Query(_quantile(0.95, "lfr_frame_latency_seconds", "camera_id"), "{{camera_id}} p95"),
                Query(_quantile(0.5, "lfr_frame_latency_seconds", "camera_id"), "{{camera_id}} p50"),
            ),
        ),
    ),
)

FACE_SERVICE = DashboardSpec(
    "lfr-face-service",
    "lfr / Face service",
    "Replicas, queue, batch size, stage latencies and throughput of the face service.",
    (
        PanelSpec(
            "Replicas",
            "Face service replicas reporting.",
            "none",
            (Query("sum(lfr_face_replicas)", "replicas"),),
            PanelKind.STAT,
        ),
        PanelSpec(
            "Queue",
            "Frame requests the replicas hold, batching or running.",
            "none",
            (Query("sum(lfr_face_queue_requests)", "requests"),),
        ),
        PanelSpec(
            "Frames per model call",
            "Batch size: 95th and 50th percentile.",
            "none",
            (
                Query(_quantile(0.95, "lfr_face_batch_frames"), "p95"),
                Query(_quantile(0.5, "lfr_face_batch_frames"), "p50"),
            ),
        ),
        PanelSpec(
            "Stage latency (p95)",
            "Seconds a frame spends in each stage.",
            "s",
            (Query(_quantile(0.95, "lfr_face_stage_seconds", "stage"), "{{stage}}"),),
        ),
        PanelSpec(
            "Frames and faces",
            "Frames processed and faces found per second, over every camera.",
            "ops",
            (
                Query(_rate("lfr_face_frames_total"), "frames"),
                Query(_rate("lfr_face_detections_total"), "faces"),
            ),
        ),
        PanelSpec(
            "Errors",
            "Frames answered with an error, and failed or timed-out requests, per second.",
            "ops",
            (
                Query(_fault("lfr_face_frame_errors_total", "lfr_face_frames_total"), "frame errors"),
                Query(_fault("lfr_forward_failed_requests_total", "lfr_face_frames_total"), "failed requests"),
            ),
        ),
    ),
)

MATCHING_AND_ALERTS = DashboardSpec(
    "lfr-matching-alerts",
    "lfr / Matching and alerts",
    "Tracklets decided, watchlist search latency and errors, alerts raised, merged, latency and adjudication.",
    (
        PanelSpec(
            "Tracklets by outcome",
            "Tracklets started, searched, matched and deleted without a match, per second.",
            "ops",
            (Query(_rate("lfr_tracklets_total", "outcome"), "{{outcome}}"),),
        ),
        PanelSpec(
            "Watchlist search",
            "Seconds one watchlist search took (95th percentile), by camera.",
            "s",
            (Query(_quantile(0.95, "lfr_gallery_search_seconds", "camera_id"), "{{camera_id}}"),),
        ),
        PanelSpec(
            "Search and second-model errors",
            "Failed watchlist searches and second face model calls per second (retried later).",
            "ops",
            (
                Query(_fault("lfr_gallery_search_errors_total", "lfr_gallery_search_seconds_count"), "search"),
                Query(_fault("lfr_second_stage_errors_total", "lfr_gallery_search_seconds_count"), "second model"),
            ),
        ),
        PanelSpec(
            "Alerts raised and merged",
            "Alerts raised, sightings merged into an alert already raised, and dead letters, since the Coordinator"
            " started: counts, not rates, since a few alerts an hour make a rate of a counter born at 1 read 0.",
            "none",
            (
                Query("sum(lfr_alerts_raised_total)", "raised"),
                Query("sum(lfr_alerts_merged_total) or 0 * sum(lfr_alerts_raised_total)", "merged"),
                Query("sum(lfr_alert_dead_letters_total) or 0 * sum(lfr_alerts_raised_total)", "dead letters"),
            ),
        ),
        PanelSpec(
            "Alert latency",
            "Seconds from a sighting's last face to its stored alert: the mean over every alert so far.",
            "s",
            (Query("sum(lfr_alert_latency_seconds_sum) / sum(lfr_alert_latency_seconds_count)", "mean"),),
        ),
        PanelSpec(
            "Alerts by state",
            "Alerts in the records database, by state.",
            "none",
            (Query("sum by (state) (lfr_stored_alerts)", "{{state}}"),),
        ),
        PanelSpec(
            "False-alert ratio",
            "Rejected alerts over adjudicated ones.",
            "percentunit",
            (Query("max(lfr_false_alert_ratio)", "false alerts"),),
            PanelKind.STAT,
        ),
    ),
)

CONTROL_ROOM = DashboardSpec(
    "lfr-control-room",
    "lfr / Control room and audit",
    "API requests and refusals, event-stream clients, retention and the audit chain's anchoring.",
    (
        PanelSpec(
            "Requests",
            "Requests answered per second, by route and code.",
            "reqps",
            (Query(_rate("lfr_api_requests_total", "route, code"), "{{route}} {{code}}"),),
        ),
        PanelSpec(
            "Refusals",
            "Requests refused at the gate per second, by reason.",
            "reqps",
            (Query(_fault("lfr_api_refusals_total", "lfr_api_requests_total", "job"), "refused"),),
        ),
        PanelSpec(
            "Stream clients",
            "Clients following the alert event stream.",
            "none",
            (Query("sum(lfr_api_stream_clients)", "clients"),),
        ),
        PanelSpec(
            "Retention overdue",
            "Alerts kept past the retention period (not held): the purge is not running.",
            "none",
            (Query("max(lfr_retention_overdue_alerts)", "overdue"),),
            PanelKind.STAT,
        ),
        PanelSpec(
            "Audit entries not anchored",
            "Entries in the audit chain after its newest anchor line.",
            "none",
            (Query("max(lfr_audit_entries_total) - max(lfr_audit_anchored_entries_total)", "unanchored"),),
        ),
        PanelSpec(
            "Anchor age",
            "Seconds since the newest anchor line was written.",
            "s",
            (Query("max(lfr_audit_anchor_age_seconds)", "age"),),
        ),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (CAMERAS, FACE_SERVICE, MATCHING_AND_ALERTS, CONTROL_ROOM)


def _panel(spec: PanelSpec) -> timeseries.Panel | stat.Panel:
    panel = timeseries.Panel() if spec.kind is PanelKind.TIMESERIES else stat.Panel()
    panel = panel.title(spec.title).description(spec.description).unit(spec.unit).datasource(DATASOURCE)
    for ref, query in zip(REF_IDS, spec.queries, strict=False):
        panel = panel.with_target(
            prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref).datasource(DATASOURCE)
        )
    return panel.height(PANEL_HEIGHT).span(PANEL_WIDTH)


def build(spec: DashboardSpec) -> dashboard_model.Dashboard:
    """The dashboard as the SDK's model, with a Prometheus data source chosen on the dashboard."""
    board = (
        dashboard_builder.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags([TAG])
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(dashboard_builder.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
    )
    for panel in spec.panels:
        board = board.with_panel(_panel(panel))
    return board.build()


def to_json(spec: DashboardSpec) -> str:
    """The dashboard's JSON, as Grafana imports it."""
    return json.dumps(build(spec), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def render(directory: Path, specs: Sequence[DashboardSpec] = DASHBOARDS) -> list[Path]:
    """Write each dashboard to `directory/<uid>.json`; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs:
        path = directory / f"{spec.uid}.json"
        path.write_text(to_json(spec))
        written.append(path)
    return written


GRAFANA_TOKEN_ENV = "LFR_GRAFANA_TOKEN"
"""A Grafana service account token with rights to write dashboards (never given on the command line)."""


@dataclass(frozen=True)
class PushedDashboard:
    """A dashboard Grafana took: its uid, version there and URL path."""

    uid: str
    version: int
    url: str


def push(
    url: str, token: str, folder_uid: str | None = None, specs: Sequence[DashboardSpec] = DASHBOARDS
) -> list[PushedDashboard]:
    """Create or replace each dashboard in the Grafana at `url` (grafana-client), keyed by its uid."""
    from grafana_client import GrafanaApi

    grafana = GrafanaApi.from_url(url, credential=token)
    pushed = []
    for spec in specs:
        payload: dict[str, object] = {
            "dashboard": json.loads(to_json(spec)),
            "overwrite": True,
            "message": "lfr dashboards push",
        }
        if folder_uid is not None:
            payload["folderUid"] = folder_uid
        answer = grafana.dashboard.update_dashboard(payload)
        pushed.append(PushedDashboard(spec.uid, int(answer["version"]), str(answer["url"])))
    return pushed
