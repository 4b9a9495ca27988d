"""Records, embedding checks, filter expressions and the retry policy, without a server."""

import grpc
import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from cluster.gallery.config import RetryConfig
from cluster.gallery.embeddings import as_embedding_batch
from cluster.gallery.errors import GalleryError, GalleryUnavailableError, InvalidEmbeddingError, InvalidRecordError
from cluster.gallery.expressions import expired_filter, ids_filter, social_filter, watchlist_search_filter
from cluster.gallery.records import WatchlistVersion
from cluster.gallery.retry import RetryPolicy
from tests.gallery.factories import entry, social_face, unit_vectors

CONNECT_FAILED = 2


def test_embedding_batch_is_float32_and_contiguous():
    vectors = unit_vectors(3, seed=7).astype(np.float64)
    batch = as_embedding_batch(vectors[:, ::1])
    assert batch.dtype == np.float32 and batch.flags.c_contiguous and batch.shape == (3, 128)
    assert as_embedding_batch(np.zeros((0, 128), np.float32)).shape == (0, 128)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"person_id": 'x" or 1 == 1 or "'}, "person_id must be 1-64 characters"),
        ({"person_id": ""}, "person_id must be"),
        ({"category": "Wanted Person"}, "category must be"),
        ({"label": "  "}, "label must not be empty"),
        ({"source": "é" * 300}, "source is 600 bytes of UTF-8; at most 512"),
        ({"expires_at": -5}, "expires_at must be a unix time"),
        ({"expires_at": True}, "expires_at must be a unix time"),
        ({"embedding": np.ones(128)}, "embedding of p-1: row 0 has L2 norm 11.3137"),
        ({"embedding": np.ones(64) / 8}, r"expected shape \(128,\), got \(64,\)"),
    ],
)
def test_bad_entries_name_the_field(overrides, message):
    with pytest.raises((InvalidRecordError, InvalidEmbeddingError), match=message):
        entry(**{"person_id": "p-1", "embedding": unit_vectors(1, seed=8)[0], **overrides})


def test_bad_social_faces_name_the_field():
    vector = unit_vectors(1, seed=9)[0]
    with pytest.raises(InvalidRecordError, match="box must be 4 finite numbers"):
        social_face(vector, "instagram", "p", box=[1, 2])
    with pytest.raises(InvalidRecordError, match="box must be 4 finite numbers"):
        social_face(vector, "instagram", "p", box=[1, 2, np.inf, 4])
    with pytest.raises(InvalidRecordError, match="platform must be"):
        social_face(vector, "insta gram", "p")


def test_filter_expressions():
    version = WatchlistVersion("wl-1", 3, max_batch=7, excluded_batches=(2, 5), entry_count=9, digest="d",
                               frozen_at=1, watchlist_expires_at=10**10)  # fmt: skip
    assert watchlist_search_filter(version, 1000) == (
        'watchlist_id == "wl-1" and batch <= 7 and expires_at > 1000 and batch not in [2, 5]'
    )
    assert expired_filter(1000) == "expires_at <= 1000"
    assert ids_filter("entry_id", ["a", "b"]) == 'entry_id in ["a", "b"]'
    assert social_filter("x", 5, None) == 'platform == "x" and captured_at >= 5'
    assert social_filter(None, None, None) == ""
    with pytest.raises(InvalidRecordError, match="entry_id must be"):
        ids_filter("entry_id", ['a"] or entry_id != ["'])


class FlakyCall:
    """A call that fails with the given errors first (faults injected on purpose), then returns 'done'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class DeadlineExceeded(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "Deadline Exceeded"


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    config = RetryConfig(attempts=attempts, initial_backoff_s=0.1, max_backoff_s=0.3, multiplier=2.0)
    return RetryPolicy(config, uri="http://127.0.0.1:1", remedy="start it", sleep=sleeps.append)


def test_transient_faults_are_retried_with_capped_backoff():
    sleeps: list[float] = []
    call = FlakyCall(MilvusException(CONNECT_FAILED, "down"), DeadlineExceeded(), MilvusException(CONNECT_FAILED, "x"))
    assert _policy(sleeps).call("search", call) == "done"
    assert call.calls == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.3])


def test_retries_are_bounded_and_the_error_names_uri_and_remedy():
    sleeps: list[float] = []
    call = FlakyCall(*[MilvusException(CONNECT_FAILED, "Fail connecting")] * 5)
    with pytest.raises(GalleryUnavailableError, match=r"search: Milvus at http://127.0.0.1:1 is unreachable after 3"):
        _policy(sleeps, attempts=3).call("search", call)
    assert call.calls == 3 and len(sleeps) == 2


def test_other_errors_are_not_retried():
    sleeps: list[float] = []
    call = FlakyCall(MilvusException(1100, "invalid expression"))
    with pytest.raises(GalleryError, match="search failed on Milvus at http://127.0.0.1:1: invalid expression"):
        _policy(sleeps).call("search", call)
    assert call.calls == 1 and sleeps == []
