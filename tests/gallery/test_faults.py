"""Faults injected on purpose: the server stopped under an open gallery, and a server that was never there."""

import socket
import threading
import time

import pytest
from pydantic import SecretStr
from pymilvus.exceptions import MilvusException
from structlog.testing import capture_logs

from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, RetryConfig, ServerBackendConfig
from cluster.gallery.errors import GalleryUnavailableError
from cluster.gallery.gallery import Gallery
from tests.gallery.factories import entry, new_watchlist, unit_vectors
from tests.records import RECORDS_FILE, records_database
from tests.waiting import scaled, wait_for

pytestmark = pytest.mark.slow

RESTART_TIMEOUT_S = 60.0
"""For the patient gallery's first retry, then as long again for the server's start; stretched by load."""
CONNECT_FAILED = 2


def test_stopped_server_gives_a_clear_error_then_a_restart_is_ridden_out(backend, gallery):
    """Stop the server under an open gallery: bounded retries, then an error naming the URI and what to do.
    Start it again while a patient gallery is retrying: the same call succeeds."""
    vectors = unit_vectors(2, seed=20)
    watchlist = new_watchlist(gallery)
    gallery.watchlists.enrol(watchlist.watchlist_id, [entry("p-0", vectors[0]), entry("p-1", vectors[1])])
    version = gallery.watchlists.freeze(watchlist.watchlist_id)

    backend.stop()
    started = time.monotonic()
    with pytest.raises(GalleryUnavailableError) as failure:
        gallery.watchlists.search(vectors, version)
    assert time.monotonic() - started < scaled(10.0), "the retry policy must give up in bounded time"
    message = str(failure.value)
    assert gallery.endpoint.uri in message and "unreachable after 3 attempt(s)" in message
    assert gallery.endpoint.remedy in message

    restarted = threading.Event()
    failures: list[BaseException] = []

    def restart_once_retrying(events: list[dict]) -> None:
        """Start the server again once the patient gallery has met it down and begun to retry."""

        def retrying() -> bool:
            return any(event["event"] == "milvus_call_retry" for event in list(events))

        try:
            wait_for(retrying, RESTART_TIMEOUT_S, "the patient gallery's first retry")
            backend.start()
        except BaseException as error:
            failures.append(error)
        restarted.set()

    # Up to 20 tries, backing off to 4 s (stretched by load): over a minute for the server to come back.
    patience = RetryConfig(attempts=20, initial_backoff_s=0.25, max_backoff_s=scaled(4.0))
    patient = Gallery(gallery.config.model_copy(update={"retry": patience}), gallery.endpoint, gallery.catalogue)
    with capture_logs() as events:
        restarter = threading.Thread(target=restart_once_retrying, args=(events,), daemon=True)
        restarter.start()
        try:
            found = patient.watchlists.search(vectors, version, top_k=1)
        finally:
            assert restarted.wait(2 * scaled(RESTART_TIMEOUT_S)), "the server did not restart in time"
            restarter.join(scaled(RESTART_TIMEOUT_S))
            patient.close()
    assert not failures, failures
    assert [row[0].entry.person_id for row in found] == ["p-0", "p-1"]
    assert gallery.watchlists.count(watchlist.watchlist_id) == 2, "the first gallery reconnects by itself"


def test_server_that_is_not_there_is_named_with_what_to_do(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    config = GalleryConfig(
        backend=ServerBackendConfig(type="milvus", uri=uri, token=SecretStr("root:not-checked")),
        retry=RetryConfig(attempts=2, initial_backoff_s=0.05, max_backoff_s=0.05),
    )
    catalogue = Catalogue(records_database(tmp_path / RECORDS_FILE))
    started = time.monotonic()
    with pytest.raises(GalleryUnavailableError, match=f"Milvus at {uri} is unreachable after 2 attempt.*healthz"):
        Gallery.open(config, catalogue)
    assert time.monotonic() - started < 10.0
    assert catalogue.watchlists() == []


class LostFirstInsertReply:
    """A MilvusClient whose first insert is applied but its reply lost (a fault injected on purpose)."""

    def __init__(self, client) -> None:
        self._client = client
        self.lost = 0

    def insert(self, *args, **kwargs):
        result = self._client.insert(*args, **kwargs)
        if not self.lost:
            self.lost += 1
            raise MilvusException(CONNECT_FAILED, "reply lost after the insert was applied")
        return result

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_an_insert_retried_after_a_lost_reply_stores_each_entry_once(gallery, monkeypatch):
    """Milvus keeps duplicate primary keys, so a blind retry would store the batch twice."""
    vectors = unit_vectors(3, seed=21)
    watchlist = new_watchlist(gallery)
    flaky = LostFirstInsertReply(gallery.connection._connected())
    monkeypatch.setattr(gallery.connection, "_connected", lambda: flaky)
    enrolment = gallery.watchlists.enrol(watchlist.watchlist_id, [entry(f"p-{i}", v) for i, v in enumerate(vectors)])
    assert flaky.lost == 1
    assert gallery.watchlists.count(watchlist.watchlist_id) == 3
    assert sorted(e.entry_id for e in gallery.watchlists.entries(watchlist.watchlist_id)) == sorted(enrolment.entry_ids)
