"""The Coordinator's work without Ray: fuse sightings from every camera and keep the alerts durable.

`AlertCoordinator` puts each sighting through the `Fuser` and saves every new or grown alert
in the `AlertStore`, which audits it. The store is the source of truth: after a restart the
coordinator rebuilds its Fuser from the store's recent alerts, so a camera that resends its
sightings (Ray retries calls to a restarted actor) changes nothing, and nothing is raised twice.

Officers decide alerts in the store, not here. Before a sighting merges into an open alert,
that alert's state is read back from the store: one an officer has since confirmed or
rejected takes no more evidence, and the sighting raises a new alert instead.

"Not this person": before fusion, each sighting is checked against the suppressions that
rejections left in the store (`cluster.fusion.suppression`), read afresh for its watchlist entry,
so a Coordinator restarted at any moment suppresses as before. A suppressed sighting is counted
in the store (once per sighting id) and raises or grows no alert. While the store is unavailable
the suppressions last read are applied, and the counts wait in memory until it is back (a
restart in between loses those counts, never an alert). `forget_rejected` (the actor calls it on
its timer) drops the embeddings of alerts rejected since from the Fuser's memory, as the store
deleted them.

A store that is briefly unavailable (a locked, read-only or unreachable database) loses no
sighting: a save is retried with backoff (`SaveRetry`), and an alert still unsaved after that
goes to the `DeadLetters` spool. Dead letters are redelivered, oldest first, before the next
save and whenever `redeliver` is called (the Coordinator actor calls it on a timer); while some
wait and the store still refuses them, new saves are dead-lettered at once instead of each
waiting out its retries, so the cameras' calls stay quick through an outage.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from cluster.alerts.errors import AlertClosedError
from cluster.alerts.model import Alert, Sighting
from cluster.alerts.opening import open_alert_store
from cluster.alerts.store import COORDINATOR_ACTOR, AlertStore
from cluster.alerts.suppression import SuppressedSighting, Suppression
from cluster.audit.config import AuditConfig
from cluster.cameras.config import CameraConfig
from cluster.database.config import DatabaseConfig
from cluster.database.engine import UNAVAILABLE_ERRORS
from cluster.fusion.config import FusionConfig
from cluster.fusion.dead_letters import DeadLetters, DeadLettersFullError
from cluster.fusion.fuser import Fuser, FusionKind, FusionOutcome
from cluster.fusion.suppression import SuppressionMatch, SuppressionRule
from cluster.fusion.topology import CameraTopology

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CoordinationReport:
    """What one batch of sightings did: alerts raised or grown (as stored), and duplicates ignored.

    dead_lettered: sightings of this batch the store could not take (kept in the spool);
    waiting: alerts in the spool after this batch, redelivered ones gone;
    suppressed: sightings of a person an officer rejected, counted instead of alerted.
    """

    raised: tuple[Alert, ...]
    grown: tuple[Alert, ...]
    duplicates: int
    dead_lettered: int = 0
    waiting: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class SaveRetry:
    """How a save waits for an unavailable store before its alert is dead-lettered: attempts, exponential waits."""

    attempts: int = 4
    initial_wait_s: float = 0.2
    max_wait_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or not 0.0 <= self.initial_wait_s <= self.max_wait_s:
            raise ValueError(f"SaveRetry needs attempts >= 1 and 0 <= initial_wait_s <= max_wait_s, got {self}")


class AlertCoordinator:
    """Fuses the sightings of one deployment into alerts and saves them; see the module docstring.

    Its calls are serialised by a lock, so a timer may call `redeliver` beside the actor's `add`.
    """

    def __init__(
        self,
        fuser: Fuser,
        store: AlertStore,
        dead_letters: DeadLetters,
        clock: Callable[[], float] = time.time,
        retry: SaveRetry = SaveRetry(),
        suppression: SuppressionRule | None = None,
    ) -> None:
        self.fuser = fuser
        self.suppression = suppression or SuppressionRule(fuser.deployment_id, fuser.config.suppression_threshold)
        if self.suppression.deployment_id != fuser.deployment_id:
            raise ValueError(
                f"the suppression rule is for deployment '{self.suppression.deployment_id}', the fuser for"
                f" '{fuser.deployment_id}': one coordinator serves one deployment"
            )
        self.store = store
        self.dead_letters = dead_letters
        self._clock = clock
        self._retry = retry
        self._lock = threading.Lock()
        self._store_down = False
        self._suppressions: dict[tuple[str, str], list[Suppression]] = {}
        self._uncounted: list[SuppressedSighting] = []
        self._rejections_read_until = float("-inf")

    @property
    def counts_waiting(self) -> int:
        """Suppressed sightings not yet counted in the store (it was unavailable)."""
        return len(self._uncounted)

    def restore(self) -> int:
        """Rebuild the Fuser from the store's alerts of this deployment still inside the fusion window."""
        since = self._clock() - self.fuser.config.open_window_s
        alerts = self.store.open_alerts(self.fuser.deployment_id, since, include_decided=True)
        open_count = self.fuser.restore(alerts)
        log.info("coordinator_restored", deployment_id=self.fuser.deployment_id, alerts=len(alerts), open=open_count)
        return open_count

    def add(self, sightings: Sequence[Sighting]) -> CoordinationReport:
        """Fuse and store each sighting in order; a resent sighting is a counted duplicate.

        Dead letters go first; a sighting the store cannot take now is dead-lettered, not lost.
        """
        with self._lock:
            self._redeliver()
            raised: dict[str, Alert] = {}
            grown: dict[str, Alert] = {}
            duplicates = dead_lettered = suppressed = 0
            for sighting in sightings:
                match = None if self.fuser.holds(sighting.sighting_id) else self._suppression_of(sighting)
                if match is not None:
                    if self._count_suppressed(sighting, match):
                        suppressed += 1
                    else:
                        duplicates += 1
                    continue
                outcome = self._fuse(sighting)
                if outcome.kind is FusionKind.DUPLICATE:
                    duplicates += 1
                    continue
                stored = self._save(outcome.alert, sighting)
                if stored is None:
                    dead_lettered += 1 if self.dead_letters.holds(outcome.alert.alert_id) else 0
                    continue
                target = raised if outcome.kind is FusionKind.NEW_ALERT or stored.alert_id in raised else grown
                target[stored.alert_id] = stored
            return CoordinationReport(
                tuple(raised.values()),
                tuple(grown.values()),
                duplicates,
                dead_lettered,
                len(self.dead_letters),
                suppressed,
            )

    def forget_rejected(self) -> int:
        """Drop from memory the embeddings of held alerts rejected since the last call; how many alerts."""
        with self._lock:
            try:
                made = self.store.suppressions.made_since(self.fuser.deployment_id, self._rejections_read_until)
                forgotten = 0
                for alert_id, created_at in made:
                    if self.fuser.alert(alert_id) is not None:
                        forgotten += self.fuser.update_alert(self.store.get(alert_id))
                    self._rejections_read_until = max(self._rejections_read_until, created_at)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("rejections_unread", error=_describe(exc))
                return 0
            return forgotten

    def redeliver(self) -> int:
        """Save the dead letters the store takes now, oldest first; returns how many alerts still wait."""
        with self._lock:
            self._redeliver()
            return len(self.dead_letters)

    def _redeliver(self) -> None:
        self._redeliver_letters()
        if not self._store_down:
            self._count_waiting()

    def _redeliver_letters(self) -> None:
        pending = self.dead_letters.pending()
        if not pending:
            self._store_down = False
            return
        delivered = 0
        for alert in pending:
            try:
                self.store.save(alert)
            except UNAVAILABLE_ERRORS as exc:
                self._store_down = True
                log.warning(
                    "dead_letters_waiting",
                    alerts=len(self.dead_letters),
                    sightings=self.dead_letters.sightings,
                    error=_describe(exc),
                )
                return
            except AlertClosedError:
                self._lost_to_a_decision(alert, self.store.get(alert.alert_id))
            self.dead_letters.delivered(alert.alert_id)
            delivered += 1
        self._store_down = False
        log.info("dead_letters_redelivered", alerts=delivered, waiting=len(self.dead_letters))

    def _suppression_of(self, sighting: Sighting) -> SuppressionMatch | None:
        """The suppression the sighting falls under, read from the store (its last answer while it is down)."""
        key = (sighting.person_id, sighting.watchlist_id)
        if not self._store_down:
            try:
                self._suppressions[key] = self.store.suppressions.in_force(
                    self.fuser.deployment_id, sighting.person_id, sighting.watchlist_id
                )
            except UNAVAILABLE_ERRORS as exc:
                log.warning("suppressions_unreadable", using="last read", error=_describe(exc))
        return self.suppression.match(sighting, self._suppressions.get(key, ()))

    def _count_suppressed(self, sighting: Sighting, match: SuppressionMatch) -> bool:
        """Record the suppressed sighting; False if it was counted before (a resend). Never alerted either way."""
        suppressed = match.suppressed(sighting)
        if self._store_down:
            self._uncounted.append(suppressed)
            return True
        try:
            return self.store.suppressions.record(suppressed, COORDINATOR_ACTOR)
        except UNAVAILABLE_ERRORS as exc:
            self._store_down = True
            self._uncounted.append(suppressed)
            log.warning("suppressed_sighting_count_waiting", waiting=len(self._uncounted), error=_describe(exc))
            return True

    def _count_waiting(self) -> None:
        """Count the suppressed sightings that waited for the store, oldest first."""
        while self._uncounted:
            try:
                self.store.suppressions.record(self._uncounted[0], COORDINATOR_ACTOR)
            except UNAVAILABLE_ERRORS as exc:
                self._store_down = True
                log.warning("suppressed_sighting_count_waiting", waiting=len(self._uncounted), error=_describe(exc))
                return
            self._uncounted.pop(0)

    def _fuse(self, sighting: Sighting) -> FusionOutcome:
        """The sighting through the Fuser, after closing an alert an officer decided that it would merge into.

        An unavailable store leaves the officer's decision unread: the sighting merges as before,
        and the store refuses the merge when it is back (`_lost_to_a_decision`).
        """
        target = self.fuser.merge_target(sighting)
        if target is not None and not self._store_down:
            try:
                stored = self.store.get(target)
            except UNAVAILABLE_ERRORS:
                stored = None
            if stored is not None and stored.state.is_final:
                self.fuser.update_alert(stored)
        return self.fuser.add(sighting)

    def _save(self, alert: Alert, sighting: Sighting) -> Alert | None:
        """Save with retries; None when the alert was dead-lettered (or lost to an officer's decision)."""
        if self._store_down:
            self._dead_letter(alert, sighting, "the store refused the waiting dead letters just now")
            return None
        try:
            stored = self._retrying()(self.store.save, alert)
        except AlertClosedError:
            self._lost_to_a_decision(alert, self.store.get(alert.alert_id))
            return None
        except UNAVAILABLE_ERRORS as exc:
            self._store_down = True
            self._dead_letter(alert, sighting, _describe(exc))
            return None
        self.dead_letters.delivered(alert.alert_id)
        return stored

    def _retrying(self) -> Retrying:
        retry = self._retry
        return Retrying(
            retry=retry_if_exception_type(UNAVAILABLE_ERRORS),
            stop=stop_after_attempt(retry.attempts),
            wait=wait_exponential(multiplier=retry.initial_wait_s, max=retry.max_wait_s),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "alert_save_retried",
                attempt=state.attempt_number,
                error=None if state.outcome is None else _describe(state.outcome.exception()),
            ),
        )

    def _dead_letter(self, alert: Alert, sighting: Sighting, error: str) -> None:
        try:
            self.dead_letters.put(alert)
        except DeadLettersFullError as full:
            log.error("sightings_lost", alert_id=alert.alert_id, sighting_id=sighting.sighting_id, reason=str(full))
            return
        log.error(
            "sightings_dead_lettered",
            alert_id=alert.alert_id,
            sighting_id=sighting.sighting_id,
            waiting_alerts=len(self.dead_letters),
            waiting_sightings=self.dead_letters.sightings,
            error=error,
        )

    def _lost_to_a_decision(self, alert: Alert, stored: Alert) -> None:
        """An officer decided the alert before this evidence reached the store, which refuses it: logged."""
        self.fuser.update_alert(stored)
        have = {s.sighting_id for s in stored.sightings}
        for sighting in alert.sightings:
            if sighting.sighting_id not in have:
                log.error(
                    "sighting_lost_to_a_decision",
                    alert_id=stored.alert_id,
                    sighting_id=sighting.sighting_id,
                    state=stored.state.value,
                )


def _describe(exc: BaseException | None) -> str:
    """An exception in one line, for the logs."""
    if exc is None:
        return "no exception"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"


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
        """The coordinator over a fresh Fuser and the configured store, restored from it.

        Dead letters an earlier run left are redelivered first, so the Fuser is restored with them.
        """
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
        dead_letters = DeadLetters(self.database.dead_letter_folder())
        coordinator = AlertCoordinator(fuser, open_alert_store(self.database, self.audit), dead_letters)
        coordinator.redeliver()
        coordinator.restore()
        return coordinator
