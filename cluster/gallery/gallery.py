"""`Gallery`: the face gallery over Milvus, one code path for milvus-lite and a real server.

`Gallery.open(config, catalogue)` resolves the configured backend to an endpoint (starting the
embedded milvus-lite server when that is the backend), makes sure both collections exist with
their index and are loaded, and exposes `watchlists` and `social`. The catalogue is opened by
the caller over the records database (`Catalogue(database)`), which every process shares.
The CLI and the Ray actors are thin layers over it.
"""

from collections.abc import Sequence
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
    WATCHLIST_ID_INDEX,
    WATCHLIST_PARTITIONS,
    ScalarIndex,
    collection_indexes,
    scalar_index,
    social_schema,
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
        """Create the two collections (schema, indexes, shards, partitions) unless they exist; load both.

        On a Milvus server the watchlist also has a Trie index on `watchlist_id` (milvus-lite has
        none); a collection made before it gets it here, and is then released and loaded again,
        because Milvus 2.3 applies a new index only on a fresh load (searches meanwhile fail and
        are retried).
        """
        scalars = () if isinstance(self.config.backend, LiteBackendConfig) else (WATCHLIST_ID_INDEX,)
        self._ensure(WATCHLIST_COLLECTION, watchlist_schema(), WATCHLIST_PARTITIONS, scalars)
        self._ensure(SOCIAL_COLLECTION, social_schema(), None, ())

    def _ensure(
        self, name: str, schema: CollectionSchema, partitions: int | None, scalars: Sequence[ScalarIndex]
    ) -> None:
        timeout = self.config.timeouts.request_s
        expected = [field.name for field in schema.fields]

        def ensure(client: MilvusClient) -> None:
            if not client.has_collection(name, timeout=timeout):
                options = {"num_partitions": partitions} if partitions else {}
                try:
                    client.create_collection(
                        name,
                        schema=schema,
                        index_params=collection_indexes(self.endpoint.hnsw, scalars),
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
            existing = client.list_indexes(name, timeout=timeout)
            missing = [index for index in scalars if index.name not in existing]
            for index in missing:
                self._add_index(client, name, index)
            if missing:
                client.release_collection(name, timeout=timeout)
            client.load_collection(name, timeout=timeout)

        self.connection.run(name, f"prepare collection {name}", ensure)

    def _add_index(self, client: MilvusClient, name: str, index: ScalarIndex) -> None:
        """Add a scalar index to an existing collection (another process adding it at once is no error)."""
        timeout = self.config.timeouts.request_s
        try:
            client.create_index(name, scalar_index(index), timeout=timeout)
        except MilvusException:
            if index.name not in client.list_indexes(name, timeout=timeout):
                raise
        log.warning("milvus_index_added", collection=name, index=index.name, field=index.field, reload=True)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
