"""The live search path on both backends: a floor makes a probe that matches nobody one round trip without fields,
no search, with a floor or without, ever returns an entry outside the frozen version or past its expiry, and the
server's watchlist gets its Trie index on `watchlist_id` even when the collection was made without it."""

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from cluster.gallery.gallery import Gallery
from cluster.gallery.records import WatchlistCandidate
from cluster.gallery.schema import WATCHLIST_COLLECTION, WATCHLIST_ID_INDEX
from cluster.live.matching import GalleryMatcher
from cluster.matching.fusion import ModelNormalisation, ScoreFusion
from cluster.vision.face import PRIMARY_MODEL
from tests.gallery.factories import DAY, entry, new_watchlist, unit_vectors

pytestmark = pytest.mark.slow

FLOOR = 0.9
NEAR_NOISE = 0.02
"""Per-dimension noise of a probe near an enrolled vector: cosine ~0.97 to it, far above FLOOR."""


@dataclass
class RecordingClient:
    """The real MilvusClient, with a record of what each search and query on the watchlist asked the server for."""

    client: Any
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def search(self, collection: str, *args, **kwargs):
        if collection == WATCHLIST_COLLECTION:
            self.calls.append(("search", tuple(kwargs.get("output_fields") or ())))
        return self.client.search(collection, *args, **kwargs)

    def query(self, collection: str, *args, **kwargs):
        if collection == WATCHLIST_COLLECTION:
            self.calls.append(("query", tuple(kwargs.get("output_fields") or ())))
        return self.client.query(collection, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def _recording(gallery: Gallery, monkeypatch) -> RecordingClient:
    recorder = RecordingClient(gallery.connection._connected())
    monkeypatch.setattr(gallery.connection, "_connected", lambda: recorder)
    return recorder


def _near(vectors: np.ndarray, seed: int) -> np.ndarray:
    noisy = vectors + np.random.default_rng(seed).normal(scale=NEAR_NOISE, size=vectors.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def _summary(rows: list[list[WatchlistCandidate]]) -> list[list[tuple[str, int, float]]]:
    return [[(c.entry.entry_id, c.rank, round(c.similarity, 4)) for c in row] for row in rows]


def test_a_search_above_a_floor_fetches_entries_only_for_candidates_above_it(gallery, monkeypatch):
    """A stranger costs one search that returns no fields; a match adds one read of exactly the entries above the
    floor, and the candidates are those the full search finds above it, ranked the same."""
    vectors = unit_vectors(20, seed=61)
    watchlist = new_watchlist(gallery)
    enrolment = gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry(f"p-{i}", vector) for i, vector in enumerate(vectors)]
    )
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    strangers = unit_vectors(3, seed=62)
    recorder = _recording(gallery, monkeypatch)

    assert gallery.watchlists.search(strangers, version, top_k=5, min_similarity=FLOOR) == [[], [], []]
    assert recorder.calls == [("search", ())], "a probe that matches nobody: one round trip, no fields"

    recorder.calls.clear()
    probes = np.concatenate([_near(vectors[[3, 7]], seed=63), strangers[:1]])
    above = gallery.watchlists.search(probes, version, top_k=5, min_similarity=FLOOR)
    assert [call for call, _ in recorder.calls] == ["search", "query"]
    assert recorder.calls[0][1] == ()
    ids = enrolment.entry_ids
    assert [[c.entry.entry_id for c in row] for row in above] == [[ids[3]], [ids[7]], []]
    assert above[0][0].entry.person_id == "p-3" and above[0][0].entry.batch == enrolment.batch
    assert above[0][0].model_scores == {PRIMARY_MODEL: above[0][0].similarity}

    full = gallery.watchlists.search(probes, version, top_k=5)
    assert _summary(above) == _summary([[c for c in row if c.similarity >= FLOOR] for row in full])


def test_no_search_returns_an_entry_of_another_version_watchlist_or_past_its_expiry(gallery):
    """One face enrolled five ways; only the frozen version's unexpired entry is ever found, with a floor or not."""
    face = unit_vectors(1, seed=64)
    now = int(time.time())
    watchlist, other = new_watchlist(gallery), new_watchlist(gallery)
    kept = gallery.watchlists.enrol(watchlist.watchlist_id, [entry("kept", face[0])])
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("expiring", face[0], expires_at=now + DAY)])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("enrolled-after", face[0])])
    gallery.watchlists.enrol(other.watchlist_id, [entry("other-watchlist", face[0])])
    assert gallery.watchlists.freeze(other.watchlist_id).entry_count == 1

    probe = _near(face, seed=65)
    after_expiry = now + DAY + 1
    for floor in (None, FLOOR, -1.0):
        before = gallery.watchlists.search(probe, version, top_k=10, min_similarity=floor, now=now)
        assert sorted(c.entry.person_id for c in before[0]) == ["expiring", "kept"], f"floor {floor}"
        after = gallery.watchlists.search(probe, version, top_k=10, min_similarity=floor, now=after_expiry)
        assert [c.entry.entry_id for c in after[0]] == list(kept.entry_ids), f"floor {floor}"


def test_the_live_matcher_fetches_no_entry_for_a_face_below_the_threshold(gallery, monkeypatch):
    """With its threshold the matcher asks only for candidates that can reach it: the same decisions, no fields
    fetched for strangers."""
    vectors = unit_vectors(10, seed=66)
    watchlist = new_watchlist(gallery)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry(f"p-{i}", vector) for i, vector in enumerate(vectors)])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    fusion = ScoreFusion((ModelNormalisation(PRIMARY_MODEL, 0.0, 0.1, 1.0),), 1.0)
    threshold = 8.5  # the fused score is cosine / 0.1: a cosine of 0.85
    probes = np.concatenate([_near(vectors[[4]], seed=67), unit_vectors(2, seed=68)])
    unbounded = GalleryMatcher(gallery.watchlists, version, top_k=5, fusion=fusion).match(probes)
    recorder = _recording(gallery, monkeypatch)

    bounded = GalleryMatcher(gallery.watchlists, version, top_k=5, fusion=fusion, threshold=threshold).match(probes)
    assert [[c.person_id for c in row] for row in bounded] == [["p-4"], [], []]
    assert bounded[0][0].similarity == pytest.approx(unbounded[0][0].similarity)
    assert all(c.similarity < threshold for row in unbounded[1:] for c in row), "the strangers reach nobody"
    assert recorder.calls == [("search", ()), ("query", recorder.calls[1][1])]

    recorder.calls.clear()
    GalleryMatcher(gallery.watchlists, version, top_k=5, fusion=fusion, threshold=threshold).match(probes[1:])
    assert recorder.calls == [("search", ())]


def test_a_server_collection_made_before_the_watchlist_index_gets_it_when_opened(backend, gallery):
    """Galleries made before the Trie index on `watchlist_id` need nothing done: opening one adds it."""
    if backend.name == "milvus-lite":
        pytest.skip("milvus-lite has no Trie index; its filter is evaluated in Python")
    timeout = backend.config.timeouts.request_s

    def drop_index(client) -> None:
        client.release_collection(WATCHLIST_COLLECTION, timeout=timeout)
        client.drop_index(WATCHLIST_COLLECTION, WATCHLIST_ID_INDEX.name, timeout=timeout)
        client.load_collection(WATCHLIST_COLLECTION, timeout=timeout)

    assert WATCHLIST_ID_INDEX.name in gallery.connection.run(WATCHLIST_COLLECTION, "list", _indexes)
    gallery.connection.run(WATCHLIST_COLLECTION, "drop the index, as before it existed", drop_index)
    assert WATCHLIST_ID_INDEX.name not in gallery.connection.run(WATCHLIST_COLLECTION, "list", _indexes)

    with Gallery.open(backend.config, gallery.catalogue) as reopened:
        assert WATCHLIST_ID_INDEX.name in reopened.connection.run(WATCHLIST_COLLECTION, "list", _indexes)
        vectors = unit_vectors(2, seed=69)
        watchlist = new_watchlist(reopened)
        reopened.watchlists.enrol(watchlist.watchlist_id, [entry("p-0", vectors[0]), entry("p-1", vectors[1])])
        version = reopened.watchlists.freeze(watchlist.watchlist_id)
        found = reopened.watchlists.search(vectors[[1]], version, top_k=2, min_similarity=FLOOR)
        assert [c.entry.person_id for c in found[0]] == ["p-1"]


def _indexes(client) -> list[str]:
    return client.list_indexes(WATCHLIST_COLLECTION)
