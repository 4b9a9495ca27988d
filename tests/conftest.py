"""Shared fixtures over the real face images in tests/data (see tests/data/PROVENANCE.md)."""

import pytest


@pytest.fixture(scope="session")
def face_pipeline():
    """One pipeline on the CPU for the whole session: loading the models costs a second or two."""
    from cluster.config import FaceModelsConfig
    from cluster.vision.pipeline import FacePipeline

    return FacePipeline(FaceModelsConfig(device="cpu"))
