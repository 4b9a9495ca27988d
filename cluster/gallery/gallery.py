"""`Gallery`: the face gallery over Milvus, one code path for milvus-lite and a real server.

`Gallery.open(config, catalogue)` resolves the configured backend to an endpoint (starting the
embedded milvus-lite server when that is the backend), makes sure both collections exist with
their index and are loaded, and exposes `watchlists` and `social`. The catalogue is opened by
the caller over the records database (`Catalogue(database)`), which every process shares.
The CLI and the Ray actors are thin layers over it.
"""

from types import TracebackType

import structlog
from pymilvus import CollectionSchema, MilvusClient
from pymilvus.exceptions import MilvusException

from cluster.gallery.catalogue import Catalogue
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.connection import MilvusConnection
from cluster.gallery.endpoint import MilvusEndpoint
from cluster.gallery.errors import GalleryError
from cluster.gallery.lite_backend import EmbeddedMilvus
from cluster.gallery.schema import (
    SOCIAL_COLLECTION,
    WATCHLIST_COLLECTION,
    WATCHLIST_PARTITIONS,
    social_schema,
    vector_index,
    watchlist_schema,
)
from cluster.gallery.server_backend import server_endpoint
from cluster.gallery.social import SocialFaces
from cluster.gallery.watchlists import Watchlists

log = structlog.get_logger(__name__)


def backend_endpoint(config: GalleryConfig) -> MilvusEndpoint:
    """The endpoint of the configured backend; for milvus-lite, its server is started when none runs."""
    if isinstance(config.backend, LiteBackendConfig):
        return EmbeddedMilvus(config.backend, config.timeouts).endpoint()
    return server_endpoint(config.backend)


class Gallery:
    """Watchlists and social-media faces in Milvus, with the catalogue beside them."""

    def __init__(self, config: GalleryConfig, endpoint: MilvusEndpoint, catalogue: Catalogue) -> None:
        self.config = config
        self.endpoint = endpoint
        self.connection = MilvusConnection(endpoint, config.timeouts, config.retry)
        self.catalogue = catalogue
        self.watchlists = Watchlists(config, self.connection, catalogue)
        self.social = SocialFaces(config, self.connection)

    @classmethod
    def open(cls, config: GalleryConfig, catalogue: Catalogue) -> "Gallery":
        """A ready gallery over this catalogue: backend reachable, collections created and loaded."""
        gallery = cls(config, backend_endpoint(config), catalogue)
        gallery.ensure_collections()
        return gallery

    def ensure_collections(self) -> None:
        """Create the two collections (schema, HNSW index, shards, partitions) unless they exist; load both."""
        self._ensure(WATCHLIST_COLLECTION, watchlist_schema(), WATCHLIST_PARTITIONS)
        self._ensure(SOCIAL_COLLECTION, social_schema(), None)

    def _ensure(self, name: str, schema: CollectionSchema, partitions: int | None) -> None:
        timeout = self.config.timeouts.request_s
        expected = [field.name for field in schema.fields]

        def ensure(client: MilvusClient) -> None:
            if not client.has_collection(name, timeout=timeout):
                options = {"num_partitions": partitions} if partitions else {}
                try:
                    client.create_collection(
                        name,
                        schema=schema,
                        index_params=vector_index(self.endpoint.hnsw),
                        num_shards=self.endpoint.shards,
                        consistency_level=self.config.consistency,
                        timeout=timeout,
                        **options,
                    )
                    log.info("milvus_collection_created", collection=name, shards=self.endpoint.shards)
                except MilvusException:
                    if not client.has_collection(name, timeout=timeout):
                        raise
            found = [field["name"] for field in client.describe_collection(name, timeout=timeout)["fields"]]
            if found != expected:
                raise GalleryError(
                    f"collection {name!r} on {self.endpoint.uri} has fields {found}, expected {expected}: another"
                    " program or version made it; drop it or point gallery.backend at another server or data_dir"
                )
            client.load_collection(name, timeout=timeout)

        self.connection.run(name, f"prepare collection {name}", ensure)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
