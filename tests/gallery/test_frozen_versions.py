"""A frozen version is checked against its rows in Milvus, on both backends: any change behind the catalogue is refused.

The tampering goes straight to Milvus with the client, as someone with access to the server
would: an embedding replaced, a row planted in a frozen batch, a row deleted. Expiry is the
one way rows may leave a version.
"""

import time
from typing import Any

import numpy as np
import pytest

from cluster.gallery.errors import FrozenVersionChangedError
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import WatchlistVersion
from cluster.gallery.schema import VECTOR_FIELD, WATCHLIST_COLLECTION, WATCHLIST_FIELDS
from tests.gallery.factories import DAY, entry, new_watchlist, unit_vectors

pytestmark = pytest.mark.slow


def _frozen(gallery: Gallery, seed: int, **overrides) -> tuple[WatchlistVersion, list[str]]:
    watchlist = new_watchlist(gallery)
    vectors = unit_vectors(3, seed=seed)
    people = [f"person-{index}" for index in range(3)]
    enrolment = gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry(person, vector, **overrides) for person, vector in zip(people, vectors)]
    )
    return gallery.watchlists.freeze(watchlist.watchlist_id), list(enrolment.entry_ids)


def _row(gallery: Gallery, entry_id: str) -> dict[str, Any]:
    rows = gallery.connection.run(
        WATCHLIST_COLLECTION,
        "read a row to tamper with",
        lambda client: client.query(
            WATCHLIST_COLLECTION,
            filter=f'entry_id == "{entry_id}"',
            output_fields=[*WATCHLIST_FIELDS, VECTOR_FIELD],
            consistency_level="Strong",
        ),
    )
    assert len(rows) == 1
    return {**rows[0], VECTOR_FIELD: [float(v) for v in rows[0][VECTOR_FIELD]]}


def _delete(gallery: Gallery, entry_id: str) -> None:
    gallery.connection.run(
        WATCHLIST_COLLECTION, "tamper", lambda client: client.delete(WATCHLIST_COLLECTION, ids=[entry_id])
    )


def _insert(gallery: Gallery, row: dict[str, Any]) -> None:
    gallery.connection.run(WATCHLIST_COLLECTION, "tamper", lambda client: client.insert(WATCHLIST_COLLECTION, [row]))


def test_a_replaced_embedding_is_refused(gallery):
    version, entry_ids = _frozen(gallery, seed=41)
    gallery.watchlists.verify(version)
    row = _row(gallery, entry_ids[1])
    row[VECTOR_FIELD] = unit_vectors(1, seed=99)[0].tolist()
    _delete(gallery, entry_ids[1])
    _insert(gallery, row)
    with pytest.raises(FrozenVersionChangedError, match=rf"changed since it was frozen: 1 changed \({entry_ids[1]}\)"):
        gallery.watchlists.verify(version)


def test_a_row_planted_in_a_frozen_batch_is_refused(gallery):
    version, entry_ids = _frozen(gallery, seed=42)
    planted = {**_row(gallery, entry_ids[0]), "entry_id": "planted-entry", "person_id": "someone-else"}
    _insert(gallery, planted)
    with pytest.raises(FrozenVersionChangedError, match=r"0 changed, 1 added \(planted-entry\), 0 missing"):
        gallery.watchlists.verify(version)


def test_a_deleted_row_is_refused_and_a_new_version_verifies(gallery):
    version, entry_ids = _frozen(gallery, seed=43)
    _delete(gallery, entry_ids[2])
    with pytest.raises(FrozenVersionChangedError, match=rf"1 missing \({entry_ids[2]}\).*lfr watchlist freeze"):
        gallery.watchlists.verify(version)
    refrozen = gallery.watchlists.freeze(version.watchlist_id)
    assert refrozen.number == version.number + 1 and refrozen.entry_count == 2
    gallery.watchlists.verify(refrozen)


def test_entries_may_leave_a_version_by_expiring(gallery):
    expires_at = int(time.time()) + DAY
    version, entry_ids = _frozen(gallery, seed=44, expires_at=expires_at)
    _delete(gallery, entry_ids[0])
    with pytest.raises(FrozenVersionChangedError):
        gallery.watchlists.verify(version)
    # After the entries' expiry the deleted one is what a purge leaves: not a change.
    gallery.watchlists.verify(version, now=expires_at + 1)


def test_embeddings_read_back_bit_for_bit(gallery):
    """Fingerprints hash the stored float32 bytes: what each backend reads back is exactly what was enrolled."""
    watchlist = new_watchlist(gallery)
    vectors = unit_vectors(2, seed=45)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("p", vectors[0]), entry("q", vectors[1])])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    rows = [_row(gallery, frozen.entry_id) for frozen in gallery.catalogue.version_entries(version)]
    assert all(
        np.array_equal(np.float32(row[VECTOR_FIELD]), vectors[0 if row["person_id"] == "p" else 1]) for row in rows
    )
