"""`Watchlists`: authorised watchlists, their enrolled faces and frozen versions, and the live search.

The catalogue (SQLite) holds each watchlist's authorisation and versions; the `watchlist`
collection in Milvus holds one row per enrolled photo. `search` is the live pipeline's match
stage: a batch of probe embeddings, one round trip, top-k candidates per face from one
frozen version of one watchlist, expired entries left out. Removal and purging delete rows
for real (a Strong query afterwards finds nothing) and ask Milvus to compact them away.
`verify` checks a frozen version against the rows in Milvus (`cluster.gallery.fingerprints`)
before a deployment starts on it or a retrospective search reads it.
"""

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import structlog

from cluster.gallery.bulk import count_rows, delete_matching, insert_rows, query_all, query_ids, search_rows
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig
from cluster.gallery.connection import MilvusConnection
from cluster.gallery.embeddings import as_embedding_batch
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.errors import (
    FrozenVersionChangedError,
    GalleryError,
    InvalidRecordError,
    WatchlistExpiredError,
)
from cluster.gallery.expressions import (
    batch_filter,
    expired_filter,
    frozen_entries_filter,
    watchlist_filter,
    watchlist_search_filter,
)
from cluster.gallery.fingerprints import FrozenEntry, version_digest, version_drift
from cluster.gallery.model_vectors import ModelVectors
from cluster.gallery.records import (
    LABEL_MAX,
    OFFICER_MAX,
    SOURCE_MAX,
    EnrolledEntry,
    Enrolment,
    Watchlist,
    WatchlistCandidate,
    WatchlistEntry,
    WatchlistVersion,
    check_id,
    check_text,
    check_time,
)
from cluster.gallery.rows import (
    FROZEN_FIELDS,
    candidates_of,
    enrolled_entry,
    frozen_entry,
    scored_ids,
    watchlist_candidates,
    watchlist_row,
)
from cluster.gallery.schema import WATCHLIST_COLLECTION, WATCHLIST_FIELDS
from cluster.matching.calibration import CalibratedThreshold
from cluster.vision.face import PRIMARY_MODEL

log = structlog.get_logger(__name__)


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else check_time(now, "now")


class Watchlists:
    """Watchlist operations over one Milvus connection and one catalogue."""

    def __init__(self, config: GalleryConfig, connection: MilvusConnection, catalogue: Catalogue) -> None:
        self.config = config
        self.connection = connection
        self.catalogue = catalogue
        self.model_vectors = ModelVectors(connection, WATCHLIST_COLLECTION, "entry_id", config.consistency)

    def create(
        self,
        watchlist_id: str,
        name: str,
        reason: str,
        authorised_by: str,
        expires_at: int,
        now: int | None = None,
    ) -> Watchlist:
        """Record a newly authorised watchlist; it can be enrolled into until `expires_at`."""
        created_at = _now(now)
        check_id(watchlist_id, "watchlist_id")
        check_text(name, "name", LABEL_MAX)
        check_text(reason, "reason", SOURCE_MAX)
        check_text(authorised_by, "authorised_by", OFFICER_MAX)
        if check_time(expires_at, "expires_at") <= created_at:
            raise InvalidRecordError(f"expires_at ({expires_at}) must be in the future (now is {created_at})")
        watchlist = Watchlist(watchlist_id, name, reason, authorised_by, created_at, expires_at)
        self.catalogue.create_watchlist(watchlist)
        log.info("watchlist_created", watchlist_id=watchlist_id, authorised_by=authorised_by, expires_at=expires_at)
        return watchlist

    def get(self, watchlist_id: str) -> Watchlist:
        """The watchlist; UnknownWatchlistError when there is none of that id."""
        return self.catalogue.watchlist(watchlist_id)

    def all(self) -> list[Watchlist]:
        return self.catalogue.watchlists()

    def enrol(
        self,
        watchlist_id: str,
        entries: Sequence[WatchlistEntry],
        now: int | None = None,
        keys: Sequence[EnrolmentKey] | None = None,
    ) -> Enrolment:
        """Store the entries as one batch; they are searched from the next frozen version on.

        An entry without its own expiry gets the watchlist's; none may outlive the watchlist.
        When the insert fails, the batch is marked failed and whatever reached Milvus is deleted.
        keys: one per entry, for a bulk import; recorded with the batch's commit (see `enrolled`).
        """
        enrolled_at = _now(now)
        if keys is not None and len(keys) != len(entries):
            raise InvalidRecordError(f"{len(keys)} enrolment keys for {len(entries)} entries; pass one per entry")
        watchlist = self.catalogue.watchlist(watchlist_id)
        if watchlist.expires_at <= enrolled_at:
            raise WatchlistExpiredError(
                f"watchlist {watchlist_id!r} expired at {watchlist.expires_at}; renew its authorisation"
                " (a new watchlist) before enrolling"
            )
        if not entries:
            raise InvalidRecordError(f"no entries to enrol into {watchlist_id!r}; pass at least one WatchlistEntry")
        expiries = [self._entry_expiry(index, entry, watchlist, enrolled_at) for index, entry in enumerate(entries)]
        models = sorted(entries[0].extra_embeddings)
        for index, entry in enumerate(entries):
            if sorted(entry.extra_embeddings) != models:
                raise InvalidRecordError(
                    f"entry {index} ({entry.person_id}) carries models {sorted(entry.extra_embeddings)}, entry 0"
                    f" carries {models}: embed every face of a batch with the same models"
                )
        batch = self.catalogue.begin_batch(watchlist_id, enrolled_at)
        entry_ids = [uuid.uuid4().hex for _ in entries]
        rows = [
            watchlist_row(entry, entry_id, watchlist_id, batch, enrolled_at, expires_at)
            for entry, entry_id, expires_at in zip(entries, entry_ids, expiries)
        ]
        try:
            insert_rows(self.connection, WATCHLIST_COLLECTION, rows, "entry_id", f"enrol into {watchlist_id}")
            for model in models:
                vectors = np.stack([entry.extra_embeddings[model] for entry in entries])
                self.model_vectors.insert(model, entry_ids, vectors)
        except GalleryError:
            self._abandon_batch(watchlist_id, batch)
            raise
        self.catalogue.finish_batch(
            watchlist_id, batch, committed=True, entries=len(rows), keys=list(zip(keys or (), entry_ids))
        )
        log.info("watchlist_enrolled", watchlist_id=watchlist_id, batch=batch, entries=len(rows))
        return Enrolment(watchlist_id=watchlist_id, batch=batch, entry_ids=tuple(entry_ids))

    def enrolled(self, watchlist_id: str, keys: Sequence[EnrolmentKey]) -> dict[EnrolmentKey, str]:
        """The entry id of each key already enrolled into the watchlist and still stored.

        A key counts only when its batch committed (the catalogue records it then) and its entry
        is still in Milvus: a person removed, or an entry purged, is enrolled again by the next import.
        """
        self.catalogue.watchlist(watchlist_id)
        recorded = self.catalogue.enrolled_keys(watchlist_id, keys)
        if not recorded:
            return {}
        rows = query_ids(
            self.connection,
            WATCHLIST_COLLECTION,
            "entry_id",
            list(recorded.values()),
            ["entry_id"],
            f"find enrolled entries of {watchlist_id}",
        )
        stored = {str(row["entry_id"]) for row in rows}
        return {key: entry_id for key, entry_id in recorded.items() if entry_id in stored}

    @staticmethod
    def _entry_expiry(index: int, entry: WatchlistEntry, watchlist: Watchlist, now: int) -> int:
        expires_at = watchlist.expires_at if entry.expires_at is None else entry.expires_at
        if expires_at > watchlist.expires_at:
            raise InvalidRecordError(
                f"entry {index} ({entry.person_id}): expires_at {expires_at} is after the watchlist's own expiry"
                f" {watchlist.expires_at}; no entry may outlive its authorisation"
            )
        if expires_at <= now:
            raise InvalidRecordError(
                f"entry {index} ({entry.person_id}): expires_at {expires_at} is not after now ({now})"
            )
        return expires_at

    def _abandon_batch(self, watchlist_id: str, batch: int) -> None:
        """Mark a batch failed and delete what reached Milvus of it (best effort: the server may be down)."""
        self.catalogue.finish_batch(watchlist_id, batch, committed=False, entries=0)
        try:
            deleted = delete_matching(
                self.connection, WATCHLIST_COLLECTION, batch_filter(watchlist_id, batch), "entry_id", "undo enrol"
            )
            self.model_vectors.delete(deleted)
        except GalleryError as error:
            log.warning("failed_batch_not_deleted", watchlist_id=watchlist_id, batch=batch, error=str(error))

    def freeze(
        self,
        watchlist_id: str,
        now: int | None = None,
        calibrate: Callable[[int], CalibratedThreshold] | None = None,
        models: Sequence[str] = (),
    ) -> WatchlistVersion:
        """A version holding every entry enrolled so far; the latest version when nothing changed since.

        `calibrate(entries)` gives the threshold for the version's size, recorded with it; every
        entry must have a vector of each second-stage model in `models`, or nothing is frozen.
        """
        frozen_at = _now(now)
        self.catalogue.watchlist(watchlist_id)
        max_batch, excluded = self.catalogue.frozen_bounds(watchlist_id, frozen_at)
        frozen = self._frozen_rows(
            frozen_entries_filter(watchlist_id, max_batch, excluded, frozen_at), f"freeze {watchlist_id}"
        )
        entry_ids = [entry.entry_id for entry in frozen]
        for model in models:
            lacking = len(entry_ids) - self.model_vectors.count(model, entry_ids)
            if lacking:
                raise InvalidRecordError(
                    f"{lacking} of {len(entry_ids)} entries of {watchlist_id!r} have no {model} embedding (enrolled"
                    f" before {model} was configured); remove and re-enrol those people, then freeze again"
                )
        calibration = calibrate(len(entry_ids)) if calibrate is not None and entry_ids else None
        version = self.catalogue.add_version(
            watchlist_id, max_batch, excluded, len(frozen), version_digest(frozen), frozen_at, calibration, frozen
        )
        log.info("watchlist_frozen", version_id=version.version_id, entries=version.entry_count, digest=version.digest)
        return version

    def _frozen_rows(self, expression: str, operation: str) -> list[FrozenEntry]:
        rows = query_all(self.connection, WATCHLIST_COLLECTION, expression, FROZEN_FIELDS, operation)
        return [frozen_entry(row) for row in rows]

    def verify(self, version: WatchlistVersion, now: int | None = None) -> None:
        """Check that the rows a search of the version would see now are the ones it froze, unchanged.

        Raises FrozenVersionChangedError, saying what differs and what to do, when an entry's person,
        expiry or embedding changed, a row appeared in or vanished from its batches (other than by
        expiring), or the catalogue's record of the version does not match its digest.
        """
        checked_at = _now(now)
        frozen = self.catalogue.version_entries(version)
        remedy = (
            f"do not deploy or search it: check the audit log for changes to {version.watchlist_id!r}, then freeze"
            f" a new version (`lfr watchlist freeze {version.watchlist_id}`) and bind the deployment to it"
        )
        if version_digest(frozen) != version.digest:
            raise FrozenVersionChangedError(
                f"the catalogue's record of {version.version_id} ({len(frozen)} entries) does not match the digest"
                f" frozen with it ({version.digest[:16]}...): it was frozen before embeddings were fingerprinted,"
                f" or the catalogue was altered; {remedy}"
            )
        rows = self._frozen_rows(watchlist_search_filter(version, checked_at), f"verify {version.version_id}")
        drift = version_drift(frozen, {entry.entry_id: entry.fingerprint for entry in rows}, checked_at)
        if not drift.unchanged:
            log.error("watchlist_version_changed", version_id=version.version_id, drift=drift.describe())
            raise FrozenVersionChangedError(
                f"watchlist {version.version_id} changed since it was frozen: {drift.describe()} entries (a person"
                f" removed since also counts); {remedy}"
            )
        log.info("watchlist_version_verified", version_id=version.version_id, entries=len(rows))

    def version(self, version_id: str) -> WatchlistVersion:
        """The frozen version `<watchlist_id>@v<n>`, for a deployment to bind to."""
        return self.catalogue.version(version_id)

    def versions(self, watchlist_id: str) -> list[WatchlistVersion]:
        self.catalogue.watchlist(watchlist_id)
        return self.catalogue.versions(watchlist_id)

    def search(
        self,
        embeddings: np.ndarray,
        version: WatchlistVersion,
        top_k: int | None = None,
        min_similarity: float | None = None,
        now: int | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> list[list[WatchlistCandidate]]:
        """Top-k candidates per probe face by the primary model, most similar first.

        embeddings: (n, 128) L2-normalised. Only the version's entries that have not expired
        at `now` are searched; candidates below `min_similarity` (primary cosine) are dropped.
        With `min_similarity`, the search returns only ids and scores, and the entries of the
        candidates at or above it are fetched in a second round trip, made only when there are
        any (a live probe almost always matches nobody). extra: second-stage model name -> (n, d)
        probe vectors; each candidate then carries every model's cosine in `model_scores` (one
        more round trip per model, for the shortlist).
        """
        probes = as_embedding_batch(embeddings, "probe embeddings")
        searched_at = _now(now)
        if version.watchlist_expires_at <= searched_at:
            raise WatchlistExpiredError(
                f"watchlist {version.watchlist_id!r} expired at {version.watchlist_expires_at}; a deployment may"
                " not search it any more"
            )
        if len(probes) == 0:
            return []
        limit = top_k or self.config.top_k
        expression = watchlist_search_filter(version, searched_at)
        operation = f"search {version.version_id}"
        if min_similarity is None:
            hits = self._search(probes, expression, limit, WATCHLIST_FIELDS, operation)
            found = [watchlist_candidates(probe_hits, None) for probe_hits in hits]
        else:
            hits = self._search(probes, expression, limit, (), operation)
            scored = [scored_ids(probe_hits, min_similarity) for probe_hits in hits]
            entries = self._entries_by_id(list(dict.fromkeys(hit.entry_id for row in scored for hit in row)), operation)
            found = [candidates_of(row, entries) for row in scored]
        return self._with_model_scores(found, probes, extra or {})

    def _search(
        self, probes: np.ndarray, expression: str, limit: int, fields: Sequence[str], operation: str
    ) -> list[list[Any]]:
        return search_rows(
            self.connection,
            WATCHLIST_COLLECTION,
            probes,
            expression,
            limit,
            fields,
            self.config.consistency,
            operation,
        )

    def _entries_by_id(self, entry_ids: list[str], operation: str) -> dict[str, EnrolledEntry]:
        """The entries of ids a search just found, read at the search's consistency (none asked: no round trip)."""
        if not entry_ids:
            return {}
        rows = query_ids(
            self.connection,
            WATCHLIST_COLLECTION,
            "entry_id",
            entry_ids,
            WATCHLIST_FIELDS,
            operation,
            consistency=self.config.consistency,
        )
        return {entry.entry_id: entry for entry in map(enrolled_entry, rows)}

    def _with_model_scores(
        self, found: list[list[WatchlistCandidate]], probes: np.ndarray, extra: Mapping[str, np.ndarray]
    ) -> list[list[WatchlistCandidate]]:
        """The candidates with every model's cosine; a second-stage model the shortlist lacks is an error."""
        if not extra:
            return found
        ids = [candidate.entry.entry_id for candidates in found for candidate in candidates]
        extra_probes = {
            model: as_embedding_batch(vectors, f"{model} probe embeddings", size=np.shape(vectors)[-1])
            for model, vectors in extra.items()
        }
        stored = {model: self.model_vectors.fetch(model, ids) for model in extra_probes}
        for model, vectors in stored.items():
            missing = set(ids) - set(vectors)
            if missing:
                raise GalleryError(
                    f"{len(missing)} watchlist entries have no {model} embedding; the version was frozen without"
                    f" {model}: re-enrol them and freeze a new version"
                )
        scored = []
        for row, candidates in enumerate(found):
            scored.append(
                [
                    replace(
                        candidate,
                        model_scores={
                            PRIMARY_MODEL: candidate.similarity,
                            **{
                                model: float(np.dot(extra_probes[model][row], stored[model][candidate.entry.entry_id]))
                                for model in extra_probes
                            },
                        },
                    )
                    for candidate in candidates
                ]
            )
        return scored

    def remove_person(self, watchlist_id: str, person_id: str) -> int:
        """Delete every entry of the person from the watchlist (all versions); how many were deleted."""
        self.catalogue.watchlist(watchlist_id)
        deleted = delete_matching(
            self.connection,
            WATCHLIST_COLLECTION,
            watchlist_filter(watchlist_id, person_id),
            "entry_id",
            f"remove {person_id} from {watchlist_id}",
        )
        self.model_vectors.delete(deleted)
        log.info("watchlist_person_removed", watchlist_id=watchlist_id, person_id=person_id, entries=len(deleted))
        return len(deleted)

    def purge_expired(self, now: int | None = None) -> int:
        """Delete every entry (of any watchlist) whose expiry has passed; how many were deleted."""
        purged_at = _now(now)
        deleted = delete_matching(
            self.connection, WATCHLIST_COLLECTION, expired_filter(purged_at), "entry_id", "purge expired entries"
        )
        self.model_vectors.delete(deleted)
        log.info("watchlist_expired_purged", entries=len(deleted), now=purged_at)
        return len(deleted)

    def count(self, watchlist_id: str) -> int:
        """Entries stored for the watchlist (expired ones included until purged)."""
        self.catalogue.watchlist(watchlist_id)
        return count_rows(
            self.connection, WATCHLIST_COLLECTION, watchlist_filter(watchlist_id), f"count {watchlist_id}"
        )

    def entries(self, watchlist_id: str, person_id: str | None = None) -> list[EnrolledEntry]:
        """The watchlist's stored entries (of one person when given), in batch order."""
        self.catalogue.watchlist(watchlist_id)
        rows = query_all(
            self.connection,
            WATCHLIST_COLLECTION,
            watchlist_filter(watchlist_id, person_id),
            WATCHLIST_FIELDS,
            f"list {watchlist_id}",
        )
        return sorted((enrolled_entry(row) for row in rows), key=lambda e: (e.batch, e.enrolled_at, e.entry_id))

    def get_entries(self, entry_ids: Sequence[str]) -> list[EnrolledEntry]:
        """The stored entries among these ids; a removed or purged id is simply absent."""
        rows = query_ids(self.connection, WATCHLIST_COLLECTION, "entry_id", entry_ids, WATCHLIST_FIELDS, "get entries")
        return [enrolled_entry(row) for row in rows]
