"""`SocialPostRecords`: the ingested posts themselves (provenance, text, triage) in the records database.

The faces of a post live in the gallery (`SocialFaces`); the post, with its text, its triage
score, the model and version that gave it, and whether it was flagged for an officer, lives here,
in `social_posts`. A row carries the same ingest id, authorisation and expiry as the post's faces,
so the retention rule (`gallery.social.retention_days`) and the deletions by post and by ingest
remove both together. Deleted rows are then erased from the database's files
(`Database.erase_deleted`), since a post's text is personal data.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import structlog

from cluster.database.engine import Database
from cluster.database.erasure import Erasure
from cluster.database.schema import require_current

log = structlog.get_logger(__name__)

metadata = sa.MetaData()

social_posts = sa.Table(
    "social_posts",
    metadata,
    sa.Column("row_id", sa.String(32), primary_key=True),
    sa.Column("ingest_id", sa.String, nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("post_id", sa.String, nullable=False),
    sa.Column("author", sa.String, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("posted_at", sa.BigInteger, nullable=False),
    sa.Column("place", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("media", sa.Integer, nullable=False),
    sa.Column("faces", sa.Integer, nullable=False),
    sa.Column("triage_score", sa.Double),
    sa.Column("triage_model", sa.String, nullable=False),
    sa.Column("triage_model_version", sa.String, nullable=False),
    sa.Column("triage_threshold", sa.Double, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("authorised_by", sa.String, nullable=False),
    sa.Column("ingested_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("social_posts_by_post", "platform", "post_id"),
    sa.Index("social_posts_by_ingest", "ingest_id"),
    sa.Index("social_posts_by_expiry", "expires_at"),
    sa.Index("social_posts_flagged", "flagged", "posted_at"),
)
"""triage_score: None when the post had no text. flagged: score >= triage_threshold; marks the post for an officer."""


@dataclass(frozen=True)
class PostRecord:
    """One ingested post as stored: provenance, text, what was found in it, its triage, and its authorisation."""

    row_id: str
    ingest_id: str
    platform: str
    post_id: str
    author: str
    url: str
    posted_at: int
    place: str
    text: str
    media: int
    faces: int
    triage_score: float | None
    triage_model: str
    triage_model_version: str
    triage_threshold: float
    flagged: bool
    authorised_by: str
    ingested_at: int
    expires_at: int


PostKey = tuple[str, str, str]
"""A stored post's (ingest id, platform, post id): its faces in the gallery carry the same three."""


@dataclass(frozen=True)
class PostsDeleted:
    """How many rows a deletion removed, and whether they were then erased from the database's files."""

    rows: int
    erased: bool


class SocialPostRecords:
    """The `social_posts` table of one records database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        require_current(database)

    def insert(self, records: Sequence[PostRecord]) -> None:
        """Store the posts in one transaction."""
        if not records:
            return
        with self.database.writing() as connection:
            connection.execute(social_posts.insert(), [vars(record) for record in records])
        log.info("social_posts_stored", posts=len(records), flagged=sum(record.flagged for record in records))

    def posts(
        self, *, ingest_id: str | None = None, flagged_only: bool = False, now: int | None = None
    ) -> list[PostRecord]:
        """Unexpired posts (of one ingest, or only the flagged ones when asked), oldest post first."""
        query = sa.select(social_posts).where(social_posts.c.expires_at > _now(now))
        if ingest_id is not None:
            query = query.where(social_posts.c.ingest_id == ingest_id)
        if flagged_only:
            query = query.where(social_posts.c.flagged)
        query = query.order_by(social_posts.c.posted_at, social_posts.c.row_id)
        with self.database.reading() as connection:
            return [PostRecord(**row._mapping) for row in connection.execute(query)]

    def of_posts(self, keys: Sequence[PostKey], *, now: int | None = None) -> dict[PostKey, PostRecord]:
        """The unexpired record of each post named by (ingest id, platform, post id), as a search's matches name
        theirs; a post purged or deleted since is absent."""
        wanted = set(keys)
        if not wanted:
            return {}
        query = sa.select(social_posts).where(
            social_posts.c.expires_at > _now(now),
            sa.tuple_(social_posts.c.ingest_id, social_posts.c.platform, social_posts.c.post_id).in_(sorted(wanted)),
        )
        with self.database.reading() as connection:
            records = [PostRecord(**row._mapping) for row in connection.execute(query)]
        return {(record.ingest_id, record.platform, record.post_id): record for record in records}

    def of_post(self, platform: str, post_id: str, *, now: int | None = None) -> PostRecord | None:
        """The post's unexpired record from its latest ingest (a post may be ingested more than once), or None."""
        query = (
            sa.select(social_posts)
            .where(
                social_posts.c.expires_at > _now(now),
                social_posts.c.platform == platform,
                social_posts.c.post_id == post_id,
            )
            .order_by(social_posts.c.ingested_at.desc(), social_posts.c.row_id)
            .limit(1)
        )
        with self.database.reading() as connection:
            row = connection.execute(query).first()
        return None if row is None else PostRecord(**row._mapping)

    def count(self) -> int:
        """Every row stored, expired or not (what a purge has left)."""
        with self.database.reading() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(social_posts)).scalar_one())

    def delete_post(self, platform: str, post_id: str) -> PostsDeleted:
        return self._delete(
            (social_posts.c.platform == platform) & (social_posts.c.post_id == post_id), "social_post_rows_deleted"
        )

    def delete_ingest(self, ingest_id: str) -> PostsDeleted:
        return self._delete(social_posts.c.ingest_id == ingest_id, "social_ingest_rows_deleted")

    def purge_expired(self, now: int | None = None) -> PostsDeleted:
        """Delete every post whose expiry has passed at `now` (default: the current time)."""
        return self._delete(social_posts.c.expires_at <= _now(now), "social_expired_rows_purged")

    def _delete(self, condition: sa.ColumnElement[bool], event: str) -> PostsDeleted:
        with self.database.writing() as connection:
            deleted = connection.execute(social_posts.delete().where(condition)).rowcount
        erasure: Erasure | None = self.database.erase_deleted([social_posts.name]) if deleted else None
        log.info(event, posts=deleted, erased=erasure.erased if erasure else True)
        return PostsDeleted(deleted, erasure.erased if erasure else True)


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now
