"""Scoring the alerts of a run against a synthetic crowd's ground truth.

Watchlist people are enrolled under their truth id, so an alert names the person it claims.
An alert is true when that person is on the watchlist and really appeared on every camera the
alert lists; otherwise it is false. A person-visit is one trip of one person past the cameras;
a watchlist person none of whose visits led to a true alert is missed. With fusion working,
each watchlist person who walked by gets one alert per visit (`alerts_per_person` near 1.0).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.alerts.model import Alert
from cluster.crowd.truth import CrowdTruth


@dataclass(frozen=True)
class AlertScore:
    """How a run's alerts compare with the truth."""

    alerts: int
    true_alerts: int
    false_alerts: int
    watchlist_people_seen: int
    watchlist_visits: int
    people_alerted: int
    people_missed: tuple[str, ...]
    alerts_per_person: float

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.people_alerted / self.watchlist_people_seen if self.watchlist_people_seen else 1.0


def score_alerts(alerts: Sequence[Alert], truth: CrowdTruth) -> AlertScore:
    """Compare `alerts` with `truth`; see the module docstring for what counts as true."""
    watchlist = {person.id for person in truth.watchlist}
    cameras_of: dict[str, set[str]] = defaultdict(set)
    visits: dict[str, set[int]] = defaultdict(set)
    for appearance in truth.appearances:
        cameras_of[appearance.person].add(appearance.camera)
        visits[appearance.person].add(appearance.trip)
    seen = {person for person in watchlist if cameras_of[person]}
    true_alerts = [
        alert for alert in alerts if alert.person_id in watchlist and set(alert.cameras) <= cameras_of[alert.person_id]
    ]
    alerted = {alert.person_id for alert in true_alerts}
    return AlertScore(
        alerts=len(alerts),
        true_alerts=len(true_alerts),
        false_alerts=len(alerts) - len(true_alerts),
        watchlist_people_seen=len(seen),
        watchlist_visits=sum(len(visits[person]) for person in seen),
        people_alerted=len(alerted),
        people_missed=tuple(sorted(seen - alerted)),
        alerts_per_person=len(true_alerts) / len(alerted) if alerted else 0.0,
    )
