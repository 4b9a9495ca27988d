"""GalleryConfig: the backend union, its defaults, and errors that name the bad key."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from cluster.gallery.config import GalleryConfig, LiteBackendConfig, ServerBackendConfig


def _load(text: str) -> GalleryConfig:
    return GalleryConfig.model_validate(yaml.safe_load(text))


def _error_keys(error: ValidationError) -> list[str]:
    return [".".join(str(part) for part in item["loc"]) for item in error.errors()]


def test_defaults_are_the_embedded_backend():
    config = GalleryConfig()
    assert isinstance(config.backend, LiteBackendConfig)
    assert config.backend.data_dir == Path("~/.local/share/lfr/milvus")
    assert (config.consistency, config.top_k, config.backend.index.ef) == ("Bounded", 16, 64)


def test_server_backend_from_yaml():
    config = _load(
        """
        backend: {type: milvus, uri: "http://milvus.internal:19530", token: "root:Milvus", shards: 4,
                  index: {m: 32, ef_construction: 256, ef: 128}}
        consistency: Strong
        top_k: 10
        retry: {attempts: 6, initial_backoff_s: 0.5, max_backoff_s: 5}
        """
    )
    assert isinstance(config.backend, ServerBackendConfig)
    assert (config.backend.shards, config.backend.index.m, config.backend.index.ef) == (4, 32, 128)
    assert "Milvus" not in repr(config), "the token must not show in logs or reprs"
    assert config.backend.token.get_secret_value() == "root:Milvus"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("backend: {type: qdrant}", "backend", "does not match any of the expected tags: 'milvus-lite', 'milvus'"),
        ("backend: {type: milvus}", "backend.milvus.uri", "Field required"),
        ("backend: {type: milvus, uri: 'ftp://x'}", "backend.milvus.uri", "must start with one of http:, https:"),
        ("backend: {type: milvus, uri: 'http://'}", "backend.milvus.uri", "names no host"),
        ("backend: {type: milvus, uri: 'http://h:1', shards: 0}", "backend.milvus.shards", "greater than or equal"),
        ("backend: {type: milvus-lite, uri: 'http://h:1'}", "backend.milvus-lite.uri", "Extra inputs"),
        ("backend: {type: milvus-lite, port: 19530}", "backend.milvus-lite.port", "Extra inputs"),
        ("consistency: Eventually", "consistency", "'Strong' or 'Bounded'"),
        ("retry: {attempts: 0}", "retry.attempts", "greater than or equal to 1"),
        ("retry: {initial_backoff_s: 5, max_backoff_s: 1}", "retry", "must not exceed max_backoff_s"),
        ("timeouts: {search_s: 0}", "timeouts.search_s", "greater than 0"),
        ("top_k: 100", "", "backend.index.ef (64) must be at least top_k (100)"),
        ("shards: 2", "shards", "Extra inputs"),
    ],
)
def test_bad_values_name_their_key(text, key, message):
    with pytest.raises(ValidationError) as failure:
        _load(text)
    assert key in _error_keys(failure.value)
    assert message in str(failure.value)


def test_a_catalogue_file_in_the_configuration_is_refused_with_how_to_import_it():
    """The catalogue moved into the records database: a configuration still naming a file must not be taken silently,
    or the watchlists in that file would look lost."""
    with pytest.raises(ValidationError, match=r"lfr db import-catalogue /srv/lfr/catalogue.sqlite.*lfr db upgrade"):
        _load("catalogue_path: /srv/lfr/catalogue.sqlite")
