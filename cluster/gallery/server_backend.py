"""The real-server backend: a Milvus 2.3 server reached by URI; nothing to start or stop here.

The server runs with authorisation on, so every connection carries credentials: the configured
token, else the one in the environment variable the configuration names (`LFR_MILVUS_TOKEN`).
Without either the gallery is not opened: a client without credentials is what an attacker on
the network would be.
"""

import os

from cluster.gallery.config import ServerBackendConfig
from cluster.gallery.endpoint import MilvusEndpoint
from cluster.gallery.errors import GalleryError


def server_token(config: ServerBackendConfig) -> str:
    """The configured token, else the environment's; GalleryError saying what to set when there is none."""
    if config.token is not None and config.token.get_secret_value():
        return config.token.get_secret_value()
    token = os.environ.get(config.token_env, "")
    if not token:
        raise GalleryError(
            f"no credentials for the Milvus server at {config.uri}: set {config.token_env}=user:password in the"
            " environment (or gallery.backend.token); the server must run with"
            " common.security.authorizationEnabled: true"
        )
    return token


def server_endpoint(config: ServerBackendConfig) -> MilvusEndpoint:
    """The configured server's endpoint, with its credentials."""
    return MilvusEndpoint(
        uri=config.uri,
        token=server_token(config),
        shards=config.shards,
        hnsw=config.index,
        remedy=(
            "check that the Milvus server is running and reachable from here"
            " (its /healthz on port 9091 says OK), or fix gallery.backend.uri"
        ),
    )
