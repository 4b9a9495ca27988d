"""The durable alert store: alerts, the sightings and crops behind them, and the officers' decisions.

Each change commits in one transaction with its audit entry, so the store and the audit log
never disagree about what happened. Who may change what:

- The Coordinator owns the evidence (sightings, confidence, updated_at). `save` inserts an
  alert or adds to it, and is idempotent on alert_id and sighting_id: a Coordinator that
  resends after a restart changes nothing and writes no audit entry. Stored sightings are
  never removed by a save, only by the purge.
- Officers own the decision: state, adjudications and holds change only through
  `transition`, `hold` and `release`. `save` never touches them, so a resend cannot undo a
  decision, and new evidence for a decided alert is refused (the Coordinator raises a new one).
- threshold and model record what was in force when the alert was raised: the first write wins.
- A rejection is also "not this person": in its transaction the alert becomes a suppression and
  its sightings' embeddings are deleted (`cluster.alerts.suppression_store`), then erased from
  the files. `suppressions` reads and counts them afterwards.

Retention: `purge` deletes alerts (with their sightings, crops, adjudications and suppressions)
raised more than `older_than_s` ago, at most 31 days, unless an officer holds them for an
investigation. `expire_rejections` deletes rejected alerts' crops once their oversight period is
over and suppression embeddings older than allowed (a deployment that never stopped cleanly).
The audit log is kept for ever, so its entries about an alert hold the alert id and facts
that identify no one: counts instead of cameras, keyed pseudonyms instead of the sighting ids (which
name the camera) and the person id, a keyed digest instead of a reason, whose text stays
in the alert's own rows and goes with them.
"""

from __future__ import annotations

import builtins
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog

from cluster.alerts.config import RETENTION_MAX_DAYS, SECONDS_PER_DAY
from cluster.alerts.counts import AlertStats, PurgeResult, RejectionExpiry
from cluster.alerts.errors import AlertClosedError, AlertConflictError, AlertNotFoundError, HoldError
from cluster.alerts.events import AlertEventKind, append_events
from cluster.alerts.lifecycle import SYSTEM_ACTOR_PREFIX, check_transition
from cluster.alerts.model import Alert, AlertState
from cluster.alerts.query import MAX_PAGE_SIZE, AlertFilter, AlertPage, after_cursor, encode_cursor, page_order
from cluster.alerts.rows import alert_from_rows, alert_row, sighting_row, stored_sighting
from cluster.alerts.suppression_store import SuppressionStore, rejected_crops, suppress_rejected
from cluster.alerts.tables import (
    adjudications,
    alerts,
    purged_alert_counts,
    sightings,
    suppressed_sightings,
    suppressions,
)
from cluster.audit.actions import AuditAction
from cluster.audit.holds import HeldRecords
from cluster.audit.log import AuditLog
from cluster.database.engine import Database
from cluster.database.schema import require_current

log = structlog.get_logger(__name__)

COORDINATOR_ACTOR = f"{SYSTEM_ACTOR_PREFIX}coordinator"
RETENTION_ACTOR = f"{SYSTEM_ACTOR_PREFIX}retention"
MAX_RETENTION_S = RETENTION_MAX_DAYS * SECONDS_PER_DAY
OPEN_STATES = (AlertState.NEW, AlertState.ACKNOWLEDGED)
ANY_ALERT = AlertFilter()
IDS_PER_QUERY = 500
"""Ids bound into one IN (...) list: far below SQLite's and PostgreSQL's parameter limits."""
PURGE_BATCH = 1000
"""Alerts deleted per purge transaction."""
HELD_ALERTS = HeldRecords(
    alerts,
    key="alert_id",
    created="created_at",
    noun="alert",
    held_action=AuditAction.ALERT_HELD,
    released_action=AuditAction.ALERT_RELEASED,
    conflict=HoldError,
    not_found=AlertNotFoundError,
    subject=str,
)
"""How officers hold alerts, and how a purge finds the expired ones nobody holds."""
ERASED_TABLES = (sightings.name, adjudications.name, alerts.name, suppressions.name, suppressed_sightings.name)
"""The tables a purge deletes from, whose deleted rows are then erased from the files."""


class AlertStore:
    """Alerts in SQLite or PostgreSQL, every change audited in the same transaction."""

    def __init__(self, database: Database, audit: AuditLog, *, clock: Callable[[], float] = time.time) -> None:
        if audit.database is not database:
            raise ValueError("the alert store and its audit log must share one Database, so each change commits once")
        self.database = database
        self.audit = audit
        self._clock = clock
        require_current(database)
        self.suppressions = SuppressionStore(database, audit, clock=clock)

    def save(self, alert: Alert, *, actor: str = COORDINATOR_ACTOR) -> Alert:
        """Insert the alert or add its new evidence; returns the alert as stored (state as officers left it)."""
        if not alert.sightings:
            raise ValueError(f"alert {alert.alert_id} has no sightings: an alert needs the evidence it was raised on")
        ids = [s.sighting_id for s in alert.sightings]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"alert {alert.alert_id} lists sightings {twice} more than once")
        row = alert_row(alert)
        new_sightings = {s.sighting_id: sighting_row(alert.alert_id, s) for s in alert.sightings}
        with self.database.writing() as connection:
            self._check_sightings_are_ours(connection, alert.alert_id, ids)
            stored = connection.execute(sa.select(alerts).where(alerts.c.alert_id == alert.alert_id)).one_or_none()
            if stored is None:
                self._insert(connection, alert, row, new_sightings, actor)
            else:
                self._add_evidence(connection, stored, row, new_sightings, actor)
            return self._load(connection, alert.alert_id)

    def get(self, alert_id: str) -> Alert:
        with self.database.reading() as connection:
            return self._load(connection, alert_id)

    def list(self, filters: AlertFilter = ANY_ALERT, limit: int = 50, cursor: str | None = None) -> AlertPage:
        """One page of alerts matching `filters`, newest first; pass `page.next_cursor` for the next."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}, got {limit}")
        query = sa.select(alerts).where(*filters.where())
        if cursor is not None:
            query = query.where(after_cursor(cursor))
        query = query.order_by(*page_order()).limit(limit + 1)
        with self.database.reading() as connection:
            rows = connection.execute(query).all()
            page = self._assemble(connection, rows[:limit])
        last = rows[limit - 1] if len(rows) > limit else None
        return AlertPage(page, None if last is None else encode_cursor(last.created_at, last.alert_id))

    def count(self, filters: AlertFilter = ANY_ALERT) -> int:
        query = sa.select(sa.func.count()).select_from(alerts).where(*filters.where())
        with self.database.reading() as connection:
            return connection.execute(query).scalar_one()

    def open_alerts(
        self, deployment_id: str, since: float, *, include_decided: bool = False
    ) -> builtins.list[Alert]:  # `list` here is the method above
        """A deployment's alerts with a sighting last seen at or after `since`, oldest first.

        The Coordinator rebuilds its Fuser from these after a restart: `since` is its watermark
        minus the fusion window, in the sightings' own (event) time, so recorded video replays
        the same way. Undecided alerts only, unless include_decided: the Fuser also keeps
        decided alerts for a while to recognise resent sightings.
        """
        recently_seen = sa.select(sightings.c.alert_id).where(sightings.c.last_seen >= since)
        query = sa.select(alerts).where(alerts.c.deployment_id == deployment_id, alerts.c.alert_id.in_(recently_seen))
        if not include_decided:
            query = query.where(alerts.c.state.in_([state.value for state in OPEN_STATES]))
        query = query.order_by(alerts.c.created_at, alerts.c.alert_id)
        with self.database.reading() as connection:
            return list(self._assemble(connection, connection.execute(query).all()))

    def transition(
        self, alert_id: str, new_state: AlertState | str, officer: str, reason: str = "", at: float | None = None
    ) -> Alert:
        """Record an officer's decision; raises IllegalTransitionError where the lifecycle forbids it."""
        target = _state(new_state)
        decided_at = self._time(at)
        with self.database.writing() as connection:
            row = self._row(connection, alert_id)
            current = AlertState(row.state)
            check_transition(alert_id, current, target, officer, reason)
            connection.execute(
                adjudications.insert().values(
                    alert_id=alert_id, state=target.value, officer=officer, reason=reason, at=decided_at
                )
            )
            connection.execute(
                alerts.update()
                .where(alerts.c.alert_id == alert_id)
                .values(state=target.value, updated_at=max(row.updated_at, decided_at))
            )
            self.audit.append(
                connection,
                officer,
                AuditAction.ADJUDICATION,
                alert_id,
                {
                    "from": current.value,
                    "to": target.value,
                    "reason_digest": self.audit.sealer.reason_digest(reason),
                    "decided_at": decided_at,
                },
            )
            append_events(connection, AlertEventKind.ADJUDICATED, [alert_id], officer, decided_at)
            if target is AlertState.REJECTED:
                suppress_rejected(connection, self.audit, alert_id, officer, decided_at)
                self.database.after_commit(connection, self._erase_rejected_embeddings)
            log.info("alert_adjudicated", alert_id=alert_id, state=target.value, officer=officer)
            return self._load(connection, alert_id)

    def hold(self, alert_id: str, officer: str, reason: str, at: float | None = None) -> Alert:
        """Keep the alert past its retention period for an investigation; `reason` names it."""
        held_at = self._time(at)
        with self.database.writing() as connection:
            HELD_ALERTS.hold(connection, self.audit, alert_id, officer, reason, held_at)
            append_events(connection, AlertEventKind.HELD, [alert_id], officer, held_at)
            return self._load(connection, alert_id)

    def release(self, alert_id: str, officer: str, reason: str, at: float | None = None) -> Alert:
        """End a hold: the alert is purged at the next run if its retention period has passed."""
        released_at = self._time(at)
        with self.database.writing() as connection:
            HELD_ALERTS.release(connection, self.audit, alert_id, officer, reason, released_at)
            append_events(connection, AlertEventKind.RELEASED, [alert_id], officer, released_at)
            return self._load(connection, alert_id)

    def purge(
        self, older_than_s: float = MAX_RETENTION_S, now: float | None = None, *, actor: str = RETENTION_ACTOR
    ) -> PurgeResult:
        """Delete alerts raised before now - older_than_s that nobody holds, with their sightings and crops.

        Works in batches of PURGE_BATCH alerts, one transaction and one audit entry each, so a
        backlog never holds the write lock for long; a purge that finds nothing is audited too,
        as evidence that retention runs. Every purge then erases what was deleted from the files
        (this one's rows and any an earlier purge could not erase); `crops_erased` False says a
        reader kept it from finishing and the deleted crops may still be on disk.
        """
        if not 0 < older_than_s <= MAX_RETENTION_S:
            raise ValueError(
                f"older_than_s must be within (0, {MAX_RETENTION_S:g}] ({RETENTION_MAX_DAYS} days), got {older_than_s}"
            )
        purged_at = self._time(now)
        cutoff = purged_at - older_than_s
        totals = {"alerts": 0, "sightings": 0, "crops": 0, "adjudications": 0}
        while True:
            with self.database.writing() as connection:
                expired = HELD_ALERTS.expired(connection, cutoff, limit=PURGE_BATCH)
                ids = [row.alert_id for row in expired.rows]
                append_events(connection, AlertEventKind.PURGED, ids, actor, purged_at)
                _count_purged(connection, ids)
                counts = self._delete(connection, ids)
                HELD_ALERTS.audit_purge(
                    connection, self.audit, actor, expired, counts, cutoff=cutoff, older_than_s=older_than_s
                )
            totals = {name: totals[name] + counts[name] for name in totals}
            if len(ids) < PURGE_BATCH:
                break
        erasure = self.database.erase_deleted(ERASED_TABLES)
        result = PurgeResult(
            cutoff=cutoff, held_kept=expired.held_kept, crops_erased=erasure.erased, erasure=erasure.detail, **totals
        )
        log.info(
            "alerts_purged",
            alerts=result.alerts,
            crops=result.crops,
            held_kept=result.held_kept,
            cutoff=cutoff,
            crops_erased=erasure.erased,
        )
        return result

    def expire_rejections(
        self, oversight_s: float, suppression_s: float, now: float | None = None, *, actor: str = RETENTION_ACTOR
    ) -> RejectionExpiry:
        """Delete the crops of alerts rejected more than `oversight_s` ago (unless held) and the embeddings of
        suppressions made more than `suppression_s` ago; one audit entry (also when nothing was due), then erased
        from the files."""
        if not 0 < oversight_s <= MAX_RETENTION_S:
            raise ValueError(f"oversight_s must be within (0, {MAX_RETENTION_S:g}], got {oversight_s}")
        if not suppression_s > 0:
            raise ValueError(f"suppression_s must be above 0, got {suppression_s}")
        at = self._time(now)
        with self.database.writing() as connection:
            crops = connection.execute(
                sightings.update().where(rejected_crops(at - oversight_s)).values(crop_jpeg=None)
            ).rowcount
            embeddings = self.suppressions.expire_in(connection, at - suppression_s, at)
            self.audit.append(
                connection,
                actor,
                AuditAction.PURGE,
                "rejections",
                {
                    "crops": crops,
                    "suppression_embeddings": embeddings,
                    "crop_cutoff": at - oversight_s,
                    "suppression_cutoff": at - suppression_s,
                },
            )
        erased = self.suppressions.erase_embeddings() if crops or embeddings else True
        log.info("rejections_expired", crops=crops, suppression_embeddings=embeddings, erased=erased)
        return RejectionExpiry(crops=crops, suppression_embeddings=embeddings, erased=erased)

    def stats(self, deployment_id: str, *, with_purged: bool = False) -> AlertStats:
        """The deployment's alerts by state; with_purged: those purged by retention counted too (held is always
        of the alerts still stored, since a held alert is never purged)."""
        by_state = (
            sa.select(alerts.c.state, sa.func.count())
            .where(alerts.c.deployment_id == deployment_id)
            .group_by(alerts.c.state)
        )
        purged = sa.select(purged_alert_counts.c.state, purged_alert_counts.c.alerts).where(
            purged_alert_counts.c.deployment_id == deployment_id
        )
        held = (
            sa.select(sa.func.count())
            .select_from(alerts)
            .where(alerts.c.deployment_id == deployment_id, alerts.c.held.is_(True))
        )
        reasons = (
            sa.select(adjudications.c.reason, sa.func.count())
            .join(alerts, alerts.c.alert_id == adjudications.c.alert_id)
            .where(alerts.c.deployment_id == deployment_id, adjudications.c.state == AlertState.REJECTED.value)
            .group_by(adjudications.c.reason)
            .order_by(adjudications.c.reason)
        )
        with self.database.reading() as connection:
            counts = {AlertState(state): n for state, n in connection.execute(by_state)}
            held_count = connection.execute(held).scalar_one()
            if with_purged:
                for state, n in connection.execute(purged):
                    counts[AlertState(state)] = counts.get(AlertState(state), 0) + n
            by_reason = {reason: n for reason, n in connection.execute(reasons)}
        return AlertStats(
            deployment_id=deployment_id,
            alerts=sum(counts.values()),
            new=counts.get(AlertState.NEW, 0),
            acknowledged=counts.get(AlertState.ACKNOWLEDGED, 0),
            confirmed=counts.get(AlertState.CONFIRMED, 0),
            rejected=counts.get(AlertState.REJECTED, 0),
            held=held_count,
            suppressed_repeats=self.suppressions.count(deployment_id),
            rejected_by_reason=by_reason,
        )

    def _erase_rejected_embeddings(self) -> None:
        """After a rejection commits: its deleted embeddings off the files (a failure is logged, retried next time)."""
        self.suppressions.erase_embeddings()

    def _insert(
        self,
        connection: sa.Connection,
        alert: Alert,
        row: dict[str, Any],
        new_sightings: dict[str, dict[str, Any]],
        actor: str,
    ) -> None:
        if alert.state != AlertState.NEW or alert.adjudications or alert.held:
            raise ValueError(
                f"alert {alert.alert_id} is new to the store, so it must be saved in state new with no adjudications"
                " and no hold; officers change those through transition() and hold()"
            )
        connection.execute(alerts.insert().values(**row, held=False))
        connection.execute(sightings.insert(), list(new_sightings.values()))
        self.audit.append(
            connection,
            actor,
            AuditAction.ALERT_RAISED,
            alert.alert_id,
            {
                "deployment_id": alert.deployment_id,
                "person_pseudonym": self.audit.sealer.person_pseudonym(alert.person_id),
                "watchlist_id": alert.watchlist_id,
                "confidence": row["confidence"],
                "threshold": row["threshold"],
                "model": alert.model,
                "cameras": len(alert.cameras),
                "sightings": len(new_sightings),
                "sighting_pseudonyms": [self.audit.sealer.sighting_pseudonym(sid) for sid in new_sightings],
            },
        )
        append_events(connection, AlertEventKind.RAISED, [alert.alert_id], actor, self._clock())
        log.info("alert_raised", alert_id=alert.alert_id, deployment_id=alert.deployment_id, cameras=alert.cameras)

    def _add_evidence(
        self,
        connection: sa.Connection,
        stored: sa.Row,
        row: dict[str, Any],
        new_sightings: dict[str, dict[str, Any]],
        actor: str,
    ) -> None:
        alert_id = stored.alert_id
        for name in ("deployment_id", "person_id", "watchlist_id"):
            if getattr(stored, name) != row[name]:
                raise AlertConflictError(
                    f"alert {alert_id} is stored with {name} {getattr(stored, name)!r}, not {row[name]!r}:"
                    " alert ids must be unique per person and deployment"
                )
        existing = {
            r.sighting_id: stored_sighting(r)
            for r in connection.execute(sa.select(sightings).where(sightings.c.alert_id == alert_id))
        }
        added = [sid for sid in new_sightings if sid not in existing]
        deleted = AlertState(stored.state) is AlertState.REJECTED
        changed = [
            sid
            for sid in new_sightings
            if sid in existing and existing[sid] != _as_stored(new_sightings[sid], existing[sid], deleted)
        ]
        if not added and not changed and row["confidence"] == stored.confidence:
            return
        if AlertState(stored.state).is_final:
            raise AlertClosedError(
                f"alert {alert_id} was already {stored.state} by an officer; raise a new alert for new sightings"
            )
        if added:
            connection.execute(sightings.insert(), [new_sightings[sid] for sid in added])
        for sid in changed:
            connection.execute(sightings.update().where(sightings.c.sighting_id == sid).values(**new_sightings[sid]))
        connection.execute(
            alerts.update()
            .where(alerts.c.alert_id == alert_id)
            .values(confidence=row["confidence"], updated_at=max(stored.updated_at, row["updated_at"]))
        )
        self.audit.append(
            connection,
            actor,
            AuditAction.ALERT_UPDATED,
            alert_id,
            {
                "added_sightings": len(added),
                "added_sighting_pseudonyms": [self.audit.sealer.sighting_pseudonym(sid) for sid in added],
                "updated_sightings": len(changed),
                "confidence": row["confidence"],
            },
        )
        append_events(connection, AlertEventKind.UPDATED, [alert_id], actor, self._clock())

    def _check_sightings_are_ours(self, connection: sa.Connection, alert_id: str, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids):
            owner = connection.execute(
                sa.select(sightings.c.sighting_id, sightings.c.alert_id).where(
                    sightings.c.sighting_id.in_(chunk), sightings.c.alert_id != alert_id
                )
            ).first()
            if owner is not None:
                raise AlertConflictError(
                    f"sighting {owner.sighting_id} already belongs to alert {owner.alert_id}, not {alert_id}:"
                    " a sighting is evidence for one alert only"
                )

    def _delete(self, connection: sa.Connection, ids: Sequence[str]) -> dict[str, int]:
        counts = {"alerts": 0, "sightings": 0, "crops": 0, "adjudications": 0}
        for chunk in _chunks(ids):
            of_chunk = sightings.c.alert_id.in_(chunk)
            counts["crops"] += connection.execute(
                sa.select(sa.func.count()).select_from(sightings).where(of_chunk, sightings.c.crop_jpeg.is_not(None))
            ).scalar_one()
            counts["adjudications"] += connection.execute(
                adjudications.delete().where(adjudications.c.alert_id.in_(chunk))
            ).rowcount
            connection.execute(suppressed_sightings.delete().where(suppressed_sightings.c.alert_id.in_(chunk)))
            connection.execute(suppressions.delete().where(suppressions.c.alert_id.in_(chunk)))
            counts["sightings"] += connection.execute(sightings.delete().where(of_chunk)).rowcount
            counts["alerts"] += connection.execute(alerts.delete().where(alerts.c.alert_id.in_(chunk))).rowcount
        return counts

    def _row(self, connection: sa.Connection, alert_id: str) -> sa.Row:
        return HELD_ALERTS.row(connection, alert_id)

    def _load(self, connection: sa.Connection, alert_id: str) -> Alert:
        return self._assemble(connection, [self._row(connection, alert_id)])[0]

    def _assemble(self, connection: sa.Connection, rows: Sequence[sa.Row]) -> tuple[Alert, ...]:
        """Alerts from their rows, with sightings and adjudications fetched in a few IN (...) queries."""
        ids = [row.alert_id for row in rows]
        sightings_of: dict[str, list[sa.Row]] = defaultdict(list)
        decisions_of: dict[str, list[sa.Row]] = defaultdict(list)
        for chunk in _chunks(ids):
            for s in connection.execute(
                sa.select(sightings)
                .where(sightings.c.alert_id.in_(chunk))
                .order_by(sightings.c.first_seen, sightings.c.sighting_id)
            ):
                sightings_of[s.alert_id].append(s)
            for a in connection.execute(
                sa.select(adjudications).where(adjudications.c.alert_id.in_(chunk)).order_by(adjudications.c.id)
            ):
                decisions_of[a.alert_id].append(a)
        return tuple(alert_from_rows(row, sightings_of[row.alert_id], decisions_of[row.alert_id]) for row in rows)

    def _time(self, at: float | None) -> float:
        value = self._clock() if at is None else at
        if not math.isfinite(value):
            raise ValueError(f"times are finite unix seconds, got {value}")
        return float(value)


def _state(value: AlertState | str) -> AlertState:
    try:
        return AlertState(value)
    except ValueError:
        raise ValueError(f"unknown alert state {value!r}; use one of {', '.join(AlertState)}") from None


def _as_stored(new: dict[str, Any], stored: dict[str, Any], rejected: bool) -> dict[str, Any]:
    """A resent sighting as the store would hold it now: a rejected alert's deleted embedding and crop stay deleted."""
    if not rejected:
        return new
    return {**new, **{name: None for name in ("embedding", "crop_jpeg") if stored[name] is None}}


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    ids = list(ids)
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield ids[start : start + IDS_PER_QUERY]


def _count_purged(connection: sa.Connection, ids: Sequence[str]) -> None:
    """Add the alerts about to be purged to their deployment's counts by final state, in the purge's transaction."""
    found: dict[tuple[str, str], int] = defaultdict(int)
    for chunk in _chunks(ids):
        query = (
            sa.select(alerts.c.deployment_id, alerts.c.state, sa.func.count())
            .where(alerts.c.alert_id.in_(chunk))
            .group_by(alerts.c.deployment_id, alerts.c.state)
        )
        for deployment_id, state, n in connection.execute(query):
            found[(deployment_id, state)] += n
    for (deployment_id, state), n in found.items():
        key = sa.and_(purged_alert_counts.c.deployment_id == deployment_id, purged_alert_counts.c.state == state)
        updated = connection.execute(
            purged_alert_counts.update().where(key).values(alerts=purged_alert_counts.c.alerts + n)
        ).rowcount
        if not updated:
            connection.execute(purged_alert_counts.insert().values(deployment_id=deployment_id, state=state, alerts=n))
