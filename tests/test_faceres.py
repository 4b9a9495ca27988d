"""FaceresEmbedder on its own: the compiled graph, input checks, real faces told apart (tfjs: test_faceres_vs_tfjs)."""

import numpy as np
import pytest

from cluster.vision.errors import InvalidImageError
from cluster.vision.faceres import (
    CHIP_SIZE,
    EMBEDDING_SIZE,
    MODEL_NAME,
    FaceresEmbedder,
    compile_layers,
    load_faceres_graph,
)
from tests.faceres_faces import lfw10_arcface_chips


@pytest.fixture(scope="module")
def embedder() -> FaceresEmbedder:
    return FaceresEmbedder()


@pytest.fixture(scope="module")
def lfw10(face_pipeline) -> tuple[np.ndarray, np.ndarray]:
    chips, people = lfw10_arcface_chips(face_pipeline.detector, per_person=10)
    return chips, np.array(people)


def test_the_graph_compiles_to_mobilenet_with_tf_same_padding() -> None:
    """27 convolutions, each with its batch norm folded in and a ReLU6; stride 2 pads bottom/right only, as TF does."""
    layers = compile_layers(load_faceres_graph())
    assert len(layers) == 27
    assert layers[-1].weight.shape == (EMBEDDING_SIZE, EMBEDDING_SIZE, 1, 1)
    assert all((layer.lower, layer.upper) == (0.0, 6.0) for layer in layers)
    strided = [layer for layer in layers if layer.stride == 2]
    assert len(strided) == 5
    assert all(layer.padding == (0, 1, 0, 1) for layer in strided), "TF puts the odd SAME pixel after, not before"
    assert all(layer.padding == (1, 1, 1, 1) for layer in layers if layer.stride == 1 and layer.weight.shape[-1] == 3)


def _mean_similarity(similarity: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    """Mean similarity between two groups of photos, leaving out each photo's similarity to itself."""
    pairs = rows[:, None] & cols[None, :] & ~np.eye(len(similarity), dtype=bool)
    return float(similarity[pairs].mean())


@pytest.mark.slow
def test_same_person_scores_higher_than_different_people(
    embedder: FaceresEmbedder, lfw10: tuple[np.ndarray, np.ndarray]
) -> None:
    """On 10 photos of each of 10 people, everyone is closer to their own photos than to anyone else's.

    Broken weights, a wrong channel order or a wrong alignment fail this long before they fail a
    numeric comparison: measured, rank-1 is 1.00 and the same-person mean cosine is 0.66-0.78
    against 0.41-0.48 for other people.
    """
    chips, people = lfw10
    embeddings = embedder.embed(chips)
    similarity = embeddings @ embeddings.T
    names = sorted(set(people))
    block = np.array([[_mean_similarity(similarity, people == a, people == b) for b in names] for a in names])
    for row, name in enumerate(names):
        others = np.delete(block[row], row)
        assert block[row, row] > others.max() + 0.1, f"{name}: own photos {block[row, row]:.3f}, others {others}"
    np.fill_diagonal(similarity, -np.inf)
    rank1 = float((people[similarity.argmax(axis=1)] == people).mean())
    assert rank1 >= 0.95, f"nearest other photo is the same person for only {rank1:.0%} of photos"


@pytest.mark.slow
def test_embeddings_are_unit_float32_and_layouts_agree(embedder: FaceresEmbedder, lfw10) -> None:
    chips = lfw10[0][:6]
    embeddings = embedder.embed(chips)
    assert MODEL_NAME == "faceres"
    assert embeddings.shape == (6, EMBEDDING_SIZE) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    nchw = FaceresEmbedder(channels_last=False, max_batch=4).descriptors(chips)
    assert np.abs(nchw - embedder.descriptors(chips)).max() < 1e-5


def test_an_empty_batch_gives_no_rows(embedder: FaceresEmbedder) -> None:
    assert embedder.embed(np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (0, EMBEDDING_SIZE)


@pytest.mark.parametrize(
    ("chips", "message"),
    [
        (np.zeros((2, 150, 150, 3), np.uint8), r"shape \(n, 224, 224, 3\).*got shape \(2, 150, 150, 3\).*'arcface'"),
        (np.zeros((224, 224, 3), np.uint8), r"single chip .* pass chip\[None\]"),
        (np.zeros((1, 224, 224, 3), np.float32), "got dtype float32"),
        ([[0]], "got list"),
    ],
)
def test_wrong_chips_are_refused_saying_what_to_do(embedder: FaceresEmbedder, chips, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        embedder.embed(chips)


def test_half_on_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match="only supported on cuda.*use half=False on cpu"):
        FaceresEmbedder(device="cpu", half=True)
