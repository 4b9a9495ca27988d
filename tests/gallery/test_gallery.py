"""The gallery on both backends (milvus-lite and a real Milvus 2.3.5): the same tests, the same code path."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cluster.gallery.config import ServerBackendConfig
from cluster.gallery.errors import (
    InvalidEmbeddingError,
    InvalidRecordError,
    UnknownWatchlistError,
    WatchlistExpiredError,
)
from cluster.matching.config import MatchingConfig
from tests.gallery.conftest import ENROLLED_PEOPLE
from tests.gallery.factories import DAY, SHORT_EXPIRY_S, entry, new_watchlist, social_face, unit_vectors

pytestmark = pytest.mark.slow

THRESHOLD = MatchingConfig().similarity_threshold
REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 60


def test_enrolled_people_are_found_at_the_threshold_and_strangers_are_not(gallery, lfw_faces):
    """Enrol one real photo per person; their other photos find them at rank 1 above 0.92, strangers find nobody."""
    watchlist = new_watchlist(gallery)
    enrolment = gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry(person, lfw_faces.enrol[person]) for person in ENROLLED_PEOPLE]
    )
    assert len(enrolment.entry_ids) == len(ENROLLED_PEOPLE)
    version = gallery.watchlists.freeze(watchlist.watchlist_id)

    people = [person for person in ENROLLED_PEOPLE for _ in lfw_faces.probes[person]]
    probes = np.stack([probe for person in ENROLLED_PEOPLE for probe in lfw_faces.probes[person]])
    results = gallery.watchlists.search(probes, version, min_similarity=THRESHOLD)
    assert len(results) == len(probes)
    for person, probe, candidates in zip(people, probes, results):
        assert candidates, f"{person}: no candidate at or above {THRESHOLD}"
        best = candidates[0]
        assert (best.rank, best.entry.person_id) == (1, person)
        assert best.similarity == pytest.approx(float(probe @ lfw_faces.enrol[person]), abs=1e-4)
        assert best.entry.watchlist_id == watchlist.watchlist_id and best.entry.batch == enrolment.batch

    strangers = np.stack([probe for probes in lfw_faces.strangers.values() for probe in probes])
    assert gallery.watchlists.search(strangers, version, min_similarity=THRESHOLD) == [[] for _ in strangers]
    unfiltered = gallery.watchlists.search(strangers, version, top_k=2)
    assert all(len(candidates) == 2 and candidates[0].similarity < THRESHOLD for candidates in unfiltered)


def test_search_is_confined_to_one_watchlist_and_its_frozen_version(gallery):
    vectors = unit_vectors(6, seed=1)
    first, second = new_watchlist(gallery), new_watchlist(gallery)
    gallery.watchlists.enrol(first.watchlist_id, [entry("p-0", vectors[0]), entry("p-1", vectors[1])])
    gallery.watchlists.enrol(second.watchlist_id, [entry("p-2", vectors[2])])
    version_1 = gallery.watchlists.freeze(first.watchlist_id)
    assert gallery.watchlists.freeze(first.watchlist_id) == version_1, "nothing changed: the same version"

    later = gallery.watchlists.enrol(first.watchlist_id, [entry("p-3", vectors[3])])
    version_2 = gallery.watchlists.freeze(first.watchlist_id)
    assert (version_1.number, version_2.number) == (1, 2)
    assert (version_1.entry_count, version_2.entry_count) == (2, 3)
    assert version_1.digest != version_2.digest
    assert gallery.watchlists.version(version_1.version_id) == version_1
    assert gallery.watchlists.versions(first.watchlist_id) == [version_1, version_2]

    found_v1 = gallery.watchlists.search(vectors[[0, 2, 3]], version_1, top_k=5)
    assert [c.entry.person_id for c in found_v1[0]] == ["p-0", "p-1"]
    assert "p-2" not in {c.entry.person_id for row in found_v1 for c in row}, "another watchlist's entry"
    assert "p-3" not in {c.entry.person_id for row in found_v1 for c in row}, "enrolled after version 1 froze"
    found_v2 = gallery.watchlists.search(vectors[[3]], version_2, top_k=1)
    assert found_v2[0][0].entry.entry_id == later.entry_ids[0]
    assert gallery.watchlists.count(first.watchlist_id) == 3
    assert gallery.watchlists.count(second.watchlist_id) == 1
    assert [e.person_id for e in gallery.watchlists.entries(second.watchlist_id)] == ["p-2"]


def test_removed_person_is_neither_found_nor_stored(gallery):
    vectors = unit_vectors(3, seed=2)
    watchlist = new_watchlist(gallery)
    enrolment = gallery.watchlists.enrol(
        watchlist.watchlist_id,
        [entry("keep", vectors[0]), entry("gone", vectors[1]), entry("gone", vectors[2], source="second photo")],
    )
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    assert gallery.watchlists.search(vectors[[1]], version, top_k=1)[0][0].entry.person_id == "gone"

    assert gallery.watchlists.remove_person(watchlist.watchlist_id, "gone") == 2
    assert gallery.watchlists.get_entries(list(enrolment.entry_ids[1:])) == []
    assert gallery.watchlists.entries(watchlist.watchlist_id, person_id="gone") == []
    assert [e.person_id for e in gallery.watchlists.get_entries(list(enrolment.entry_ids))] == ["keep"]
    found = gallery.watchlists.search(vectors[[1, 2]], version, top_k=5)
    assert {c.entry.person_id for row in found for c in row} == {"keep"}, "removal applies to frozen versions too"
    assert gallery.watchlists.remove_person(watchlist.watchlist_id, "gone") == 0


def test_expired_entries_are_not_searched_and_are_purged(gallery):
    vectors = unit_vectors(2, seed=3)
    now = int(time.time())
    watchlist = new_watchlist(gallery)
    short = gallery.watchlists.enrol(
        watchlist.watchlist_id, [entry("short", vectors[0], expires_at=now + SHORT_EXPIRY_S)]
    )
    long = gallery.watchlists.enrol(watchlist.watchlist_id, [entry("long", vectors[1])])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    assert gallery.watchlists.search(vectors[[0]], version, top_k=1, now=now)[0][0].entry.person_id == "short"

    later = now + 2 * SHORT_EXPIRY_S
    found = gallery.watchlists.search(vectors[[0]], version, top_k=5, now=later)
    assert [c.entry.person_id for c in found[0]] == ["long"], "an expired entry must not be searched"
    assert gallery.watchlists.purge_expired(now=later) == 1
    assert gallery.watchlists.get_entries(list(short.entry_ids)) == []
    assert [e.entry_id for e in gallery.watchlists.entries(watchlist.watchlist_id)] == list(long.entry_ids)
    assert gallery.watchlists.purge_expired(now=later) == 0


def test_expired_watchlist_can_no_longer_be_searched_or_enrolled(gallery):
    vectors = unit_vectors(1, seed=4)
    watchlist = new_watchlist(gallery, expires_in_s=DAY)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("p", vectors[0])])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    after_expiry = watchlist.expires_at + 1
    with pytest.raises(WatchlistExpiredError, match=watchlist.watchlist_id):
        gallery.watchlists.search(vectors, version, now=after_expiry)
    with pytest.raises(WatchlistExpiredError, match="renew"):
        gallery.watchlists.enrol(watchlist.watchlist_id, [entry("q", vectors[0])], now=after_expiry)
    with pytest.raises(InvalidRecordError, match="outlive"):
        gallery.watchlists.enrol(watchlist.watchlist_id, [entry("q", vectors[0], expires_at=after_expiry)])


@pytest.mark.parametrize(
    ("make_probes", "message"),
    [
        (lambda v: v[:, :127], r"expected shape \(n, 128\), got \(2, 127\)"),
        (lambda v: v[0], r"expected shape \(n, 128\), got \(128,\)"),
        (lambda v: v * 2.0, "row 0 has L2 norm 2.0000, expected 1; L2-normalise"),
        (lambda v: np.where(np.arange(128) == 5, np.nan, v), "row 0 holds NaN"),
        (lambda v: (v * 100).astype(np.int32), "floating-point"),
    ],
)
def test_bad_probes_are_refused_before_any_call(gallery, make_probes, message):
    watchlist = new_watchlist(gallery)
    vectors = unit_vectors(2, seed=5)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("p", vectors[0])])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)
    with pytest.raises(InvalidEmbeddingError, match=message):
        gallery.watchlists.search(make_probes(vectors), version)
    with pytest.raises(InvalidEmbeddingError, match=message):
        gallery.social.search(make_probes(vectors))


def test_unknown_watchlists_and_versions_are_named(gallery):
    vectors = unit_vectors(1, seed=6)
    with pytest.raises(UnknownWatchlistError, match="no watchlist 'nowhere'.*create it first"):
        gallery.watchlists.enrol("nowhere", [entry("p", vectors[0])])
    with pytest.raises(UnknownWatchlistError, match="no watchlist 'nowhere'"):
        gallery.watchlists.count("nowhere")
    with pytest.raises(UnknownWatchlistError, match="no watchlist 'nowhere'"):
        gallery.watchlists.remove_person("nowhere", "p")
    watchlist = new_watchlist(gallery)
    with pytest.raises(UnknownWatchlistError, match="has no version 7"):
        gallery.watchlists.version(f"{watchlist.watchlist_id}@v7")
    with pytest.raises(UnknownWatchlistError, match="not a version id"):
        gallery.watchlists.version(watchlist.watchlist_id)


def test_social_faces_are_found_with_their_source(gallery, lfw_faces):
    platform = f"test{time.time_ns()}"
    person = ENROLLED_PEOPLE[0]
    stored = [lfw_faces.enrol[person], *lfw_faces.probes[ENROLLED_PEOPLE[1]]]
    face_ids = gallery.social.insert(
        [
            social_face(embedding, platform, f"post-{i}", captured_at=1_700_000_000 + i)
            for i, embedding in enumerate(stored)
        ]
    )
    assert gallery.social.count(platform) == len(stored)
    results = gallery.social.search(np.stack(lfw_faces.probes[person]), min_similarity=THRESHOLD, platform=platform)
    for matches in results:
        assert [(m.rank, m.face.face_id, m.face.post_id) for m in matches] == [(1, face_ids[0], "post-0")]
        assert matches[0].face.url == f"https://example.org/{platform}/post-0"
        assert matches[0].face.box == (10.0, 20.0, 110.0, 140.0)
    window = gallery.social.search(
        np.stack(lfw_faces.probes[person]), platform=platform, captured_from=1_700_000_001, top_k=5
    )
    assert all(face_ids[0] not in {m.face.face_id for m in matches} for matches in window)
    assert {f.post_id for f in gallery.social.get(face_ids)} == {"post-0", "post-1", "post-2"}


def test_two_processes_enrolling_at_once_lose_nothing(gallery, gallery_config, backend, tmp_path):
    """Two processes enrol 10 batches of 10 into one watchlist at the same time: all 200 entries are stored.

    They share the catalogue through the records database, as the processes on a cluster's nodes do."""
    database_url = backend.database_url
    watchlist = new_watchlist(gallery)
    config_path = tmp_path / "gallery.json"
    env = dict(os.environ)
    backend = gallery_config.backend
    if isinstance(backend, ServerBackendConfig) and backend.token is not None:
        # A file holds no secret: the workers take the server's credentials from the environment, as `lfr` does.
        env[backend.token_env] = backend.token.get_secret_value()
        gallery_config = gallery_config.model_copy(update={"backend": backend.model_copy(update={"token": None})})
    config_path.write_text(gallery_config.model_dump_json())
    command = [
        sys.executable,
        "-m",
        "tests.gallery.enrol_worker",
        str(config_path),
        database_url,
        watchlist.watchlist_id,
    ]
    results = [tmp_path / f"worker-{worker}.json" for worker in range(2)]
    workers = [
        subprocess.Popen(
            [*command, str(worker), str(result)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for worker, result in enumerate(results)
    ]
    outputs = [worker.communicate(timeout=WORKER_TIMEOUT_S)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output.decode()[-3000:]
    reports = [json.loads(result.read_text()) for result in results]
    entry_ids = [entry_id for report in reports for entry_id in report["entry_ids"]]
    batches = [batch for report in reports for batch in report["batches"]]
    assert len(entry_ids) == len(set(entry_ids)) == 200
    assert sorted(batches) == list(range(1, 21)), "each batch number allocated once"
    assert gallery.watchlists.count(watchlist.watchlist_id) == 200
    assert {e.entry_id for e in gallery.watchlists.entries(watchlist.watchlist_id)} == set(entry_ids)
    assert gallery.watchlists.freeze(watchlist.watchlist_id).entry_count == 200
