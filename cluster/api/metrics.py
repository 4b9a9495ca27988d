"""Every metric the control room (`lfr serve`) exports at /metrics, with `prometheus_client`.

Requests and refusals are counted as they pass the gate; stream clients are read from the event
hub; the alert, retention and audit figures are read from the records database at scrape time,
so they are right whichever process wrote the rows. No label holds a person, a face, an alert or
a key: routes are the API's path templates, refusals their short fixed reasons.

/metrics holds no personal data but does tell how busy the control room is, so the gate serves it
only to a loopback client (a Prometheus or agent on the same host) or to one that presents the
token in LFR_METRICS_TOKEN (`docs/observability.md`).
"""

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cluster.alerts.config import RetentionConfig
from cluster.alerts.model import AlertState
from cluster.alerts.query import AlertFilter
from cluster.alerts.store import AlertStore
from cluster.observability.conventions import MetricKind, MetricSpec

METRICS_PATH = "/metrics"
METRICS_TOKEN_ENV = "LFR_METRICS_TOKEN"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

API_REQUESTS = MetricSpec(
    "lfr_api_requests_total",
    MetricKind.COUNTER,
    "Requests answered, by method, route and code.",
    ("method", "route", "code"),
)
API_REFUSALS = MetricSpec(
    "lfr_api_refusals_total",
    MetricKind.COUNTER,
    "Requests refused at the gate (401, 429), by reason.",
    ("reason", "code"),
)
STREAM_CLIENTS = MetricSpec("lfr_api_stream_clients", MetricKind.GAUGE, "Clients following the alert event stream.")
STORED_ALERTS = MetricSpec(
    "lfr_stored_alerts", MetricKind.GAUGE, "Alerts in the records database, by state.", ("state",)
)
FALSE_ALERTS = MetricSpec(
    "lfr_false_alert_ratio", MetricKind.GAUGE, "Rejected alerts over adjudicated ones (confirmed + rejected)."
)
RETENTION_OVERDUE = MetricSpec(
    "lfr_retention_overdue_alerts", MetricKind.GAUGE, "Alerts older than the retention period, not held, still stored."
)
AUDIT_ENTRIES = MetricSpec(
    "lfr_audit_entries_total", MetricKind.COUNTER, "Entries in the audit chain (its head's seq)."
)
AUDIT_ANCHORED = MetricSpec(
    "lfr_audit_anchored_entries_total", MetricKind.COUNTER, "The audit chain's seq at its newest anchor line."
)
AUDIT_ANCHOR_AGE = MetricSpec(
    "lfr_audit_anchor_age_seconds", MetricKind.GAUGE, "Seconds since the newest anchor line was written."
)

SPECS: tuple[MetricSpec, ...] = (
    API_REQUESTS,
    API_REFUSALS,
    STREAM_CLIENTS,
    STORED_ALERTS,
    FALSE_ALERTS,
    RETENTION_OVERDUE,
    AUDIT_ENTRIES,
    AUDIT_ANCHORED,
    AUDIT_ANCHOR_AGE,
)


class RecordsCollector(Collector):
    """Alert, retention and audit figures read from the records database at each scrape."""

    def __init__(self, store: AlertStore, retention: RetentionConfig, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._retention = retention
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        by_state = GaugeMetricFamily(STORED_ALERTS.name, STORED_ALERTS.help, labels=list(STORED_ALERTS.labels))
        counts = {state: self._store.count(AlertFilter(states=(state,))) for state in AlertState}
        for state, count in counts.items():
            by_state.add_metric([str(state)], count)
        yield by_state
        adjudicated = counts[AlertState.CONFIRMED] + counts[AlertState.REJECTED]
        if adjudicated:
            yield GaugeMetricFamily(FALSE_ALERTS.name, FALSE_ALERTS.help, counts[AlertState.REJECTED] / adjudicated)
        overdue = self._store.count(AlertFilter(until=now - self._retention.older_than_s, held=False))
        yield GaugeMetricFamily(RETENTION_OVERDUE.name, RETENTION_OVERDUE.help, overdue)
        audit = self._store.audit
        yield CounterMetricFamily(AUDIT_ENTRIES.name, AUDIT_ENTRIES.help, audit.head().seq)
        if audit.anchors is not None and audit.anchors.file.exists():
            lines = audit.anchors.file.read(audit.sealer)
            if lines:
                newest = lines[-1].record
                yield CounterMetricFamily(AUDIT_ANCHORED.name, AUDIT_ANCHORED.help, newest.seq)
                yield GaugeMetricFamily(AUDIT_ANCHOR_AGE.name, AUDIT_ANCHOR_AGE.help, max(0.0, now - newest.at))


class ControlRoomMetrics:
    """The control room's registry: its own, so that two apps in one process (tests) never share counts."""

    def __init__(self, store: AlertStore, retention: RetentionConfig, stream_clients: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(_bare(API_REQUESTS), API_REQUESTS.help, API_REQUESTS.labels, registry=self.registry)
        self.refusals = Counter(_bare(API_REFUSALS), API_REFUSALS.help, API_REFUSALS.labels, registry=self.registry)
        clients = Gauge(STREAM_CLIENTS.name, STREAM_CLIENTS.help, registry=self.registry)
        clients.set_function(stream_clients)
        self.registry.register(RecordsCollector(store, retention))

    def request(self, method: str, route: str, code: int) -> None:
        self.requests.labels(method=method, route=route, code=str(code)).inc()

    def refused(self, reason: str, code: int) -> None:
        self.refusals.labels(reason=reason, code=str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _bare(spec: MetricSpec) -> str:
    """The name prometheus_client wants for a counter: it adds `_total` itself."""
    return spec.name.removesuffix("_total")
