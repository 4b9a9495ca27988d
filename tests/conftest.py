"""Shared fixtures over the real face images in tests/data (see tests/data/PROVENANCE.md)."""

import pytest


@pytest.fixture(scope="session")
def face_pipeline():
    """One pipeline on the CPU for the whole session: loading the models costs a second or two."""
    from cluster.vision.config import FaceModelsConfig
    from cluster.vision.pipeline import FacePipeline

    return FacePipeline(FaceModelsConfig(device="cpu"))



@pytest.fixture(scope="session")
def lfw_public(face_pipeline):
    """Every lfw-public photo of people outside the impostor cohort, embedded by every model (once a session)."""
    from cluster.evaluation.dataset import labelled_photos
    from cluster.evaluation.protocol import LabelledEmbeddings
    from cluster.matching.cohort import ImpostorCohort
    from tests.paths import LFW_PUBLIC

    cohort = set(ImpostorCohort.load().labels.tolist())
    photos = [photo for photo in labelled_photos(LFW_PUBLIC) if photo.person not in cohort]
    return LabelledEmbeddings.embed(face_pipeline, photos)


@pytest.fixture(scope="session")
def lfw_public_cache(lfw_public, tmp_path_factory):
    """`lfw_public` saved as the `--embeddings` file `lfr evaluate` reads instead of embedding again."""
    cache = tmp_path_factory.mktemp("lfw-public") / "embeddings.npz"
    lfw_public.save(cache)
    return cache
