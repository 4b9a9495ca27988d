"""The durable side of "not this person": suppressions and the repeats they kept from the officers.

A rejection (`AlertStore.transition` to rejected) calls `suppress_rejected` inside its own
transaction, so the decision, the suppression and the deletion of the sightings' embeddings
commit together, with one audit entry each, or not at all; a Coordinator restarted at any moment
reads the suppression back from here. `SuppressionStore` is what the Coordinator and retention
use afterwards: the suppressions in force, a suppressed sighting counted (once, by sighting id,
so a resend after a restart is not counted twice), and the embeddings deleted when the
deployment stops or retention runs. Every change is audited; the audit entries hold counts and
pseudonyms, never a camera, a sighting id or a face.
"""

import time
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa
import structlog

from cluster.alerts.counts import SuppressionEnd
from cluster.alerts.rows import EMBEDDING_DTYPE, alert_from_rows
from cluster.alerts.suppression import SuppressedSighting, Suppression, pooled_embedding
from cluster.alerts.tables import adjudications, alerts, sightings, suppressed_sightings, suppressions
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database

log = structlog.get_logger(__name__)

EMBEDDING_TABLES = (sightings.name, suppressions.name)
"""The tables whose deleted embeddings are then erased from the database files."""
SIMILARITY_DIGITS = 4


def suppress_rejected(connection: sa.Connection, audit: AuditLog, alert_id: str, officer: str, at: float) -> None:
    """Inside the rejection's transaction: record the suppression and delete the sightings' embeddings.

    The database file still holds the deleted bytes until `erase_embeddings` runs after the commit.
    """
    row = connection.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id)).one()
    rows = connection.execute(sa.select(sightings).where(sightings.c.alert_id == alert_id)).all()
    alert = alert_from_rows(row, rows, [])
    embedding = pooled_embedding(alert.sightings)
    connection.execute(
        suppressions.insert().values(
            alert_id=alert_id,
            deployment_id=alert.deployment_id,
            person_id=alert.person_id,
            watchlist_id=alert.watchlist_id,
            embedding=None if embedding is None else np.asarray(embedding, dtype=EMBEDDING_DTYPE).tobytes(),
            created_at=at,
            officer=officer,
            ended_at=None,
        )
    )
    deleted = connection.execute(
        sightings.update()
        .where(sightings.c.alert_id == alert_id, sightings.c.embedding.is_not(None))
        .values(embedding=None)
    ).rowcount
    audit.append(
        connection,
        officer,
        AuditAction.SUPPRESSION_CREATED,
        alert_id,
        {
            "deployment_id": alert.deployment_id,
            "watchlist_id": alert.watchlist_id,
            "person_pseudonym": audit.sealer.person_pseudonym(alert.person_id),
            "sightings": len(alert.sightings),
            "embeddings_deleted": deleted,
            "suppresses": embedding is not None,
        },
    )
    log.info("suppression_created", alert_id=alert_id, deployment_id=alert.deployment_id, embeddings_deleted=deleted)


class SuppressionStore:
    """Suppressions and suppressed sightings in the records database, every change audited with it."""

    def __init__(self, database: Database, audit: AuditLog, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.audit = audit
        self._clock = clock

    def in_force(self, deployment_id: str, person_id: str, watchlist_id: str) -> list[Suppression]:
        """The deployment's suppressions of one watchlist entry that still hold an embedding, oldest first."""
        query = (
            sa.select(suppressions)
            .where(
                suppressions.c.deployment_id == deployment_id,
                suppressions.c.person_id == person_id,
                suppressions.c.watchlist_id == watchlist_id,
                suppressions.c.embedding.is_not(None),
            )
            .order_by(suppressions.c.created_at, suppressions.c.alert_id)
        )
        with self.database.reading() as connection:
            return [_suppression(row) for row in connection.execute(query)]

    def made_since(self, deployment_id: str, since: float) -> list[tuple[str, float]]:
        """(rejected alert id, when) of the deployment's suppressions made after `since`, oldest first."""
        query = (
            sa.select(suppressions.c.alert_id, suppressions.c.created_at)
            .where(suppressions.c.deployment_id == deployment_id, suppressions.c.created_at > since)
            .order_by(suppressions.c.created_at, suppressions.c.alert_id)
        )
        with self.database.reading() as connection:
            return [(row.alert_id, row.created_at) for row in connection.execute(query)]

    def record(self, suppressed: SuppressedSighting, actor: str) -> bool:
        """Count a suppressed sighting, audited; False (nothing written) if it was counted before."""
        with self.database.writing() as connection:
            known = connection.execute(
                sa.select(suppressed_sightings.c.sighting_id).where(
                    suppressed_sightings.c.sighting_id == suppressed.sighting_id
                )
            ).first()
            if known is not None:
                return False
            now = self._clock()
            connection.execute(
                suppressed_sightings.insert().values(
                    sighting_id=suppressed.sighting_id,
                    alert_id=suppressed.suppression_id,
                    deployment_id=suppressed.deployment_id,
                    camera_id=suppressed.camera_id,
                    first_seen=suppressed.first_seen,
                    last_seen=suppressed.last_seen,
                    frames=suppressed.frames,
                    similarity=suppressed.similarity,
                    suppressed_at=now,
                )
            )
            self.audit.append(
                connection,
                actor,
                AuditAction.SIGHTING_SUPPRESSED,
                suppressed.suppression_id,
                {
                    "deployment_id": suppressed.deployment_id,
                    "similarity": round(suppressed.similarity, SIMILARITY_DIGITS),
                    "frames": suppressed.frames,
                },
            )
        log.info(
            "sighting_suppressed",
            suppressed_by=suppressed.suppression_id,
            sighting_id=suppressed.sighting_id,
            similarity=round(suppressed.similarity, SIMILARITY_DIGITS),
        )
        return True

    def count(self, deployment_id: str) -> int:
        """Sightings of the deployment that suppressions kept from becoming alerts."""
        query = (
            sa.select(sa.func.count())
            .select_from(suppressed_sightings)
            .where(suppressed_sightings.c.deployment_id == deployment_id)
        )
        with self.database.reading() as connection:
            return connection.execute(query).scalar_one()

    def end_deployment(self, deployment_id: str, actor: str, at: float | None = None) -> SuppressionEnd:
        """The deployment stopped: delete its suppressions' embeddings (they suppress nothing after), audited."""
        ended_at = self._clock() if at is None else at
        with self.database.writing() as connection:
            ended = connection.execute(
                suppressions.update()
                .where(suppressions.c.deployment_id == deployment_id, suppressions.c.embedding.is_not(None))
                .values(embedding=None, ended_at=ended_at)
            ).rowcount
            self.audit.append(
                connection,
                actor,
                AuditAction.SUPPRESSION_ENDED,
                f"suppressions:{deployment_id}",
                {"embeddings_deleted": ended},
            )
        erased = self.erase_embeddings() if ended else True
        log.info("suppressions_ended", deployment_id=deployment_id, embeddings_deleted=ended, erased=erased)
        return SuppressionEnd(embeddings_deleted=ended, erased=erased)

    @staticmethod
    def expire_in(connection: sa.Connection, cutoff: float, at: float) -> int:
        """Inside retention's transaction: delete the embeddings of suppressions made before `cutoff`; how many."""
        return connection.execute(
            suppressions.update()
            .where(suppressions.c.created_at < cutoff, suppressions.c.embedding.is_not(None))
            .values(embedding=None, ended_at=at)
        ).rowcount

    def erase_embeddings(self) -> bool:
        """Take deleted embeddings off the database files; False if a reader kept it from finishing."""
        erasure = self.database.erase_deleted(EMBEDDING_TABLES)
        if not erasure.erased:
            log.error(
                "suppression_embeddings_not_erased",
                detail=erasure.detail,
                consequence="deleted face embeddings may still be readable from the database files",
            )
        return erasure.erased


def rejected_crops(cutoff: float) -> sa.ColumnElement[bool]:
    """Sightings of alerts nobody holds that an officer rejected before `cutoff`: their crops' oversight is over."""
    rejected_before = sa.select(adjudications.c.alert_id).where(
        adjudications.c.state == "rejected", adjudications.c.at < cutoff
    )
    not_held = sa.select(alerts.c.alert_id).where(alerts.c.held.is_(False))
    return sa.and_(
        sightings.c.alert_id.in_(rejected_before),
        sightings.c.alert_id.in_(not_held),
        sightings.c.crop_jpeg.is_not(None),
    )


def _suppression(row: sa.Row) -> Suppression:
    return Suppression(
        alert_id=row.alert_id,
        deployment_id=row.deployment_id,
        person_id=row.person_id,
        watchlist_id=row.watchlist_id,
        embedding=np.frombuffer(bytes(row.embedding), dtype=EMBEDDING_DTYPE).copy(),
        created_at=row.created_at,
        officer=row.officer,
    )
