"""The one adapter between Milvus rows and hits and the gallery's typed records.

Everything that knows a Milvus field name or the shape of a pymilvus result lives here, so
the rest of the code (and everything outside the gallery) handles only `cluster.gallery.records`.
Hits are pymilvus `Hit`s: `hit.id` is the primary key, `hit["distance"]` the cosine
similarity, `hit["entity"]` the requested output fields.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cluster.gallery.fingerprints import FrozenEntry, entry_fingerprint
from cluster.gallery.records import (
    EnrolledEntry,
    SocialFace,
    SocialMatch,
    StoredSocialFace,
    WatchlistCandidate,
    WatchlistEntry,
)
from cluster.gallery.schema import VECTOR_FIELD
from cluster.vision.face import PRIMARY_MODEL


def watchlist_row(
    entry: WatchlistEntry, entry_id: str, watchlist_id: str, batch: int, enrolled_at: int, expires_at: int
) -> dict[str, Any]:
    """The Milvus row of one entry to enrol."""
    return {
        "entry_id": entry_id,
        "person_id": entry.person_id,
        "watchlist_id": watchlist_id,
        "label": entry.label,
        "category": entry.category,
        "source": entry.source,
        "authorised_by": entry.authorised_by,
        "expires_at": expires_at,
        "enrolled_at": enrolled_at,
        "batch": batch,
        VECTOR_FIELD: entry.embedding,
    }


def enrolled_entry(row: Mapping[str, Any], entry_id: str | None = None) -> EnrolledEntry:
    """A stored entry from a query row, or from a hit's entity and id (servers return the key as the hit's id)."""
    return EnrolledEntry(
        entry_id=str(row["entry_id"] if entry_id is None else entry_id),
        person_id=str(row["person_id"]),
        watchlist_id=str(row["watchlist_id"]),
        label=str(row["label"]),
        category=str(row["category"]),
        source=str(row["source"]),
        authorised_by=str(row["authorised_by"]),
        expires_at=int(row["expires_at"]),
        enrolled_at=int(row["enrolled_at"]),
        batch=int(row["batch"]),
    )


FROZEN_FIELDS = ("entry_id", "person_id", "expires_at", VECTOR_FIELD)
"""What a frozen entry's fingerprint covers, read back with each row when a version is frozen or checked."""


def frozen_entry(row: Mapping[str, Any]) -> FrozenEntry:
    """The fingerprinted entry of a query row holding FROZEN_FIELDS."""
    entry_id, expires_at = str(row["entry_id"]), int(row["expires_at"])
    fingerprint = entry_fingerprint(entry_id, str(row["person_id"]), expires_at, row[VECTOR_FIELD])
    return FrozenEntry(entry_id=entry_id, expires_at=expires_at, fingerprint=fingerprint)


def _ranked_hits(hits: Iterable[Any], min_similarity: float | None) -> Iterator[tuple[Any, float, int]]:
    """(hit, similarity, rank) for one probe's hits, most similar first, without those below `min_similarity`."""
    kept = (hit for hit in hits if min_similarity is None or float(hit["distance"]) >= min_similarity)
    for rank, hit in enumerate(kept, start=1):
        yield hit, float(hit["distance"]), rank


def watchlist_candidates(hits: Iterable[Any], min_similarity: float | None) -> list[WatchlistCandidate]:
    """One probe's hits (with every entry field) as candidates, most similar first, without those below
    `min_similarity`."""
    return [
        WatchlistCandidate(
            entry=enrolled_entry(hit["entity"], entry_id=hit.id),
            similarity=similarity,
            rank=rank,
            model_scores={PRIMARY_MODEL: similarity},
        )
        for hit, similarity, rank in _ranked_hits(hits, min_similarity)
    ]


@dataclass(frozen=True)
class ScoredId:
    """A hit of a search that returned no fields: which entry, and its primary cosine."""

    entry_id: str
    similarity: float


def scored_ids(hits: Iterable[Any], min_similarity: float) -> list[ScoredId]:
    """One probe's field-less hits at or above `min_similarity`, most similar first."""
    return [ScoredId(str(hit.id), similarity) for hit, similarity, _ in _ranked_hits(hits, min_similarity)]


def candidates_of(scored: Iterable[ScoredId], entries: Mapping[str, EnrolledEntry]) -> list[WatchlistCandidate]:
    """Candidates from scored ids and the entries fetched for them; an id whose entry is gone (removed since) is
    left out, and ranks close up."""
    kept = [hit for hit in scored if hit.entry_id in entries]
    return [
        WatchlistCandidate(
            entry=entries[hit.entry_id],
            similarity=hit.similarity,
            rank=rank,
            model_scores={PRIMARY_MODEL: hit.similarity},
        )
        for rank, hit in enumerate(kept, start=1)
    ]


def social_row(face: SocialFace, face_id: str) -> dict[str, Any]:
    """The Milvus row of one social-media face."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    return {
        "face_id": face_id,
        "platform": face.platform,
        "post_id": face.post_id,
        "url": face.url,
        "captured_at": face.captured_at,
        "place": face.place,
        "image_path": face.image_path,
        "box_x1": x1,
        "box_y1": y1,
        "box_x2": x2,
        "box_y2": y2,
        "authorised_by": face.authorised_by,
        "ingest_id": face.ingest_id,
        "expires_at": face.expires_at,
        VECTOR_FIELD: face.embedding,
    }


def stored_social_face(row: Mapping[str, Any], face_id: str | None = None) -> StoredSocialFace:
    """A stored social-media face from a query row, or from a hit's entity and id."""
    return StoredSocialFace(
        face_id=str(row["face_id"] if face_id is None else face_id),
        platform=str(row["platform"]),
        post_id=str(row["post_id"]),
        url=str(row["url"]),
        captured_at=int(row["captured_at"]),
        place=str(row["place"]),
        image_path=str(row["image_path"]),
        box=(float(row["box_x1"]), float(row["box_y1"]), float(row["box_x2"]), float(row["box_y2"])),
        authorised_by=str(row["authorised_by"]),
        ingest_id=str(row["ingest_id"]),
        expires_at=int(row["expires_at"]),
    )


def social_matches(hits: Iterable[Any], min_similarity: float | None) -> list[SocialMatch]:
    """One probe's social-media hits as matches, most similar first, without those below `min_similarity`."""
    return [
        SocialMatch(face=stored_social_face(hit["entity"], face_id=hit.id), similarity=similarity, rank=rank)
        for hit, similarity, rank in _ranked_hits(hits, min_similarity)
    ]
