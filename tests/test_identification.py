"""Identification on real faces (lfw10) and the scoring functions behind it."""

import numpy as np
import pytest

from cluster.matching.config import MatchingConfig
from cluster.vision.identification import rank1_accuracy, rates_at_false_accept, rates_at_threshold
from loadtest.lfw10_embeddings import embed_lfw10

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lfw10_embeddings(face_pipeline) -> tuple[np.ndarray, list[str], list[str]]:
    """One embedding per lfw10 photo, with person and file names (shared with the accuracy benchmark)."""
    return embed_lfw10(face_pipeline)


def test_rank1_on_lfw10(lfw10_embeddings):
    """Enrol each person's first photo, query the other nine: rank-1 must be at least 95%."""
    embeddings, labels, names = lfw10_embeddings
    enrolled = [i for i, name in enumerate(names) if name.endswith("_0001.jpg")]
    queries = [i for i in range(len(names)) if i not in enrolled]
    assert len(enrolled) == 10 and len(queries) == 90
    accuracy = rank1_accuracy(
        embeddings[enrolled], [labels[i] for i in enrolled], embeddings[queries], [labels[i] for i in queries]
    )
    assert accuracy >= 0.95, f"rank-1 {accuracy:.3f} below 0.95"


def test_true_accept_at_one_percent_false_accept(lfw10_embeddings, record_property):
    embeddings, labels, _ = lfw10_embeddings
    rates = rates_at_false_accept(embeddings, labels, 0.01)
    record_property("tar_at_far_1pct", rates.true_accept_rate)
    record_property("threshold_at_far_1pct", rates.threshold)
    assert rates.false_accept_rate <= 0.01
    assert rates.true_accept_rate >= 0.90, (
        f"TAR {rates.true_accept_rate:.3f} at FAR 1% (threshold {rates.threshold:.3f})"
    )


def test_configured_threshold_keeps_false_accepts_rare(lfw10_embeddings):
    """The default threshold must be strict enough for a watchlist: FAR <= 1% on lfw10."""
    embeddings, labels, _ = lfw10_embeddings
    rates = rates_at_threshold(embeddings, labels, MatchingConfig().similarity_threshold)
    assert rates.false_accept_rate <= 0.01, rates
    assert rates.true_accept_rate >= 0.90, rates


def test_scoring_functions_on_known_vectors():
    axes = np.eye(3, dtype=np.float32)
    embeddings = np.stack([axes[0], axes[0], axes[1], axes[1] * 0.6 + axes[2] * 0.8])
    labels = ["a", "a", "b", "b"]
    assert rank1_accuracy(embeddings[[0, 2]], ["a", "b"], embeddings[[1, 3]], ["a", "b"]) == 1.0
    rates = rates_at_threshold(embeddings, labels, 0.5)
    assert (rates.genuine_pairs, rates.impostor_pairs) == (2, 4)
    assert rates.true_accept_rate == 1.0 and rates.false_accept_rate == 0.0
    strict = rates_at_false_accept(embeddings, labels, 0.0)
    assert strict.false_accept_rate == 0.0 and strict.threshold > 0.0
