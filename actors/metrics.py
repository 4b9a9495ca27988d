"""Every metric the Ray side exports (`ray.util.metrics`, served by each node's Ray metrics agent).

The specs are listed here, once; `tests/test_metric_names.py` checks them against
`cluster.observability.conventions`. Ray prefixes these names with `ray_` on its metrics port;
the Prometheus scrape config we generate strips it, so queries, rules and dashboards use `lfr_`.

Cumulative figures kept by the domain code (a camera's health, a tracker's counts) are turned
into counters by `CounterFeed`, which adds what grew since the last report (and starts again when
a restarted actor's count goes back to zero).
"""

from collections.abc import Mapping

from ray.util import metrics

from cluster.cameras.health import CameraHealth, CameraState
from cluster.fusion.coordination import CoordinationReport
from cluster.live.forwarding import StreamStats
from cluster.live.matching import MatchingSummary
from cluster.observability.conventions import MetricKind, MetricSpec

SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
ALERT_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)

CAMERA = "camera_id"

CAMERA_STATE = MetricSpec(
    "lfr_camera_state_info", MetricKind.GAUGE, "1 for the camera's current state, 0 for the others.", (CAMERA, "state")
)
CAMERA_DECODED = MetricSpec(
    "lfr_camera_decoded_frames_total", MetricKind.COUNTER, "Frames decoded (fps in is its rate).", (CAMERA,)
)
CAMERA_SAMPLED = MetricSpec(
    "lfr_camera_sampled_frames_total",
    MetricKind.COUNTER,
    "Frames sampled for the face service (fps out is its rate).",
    (CAMERA,),
)
CAMERA_DROPPED = MetricSpec(
    "lfr_camera_dropped_frames_total",
    MetricKind.COUNTER,
    "Sampled frames evicted from the camera's queue (consumer too slow).",
    (CAMERA,),
)
CAMERA_CORRUPT = MetricSpec(
    "lfr_camera_corrupt_frames_total", MetricKind.COUNTER, "Packets or frames that could not be decoded.", (CAMERA,)
)
CAMERA_RECONNECTS = MetricSpec(
    "lfr_camera_reconnects_total", MetricKind.COUNTER, "Times the stream came back after it was lost.", (CAMERA,)
)
CAMERA_FAILURES = MetricSpec(
    "lfr_camera_failures_total", MetricKind.COUNTER, "Failed connections and lost streams.", (CAMERA,)
)
CAMERA_QUEUE = MetricSpec(
    "lfr_camera_queue_frames", MetricKind.GAUGE, "Sampled frames waiting in the camera's queue.", (CAMERA,)
)

FORWARD_DROPPED = MetricSpec(
    "lfr_forward_dropped_frames_total",
    MetricKind.COUNTER,
    "Frames the forwarder dropped, by reason (full, stale, at_camera).",
    (CAMERA, "reason"),
)
FORWARD_FAILED = MetricSpec(
    "lfr_forward_failed_requests_total",
    MetricKind.COUNTER,
    "Face service requests that failed or timed out.",
    (CAMERA,),
)
FORWARD_IN_FLIGHT = MetricSpec(
    "lfr_forward_in_flight_requests", MetricKind.GAUGE, "Requests open at the face service.", (CAMERA,)
)
FRAME_LATENCY = MetricSpec(
    "lfr_frame_latency_seconds",
    MetricKind.HISTOGRAM,
    "Seconds from a frame's capture to its face service result.",
    (CAMERA,),
    SECONDS_BUCKETS,
)

FACE_STAGE = MetricSpec(
    "lfr_face_stage_seconds",
    MetricKind.HISTOGRAM,
    "Seconds a frame spent in each stage of the face service (second_stage: one patch request).",
    ("stage",),
    SECONDS_BUCKETS,
)
FACE_BATCH = MetricSpec("lfr_face_batch_frames", MetricKind.HISTOGRAM, "Frames per model call.", (), BATCH_BUCKETS)
FACE_FRAMES = MetricSpec(
    "lfr_face_frames_total", MetricKind.COUNTER, "Frames processed by the face service.", (CAMERA,)
)
FACE_FACES = MetricSpec("lfr_face_detections_total", MetricKind.COUNTER, "Faces found by the face service.", (CAMERA,))
FACE_ERRORS = MetricSpec("lfr_face_frame_errors_total", MetricKind.COUNTER, "Frames answered with an error.", (CAMERA,))
FACE_QUEUE = MetricSpec(
    "lfr_face_queue_requests",
    MetricKind.GAUGE,
    "Frame requests a replica holds (batching or running); one series per replica process.",
    (),
)
FACE_REPLICAS = MetricSpec(
    "lfr_face_replicas", MetricKind.GAUGE, "1 from each running face service replica; sum it for the replica count.", ()
)

TRACKLETS = MetricSpec(
    "lfr_tracklets_total",
    MetricKind.COUNTER,
    "Tracklets by outcome: started, searched, matched, deleted (no match), unsearched, unscored.",
    (CAMERA, "outcome"),
)
GALLERY_SEARCH = MetricSpec(
    "lfr_gallery_search_seconds",
    MetricKind.HISTOGRAM,
    "Seconds one watchlist search (a batch of tracklets) took.",
    (CAMERA,),
    SECONDS_BUCKETS,
)
GALLERY_ERRORS = MetricSpec(
    "lfr_gallery_search_errors_total", MetricKind.COUNTER, "Watchlist searches that failed (retried later).", (CAMERA,)
)
SECOND_STAGE_ERRORS = MetricSpec(
    "lfr_second_stage_errors_total",
    MetricKind.COUNTER,
    "Second face model calls that failed (retried later).",
    (CAMERA,),
)

ALERTS_RAISED = MetricSpec("lfr_alerts_raised_total", MetricKind.COUNTER, "Alerts raised by the Coordinator.")
ALERTS_MERGED = MetricSpec(
    "lfr_alerts_merged_total", MetricKind.COUNTER, "Sightings merged into an alert already raised."
)
ALERTS_DEAD = MetricSpec(
    "lfr_alert_dead_letters_total",
    MetricKind.COUNTER,
    "Sightings the alert store could not take (spooled, redelivered later).",
)
SIGHTINGS_SUPPRESSED = MetricSpec(
    "lfr_sightings_suppressed_total",
    MetricKind.COUNTER,
    "Sightings of a person an officer rejected, counted instead of alerted again (not this person).",
)
ALERT_LATENCY = MetricSpec(
    "lfr_alert_latency_seconds",
    MetricKind.HISTOGRAM,
    "Seconds from a sighting's last face to its alert being stored.",
    (),
    ALERT_SECONDS_BUCKETS,
)

SOCIAL_POSTS = MetricSpec(
    "lfr_social_posts_total",
    MetricKind.COUNTER,
    "Posts of a followed social-media export, by outcome: processed, flagged (text triage), skipped.",
    ("outcome",),
)
SOCIAL_LEADS = MetricSpec(
    "lfr_social_leads_total",
    MetricKind.COUNTER,
    "Cases opened for flagged posts whose faces matched a watchlist (one per post and watchlist).",
)
SOCIAL_LAG = MetricSpec(
    "lfr_social_lag_seconds",
    MetricKind.HISTOGRAM,
    "Seconds from a post to its processing (stored, searched when flagged), by start: posted, exported.",
    ("stage",),
    ALERT_SECONDS_BUCKETS,
)
SOCIAL_BACKLOG = MetricSpec(
    "lfr_social_backlog_bytes",
    MetricKind.GAUGE,
    "Bytes of a followed JSON-lines export written and not yet read.",
)

SPECS: tuple[MetricSpec, ...] = (
    CAMERA_STATE,
    CAMERA_DECODED,
    CAMERA_SAMPLED,
    CAMERA_DROPPED,
    CAMERA_CORRUPT,
    CAMERA_RECONNECTS,
    CAMERA_FAILURES,
    CAMERA_QUEUE,
    FORWARD_DROPPED,
    FORWARD_FAILED,
    FORWARD_IN_FLIGHT,
    FRAME_LATENCY,
    FACE_STAGE,
    FACE_BATCH,
    FACE_FRAMES,
    FACE_FACES,
    FACE_ERRORS,
    FACE_QUEUE,
    FACE_REPLICAS,
    TRACKLETS,
    GALLERY_SEARCH,
    GALLERY_ERRORS,
    SECOND_STAGE_ERRORS,
    ALERTS_RAISED,
    ALERTS_MERGED,
    ALERTS_DEAD,
    SIGHTINGS_SUPPRESSED,
    ALERT_LATENCY,
    SOCIAL_POSTS,
    SOCIAL_LEADS,
    SOCIAL_LAG,
    SOCIAL_BACKLOG,
)


def counter(spec: MetricSpec) -> metrics.Counter:
    """The Ray counter for `spec` (made in the process that records it)."""
    _expect(spec, MetricKind.COUNTER)
    return metrics.Counter(spec.name, description=spec.help, tag_keys=spec.labels)


def gauge(spec: MetricSpec) -> metrics.Gauge:
    _expect(spec, MetricKind.GAUGE)
    return metrics.Gauge(spec.name, description=spec.help, tag_keys=spec.labels)


def histogram(spec: MetricSpec) -> metrics.Histogram:
    _expect(spec, MetricKind.HISTOGRAM)
    return metrics.Histogram(spec.name, description=spec.help, boundaries=list(spec.buckets), tag_keys=spec.labels)


def _expect(spec: MetricSpec, kind: MetricKind) -> None:
    if spec.kind is not kind:
        raise TypeError(f"{spec.name} is a {spec.kind}, not a {kind}")


class CounterFeed:
    """Turns a cumulative count reported now and then into increments of a Ray counter."""

    def __init__(self, spec: MetricSpec) -> None:
        self._counter = counter(spec)
        self._last: dict[tuple[tuple[str, str], ...], int] = {}

    def report(self, total: int, tags: Mapping[str, str]) -> None:
        key = tuple(sorted(tags.items()))
        last = self._last.get(key, 0)
        grown = total - last if total >= last else total
        self._last[key] = total
        if grown > 0:
            self._counter.inc(grown, tags=dict(tags))


class CameraStreamMetrics:
    """One camera's metrics, reported by its StreamForwarder every few seconds: health, forwarding, matching."""

    def __init__(self, camera_id: str) -> None:
        self._tags = {CAMERA: camera_id}
        self._state = gauge(CAMERA_STATE)
        self._queue = gauge(CAMERA_QUEUE)
        self._in_flight = gauge(FORWARD_IN_FLIGHT)
        self._feeds = {
            spec.name: CounterFeed(spec)
            for spec in (
                CAMERA_DECODED,
                CAMERA_SAMPLED,
                CAMERA_DROPPED,
                CAMERA_CORRUPT,
                CAMERA_RECONNECTS,
                CAMERA_FAILURES,
                FORWARD_DROPPED,
                FORWARD_FAILED,
                TRACKLETS,
                GALLERY_ERRORS,
                SECOND_STAGE_ERRORS,
            )
        }
        self.frame_latency = histogram(FRAME_LATENCY)
        self.gallery_search = histogram(GALLERY_SEARCH)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def camera(self, health: CameraHealth | None) -> None:
        """The camera's health; None when its actor did not answer (then no state is 1: the camera is down)."""
        for state in CameraState:
            up = health is not None and health.state is state
            self._state.set(1.0 if up else 0.0, tags={**self._tags, "state": str(state)})
        if health is None:
            return
        self._queue.set(health.queue_length, tags=self._tags)
        for spec, total in (
            (CAMERA_DECODED, health.frames_decoded),
            (CAMERA_SAMPLED, health.frames_sampled),
            (CAMERA_DROPPED, health.frames_dropped),
            (CAMERA_CORRUPT, health.frames_corrupt),
            (CAMERA_RECONNECTS, health.reconnects),
            (CAMERA_FAILURES, health.failures),
        ):
            self._feeds[spec.name].report(total, self._tags)

    def forwarding(self, stats: StreamStats) -> None:
        self._in_flight.set(stats.in_flight, tags=self._tags)
        dropped = self._feeds[FORWARD_DROPPED.name]
        for reason, total in (
            ("full", stats.dropped_full),
            ("stale", stats.dropped_stale),
            ("at_camera", stats.dropped_at_camera),
        ):
            dropped.report(total, {**self._tags, "reason": reason})
        self._feeds[FORWARD_FAILED.name].report(stats.failed_requests, self._tags)

    def matching(self, summary: MatchingSummary) -> None:
        counts = summary.tracker
        tracklets = self._feeds[TRACKLETS.name]
        for outcome, total in (
            ("started", counts.tracklets_started),
            ("searched", counts.tracklets_searched),
            ("matched", counts.tracklets_matched),
            ("deleted", counts.tracklets_deleted_no_match),
            ("unsearched", counts.tracklets_unsearched),
            ("unscored", counts.tracklets_unscored),
        ):
            tracklets.report(total, {**self._tags, "outcome": outcome})
        self._feeds[GALLERY_ERRORS.name].report(summary.search_failures, self._tags)
        self._feeds[SECOND_STAGE_ERRORS.name].report(summary.second_stage_failures, self._tags)


class CoordinatorMetrics:
    """Alerts raised and merged, dead letters, and how long a sighting took to become a stored alert."""

    def __init__(self) -> None:
        self._raised = counter(ALERTS_RAISED)
        self._merged = counter(ALERTS_MERGED)
        self._dead = counter(ALERTS_DEAD)
        self._suppressed = counter(SIGHTINGS_SUPPRESSED)
        self._latency = histogram(ALERT_LATENCY)

    def record(self, report: CoordinationReport, last_seen: list[float], now: float) -> None:
        if report.raised:
            self._raised.inc(len(report.raised))
        if report.grown:
            self._merged.inc(len(report.grown))
        if report.dead_lettered:
            self._dead.inc(report.dead_lettered)
        if report.suppressed:
            self._suppressed.inc(report.suppressed)
        stored = len(report.raised) + len(report.grown)
        if stored:
            for seen in last_seen:
                self._latency.observe(max(0.0, now - seen))
