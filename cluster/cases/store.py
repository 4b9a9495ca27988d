"""The case store: cases and their candidates in the records database, every change audited in its transaction.

- `open` stores a search's case (authorisation, provenance, one item per candidate with its crop)
  with a CASE_OPENED entry; the search's caller learns the case id only once it is committed.
- `decide` records an officer's confirm or reject of one candidate (ADJUDICATION on
  `case:ID:N`); a decision is final and needs a reason and a named person, never the system.
- `hold` and `release` keep a case past its retention for an investigation, or end that.
- `purge` deletes cases opened longer ago than retention allows that nobody holds, with their
  items and crops and the report files their search wrote (which embed the same crops), audited
  (also when nothing was due), then erases the deleted rows from the database files.

Reads are audited where they happen: the control room's gate writes an entry for every request.
The audit log is kept for ever, so its entries hold pseudonyms instead of person ids and digests
instead of decision reasons (the text stays in the case's rows and goes with them); the case's
authorisation reason is recorded as it is, like a watchlist's.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from cluster.audit.actions import AuditAction
from cluster.audit.holds import HeldRecords
from cluster.audit.log import AuditLog
from cluster.cases.errors import CaseDecisionError, CaseNotFoundError
from cluster.cases.model import (
    SYSTEM_ACTOR_PREFIX,
    Candidate,
    Case,
    CaseAuthorisation,
    CaseHold,
    CaseItem,
    CaseKind,
    ItemDecision,
    ItemState,
    MatchKind,
    Provenance,
)
from cluster.cases.tables import case_items, cases
from cluster.database.engine import Database
from cluster.database.schema import require_current

log = structlog.get_logger(__name__)

RETENTION_ACTOR = f"{SYSTEM_ACTOR_PREFIX}retention"
MAX_LIST = 500
ERASED_TABLES = (case_items.name, cases.name)


@dataclass(frozen=True)
class CasePurge:
    """What one purge deleted, what holds kept, and whether the deleted rows are off the database files."""

    cutoff: float
    cases: int
    items: int
    crops: int
    reports: int
    held_kept: int
    erased: bool


def case_subject(case_id: str, number: int | None = None) -> str:
    """The audit subject of a case, or of one of its items."""
    return f"case:{case_id}" if number is None else f"case:{case_id}:{number}"


HELD_CASES = HeldRecords(
    cases,
    key="case_id",
    created="opened_at",
    noun="case",
    held_action=AuditAction.CASE_HELD,
    released_action=AuditAction.CASE_RELEASED,
    conflict=CaseDecisionError,
    not_found=CaseNotFoundError,
    subject=case_subject,
)
"""How officers hold cases, and how a purge finds the expired ones nobody holds."""


class CaseStore:
    """Cases in SQLite or PostgreSQL, every change audited in the same transaction."""

    def __init__(self, database: Database, audit: AuditLog, *, clock: Callable[[], float] = time.time) -> None:
        if audit.database is not database:
            raise ValueError("the case store and its audit log must share one Database, so each change commits once")
        self.database = database
        self.audit = audit
        self._clock = clock
        require_current(database)

    def open(
        self,
        kind: CaseKind,
        authorisation: CaseAuthorisation,
        provenance: Provenance,
        candidates: Sequence[Candidate],
        *,
        at: float | None = None,
        case_id: str | None = None,
    ) -> Case:
        """Store a search's case with every candidate it found, in one transaction with its audit entry.

        case_id: a new random one unless given (an import, or a test that needs to know it)."""
        case_id = case_id or uuid.uuid4().hex
        opened_at = self._time(at)
        with self.database.writing() as connection:
            connection.execute(
                cases.insert().values(
                    case_id=case_id,
                    kind=CaseKind(kind).value,
                    officer=authorisation.officer,
                    reason=authorisation.reason,
                    opened_at=opened_at,
                    query=provenance.query,
                    query_digest=provenance.query_digest,
                    model=provenance.model,
                    threshold=float(provenance.threshold),
                    sources=json.dumps(list(provenance.sources)),
                    sources_count=provenance.sources_count,
                    sources_digest=provenance.sources_digest,
                    faces_seen=provenance.faces_seen,
                    reports=json.dumps(list(provenance.reports)),
                    held=False,
                )
            )
            if candidates:
                connection.execute(
                    case_items.insert(),
                    [_item_row(case_id, number, candidate) for number, candidate in enumerate(candidates, start=1)],
                )
            self.audit.append(
                connection,
                authorisation.officer,
                AuditAction.CASE_OPENED,
                case_subject(case_id),
                {
                    "kind": CaseKind(kind).value,
                    "reason": authorisation.reason,
                    "query": provenance.query,
                    "query_digest": provenance.query_digest,
                    "threshold": provenance.threshold,
                    "sources": provenance.sources_count,
                    "sources_digest": provenance.sources_digest,
                    "faces_seen": provenance.faces_seen,
                    "items": len(candidates),
                    "person_pseudonyms": sorted(
                        {self.audit.sealer.person_pseudonym(candidate.person_id) for candidate in candidates}
                    ),
                },
            )
            log.info("case_opened", case_id=case_id, kind=CaseKind(kind).value, items=len(candidates))
            return self._load(connection, case_id)

    def get(self, case_id: str) -> Case:
        with self.database.reading() as connection:
            return self._load(connection, case_id)

    def list(self, limit: int = 50) -> tuple[Case, ...]:
        """The newest cases first, with their items (crops are read one by one with `crop`)."""
        if not 1 <= limit <= MAX_LIST:
            raise ValueError(f"limit must be within 1..{MAX_LIST}, got {limit}")
        query = sa.select(cases).order_by(cases.c.opened_at.desc(), cases.c.case_id).limit(limit)
        with self.database.reading() as connection:
            return tuple(self._assemble(connection, row) for row in connection.execute(query).all())

    def crop(self, case_id: str, number: int) -> bytes:
        """One candidate's crop (JPEG)."""
        with self.database.reading() as connection:
            self._row(connection, case_id)
            crop = connection.execute(
                sa.select(case_items.c.crop_jpeg).where(case_items.c.case_id == case_id, case_items.c.number == number)
            ).scalar_one_or_none()
        if crop is None:
            raise CaseNotFoundError(f"case {case_id} has no crop for item {number}")
        return crop

    def decide(
        self, case_id: str, number: int, state: ItemState | str, officer: str, reason: str, at: float | None = None
    ) -> Case:
        """Record an officer's confirm or reject of one candidate; final, with a reason."""
        target = _decision(state)
        where = f"case {case_id} item {number}"
        if not officer.strip() or officer.startswith(SYSTEM_ACTOR_PREFIX):
            raise ValueError(f"{where}: name the person who decides; the system never decides a candidate")
        if not reason.strip():
            raise ValueError(f"{where}: a {target} decision needs a reason (what was checked)")
        decided_at = self._time(at)
        with self.database.writing() as connection:
            item = self._load(connection, case_id).item(number)
            if item.state.is_final:
                raise CaseDecisionError(
                    f"{where} is already {item.state}, which is final: a decision cannot be changed;"
                    " record a correction in the case file"
                )
            connection.execute(
                case_items.update()
                .where(case_items.c.case_id == case_id, case_items.c.number == number)
                .values(state=target.value, decided_by=officer, decision_reason=reason, decided_at=decided_at)
            )
            self.audit.append(
                connection,
                officer,
                AuditAction.ADJUDICATION,
                case_subject(case_id, number),
                {
                    "from": item.state.value,
                    "to": target.value,
                    "person_pseudonym": self.audit.sealer.person_pseudonym(item.person_id),
                    "score": item.score,
                    "threshold": item.threshold,
                    "reason_digest": self.audit.sealer.reason_digest(reason),
                    "decided_at": decided_at,
                },
            )
            log.info("case_item_decided", case_id=case_id, number=number, state=target.value, officer=officer)
            return self._load(connection, case_id)

    def hold(self, case_id: str, officer: str, reason: str, at: float | None = None) -> Case:
        """Keep the case past its retention period for an investigation; `reason` names it."""
        held_at = self._time(at)
        with self.database.writing() as connection:
            HELD_CASES.hold(connection, self.audit, case_id, officer, reason, held_at)
            return self._load(connection, case_id)

    def release(self, case_id: str, officer: str, reason: str, at: float | None = None) -> Case:
        """End a hold: the case is purged at the next run if its retention period has passed."""
        released_at = self._time(at)
        with self.database.writing() as connection:
            HELD_CASES.release(connection, self.audit, case_id, officer, reason, released_at)
            return self._load(connection, case_id)

    def purge(self, older_than_s: float, now: float | None = None, *, actor: str = RETENTION_ACTOR) -> CasePurge:
        """Delete cases opened before now - older_than_s that nobody holds, with their items, crops and reports."""
        if not (math.isfinite(older_than_s) and older_than_s > 0):
            raise ValueError(f"older_than_s must be above 0, got {older_than_s}")
        purged_at = self._time(now)
        cutoff = purged_at - older_than_s
        with self.database.writing() as connection:
            expired = HELD_CASES.expired(connection, cutoff, cases.c.reports)
            ids = [row.case_id for row in expired.rows]
            of_purged = case_items.c.case_id.in_(ids)
            crops = connection.execute(
                sa.select(sa.func.count()).select_from(case_items).where(of_purged, case_items.c.crop_jpeg.is_not(None))
            ).scalar_one()
            items = connection.execute(case_items.delete().where(of_purged)).rowcount
            connection.execute(cases.delete().where(cases.c.case_id.in_(ids)))
            reports = [Path(path) for row in expired.rows for path in json.loads(row.reports)]
            counts = {"cases": len(ids), "items": items, "crops": crops, "reports": len(reports)}
            HELD_CASES.audit_purge(
                connection, self.audit, actor, expired, counts, cutoff=cutoff, older_than_s=older_than_s
            )
        deleted_reports = sum(_delete_file(path) for path in reports)
        erasure = self.database.erase_deleted(ERASED_TABLES) if ids else None
        result = CasePurge(
            cutoff=cutoff,
            cases=len(ids),
            items=items,
            crops=crops,
            reports=deleted_reports,
            held_kept=expired.held_kept,
            erased=True if erasure is None else erasure.erased,
        )
        log.info("cases_purged", cases=result.cases, crops=crops, reports=deleted_reports, held_kept=result.held_kept)
        return result

    def _row(self, connection: sa.Connection, case_id: str) -> sa.Row:
        return HELD_CASES.row(connection, case_id)

    def _load(self, connection: sa.Connection, case_id: str) -> Case:
        return self._assemble(connection, self._row(connection, case_id))

    def _assemble(self, connection: sa.Connection, row: sa.Row) -> Case:
        columns = [column for column in case_items.c if column.name != "crop_jpeg"]
        items = connection.execute(
            sa.select(*columns, case_items.c.crop_jpeg.is_not(None).label("has_crop"))
            .where(case_items.c.case_id == row.case_id)
            .order_by(case_items.c.number)
        ).all()
        hold = None if not row.held else CaseHold(row.held_by, row.held_reason, row.held_at)
        return Case(
            case_id=row.case_id,
            kind=CaseKind(row.kind),
            authorisation=CaseAuthorisation(row.officer, row.reason),
            opened_at=row.opened_at,
            provenance=Provenance(
                query=row.query,
                query_digest=row.query_digest,
                model=row.model,
                threshold=row.threshold,
                sources=tuple(json.loads(row.sources)),
                sources_count=row.sources_count,
                sources_digest=row.sources_digest,
                faces_seen=row.faces_seen,
                reports=tuple(json.loads(row.reports)),
            ),
            items=tuple(_item(item) for item in items),
            hold=hold,
        )

    def _time(self, at: float | None) -> float:
        value = self._clock() if at is None else at
        if not math.isfinite(value):
            raise ValueError(f"times are finite unix seconds, got {value}")
        return float(value)


def _item_row(case_id: str, number: int, candidate: Candidate) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "number": number,
        "source": candidate.source,
        "frame_index": candidate.frame_index,
        "frame_time_s": candidate.frame_time_s,
        "box": None if candidate.box is None else json.dumps([float(value) for value in candidate.box]),
        "match_kind": MatchKind(candidate.match_kind).value,
        "match_id": candidate.match_id,
        "person_id": candidate.person_id,
        "label": candidate.label,
        "score": float(candidate.score),
        "threshold": float(candidate.threshold),
        "model_scores": json.dumps({name: float(value) for name, value in candidate.model_scores.items()}),
        "crop_jpeg": candidate.crop_jpeg,
        "state": ItemState.PENDING.value,
    }


def _item(row: sa.Row) -> CaseItem:
    box = None if row.box is None else tuple(json.loads(row.box))
    decision = (
        None
        if row.decided_by is None
        else ItemDecision(ItemState(row.state), row.decided_by, row.decision_reason, row.decided_at)
    )
    return CaseItem(
        case_id=row.case_id,
        number=row.number,
        source=row.source,
        frame_index=row.frame_index,
        frame_time_s=row.frame_time_s,
        box=box,
        match_kind=MatchKind(row.match_kind),
        match_id=row.match_id,
        person_id=row.person_id,
        label=row.label,
        score=row.score,
        threshold=row.threshold,
        model_scores=json.loads(row.model_scores),
        state=ItemState(row.state),
        has_crop=bool(row.has_crop),
        decision=decision,
    )


def _decision(value: ItemState | str) -> ItemState:
    try:
        state = ItemState(value)
    except ValueError:
        raise ValueError(f"unknown decision {value!r}; use confirmed or rejected") from None
    if not state.is_final:
        raise ValueError("a decision confirms or rejects a candidate; pending is where it starts")
    return state


def _delete_file(path: Path) -> int:
    """Delete one report file the search wrote; 1 if it was there. A missing one was moved or deleted already; one
    that cannot be deleted raises the alarm, since it holds the crops the case no longer may."""
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.error("case_report_not_deleted", path=str(path), error=str(exc), consequence="its crops are still on disk")
        return 0
    return 1
