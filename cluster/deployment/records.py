"""The deployment records: every deployment planned or run, as the public may know it.

A deployment's configuration lives in a file on the hosts that run it; the public records must
outlive it and list the deployments still to come. So each deployment is written down here when
`lfr serve` starts with it configured, when `lfr run` (or the demo) starts it, and when
`lfr serve record-deployment` plans one ahead: its place, window, purpose category, signage text,
watchlist version, whether it is at a protest or assembly and its exclusion windows (times and
reason), and nothing else (who authorised it and why stay in the configuration and the audit
log). A deployment recorded again with other terms (planned again, or run again under the same id)
replaces its record; each recording and each change is audited as CONFIG_CHANGE,
the change with the terms it replaced, so the history stays in the audit log.
"""

import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.schema import require_current
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.purpose import Purpose
from cluster.deployment.window import DeploymentWindow, Exclusion

metadata = sa.MetaData()

deployment_records = sa.Table(
    "deployment_records",
    metadata,
    sa.Column("deployment_id", sa.String(64), primary_key=True),
    sa.Column("place", sa.String, nullable=False),
    sa.Column("starts_at", sa.Double, nullable=False),
    sa.Column("ends_at", sa.Double, nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("signage_notice", sa.Text, nullable=False),
    sa.Column("watchlist_version", sa.String, nullable=False),
    sa.Column("recorded_at", sa.Double, nullable=False),
    sa.Column("recorded_by", sa.String, nullable=False),
    sa.Column("at_assembly", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("exclusions", sa.Text, nullable=False, server_default="[]"),
    sa.Index("deployment_records_by_start", "starts_at"),
)
"""exclusions: the exclusion windows as JSON, [{"starts_at": unix s, "ends_at": unix s, "reason": text}, ...]."""

TERMS = (
    "place",
    "starts_at",
    "ends_at",
    "purpose",
    "signage_notice",
    "watchlist_version",
    "at_assembly",
    "exclusions",
)
"""The columns that say what a deployment is; the others say when and by whom it was written down."""


class Phase(enum.StrEnum):
    """Where a deployment stands against its window at a given time."""

    PLANNED = "planned"
    ACTIVE = "active"
    PAST = "past"


class Recorded(enum.StrEnum):
    """What recording a deployment did."""

    ADDED = "added"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment as the public records hold it; its window carries its exclusion windows."""

    deployment_id: str
    place: str
    window: DeploymentWindow
    purpose: Purpose
    signage_notice: str
    watchlist_version: str
    recorded_at: float
    recorded_by: str
    at_assembly: bool = False

    def phase(self, now: float) -> Phase:
        if now < self.window.starts_at:
            return Phase.PLANNED
        return Phase.ACTIVE if now < self.window.ends_at else Phase.PAST


class DeploymentRecords:
    """The deployment records in the records database; recordings audited by `actor` in the same transaction."""

    def __init__(self, audit: AuditLog, *, clock: Callable[[], float] = time.time) -> None:
        self.database = audit.database
        self.audit = audit
        self._clock = clock
        require_current(self.database)

    def record(self, deployment: DeploymentConfig, *, actor: str) -> Recorded:
        """Write the deployment's terms down (or replace them); unchanged terms write nothing."""
        terms = _terms(deployment)
        subject = f"deployment:{deployment.id}"
        key = deployment_records.c.deployment_id == deployment.id
        with self.database.writing() as connection:
            row = connection.execute(sa.select(deployment_records).where(key)).one_or_none()
            stamp = {"recorded_at": float(self._clock()), "recorded_by": actor}
            if row is None:
                connection.execute(deployment_records.insert().values(deployment_id=deployment.id, **terms, **stamp))
                self.audit.append(
                    connection, actor, AuditAction.CONFIG_CHANGE, subject, {"change": "deployment_recorded", **terms}
                )
                return Recorded.ADDED
            before = {name: getattr(row, name) for name in TERMS if getattr(row, name) != terms[name]}
            if not before:
                return Recorded.UNCHANGED
            connection.execute(deployment_records.update().where(key).values(**terms, **stamp))
            self.audit.append(
                connection,
                actor,
                AuditAction.CONFIG_CHANGE,
                subject,
                {"change": "deployment_record_changed", **terms, "replaced": before},
            )
            return Recorded.CHANGED

    def all(self) -> list[DeploymentRecord]:
        """Every recorded deployment, the latest to start first."""
        query = sa.select(deployment_records).order_by(
            deployment_records.c.starts_at.desc(), deployment_records.c.deployment_id
        )
        with self.database.reading() as connection:
            return [_record(row) for row in connection.execute(query)]


def _terms(deployment: DeploymentConfig) -> dict[str, str | float | bool]:
    window = deployment.window
    return {
        "place": deployment.place,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "purpose": deployment.purpose.value,
        "signage_notice": deployment.signage_notice,
        "watchlist_version": deployment.watchlist_version,
        "at_assembly": deployment.at_assembly,
        "exclusions": json.dumps(
            [{"starts_at": e.starts_at, "ends_at": e.ends_at, "reason": e.reason} for e in window.exclusions],
            sort_keys=True,
        ),
    }


def _record(row: sa.Row) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=row.deployment_id,
        place=row.place,
        window=DeploymentWindow(
            row.starts_at, row.ends_at, tuple(Exclusion(**exclusion) for exclusion in json.loads(row.exclusions))
        ),
        purpose=Purpose(row.purpose),
        signage_notice=row.signage_notice,
        watchlist_version=row.watchlist_version,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        at_assembly=bool(row.at_assembly),
    )
