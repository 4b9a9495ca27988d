"""`MilvusConnection`: one pymilvus `MilvusClient`, with the retry policy around every call.

The client is created inside the first attempt, so a server that is down when the gallery
opens is retried like any other transient fault. pymilvus 3 fails fast when the server is
unreachable and reconnects by itself once it is back, so retrying the same client works.

A server that restarted may hold the collection released (milvus-lite always does; Milvus
while it recovers): a call refused for that reason loads the collection and runs again.
"""

from collections.abc import Callable
from typing import TypeVar

import structlog
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from cluster.gallery.config import RetryConfig, TimeoutsConfig
from cluster.gallery.endpoint import MilvusEndpoint
from cluster.gallery.retry import RetryPolicy

log = structlog.get_logger(__name__)

T = TypeVar("T")

COLLECTION_NOT_LOADED = 101
"""Milvus' error code for a call on a collection that is not loaded (both backends use it)."""


class MilvusConnection:
    """Runs calls on a MilvusClient under the retry policy; `operation` names the call in errors and logs."""

    def __init__(self, endpoint: MilvusEndpoint, timeouts: TimeoutsConfig, retry: RetryConfig) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.retry = RetryPolicy(retry, uri=endpoint.uri, remedy=endpoint.remedy)
        self._client: MilvusClient | None = None

    def run(self, collection: str, operation: str, call: Callable[[MilvusClient], T]) -> T:
        """`call(client)` on `collection` under the retry policy, loading the collection when it was released."""

        def attempt() -> T:
            client = self._connected()
            try:
                return call(client)
            except MilvusException as error:
                if error.code != COLLECTION_NOT_LOADED:
                    raise
                log.warning("milvus_collection_reloaded", collection=collection, operation=operation)
                client.load_collection(collection, timeout=self.timeouts.request_s)
                return call(client)

        return self.retry.call(operation, attempt)

    def _connected(self) -> MilvusClient:
        if self._client is None:
            self._client = MilvusClient(
                uri=self.endpoint.uri, token=self.endpoint.token, timeout=self.timeouts.connect_s
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
