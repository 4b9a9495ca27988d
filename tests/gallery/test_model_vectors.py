"""Second-stage model vectors in the gallery: stored beside each entry, rescoring the shortlist, deleted with it.

Runs on both backends (milvus-lite and a real Milvus 2.3 server), as every gallery test does.
"""

import time

import numpy as np
import pytest

from cluster.gallery.errors import GalleryError, InvalidRecordError
from cluster.gallery.model_vectors import model_collection
from cluster.gallery.schema import WATCHLIST_COLLECTION
from cluster.matching.calibration import CalibratedThreshold
from cluster.vision.face import PRIMARY_MODEL
from tests.gallery.factories import SHORT_EXPIRY_S, entry, new_watchlist, unit_vectors

pytestmark = pytest.mark.slow

SECOND = "faceres"


def second_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 1024)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def calibrated(target: float, size: int) -> CalibratedThreshold:
    return CalibratedThreshold(4.0 + size / 1000, target, size, 1e-7, 0.6, "test fusion", "cohort")


def stored_second_vectors(gallery, ids) -> dict:
    return gallery.watchlists.model_vectors.fetch(SECOND, list(ids))


def test_search_rescores_the_shortlist_with_every_models_cosine(gallery):
    primary, second = unit_vectors(3, seed=11), second_vectors(3, seed=12)
    watchlist = new_watchlist(gallery)
    people = ["a", "b", "c"]
    gallery.watchlists.enrol(
        watchlist.watchlist_id,
        [entry(p, primary[i], extra_embeddings={SECOND: second[i]}) for i, p in enumerate(people)],
    )
    version = gallery.watchlists.freeze(watchlist.watchlist_id, models=(SECOND,))
    found = gallery.watchlists.search(primary[[1]], version, top_k=3, extra={SECOND: second[[1]]})
    best = found[0][0]
    assert best.entry.person_id == "b"
    assert best.model_scores[PRIMARY_MODEL] == pytest.approx(1.0, abs=1e-4)
    assert best.model_scores[SECOND] == pytest.approx(1.0, abs=1e-4)
    for candidate in found[0]:
        index = people.index(candidate.entry.person_id)
        assert candidate.model_scores[SECOND] == pytest.approx(float(second[1] @ second[index]), abs=1e-5)


def test_removal_and_purge_delete_the_second_models_vectors_too(gallery):
    primary, second = unit_vectors(3, seed=13), second_vectors(3, seed=14)
    now = int(time.time())
    watchlist = new_watchlist(gallery)
    gone = gallery.watchlists.enrol(
        watchlist.watchlist_id,
        [entry("gone", primary[0], extra_embeddings={SECOND: second[0]})],
    )
    short = gallery.watchlists.enrol(
        watchlist.watchlist_id,
        [entry("short", primary[1], expires_at=now + SHORT_EXPIRY_S, extra_embeddings={SECOND: second[1]})],
    )
    kept = gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry("kept", primary[2], extra_embeddings={SECOND: second[2]})]
    )
    every = gone.entry_ids + short.entry_ids + kept.entry_ids
    assert set(stored_second_vectors(gallery, every)) == set(every)

    assert gallery.watchlists.remove_person(watchlist.watchlist_id, "gone") == 1
    assert gallery.watchlists.purge_expired(now=now + 2 * SHORT_EXPIRY_S) == 1
    assert set(stored_second_vectors(gallery, every)) == set(kept.entry_ids), "a deleted entry left its vector"
    assert model_collection(WATCHLIST_COLLECTION, SECOND) == "watchlist__faceres"


def test_freezing_without_every_entrys_second_vector_is_refused(gallery):
    primary = unit_vectors(2, seed=15)
    watchlist = new_watchlist(gallery)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("old", primary[0])])
    with pytest.raises(InvalidRecordError, match=r"1 of 1 entries .* have no faceres embedding .* re-enrol"):
        gallery.watchlists.freeze(watchlist.watchlist_id, models=(SECOND,))
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    with pytest.raises(GalleryError, match="no faceres embedding"):
        gallery.watchlists.search(primary[[0]], version, top_k=1, extra={SECOND: second_vectors(1, seed=16)})


def test_a_batch_mixing_models_is_refused_before_anything_is_stored(gallery):
    primary, second = unit_vectors(2, seed=17), second_vectors(1, seed=18)
    watchlist = new_watchlist(gallery)
    with pytest.raises(InvalidRecordError, match="embed every face of a batch with the same models"):
        gallery.watchlists.enrol(
            watchlist.watchlist_id,
            [entry("a", primary[0], extra_embeddings={SECOND: second[0]}), entry("b", primary[1])],
        )
    assert gallery.watchlists.count(watchlist.watchlist_id) == 0


def test_a_version_records_its_calibration_and_a_new_rate_makes_a_new_version(gallery):
    primary, second = unit_vectors(2, seed=19), second_vectors(2, seed=20)
    watchlist = new_watchlist(gallery)
    gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry(p, primary[i], extra_embeddings={SECOND: second[i]}) for i, p in enumerate("ab")]
    )
    first = gallery.watchlists.freeze(watchlist.watchlist_id, calibrate=lambda n: calibrated(1e-3, n), models=(SECOND,))
    again = gallery.watchlists.freeze(watchlist.watchlist_id, calibrate=lambda n: calibrated(1e-3, n), models=(SECOND,))
    other = gallery.watchlists.freeze(watchlist.watchlist_id, calibrate=lambda n: calibrated(1e-2, n), models=(SECOND,))
    assert first.calibration == calibrated(1e-3, 2) and again.version_id == first.version_id
    assert other.version_id != first.version_id and other.calibration.target_fpir == 1e-2
    assert gallery.watchlists.version(first.version_id).calibration == first.calibration
