"""The watchlist catalogue beside the vectors: watchlists, their enrolment batches and frozen versions.

Milvus holds one row per enrolled photo; what is not per vector lives here: who authorised a
watchlist, why, until when, and which versions of it have been frozen. Every entry row in
Milvus carries the number of the enrolment batch that wrote it. Batch numbers are allocated
here in a write transaction, so processes enrolling at once never share one.

The catalogue lives in the records database (`database.url`, tables in
`cluster.gallery.catalogue_tables`), beside the alerts and the audit log: every process on every
node of a cluster opens the same one (PostgreSQL in a cluster, one SQLite file on one host).
Writes run in `Database.writing()`, which serialises writers across processes.

A version is "batches 1..max_batch, less the failed ones": the entries a deployment searches
when it binds to that version. Freezing never includes a batch that is still being written
(nor any batch after it), so a version never holds half a batch; a batch abandoned by a
process that died counts as failed after `PENDING_BATCH_TIMEOUT_S`.

`enrolled_photos` records, for entries enrolled by a bulk import, the key each came from
(person, SHA-256 of the photo's bytes, face index). The keys of a batch are written in the
transaction that marks it committed, and only then: a batch whose insert into Milvus failed,
or whose process died before committing, leaves no key, so its rows are enrolled again on the
next run instead of being counted as enrolled.

`version_entries` records, for each frozen version, every entry it holds with its expiry and
fingerprint (`cluster.gallery.fingerprints`), so that a version can be checked against the rows
in Milvus before it is deployed or searched.
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.database.schema import require_current
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.catalogue_tables import (
    batches,
    calibrations,
    enrolled_photos,
    people,
    version_entries,
    versions,
    watchlists,
)
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.errors import UnknownWatchlistError, WatchlistExistsError
from cluster.gallery.fingerprints import FrozenEntry
from cluster.gallery.records import PersonRecord, Watchlist, WatchlistVersion
from cluster.matching.calibration import CalibratedThreshold

VERSION_ID_PATTERN = re.compile(r"^(?P<watchlist_id>.+)@v(?P<number>[1-9][0-9]*)$")
KNOWN_IDS_IN_ERRORS = 10
KEY_LOOKUP_CHUNK = 500
"""Person ids per lookup of enrolled keys (SQLite allows 999 parameters in older builds)."""
NO_ATTRIBUTES = PersonAttributes().canonical()
PENDING_BATCH_TIMEOUT_S = 3600
"""An enrolment batch pending longer than this was abandoned by a process that died."""

VERSIONS = sa.select(
    versions.c.watchlist_id,
    versions.c.number,
    versions.c.max_batch,
    versions.c.excluded_batches,
    versions.c.entry_count,
    versions.c.digest,
    versions.c.frozen_at,
    watchlists.c.expires_at,
    calibrations.c.threshold,
    calibrations.c.target_fpir,
    calibrations.c.list_size,
    calibrations.c.per_pair_rate,
    calibrations.c.expected_tpir,
    calibrations.c.fusion,
    calibrations.c.cohort_digest,
).select_from(
    versions.join(watchlists, versions.c.watchlist_id == watchlists.c.watchlist_id).outerjoin(
        calibrations,
        sa.and_(calibrations.c.watchlist_id == versions.c.watchlist_id, calibrations.c.number == versions.c.number),
    )
)
"""Versions with their watchlist's expiry and their calibration (None when uncalibrated)."""


def _version(row: sa.Row) -> WatchlistVersion:
    watchlist_id, number, max_batch, excluded, entry_count, digest, frozen_at, expires_at = row[:8]
    calibration = None if row[8] is None else CalibratedThreshold(*row[8:])
    return WatchlistVersion(
        watchlist_id=watchlist_id,
        number=number,
        max_batch=max_batch,
        excluded_batches=tuple(json.loads(excluded)),
        entry_count=entry_count,
        digest=digest,
        frozen_at=frozen_at,
        watchlist_expires_at=expires_at,
        calibration=calibration,
    )


class Catalogue:
    """Watchlists, batches and versions in the records database.

    The database must be at the current schema (`lfr db upgrade`; an empty one is made when its
    audit log is first opened).
    """

    def __init__(self, database: Database) -> None:
        require_current(database)
        self.database = database
        self._owns_database = False

    @classmethod
    def from_config(cls, config: DatabaseConfig) -> "Catalogue":
        """The catalogue in the configured records database, opened here (a Ray actor's own connection) and closed
        by `close`."""
        database = Database(config.url, busy_timeout_s=config.busy_timeout_s, erasure=config.erasure)
        try:
            catalogue = cls(database)
        except BaseException:
            database.close()
            raise
        catalogue._owns_database = True
        return catalogue

    def close(self) -> None:
        """Close the database if `from_config` opened it (one handed in belongs to its owner)."""
        if self._owns_database:
            self.database.close()

    def create_watchlist(self, watchlist: Watchlist) -> None:
        """Record a new watchlist; WatchlistExistsError when the id is taken."""
        with self.database.writing() as db:
            taken = db.execute(
                sa.select(watchlists.c.watchlist_id).where(watchlists.c.watchlist_id == watchlist.watchlist_id)
            ).first()
            if taken is not None:
                raise WatchlistExistsError(
                    f"watchlist {watchlist.watchlist_id!r} already exists; pick another id or add to it"
                )
            db.execute(
                watchlists.insert().values(
                    watchlist_id=watchlist.watchlist_id,
                    name=watchlist.name,
                    reason=watchlist.reason,
                    authorised_by=watchlist.authorised_by,
                    created_at=watchlist.created_at,
                    expires_at=watchlist.expires_at,
                )
            )

    def watchlist(self, watchlist_id: str) -> Watchlist:
        """The watchlist; UnknownWatchlistError naming the known ones when there is none of that id."""
        with self.database.reading() as db:
            row = db.execute(sa.select(watchlists).where(watchlists.c.watchlist_id == watchlist_id)).first()
            if row is not None:
                return Watchlist(*row)
            known = list(
                db.execute(
                    sa.select(watchlists.c.watchlist_id).order_by(watchlists.c.watchlist_id).limit(KNOWN_IDS_IN_ERRORS)
                ).scalars()
            )
        hint = f"known: {', '.join(known)}" if known else "none has been created yet"
        raise UnknownWatchlistError(
            f"no watchlist {watchlist_id!r} in {self.database.describe()} ({hint}); create it first"
        )

    def watchlists(self) -> list[Watchlist]:
        with self.database.reading() as db:
            return [Watchlist(*row) for row in db.execute(sa.select(watchlists).order_by(watchlists.c.watchlist_id))]

    def begin_batch(self, watchlist_id: str, now: int) -> int:
        """Allocate the watchlist's next batch number, recorded as pending."""
        with self.database.writing() as db:
            last = db.execute(
                sa.select(sa.func.coalesce(sa.func.max(batches.c.batch), 0)).where(
                    batches.c.watchlist_id == watchlist_id
                )
            ).scalar_one()
            batch = int(last) + 1
            db.execute(
                batches.insert().values(
                    watchlist_id=watchlist_id, batch=batch, state="pending", entries=0, created_at=now
                )
            )
        return batch

    def finish_batch(
        self,
        watchlist_id: str,
        batch: int,
        committed: bool,
        entries: int,
        keys: Sequence[tuple[EnrolmentKey, str]] = (),
    ) -> None:
        """Mark a pending batch committed (with its entry count) or failed.

        keys: (key, entry id) of the batch's imported entries, recorded in the same transaction
        as the commit, and only when the batch was still pending (a batch already written off as
        failed by `frozen_bounds` records nothing). A key recorded before points at the new entry.
        """
        with self.database.writing() as db:
            updated = db.execute(
                batches.update()
                .where(
                    batches.c.watchlist_id == watchlist_id,
                    batches.c.batch == batch,
                    batches.c.state == "pending",
                )
                .values(state="committed" if committed else "failed", entries=entries if committed else 0)
            ).rowcount
            if committed and updated and keys:
                db.execute(
                    self._key_upsert(),
                    [
                        {
                            "watchlist_id": watchlist_id,
                            "person_id": key.person_id,
                            "photo_sha256": key.photo_sha256,
                            "face_index": key.face_index,
                            "entry_id": entry_id,
                            "batch": batch,
                        }
                        for key, entry_id in keys
                    ],
                )

    def _key_upsert(self) -> sa.Insert:
        """An insert of enrolled keys that points a key recorded before at its new entry (and batch)."""
        dialect = postgresql if self.database.backend == "postgresql" else sqlite
        insert = dialect.insert(enrolled_photos)
        return insert.on_conflict_do_update(
            index_elements=[column.name for column in enrolled_photos.primary_key.columns],
            set_={"entry_id": insert.excluded.entry_id, "batch": insert.excluded.batch},
        )

    def enrolled_keys(self, watchlist_id: str, keys: Sequence[EnrolmentKey]) -> dict[EnrolmentKey, str]:
        """The entry id recorded for each of these keys that a committed batch enrolled."""
        wanted = set(keys)
        people = sorted({key.person_id for key in wanted})
        found: dict[EnrolmentKey, str] = {}
        with self.database.reading() as db:
            for start in range(0, len(people), KEY_LOOKUP_CHUNK):
                chunk = people[start : start + KEY_LOOKUP_CHUNK]
                rows = db.execute(
                    sa.select(
                        enrolled_photos.c.person_id,
                        enrolled_photos.c.photo_sha256,
                        enrolled_photos.c.face_index,
                        enrolled_photos.c.entry_id,
                    ).where(enrolled_photos.c.watchlist_id == watchlist_id, enrolled_photos.c.person_id.in_(chunk))
                )
                for person_id, photo_sha256, face_index, entry_id in rows:
                    key = EnrolmentKey(person_id, photo_sha256, face_index)
                    if key in wanted:
                        found[key] = entry_id
        return found

    def record_people(self, records: Sequence[PersonRecord]) -> None:
        """Record each person's category and attributes.

        A person recorded before keeps their first recorded_at, and their attributes when this enrolment records
        none (a later photo enrolled without `--attribute` does not erase what was recorded).
        """
        if not records:
            return
        dialect = postgresql if self.database.backend == "postgresql" else sqlite
        insert = dialect.insert(people)
        upsert = insert.on_conflict_do_update(
            index_elements=[people.c.watchlist_id, people.c.person_id],
            set_={
                "category": insert.excluded.category,
                "attributes": sa.case(
                    (insert.excluded.attributes == NO_ATTRIBUTES, people.c.attributes), else_=insert.excluded.attributes
                ),
                "recorded_by": insert.excluded.recorded_by,
            },
        )
        with self.database.writing() as db:
            db.execute(
                upsert,
                [
                    {
                        "watchlist_id": record.watchlist_id,
                        "person_id": record.person_id,
                        "category": record.category,
                        "attributes": record.attributes.canonical(),
                        "recorded_by": record.recorded_by,
                        "recorded_at": record.recorded_at,
                    }
                    for record in records
                ],
            )

    def people(self, watchlist_id: str) -> list[PersonRecord]:
        """Every person recorded on the watchlist, by person id (none for people enrolled before revision 0006)."""
        query = sa.select(people).where(people.c.watchlist_id == watchlist_id).order_by(people.c.person_id)
        with self.database.reading() as db:
            return [
                PersonRecord(
                    watchlist_id=row.watchlist_id,
                    person_id=row.person_id,
                    category=row.category,
                    attributes=PersonAttributes.from_canonical(row.attributes),
                    recorded_by=row.recorded_by,
                    recorded_at=row.recorded_at,
                )
                for row in db.execute(query)
            ]

    def forget_person(self, watchlist_id: str, person_id: str) -> None:
        """Delete what enrolment recorded about the person, as their entries are deleted."""
        with self.database.writing() as db:
            db.execute(people.delete().where(people.c.watchlist_id == watchlist_id, people.c.person_id == person_id))

    def frozen_bounds(self, watchlist_id: str, now: int) -> tuple[int, tuple[int, ...]]:
        """(max_batch, failed batches up to it) for a version frozen now: everything before the first pending batch.

        A batch still pending after PENDING_BATCH_TIMEOUT_S belongs to an enroller that died; it
        is marked failed here (its rows, if any, are never searched) so it cannot block later batches.
        """
        with self.database.writing() as db:
            db.execute(
                batches.update()
                .where(
                    batches.c.watchlist_id == watchlist_id,
                    batches.c.state == "pending",
                    batches.c.created_at < now - PENDING_BATCH_TIMEOUT_S,
                )
                .values(state="failed")
            )
            rows = db.execute(
                sa.select(batches.c.batch, batches.c.state)
                .where(batches.c.watchlist_id == watchlist_id)
                .order_by(batches.c.batch)
            ).all()
        max_batch = 0
        failed: list[int] = []
        for batch, state in rows:
            if state == "pending":
                break
            max_batch = batch
            if state == "failed":
                failed.append(batch)
        return max_batch, tuple(failed)

    def add_version(
        self,
        watchlist_id: str,
        max_batch: int,
        excluded_batches: tuple[int, ...],
        entry_count: int,
        digest: str,
        frozen_at: int,
        calibration: CalibratedThreshold | None = None,
        entries: Sequence[FrozenEntry] = (),
    ) -> WatchlistVersion:
        """Record a frozen version and the entries it holds; the latest one instead when it already holds
        exactly these entries under the same calibration."""
        with self.database.writing() as db:
            latest = db.execute(
                VERSIONS.where(versions.c.watchlist_id == watchlist_id).order_by(versions.c.number.desc()).limit(1)
            ).first()
            if latest is not None:
                version = _version(latest)
                if (version.max_batch, version.excluded_batches, version.digest, version.calibration) == (
                    max_batch,
                    excluded_batches,
                    digest,
                    calibration,
                ):
                    return version
            number = 1 if latest is None else latest.number + 1
            db.execute(
                versions.insert().values(
                    watchlist_id=watchlist_id,
                    number=number,
                    max_batch=max_batch,
                    excluded_batches=json.dumps(list(excluded_batches)),
                    entry_count=entry_count,
                    digest=digest,
                    frozen_at=frozen_at,
                )
            )
            if entries:
                db.execute(
                    version_entries.insert(),
                    [
                        {
                            "watchlist_id": watchlist_id,
                            "number": number,
                            "entry_id": entry.entry_id,
                            "expires_at": entry.expires_at,
                            "fingerprint": entry.fingerprint,
                        }
                        for entry in entries
                    ],
                )
            if calibration is not None:
                db.execute(
                    calibrations.insert().values(
                        watchlist_id=watchlist_id,
                        number=number,
                        threshold=calibration.threshold,
                        target_fpir=calibration.target_fpir,
                        list_size=calibration.list_size,
                        per_pair_rate=calibration.per_pair_rate,
                        expected_tpir=calibration.expected_tpir,
                        fusion=calibration.fusion,
                        cohort_digest=calibration.cohort_digest,
                    )
                )
        return self.version(f"{watchlist_id}@v{number}")

    def version(self, version_id: str) -> WatchlistVersion:
        """The version named `<watchlist_id>@v<number>`; UnknownWatchlistError when there is none."""
        match = VERSION_ID_PATTERN.fullmatch(version_id)
        if match is None:
            raise UnknownWatchlistError(f"{version_id!r} is not a version id; expected <watchlist_id>@v<number>")
        watchlist_id, number = match["watchlist_id"], int(match["number"])
        with self.database.reading() as db:
            row = db.execute(
                VERSIONS.where(versions.c.watchlist_id == watchlist_id, versions.c.number == number)
            ).first()
        if row is None:
            self.watchlist(watchlist_id)
            raise UnknownWatchlistError(f"watchlist {watchlist_id!r} has no version {number}; freeze one first")
        return _version(row)

    def versions(self, watchlist_id: str) -> list[WatchlistVersion]:
        """The watchlist's frozen versions, oldest first."""
        with self.database.reading() as db:
            rows = db.execute(VERSIONS.where(versions.c.watchlist_id == watchlist_id).order_by(versions.c.number)).all()
        return [_version(row) for row in rows]

    def version_entries(self, version: WatchlistVersion) -> list[FrozenEntry]:
        """The entries the version held when it was frozen (none for a version frozen before they were recorded)."""
        with self.database.reading() as db:
            rows = db.execute(
                sa.select(
                    version_entries.c.entry_id, version_entries.c.expires_at, version_entries.c.fingerprint
                ).where(
                    version_entries.c.watchlist_id == version.watchlist_id,
                    version_entries.c.number == version.number,
                )
            ).all()
        return [FrozenEntry(*row) for row in rows]
