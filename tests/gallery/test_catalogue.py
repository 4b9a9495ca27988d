"""The SQLite catalogue: watchlists, batch numbers, frozen bounds and versions (no Milvus needed)."""

import pytest

from cluster.gallery.catalogue import PENDING_BATCH_TIMEOUT_S, Catalogue
from cluster.gallery.errors import UnknownWatchlistError, WatchlistExistsError
from cluster.gallery.records import Watchlist

NOW = 1_800_000_000


@pytest.fixture
def catalogue(tmp_path) -> Catalogue:
    catalogue = Catalogue(tmp_path / "nested" / "catalogue.sqlite")
    catalogue.create_watchlist(Watchlist("wl-a", "A", "reason", "Supt. X", NOW, NOW + 1000))
    return catalogue


def test_watchlists_are_unique_and_unknown_ones_are_named(catalogue):
    with pytest.raises(WatchlistExistsError, match="'wl-a' already exists"):
        catalogue.create_watchlist(Watchlist("wl-a", "A", "r", "o", NOW, NOW + 1))
    with pytest.raises(UnknownWatchlistError, match=r"no watchlist 'wl-b'.*\(known: wl-a\)"):
        catalogue.watchlist("wl-b")
    assert [w.watchlist_id for w in catalogue.watchlists()] == ["wl-a"]


def test_versions_stop_before_the_first_pending_batch_and_skip_failed_ones(catalogue):
    batches = [catalogue.begin_batch("wl-a", NOW) for _ in range(4)]
    assert batches == [1, 2, 3, 4]
    catalogue.finish_batch("wl-a", 1, committed=True, entries=5)
    catalogue.finish_batch("wl-a", 2, committed=False, entries=0)
    catalogue.finish_batch("wl-a", 4, committed=True, entries=5)
    assert catalogue.frozen_bounds("wl-a", NOW) == (2, (2,)), "batch 3 is still being written"
    catalogue.finish_batch("wl-a", 3, committed=True, entries=5)
    assert catalogue.frozen_bounds("wl-a", NOW) == (4, (2,))


def test_a_batch_abandoned_by_a_dead_enroller_does_not_block_later_versions(catalogue):
    """Regression: a process that died mid-enrolment left its batch pending, and no later batch could be frozen."""
    catalogue.begin_batch("wl-a", NOW)
    catalogue.begin_batch("wl-a", NOW + 10)
    catalogue.finish_batch("wl-a", 2, committed=True, entries=1)
    assert catalogue.frozen_bounds("wl-a", NOW + 20) == (0, ())
    assert catalogue.frozen_bounds("wl-a", NOW + PENDING_BATCH_TIMEOUT_S + 1) == (2, (1,))


def test_versions_are_numbered_and_reused_when_nothing_changed(catalogue):
    first = catalogue.add_version("wl-a", 3, (2,), 10, "digest-1", NOW)
    assert (first.version_id, first.watchlist_expires_at) == ("wl-a@v1", NOW + 1000)
    assert catalogue.add_version("wl-a", 3, (2,), 10, "digest-1", NOW + 5) == first
    second = catalogue.add_version("wl-a", 3, (2,), 9, "digest-2", NOW + 6)
    assert second.number == 2 and catalogue.versions("wl-a") == [first, second]
    assert catalogue.version("wl-a@v2") == second
