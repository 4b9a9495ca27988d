"""A load test's alerts scored against the crowd's truth, and how long each face took to reach an alert.

Alerts name the replayed camera; a copy of the street (`cameras`) is mapped back to the crowd camera
whose video it plays, and the truth is cut to the crowd cameras that ran, so a step with one camera
is not blamed for people who only walked past the others. Then `cluster.crowd.scoring` decides true
and false alerts and the watchlist people missed.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from cluster.alerts.model import Alert
from cluster.crowd.scoring import score_alerts
from cluster.crowd.truth import CrowdTruth
from cluster.loadtesting.cameras import ReplayCamera
from cluster.loadtesting.measurements import Accuracy


def score(alerts: Sequence[Alert], truth: CrowdTruth, cameras: Sequence[ReplayCamera]) -> Accuracy:
    """`alerts` against `truth` over the replayed `cameras` that ran."""
    crowd_camera: Mapping[str, str] = {camera.id: camera.crowd_camera for camera in cameras}
    ran = set(crowd_camera.values())
    seen_truth = replace(truth, appearances=tuple(a for a in truth.appearances if a.camera in ran))
    mapped = [_on_crowd_cameras(alert, crowd_camera) for alert in alerts]
    result = score_alerts(mapped, seen_truth)
    return Accuracy(
        alerts=result.alerts,
        true_alerts=result.true_alerts,
        false_alerts=result.false_alerts,
        watchlist_people_seen=result.watchlist_people_seen,
        watchlist_visits=result.watchlist_visits,
        people_alerted=result.people_alerted,
        people_missed=result.people_missed,
        alerts_per_person=result.alerts_per_person,
        precision=result.precision,
        recall=result.recall,
        streets=max((camera.copy for camera in cameras), default=0) + 1,
    )


def _on_crowd_cameras(alert: Alert, crowd_camera: Mapping[str, str]) -> Alert:
    """The alert with each sighting's camera named as the crowd camera it replays (an unknown camera kept as is)."""
    sightings = tuple(replace(s, camera_id=crowd_camera.get(s.camera_id, s.camera_id)) for s in alert.sightings)
    return replace(alert, sightings=sightings)


def alert_latencies(
    alerts: Sequence[Alert], stored_at: Mapping[str, float], since: float = -math.inf, until: float = math.inf
) -> list[float]:
    """Seconds from each sighting's last face to the store taking it into an alert (raising one or growing one),
    for the sightings stored between `since` and `until`: how long each face took to reach the officer.

    `stored_at` is when the store took each sighting (`cluster.alerts.evidence_times`, from the audit log);
    `lfr_alert_latency_seconds` measures the same in the Coordinator. An alert grown by a later camera counts
    too: its new sighting is what the officer waits for, and a step raises few new alerts.
    """
    return [
        max(0.0, stored_at[s.sighting_id] - s.last_seen)
        for alert in alerts
        for s in alert.sightings
        if s.sighting_id in stored_at and since <= stored_at[s.sighting_id] <= until
    ]
