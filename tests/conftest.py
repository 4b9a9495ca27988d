"""Shared fixtures: the face models over the real images in tests/data (see tests/data/PROVENANCE.md), and Ray.

Also checks the fast subset's promise (tests/service_guard.py): a test not marked `slow` that
starts Ray, Milvus, PostgreSQL, a browser or `lfr` fails, saying to mark it.
"""

import os
from collections.abc import Iterator

import pytest
import structlog

from cluster.logging_setup import configure_logging
from tests.audit_key import KEY_ENV, TEST_AUDIT_KEY
from tests.crowds import CrowdCache
from tests.lfw10_portraits import Lfw10Portraits
from tests.ray_cluster import LocalRayCluster, wait_for_agent_port
from tests.service_guard import services_forbidden

RAY_TEST_CPUS = 4
"""Logical CPUs of the tests' Ray cluster: more than the machine's two, so that every test's actors fit at once."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start Ray in-process as the product does (`own_ray`) run after every test on the session's
    cluster: once a process has run and shut down a Ray cluster of its own, a later driver connection in it
    loses actors it creates ("cancelled before it started"), so the shared cluster's users go first."""
    items.sort(key=lambda item: item.get_closest_marker("own_ray") is not None)


def _guarded(item: pytest.Item):
    """Run a test phase with service launches forbidden unless the test is marked slow."""
    if item.get_closest_marker("slow") is not None:
        return (yield)
    with services_forbidden(item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """A fast test's fixtures start no service."""
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Nor does the test itself. Teardown is not guarded: there a slow module's fixtures stop their services
    (`pg_ctl stop`), which pytest runs during the teardown of whichever test came last in the module."""
    return (yield from _guarded(item))


@pytest.fixture(scope="session", autouse=True)
def audit_hmac_key() -> Iterator[str]:
    """The audit key, set in os.environ for the whole session so `lfr` processes and Ray workers inherit it:
    writing or verifying the log without one is refused by default. Tests of that refusal unset it themselves."""
    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = TEST_AUDIT_KEY
    yield TEST_AUDIT_KEY
    if previous is None:
        os.environ.pop(KEY_ENV, None)
    else:
        os.environ[KEY_ENV] = previous


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """One local Ray cluster for the session (tests/ray_cluster.py); stopped, all its processes gone, at the end."""
    cluster = LocalRayCluster.start(num_cpus=RAY_TEST_CPUS)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def ray_session(ray_cluster: LocalRayCluster) -> Iterator[LocalRayCluster]:
    """This module's driver on the session's cluster, joined as the product joins one (namespace `lfr`).

    Disconnected at the module's end, which ends the actors the module left behind and leaves later
    tests free to start Ray in-process as the product does.
    """
    from cluster.application.ray_runtime import start_ray, stop_ray

    start_ray(ray_cluster.address)
    yield ray_cluster
    stop_ray()


@pytest.fixture
def ray_agent_port() -> Iterator[None]:
    """For a test whose `lfr` process starts Ray itself: an earlier cluster's agent has let go of Ray's fixed
    agent port before it starts, and this test's cluster has let go of it before the next test."""
    wait_for_agent_port()
    yield
    wait_for_agent_port()


@pytest.fixture(scope="session")
def face_pipeline():
    """One pipeline on the CPU for the whole session: loading the models costs a second or two."""
    from cluster.vision.config import FaceModelsConfig
    from cluster.vision.pipeline import FacePipeline

    return FacePipeline(FaceModelsConfig(device="cpu"))


@pytest.fixture(scope="session")
def lfw10_portraits(face_pipeline) -> Lfw10Portraits:
    """lfw10 photos with their portrait faces (tests/lfw10_portraits.py), each person embedded once a session."""
    return Lfw10Portraits(face_pipeline)


@pytest.fixture(scope="session")
def street_walk_faces(lfw10_portraits: Lfw10Portraits):
    """The real faces of the people who walk past the street cameras (tests/street_sightings.py)."""
    from tests.street_sightings import street_faces

    return street_faces(lfw10_portraits)


@pytest.fixture(scope="session")
def crowds(tmp_path_factory) -> CrowdCache:
    """Recorded crowds rendered once a session per spec (tests/crowds.py): several modules replay the same one."""
    return CrowdCache(tmp_path_factory.mktemp("crowds"))


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


@pytest.fixture(autouse=True)
def logging_to_an_open_stream() -> Iterator[None]:
    """A test that runs `lfr` in-process points structlog at its captured stderr, which pytest closes after it:
    later log events would then fail ("I/O operation on closed file"), killing whatever thread logged them."""
    yield
    stream = getattr(structlog.get_config()["logger_factory"], "_file", None)
    if getattr(stream, "closed", False):
        configure_logging("warning")
