"""Fingerprints of frozen watchlist entries, the digest of a version, and what changed since freezing.

A deployment binds to a frozen version, but Milvus holds the rows, and anyone who can write to
Milvus can change an embedding, or add or delete a row inside a frozen batch, without touching
the catalogue. So freezing records, for every entry it holds, a fingerprint of what a search
would match on: the entry id, the person, the expiry and the embedding's exact float32 bytes.
The version's digest is the SHA-256 of those fingerprints, sorted (so it does not depend on the
order Milvus returns rows in); the audit log records it at freezing and at every deployment's
start. Checking a version recomputes each stored row's fingerprint and compares it with the
record: rows may only have left by expiring, never appeared, changed or vanished otherwise.
"""

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ENTRY_DOMAIN = b"lfr-watchlist-entry-v1\0"
VERSION_DOMAIN = b"lfr-watchlist-version-v1\0"
IDS_IN_ERRORS = 5


@dataclass(frozen=True)
class FrozenEntry:
    """One entry as a version froze it: which row, until when it may be searched, and its fingerprint."""

    entry_id: str
    expires_at: int
    fingerprint: str


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def entry_fingerprint(entry_id: str, person_id: str, expires_at: int, embedding: Sequence[float] | np.ndarray) -> str:
    """SHA-256 over the entry's canonical bytes: length-prefixed id and person, big-endian expiry, float32 LE vector."""
    vector = np.ascontiguousarray(embedding, dtype="<f4")
    hasher = hashlib.sha256(ENTRY_DOMAIN)
    hasher.update(_text(entry_id))
    hasher.update(_text(person_id))
    hasher.update(struct.pack(">q", int(expires_at)))
    hasher.update(struct.pack(">I", vector.size))
    hasher.update(vector.tobytes())
    return hasher.hexdigest()


def version_digest(entries: Iterable[FrozenEntry]) -> str:
    """SHA-256 over the sorted fingerprints: the same entries give the same digest in any order."""
    fingerprints = sorted(entry.fingerprint for entry in entries)
    return hashlib.sha256(VERSION_DOMAIN + "\n".join(fingerprints).encode()).hexdigest()


@dataclass(frozen=True)
class VersionDrift:
    """How the rows a search would see differ from what the version froze (all empty: unchanged)."""

    changed: tuple[str, ...]
    """Entries whose person, expiry or embedding differ from the frozen fingerprint."""
    added: tuple[str, ...]
    """Rows in the version's batches that it did not hold."""
    missing: tuple[str, ...]
    """Entries the version holds, not yet expired, that are no longer stored."""

    @property
    def unchanged(self) -> bool:
        return not (self.changed or self.added or self.missing)

    def describe(self) -> str:
        """e.g. `1 entry changed (e1), 0 added, 2 missing (e7, e9)`, ids cut to a few per kind."""
        parts = []
        for what, ids in (("changed", self.changed), ("added", self.added), ("missing", self.missing)):
            named = f" ({', '.join(ids[:IDS_IN_ERRORS])}{', ...' if len(ids) > IDS_IN_ERRORS else ''})" if ids else ""
            parts.append(f"{len(ids)} {what}{named}")
        return ", ".join(parts)


def version_drift(frozen: Sequence[FrozenEntry], found: Mapping[str, str], now: int) -> VersionDrift:
    """Compare the rows found now (entry id -> fingerprint, unexpired rows of the version's batches) with the record.

    An entry whose recorded expiry has passed may be gone (expired entries are purged); any
    other difference is a change made to Milvus behind the catalogue's back.
    """
    recorded = {entry.entry_id: entry for entry in frozen}
    added = sorted(entry_id for entry_id in found if entry_id not in recorded)
    changed = sorted(
        entry_id
        for entry_id, fingerprint in found.items()
        if entry_id in recorded and fingerprint != recorded[entry_id].fingerprint
    )
    missing = sorted(entry.entry_id for entry in frozen if entry.entry_id not in found and entry.expires_at > now)
    return VersionDrift(tuple(changed), tuple(added), tuple(missing))
