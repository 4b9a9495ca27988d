"""Every exported metric follows the conventions: lfr_ prefix, unit in the name, bounded labels, no person."""

import pytest

from actors import metrics as ray_side
from cluster.api import metrics as control_room_side
from cluster.observability.conventions import MetricKind, MetricSpec, convention_problems

ALL_SPECS = ray_side.SPECS + control_room_side.SPECS


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.name)
def test_every_metric_follows_the_conventions(spec):
    assert convention_problems(spec) == []


def test_no_metric_name_is_listed_twice():
    names = [spec.name for spec in ALL_SPECS]
    assert len(names) == len(set(names))


def test_the_watched_stages_all_have_metrics():
    names = {spec.name for spec in ALL_SPECS}
    for expected in (
        "lfr_camera_state_info",
        "lfr_camera_reconnects_total",
        "lfr_forward_dropped_frames_total",
        "lfr_face_batch_frames",
        "lfr_face_queue_requests",
        "lfr_face_replicas",
        "lfr_tracklets_total",
        "lfr_gallery_search_seconds",
        "lfr_gallery_search_errors_total",
        "lfr_alerts_raised_total",
        "lfr_alerts_merged_total",
        "lfr_false_alert_ratio",
        "lfr_api_requests_total",
        "lfr_api_refusals_total",
        "lfr_api_stream_clients",
        "lfr_retention_overdue_alerts",
        "lfr_audit_anchor_age_seconds",
    ):
        assert expected in names


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        (MetricSpec("lfr_matches_total", MetricKind.COUNTER, "x", ("person_id",)), "would hold a person"),
        (MetricSpec("lfr_alert_seconds", MetricKind.HISTOGRAM, "x", ("alert_id",), (1.0,)), "would hold a person"),
        (MetricSpec("lfr_faces_total", MetricKind.COUNTER, "x", ("face",)), "would hold a person"),
        (MetricSpec("lfr_frames_total", MetricKind.COUNTER, "x", ("frame_seq",)), "not one of the bounded labels"),
        (MetricSpec("lfr_frames", MetricKind.COUNTER, "x"), "ends in _total"),
        (MetricSpec("lfr_latency", MetricKind.GAUGE, "x"), "names its unit"),
        (MetricSpec("frames_total", MetricKind.COUNTER, "x"), "start with 'lfr_'"),
        (MetricSpec("lfr_wait_seconds", MetricKind.HISTOGRAM, "x"), "lists its buckets"),
    ],
)
def test_the_check_refuses_what_breaks_them(spec, complaint):
    assert any(complaint in problem for problem in convention_problems(spec))
