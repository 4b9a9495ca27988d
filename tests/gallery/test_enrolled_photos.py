"""The catalogue's record of which photo face each imported entry came from (no Milvus needed)."""

import hashlib

import pytest

from cluster.gallery.catalogue import PENDING_BATCH_TIMEOUT_S, Catalogue
from cluster.gallery.enrolment_keys import EnrolmentKey
from cluster.gallery.errors import InvalidRecordError
from cluster.gallery.records import Watchlist
from tests.records import RECORDS_FILE, records_database

NOW = 1_800_000_000
PHOTO = hashlib.sha256(b"photo").hexdigest()
KEYS = [EnrolmentKey("A1", PHOTO, 0), EnrolmentKey("A1", PHOTO, 1), EnrolmentKey("B2", PHOTO, 0)]


@pytest.fixture
def catalogue(tmp_path) -> Catalogue:
    catalogue = Catalogue(records_database(tmp_path / RECORDS_FILE))
    catalogue.create_watchlist(Watchlist("wl-a", "A", "reason", "Supt. X", NOW, NOW + 10_000))
    catalogue.create_watchlist(Watchlist("wl-b", "B", "reason", "Supt. X", NOW, NOW + 10_000))
    return catalogue


def test_keys_are_recorded_with_the_commit_of_their_batch_and_per_watchlist(catalogue):
    batch = catalogue.begin_batch("wl-a", NOW)
    assert catalogue.enrolled_keys("wl-a", KEYS) == {}, "a pending batch's keys count as enrolled"
    catalogue.finish_batch("wl-a", batch, committed=True, entries=2, keys=[(KEYS[0], "e0"), (KEYS[2], "e2")])
    assert catalogue.enrolled_keys("wl-a", KEYS) == {KEYS[0]: "e0", KEYS[2]: "e2"}
    assert catalogue.enrolled_keys("wl-b", KEYS) == {}


def test_a_failed_batch_or_one_written_off_as_abandoned_records_no_key(catalogue):
    failed = catalogue.begin_batch("wl-a", NOW)
    catalogue.finish_batch("wl-a", failed, committed=False, entries=0, keys=[(KEYS[0], "e0")])
    abandoned = catalogue.begin_batch("wl-a", NOW)
    catalogue.frozen_bounds("wl-a", NOW + PENDING_BATCH_TIMEOUT_S + 1)
    catalogue.finish_batch("wl-a", abandoned, committed=True, entries=1, keys=[(KEYS[1], "e1")])
    assert catalogue.enrolled_keys("wl-a", KEYS) == {}


def test_a_key_enrolled_again_points_at_its_new_entry(catalogue):
    for entry_id in ("old", "new"):
        batch = catalogue.begin_batch("wl-a", NOW)
        catalogue.finish_batch("wl-a", batch, committed=True, entries=1, keys=[(KEYS[0], entry_id)])
    assert catalogue.enrolled_keys("wl-a", [KEYS[0]]) == {KEYS[0]: "new"}


def test_lookups_of_many_people_go_in_chunks(catalogue):
    keys = [EnrolmentKey(f"P{n}", PHOTO, 0) for n in range(1200)]
    batch = catalogue.begin_batch("wl-a", NOW)
    catalogue.finish_batch(
        "wl-a", batch, committed=True, entries=len(keys), keys=[(k, f"e{k.person_id}") for k in keys]
    )
    assert len(catalogue.enrolled_keys("wl-a", keys)) == 1200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("A 1", PHOTO, 0), "person_id must be"),
        (("A1", "abc", 0), "photo_sha256 must be 64 lowercase hex digits"),
        (("A1", PHOTO, -1), "face_index must be an int >= 0"),
        (("A1", PHOTO, True), "face_index must be an int >= 0"),
    ],
)
def test_a_key_checks_its_fields(fields, message):
    with pytest.raises(InvalidRecordError, match=message):
        EnrolmentKey(*fields)
