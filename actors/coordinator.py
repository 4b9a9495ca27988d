"""Coordinator: the one named actor that fuses every camera's sightings into durable alerts.

A thin shell over `AlertCoordinator`. It restarts on failure (`max_restarts=-1`) and Ray
retries the calls that were in flight (`max_task_retries=-1`): the restarted actor rebuilds its
state from the alert store, and sightings are idempotent by id, so a crash loses or duplicates
no alert. Cameras call `add_sightings` without waiting on each other; the actor runs one call
at a time, which keeps fusion in order.

Alerts the store could not take (a locked or unreachable database) wait as dead letters (and
suppressed sightings' counts in memory); a thread of the actor's own redelivers them every
`REDELIVER_EVERY_S`, so they reach the store soon after it is back even when no new sighting
comes (matches are rare). The same timer drops rejected alerts' embeddings from the Fuser's
memory (`forget_rejected`). Its calls and the actor's are serialised by `AlertCoordinator`'s lock.
"""

import time

import ray
import structlog
from ray.actor import ActorHandle

from actors.metrics import CoordinatorMetrics
from cluster.alerts.model import Sighting
from cluster.fusion.coordination import CoordinationReport, CoordinatorSettings
from cluster.periodic import Periodic

log = structlog.get_logger(__name__)

COORDINATOR_NAME = "coordinator"
REDELIVER_EVERY_S = 5.0
"""How often waiting dead letters are offered to the store again."""


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Coordinator:
    def __init__(self, settings: CoordinatorSettings) -> None:
        self._coordinator = settings.build()
        self._metrics = CoordinatorMetrics()
        self._redelivery = Periodic("dead-letters", self._redeliver_waiting, REDELIVER_EVERY_S, run_at_start=False)
        self._redelivery.start()

    def add_sightings(self, sightings: list[Sighting]) -> CoordinationReport:
        report = self._coordinator.add(sightings)
        self._metrics.record(report, [sighting.last_seen for sighting in sightings], time.time())
        return report

    def redeliver(self) -> int:
        """Offer the dead letters to the store now; how many alerts still wait (the rest stay in the spool)."""
        return self._coordinator.redeliver()

    def open_alerts(self) -> int:
        return self._coordinator.fuser.open_alerts

    def ready(self) -> bool:
        """True once the store is open and the state restored (the constructor has run)."""
        return True

    def _redeliver_waiting(self) -> None:
        if len(self._coordinator.dead_letters) or self._coordinator.counts_waiting:
            self._coordinator.redeliver()
        self._coordinator.forget_rejected()


def start_coordinator(settings: CoordinatorSettings, namespace: str | None = None) -> ActorHandle:
    """Start the deployment's Coordinator, or return the one already running under its name.

    Keep the handle for as long as the Coordinator should live: the actor is not detached, so
    Ray ends it when its last handle goes.
    """
    # mypy does not apply class decorators: at run time Coordinator is the ActorClass that @ray.remote made of it.
    actor_class = Coordinator.options(name=COORDINATOR_NAME, namespace=namespace, get_if_exists=True)  # type: ignore[attr-defined]
    handle = actor_class.remote(settings)
    ray.get(handle.ready.remote(), timeout=60)
    return handle
