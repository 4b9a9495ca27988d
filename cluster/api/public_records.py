"""The public deployment records: every recorded deployment with its figures, and nothing personal.

Each field is built here from a deployment's published terms (`cluster.deployment.records`) and
counts: faces seen from the status board, alerts by outcome from the alert store, the watchlist's
size from the catalogue. Nothing else is read, so no person id, crop, officer's or user's name,
watchlist entry or reason can reach a public answer; the watchlist itself goes out as a size only.

Alerts purged by retention still count (the store keeps a count per deployment and final state);
an alert awaiting a decision when it was purged stays awaiting.
"""

from dataclasses import dataclass

from cluster.alerts.store import AlertStore
from cluster.deployment.purpose import Purpose
from cluster.deployment.records import DeploymentRecord, DeploymentRecords, Phase
from cluster.deployment.window import Exclusion
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.errors import UnknownWatchlistError
from cluster.live.status_board import StatusBoard


@dataclass(frozen=True)
class PublicDeployment:
    """One deployment as the public sees it.

    faces_seen: None until the pipeline has published a count. watchlist_size: None when the bound
    version is not in the catalogue (not frozen yet). false_alerts: alerts officers rejected;
    awaiting_decision: alerts not yet confirmed or rejected. at_assembly: at a protest or assembly;
    exclusion_windows: when nothing was matched, and why (times and reason only).
    """

    deployment_id: str
    place: str
    starts_at: float
    ends_at: float
    phase: Phase
    purpose: Purpose
    signage_notice: str
    watchlist_size: int | None
    faces_seen: int | None
    alerts: int
    confirmed: int
    false_alerts: int
    awaiting_decision: int
    at_assembly: bool
    exclusion_windows: tuple[Exclusion, ...]


def public_deployments(
    records: DeploymentRecords, store: AlertStore, board: StatusBoard, catalogue: Catalogue, now: float
) -> list[PublicDeployment]:
    """Every recorded deployment, the latest to start first, as it stands at `now`."""
    return [_public(record, store, board, catalogue, now) for record in records.all()]


def _public(
    record: DeploymentRecord, store: AlertStore, board: StatusBoard, catalogue: Catalogue, now: float
) -> PublicDeployment:
    stats = store.stats(record.deployment_id, with_purged=True)
    status = board.latest(record.deployment_id)
    return PublicDeployment(
        deployment_id=record.deployment_id,
        place=record.place,
        starts_at=record.window.starts_at,
        ends_at=record.window.ends_at,
        phase=record.phase(now),
        purpose=record.purpose,
        signage_notice=record.signage_notice,
        watchlist_size=_watchlist_size(catalogue, record.watchlist_version),
        faces_seen=None if status is None else status.faces_seen,
        alerts=stats.alerts,
        confirmed=stats.confirmed,
        false_alerts=stats.rejected,
        awaiting_decision=stats.new + stats.acknowledged,
        at_assembly=record.at_assembly,
        exclusion_windows=record.window.exclusions,
    )


def _watchlist_size(catalogue: Catalogue, version_id: str) -> int | None:
    try:
        return catalogue.version(version_id).entry_count
    except UnknownWatchlistError:
        return None
