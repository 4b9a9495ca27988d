"""The Coordinator's work without Ray: fuse sightings from every camera and keep the alerts durable.

`AlertCoordinator` puts each sighting through the `Fuser` and saves every new or grown alert
in the `AlertStore`, which audits it. The store is the source of truth: after a restart the
coordinator rebuilds its Fuser from the store's recent alerts, so a camera that resends its
sightings (Ray retries calls to a restarted actor) changes nothing, and nothing is raised twice.

Officers decide alerts in the store, not here. Before a sighting merges into an open alert,
that alert's state is read back from the store: one an officer has since confirmed or
rejected takes no more evidence, and the sighting raises a new alert instead.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from cluster.alerts.errors import AlertClosedError
from cluster.alerts.model import Alert, Sighting
from cluster.alerts.opening import open_alert_store
from cluster.alerts.store import AlertStore
from cluster.audit.config import AuditConfig
from cluster.cameras.config import CameraConfig
from cluster.database.config import DatabaseConfig
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser, FusionKind
from cluster.fusion.topology import CameraTopology

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CoordinationReport:
    """What one batch of sightings did: alerts raised or grown (as stored), and duplicates ignored."""

    raised: tuple[Alert, ...]
    grown: tuple[Alert, ...]
    duplicates: int


class AlertCoordinator:
    """Fuses the sightings of one deployment into alerts and saves them; see the module docstring."""

    def __init__(self, fuser: Fuser, store: AlertStore, clock: Callable[[], float] = time.time) -> None:
        self.fuser = fuser
        self.store = store
        self._clock = clock

    def restore(self) -> int:
        """Rebuild the Fuser from the store's alerts of this deployment still inside the fusion window."""
        since = self._clock() - self.fuser.config.open_window_s
        alerts = self.store.open_alerts(self.fuser.deployment_id, since, include_decided=True)
        open_count = self.fuser.restore(alerts)
        log.info("coordinator_restored", deployment_id=self.fuser.deployment_id, alerts=len(alerts), open=open_count)
        return open_count

    def add(self, sightings: Sequence[Sighting]) -> CoordinationReport:
        """Fuse and store each sighting in order; a resent sighting is a counted duplicate."""
        raised: dict[str, Alert] = {}
        grown: dict[str, Alert] = {}
        duplicates = 0
        for sighting in sightings:
            self._refresh_decision(sighting)
            outcome = self.fuser.add(sighting)
            if outcome.kind is FusionKind.DUPLICATE:
                duplicates += 1
                continue
            try:
                stored = self.store.save(outcome.alert)
            except AlertClosedError:
                stored = self.store.get(outcome.alert.alert_id)
                self.fuser.update_alert(stored)
                log.error(
                    "sighting_lost_to_a_decision",
                    alert_id=stored.alert_id,
                    sighting_id=sighting.sighting_id,
                    state=stored.state.value,
                )
                continue
            target = raised if outcome.kind is FusionKind.NEW_ALERT or stored.alert_id in raised else grown
            target[stored.alert_id] = stored
        return CoordinationReport(tuple(raised.values()), tuple(grown.values()), duplicates)

    def _refresh_decision(self, sighting: Sighting) -> None:
        """If the sighting would merge into an alert an officer has since decided, close that alert first."""
        target = self.fuser.merge_target(sighting)
        if target is None:
            return
        stored = self.store.get(target)
        if stored.state.is_final:
            self.fuser.update_alert(stored)


@dataclass(frozen=True)
class CoordinatorSettings:
    """Everything the Coordinator actor builds its Fuser and store from (no live objects: they are built inside)."""

    deployment_id: str
    threshold: float
    model: str
    cameras: tuple[CameraConfig, ...]
    fusion: FusionConfig
    database: DatabaseConfig
    audit: AuditConfig
    perfect_score: float = 1.0
    target_fpir: float | None = None
    expected_tpir: float | None = None

    def build(self) -> AlertCoordinator:
        """The coordinator over a fresh Fuser and the configured store, restored from it."""
        fuser = Fuser(
            CameraTopology.from_config(list(self.cameras)),
            self.fusion,
            deployment_id=self.deployment_id,
            threshold=self.threshold,
            model=self.model,
            perfect_score=self.perfect_score,
            target_fpir=self.target_fpir,
            expected_tpir=self.expected_tpir,
        )
        coordinator = AlertCoordinator(fuser, open_alert_store(self.database, self.audit))
        coordinator.restore()
        return coordinator
