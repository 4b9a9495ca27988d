"""The SQLite catalogue beside the vectors: watchlists, their enrolment batches and frozen versions.

Milvus holds one row per enrolled photo; what is not per vector lives here: who authorised a
watchlist, why, until when, and which versions of it have been frozen. Every entry row in
Milvus carries the number of the enrolment batch that wrote it. Batch numbers are allocated
here in a write transaction, so processes enrolling at once never share one.

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

Each operation opens its own short-lived connection: the catalogue is used from several
processes and threads, and SQLite's WAL mode with a busy timeout serialises the writers.
"""

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.errors import UnknownWatchlistError, WatchlistExistsError
from cluster.gallery.fingerprints import FrozenEntry
from cluster.gallery.records import Watchlist, WatchlistVersion
from cluster.matching.calibration import CalibratedThreshold

BUSY_TIMEOUT_S = 30.0
VERSION_ID_PATTERN = re.compile(r"^(?P<watchlist_id>.+)@v(?P<number>[1-9][0-9]*)$")
KNOWN_IDS_IN_ERRORS = 10
KEY_LOOKUP_CHUNK = 500
"""Person ids per lookup of enrolled keys (SQLite allows 999 parameters in older builds)."""
PENDING_BATCH_TIMEOUT_S = 3600
"""An enrolment batch pending longer than this was abandoned by a process that died."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS watchlists (
    watchlist_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    authorised_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    batch INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'failed')),
    entries INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, batch)
);
CREATE TABLE IF NOT EXISTS versions (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    number INTEGER NOT NULL,
    max_batch INTEGER NOT NULL,
    excluded_batches TEXT NOT NULL,
    entry_count INTEGER NOT NULL,
    digest TEXT NOT NULL,
    frozen_at INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, number)
);
CREATE TABLE IF NOT EXISTS enrolled_photos (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    person_id TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    face_index INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, person_id, photo_sha256, face_index)
);
CREATE TABLE IF NOT EXISTS version_entries (
    watchlist_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (watchlist_id, number, entry_id),
    FOREIGN KEY (watchlist_id, number) REFERENCES versions (watchlist_id, number)
);
CREATE TABLE IF NOT EXISTS calibrations (
    watchlist_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    threshold REAL NOT NULL,
    target_fpir REAL NOT NULL,
    list_size INTEGER NOT NULL,
    per_pair_rate REAL NOT NULL,
    expected_tpir REAL NOT NULL,
    fusion TEXT NOT NULL,
    cohort_digest TEXT NOT NULL,
    PRIMARY KEY (watchlist_id, number),
    FOREIGN KEY (watchlist_id, number) REFERENCES versions (watchlist_id, number)
);
"""

VERSION_COLUMNS = (
    "v.watchlist_id, v.number, v.max_batch, v.excluded_batches, v.entry_count, v.digest, v.frozen_at, w.expires_at,"
    " c.threshold, c.target_fpir, c.list_size, c.per_pair_rate, c.expected_tpir, c.fusion, c.cohort_digest"
)
VERSIONS_FROM = (
    "versions v JOIN watchlists w USING (watchlist_id) LEFT JOIN calibrations c USING (watchlist_id, number)"
)


def _version(row: tuple) -> WatchlistVersion:
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
    """Watchlists, batches and versions in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._reading() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (BEGIN IMMEDIATE), committed on success, rolled back on error."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            yield db
        finally:
            db.close()

    def create_watchlist(self, watchlist: Watchlist) -> None:
        """Record a new watchlist; WatchlistExistsError when the id is taken."""
        with self._transaction() as db:
            try:
                db.execute(
                    "INSERT INTO watchlists VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        watchlist.watchlist_id,
                        watchlist.name,
                        watchlist.reason,
                        watchlist.authorised_by,
                        watchlist.created_at,
                        watchlist.expires_at,
                    ),
                )
            except sqlite3.IntegrityError:
                raise WatchlistExistsError(
                    f"watchlist {watchlist.watchlist_id!r} already exists; pick another id or add to it"
                ) from None

    def watchlist(self, watchlist_id: str) -> Watchlist:
        """The watchlist; UnknownWatchlistError naming the known ones when there is none of that id."""
        with self._reading() as db:
            row = db.execute("SELECT * FROM watchlists WHERE watchlist_id = ?", (watchlist_id,)).fetchone()
            if row is not None:
                return Watchlist(*row)
            known = [r[0] for r in db.execute("SELECT watchlist_id FROM watchlists ORDER BY watchlist_id")]
        hint = f"known: {', '.join(known[:KNOWN_IDS_IN_ERRORS])}" if known else "none has been created yet"
        raise UnknownWatchlistError(f"no watchlist {watchlist_id!r} in {self.path} ({hint}); create it first")

    def watchlists(self) -> list[Watchlist]:
        with self._reading() as db:
            return [Watchlist(*row) for row in db.execute("SELECT * FROM watchlists ORDER BY watchlist_id")]

    def begin_batch(self, watchlist_id: str, now: int) -> int:
        """Allocate the watchlist's next batch number, recorded as pending."""
        with self._transaction() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(batch), 0) FROM batches WHERE watchlist_id = ?", (watchlist_id,)
            ).fetchone()
            batch = last + 1
            db.execute("INSERT INTO batches VALUES (?, ?, 'pending', 0, ?)", (watchlist_id, batch, now))
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
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE batches SET state = ?, entries = ? WHERE watchlist_id = ? AND batch = ? AND state = 'pending'",
                ("committed" if committed else "failed", entries if committed else 0, watchlist_id, batch),
            ).rowcount
            if committed and updated:
                db.executemany(
                    "INSERT OR REPLACE INTO enrolled_photos VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (watchlist_id, key.person_id, key.photo_sha256, key.face_index, entry_id, batch)
                        for key, entry_id in keys
                    ),
                )

    def enrolled_keys(self, watchlist_id: str, keys: Sequence[EnrolmentKey]) -> dict[EnrolmentKey, str]:
        """The entry id recorded for each of these keys that a committed batch enrolled."""
        wanted = set(keys)
        people = sorted({key.person_id for key in wanted})
        found: dict[EnrolmentKey, str] = {}
        with self._reading() as db:
            for start in range(0, len(people), KEY_LOOKUP_CHUNK):
                chunk = people[start : start + KEY_LOOKUP_CHUNK]
                rows = db.execute(
                    "SELECT person_id, photo_sha256, face_index, entry_id FROM enrolled_photos"
                    f" WHERE watchlist_id = ? AND person_id IN ({', '.join('?' * len(chunk))})",
                    (watchlist_id, *chunk),
                )
                for person_id, photo_sha256, face_index, entry_id in rows:
                    key = EnrolmentKey(person_id, photo_sha256, face_index)
                    if key in wanted:
                        found[key] = entry_id
        return found

    def frozen_bounds(self, watchlist_id: str, now: int) -> tuple[int, tuple[int, ...]]:
        """(max_batch, failed batches up to it) for a version frozen now: everything before the first pending batch.

        A batch still pending after PENDING_BATCH_TIMEOUT_S belongs to an enroller that died; it
        is marked failed here (its rows, if any, are never searched) so it cannot block later batches.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET state = 'failed' WHERE watchlist_id = ? AND state = 'pending' AND created_at < ?",
                (watchlist_id, now - PENDING_BATCH_TIMEOUT_S),
            )
            rows = db.execute(
                "SELECT batch, state FROM batches WHERE watchlist_id = ? ORDER BY batch", (watchlist_id,)
            ).fetchall()
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
        with self._transaction() as db:
            latest = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSIONS_FROM}"
                " WHERE v.watchlist_id = ? ORDER BY v.number DESC LIMIT 1",
                (watchlist_id,),
            ).fetchone()
            if latest is not None:
                version = _version(latest)
                if (version.max_batch, version.excluded_batches, version.digest, version.calibration) == (
                    max_batch,
                    excluded_batches,
                    digest,
                    calibration,
                ):
                    return version
            number = 1 if latest is None else latest[1] + 1
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (watchlist_id, number, max_batch, json.dumps(list(excluded_batches)), entry_count, digest, frozen_at),
            )
            db.executemany(
                "INSERT INTO version_entries VALUES (?, ?, ?, ?, ?)",
                ((watchlist_id, number, entry.entry_id, entry.expires_at, entry.fingerprint) for entry in entries),
            )
            if calibration is not None:
                db.execute(
                    "INSERT INTO calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        watchlist_id,
                        number,
                        calibration.threshold,
                        calibration.target_fpir,
                        calibration.list_size,
                        calibration.per_pair_rate,
                        calibration.expected_tpir,
                        calibration.fusion,
                        calibration.cohort_digest,
                    ),
                )
        return self.version(f"{watchlist_id}@v{number}")

    def version(self, version_id: str) -> WatchlistVersion:
        """The version named `<watchlist_id>@v<number>`; UnknownWatchlistError when there is none."""
        match = VERSION_ID_PATTERN.fullmatch(version_id)
        if match is None:
            raise UnknownWatchlistError(f"{version_id!r} is not a version id; expected <watchlist_id>@v<number>")
        watchlist_id, number = match["watchlist_id"], int(match["number"])
        with self._reading() as db:
            row = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSIONS_FROM} WHERE v.watchlist_id = ? AND v.number = ?",
                (watchlist_id, number),
            ).fetchone()
        if row is None:
            self.watchlist(watchlist_id)
            raise UnknownWatchlistError(f"watchlist {watchlist_id!r} has no version {number}; freeze one first")
        return _version(row)

    def versions(self, watchlist_id: str) -> list[WatchlistVersion]:
        """The watchlist's frozen versions, oldest first."""
        with self._reading() as db:
            rows = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSIONS_FROM} WHERE v.watchlist_id = ? ORDER BY v.number",
                (watchlist_id,),
            ).fetchall()
        return [_version(row) for row in rows]

    def version_entries(self, version: WatchlistVersion) -> list[FrozenEntry]:
        """The entries the version held when it was frozen (none for a version frozen before they were recorded)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT entry_id, expires_at, fingerprint FROM version_entries WHERE watchlist_id = ? AND number = ?",
                (version.watchlist_id, version.number),
            ).fetchall()
        return [FrozenEntry(*row) for row in rows]
