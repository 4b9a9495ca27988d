"""`MilvusEndpoint`: what the gallery needs to know about a running Milvus, whichever backend provides it."""

from dataclasses import dataclass

from cluster.gallery.config import HnswConfig


@dataclass(frozen=True)
class MilvusEndpoint:
    """A Milvus to connect to.

    remedy: what an operator should do when it cannot be reached, quoted in errors.
    shards: shards of collections this gallery creates (milvus-lite has one, whatever is asked).
    """

    uri: str
    token: str
    shards: int
    hnsw: HnswConfig
    remedy: str
