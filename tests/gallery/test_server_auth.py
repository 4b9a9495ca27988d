"""The Milvus server runs with authentication: no client without credentials, none with Milvus' default password."""

import grpc
import pytest
from pydantic import SecretStr
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, ServerBackendConfig
from cluster.gallery.errors import GalleryError
from cluster.gallery.gallery import Gallery
from cluster.gallery.server_backend import server_endpoint
from tests.records import RECORDS_FILE, records_database

URI = "http://milvus.internal:19530"


def test_credentials_come_from_the_configuration_else_the_environment(monkeypatch):
    monkeypatch.setenv("LFR_MILVUS_TOKEN", "lfr:from-env")
    assert server_endpoint(ServerBackendConfig(type="milvus", uri=URI)).token == "lfr:from-env"
    configured = ServerBackendConfig(type="milvus", uri=URI, token=SecretStr("lfr:configured"))
    assert server_endpoint(configured).token == "lfr:configured"
    monkeypatch.setenv("OTHER_TOKEN", "lfr:other")
    assert server_endpoint(ServerBackendConfig(type="milvus", uri=URI, token_env="OTHER_TOKEN")).token == "lfr:other"


def test_a_gallery_without_credentials_is_not_opened(monkeypatch, tmp_path):
    monkeypatch.delenv("LFR_MILVUS_TOKEN", raising=False)
    config = GalleryConfig(backend=ServerBackendConfig(type="milvus", uri=URI))
    catalogue = Catalogue(records_database(tmp_path / RECORDS_FILE))
    with pytest.raises(
        GalleryError, match=r"no credentials .* set LFR_MILVUS_TOKEN=user:password .*authorizationEnabled"
    ):
        Gallery.open(config, catalogue)


def _lists_collections(uri: str, token: str) -> bool:
    try:
        client = MilvusClient(uri=uri, token=token, timeout=10, dedicated=True)
    except (MilvusException, grpc.RpcError):
        return False
    try:
        client.list_collections(timeout=10)
        return True
    except (MilvusException, grpc.RpcError):
        return False
    finally:
        client.close()


@pytest.mark.slow
def test_the_server_refuses_anonymous_clients_and_the_default_password(real_milvus):
    assert _lists_collections(real_milvus.uri, real_milvus.token)
    assert not _lists_collections(real_milvus.uri, ""), "an anonymous client must be refused"
    assert not _lists_collections(real_milvus.uri, "root:Milvus"), "the well-known default password must not work"
    assert not _lists_collections(real_milvus.uri, f"root:{real_milvus.password}x")
