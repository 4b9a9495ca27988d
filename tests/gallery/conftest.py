"""Fixtures for the gallery tests: both backends, started once per session, and real face embeddings.

Every test that takes `gallery_config` (or `gallery`) runs twice: on the embedded milvus-lite
server and on a real Milvus 2.3.5 server, which runs with authorisation on and a root password
of the session's own. The real server listens on all interfaces, so `loadtest.milvus_server`
runs it in a network namespace of its own and the tests reach it through a Unix socket (or
directly on 127.0.0.1 when pytest itself already runs in a loopback-only namespace, as under
`unshare -n`). Both servers are stopped at the end of the
session and their processes checked gone. The catalogue of each lives in a records database (SQLite) of its own.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from cluster.enrolment.faces import portrait_face
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, LiteBackendConfig, RetryConfig, ServerBackendConfig
from cluster.gallery.gallery import Gallery
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.processes import process_running
from cluster.vision.image_io import load_image
from loadtest.milvus_server import MilvusServer
from tests.paths import LFW10
from tests.records import RECORDS_FILE, records_database

ENROLLED_PEOPLE = ("Ariel_Sharon", "Colin_Powell", "George_W_Bush", "Tony_Blair")
STRANGERS = ("Hugo_Chavez", "Vladimir_Putin")
ENROL_PHOTO = 1
PROBE_PHOTOS = (2, 3)
STRANGER_PHOTOS = (1, 2)
TEST_RETRY = RetryConfig(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2)


@dataclass(frozen=True)
class Backend:
    """A running backend and the config that reaches it; `restart` stops and starts its server in place."""

    name: str
    config: GalleryConfig
    server: MilvusServer | EmbeddedMilvus
    database_url: str
    """The records database that holds this backend's catalogue."""

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        if isinstance(self.server, MilvusServer):
            self.server.start()
        else:
            self.server.ensure_running()


@pytest.fixture(scope="session")
def real_milvus(tmp_path_factory) -> Iterator[MilvusServer]:
    """One real Milvus 2.3.5 for the session; its wrapper, server (and supervisor) must be gone at the end."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server"), secrets.token_urlsafe(16))
    server.start()
    yield server
    pids = server.pids
    server.stop()
    assert pids is not None
    assert not any(process_running(pid) for pid in (pids.wrapper, pids.server, pids.supervisor) if pid is not None)


@pytest.fixture(scope="session")
def embedded_milvus(tmp_path_factory) -> Iterator[EmbeddedMilvus]:
    """The embedded milvus-lite server over a session data directory; gone at the end."""
    config = GalleryConfig(backend=LiteBackendConfig(data_dir=tmp_path_factory.mktemp("milvus-lite")))
    embedded = EmbeddedMilvus(config.backend, config.timeouts)
    first = embedded.ensure_running()
    yield embedded
    last = embedded.running()
    assert last is not None, "the embedded server should still run at the end of the session"
    assert embedded.stop()
    assert not process_running(first.pid) and not process_running(last.pid)


def _config(backend: LiteBackendConfig | ServerBackendConfig) -> GalleryConfig:
    return GalleryConfig(backend=backend, consistency="Strong", retry=TEST_RETRY)


@pytest.fixture(params=["milvus-lite", "milvus"])
def backend(request, tmp_path_factory) -> Backend:
    """Each backend in turn (session servers, one records database holding the catalogue per backend and session)."""
    if request.param == "milvus-lite":
        embedded = request.getfixturevalue("embedded_milvus")
        lite = LiteBackendConfig(data_dir=embedded.data_dir)
        return Backend("milvus-lite", _config(lite), embedded, str(embedded.data_dir / RECORDS_FILE))
    server = request.getfixturevalue("real_milvus")
    backend = ServerBackendConfig(type="milvus", uri=server.uri, token=SecretStr(server.token))
    return Backend("milvus", _config(backend), server, str(server.data_dir / RECORDS_FILE))


@pytest.fixture
def gallery_config(backend) -> GalleryConfig:
    return backend.config


@pytest.fixture
def gallery(gallery_config, backend) -> Iterator[Gallery]:
    with records_database(backend.database_url) as database:
        with Gallery.open(gallery_config, Catalogue(database)) as opened:
            yield opened


@dataclass(frozen=True)
class LfwFaces:
    """Embeddings of real lfw10 photos: one to enrol per person, others to probe with, and strangers."""

    enrol: dict[str, np.ndarray]
    probes: dict[str, list[np.ndarray]]
    strangers: dict[str, list[np.ndarray]]


def _central_face_embeddings(face_pipeline, paths: list[Path]) -> list[np.ndarray]:
    """The embedding of each photo's portrait face (the one nearest its centre, where LFW puts its person)."""
    images = [load_image(path) for path in paths]
    embeddings = []
    for path, image, faces in zip(paths, images, face_pipeline.process(images)):
        face = portrait_face(image.shape, faces)
        assert face is not None, f"no face found in {path}"
        embeddings.append(face.embedding)
    return embeddings


def _photo(person: str, number: int) -> Path:
    return LFW10 / person / f"{person}_{number:04d}.jpg"


@pytest.fixture(scope="session")
def lfw_faces(face_pipeline) -> LfwFaces:
    people = [(p, n) for p in ENROLLED_PEOPLE for n in (ENROL_PHOTO, *PROBE_PHOTOS)]
    people += [(p, n) for p in STRANGERS for n in STRANGER_PHOTOS]
    embeddings = dict(zip(people, _central_face_embeddings(face_pipeline, [_photo(p, n) for p, n in people])))
    return LfwFaces(
        enrol={p: embeddings[(p, ENROL_PHOTO)] for p in ENROLLED_PEOPLE},
        probes={p: [embeddings[(p, n)] for n in PROBE_PHOTOS] for p in ENROLLED_PEOPLE},
        strangers={p: [embeddings[(p, n)] for n in STRANGER_PHOTOS] for p in STRANGERS},
    )
