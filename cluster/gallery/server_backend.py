"""The real-server backend: a Milvus 2.3 server reached by URI; nothing to start or stop here."""

from cluster.gallery.config import ServerBackendConfig
from cluster.gallery.endpoint import MilvusEndpoint


def server_endpoint(config: ServerBackendConfig) -> MilvusEndpoint:
    """The configured server's endpoint."""
    return MilvusEndpoint(
        uri=config.uri,
        token=config.token.get_secret_value() if config.token is not None else "",
        shards=config.shards,
        hnsw=config.index,
        remedy=(
            "check that the Milvus server is running and reachable from here"
            " (its /healthz on port 9091 says OK), or fix gallery.backend.uri"
        ),
    )
