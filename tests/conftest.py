"""Shared fixtures over the real face images in tests/data (see tests/data/PROVENANCE.md)."""

from pathlib import Path

import pytest

from tests.paths import LFW10


@pytest.fixture(scope="session")
def lfw10_people() -> dict[str, list[Path]]:
    """Ten people, ten photos each, sorted by file name."""
    return {person.name: sorted(person.glob("*.jpg")) for person in sorted(LFW10.iterdir()) if person.is_dir()}


@pytest.fixture(scope="session")
def face_pipeline():
    """One pipeline on the CPU for the whole session: loading the models costs a second or two."""
    from cluster.config import FaceModelsConfig
    from cluster.vision.pipeline import FacePipeline

    return FacePipeline(FaceModelsConfig(device="cpu"))
