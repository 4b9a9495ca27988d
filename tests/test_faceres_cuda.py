"""faceres on a GPU: fp32 as the CPU computes it, fp16 close enough to change no identity (skipped without CUDA)."""

import numpy as np
import pytest
import torch

from cluster.vision.faceres import FaceresEmbedder
from tests.faceres_faces import lfw10_arcface_chips

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def chips_and_people(face_pipeline) -> tuple[np.ndarray, np.ndarray]:
    chips, people = lfw10_arcface_chips(face_pipeline.detector, per_person=5)
    return chips, np.array(people)


def test_fp32_on_cuda_matches_the_cpu(chips_and_people: tuple[np.ndarray, np.ndarray]) -> None:
    """cuDNN runs in IEEE fp32 for the call (TF32 off), so the GPU stays within the tfjs tolerance of the CPU."""
    chips, _ = chips_and_people
    cpu = FaceresEmbedder(device="cpu").descriptors(chips)
    cuda = FaceresEmbedder(device="cuda").descriptors(chips)
    diff = float(np.abs(cuda - cpu).max())
    assert diff <= 1e-4, f"fp32 on cuda differs from the cpu by {diff:.3g}"


def test_fp16_keeps_every_identity(chips_and_people: tuple[np.ndarray, np.ndarray]) -> None:
    chips, people = chips_and_people
    full = FaceresEmbedder(device="cuda").embed(chips)
    half = FaceresEmbedder(device="cuda", half=True, max_batch=16).embed(chips)
    cosine = float((full * half).sum(axis=1).min())
    assert cosine >= 0.999, f"fp16 embeddings fall to cosine {cosine:.5f} of fp32"
    for embeddings in (full, half):
        similarity = embeddings @ embeddings.T
        np.fill_diagonal(similarity, -np.inf)
        assert (people[similarity.argmax(axis=1)] == people).mean() >= 0.95
