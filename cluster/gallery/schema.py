"""The two Milvus collections, their fields and their vector index.

`watchlist` is partitioned by watchlist id (a partition key), so a search filtered to one
watchlist touches only its partition. Both collections hold 128-d L2-normalised embeddings
under the COSINE metric (a dot product on unit vectors) in an HNSW index; milvus-lite builds
HNSW with faiss, the server with knowhere, from the same parameters.

Within its partition a search still evaluates its filter on every row, and on the server the
`watchlist_id == "..."` clause compares every row's string: about half of the filter's time at
1M rows (docs/benchmarks.md, "Face gallery"). A Trie index on `watchlist_id` answers it from the
index instead. It is added to an existing collection when the gallery opens (which then loads
the collection again: Milvus 2.3 applies a new index only on a fresh load), so galleries made
before it need nothing done.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from pymilvus import CollectionSchema, DataType, MilvusClient
from pymilvus.milvus_client.index import IndexParams

from cluster.gallery.config import HnswConfig
from cluster.gallery.records import (
    ID_MAX,
    IMAGE_PATH_MAX,
    LABEL_MAX,
    OFFICER_MAX,
    PLACE_MAX,
    POST_ID_MAX,
    SOURCE_MAX,
    URL_MAX,
)
from cluster.vision.face import EMBEDDING_SIZE

WATCHLIST_COLLECTION = "watchlist"
SOCIAL_COLLECTION = "social_media"
VECTOR_FIELD = "embedding"
METRIC = "COSINE"
WATCHLIST_PARTITIONS = 16
"""Partitions the watchlist-id key hashes into; fixed when the collection is created."""

WATCHLIST_FIELDS = (
    "entry_id",
    "person_id",
    "watchlist_id",
    "label",
    "category",
    "source",
    "authorised_by",
    "expires_at",
    "enrolled_at",
    "batch",
)
"""Scalar fields of `watchlist`, returned with every hit and query row."""

SOCIAL_FIELDS = (
    "face_id",
    "platform",
    "post_id",
    "url",
    "captured_at",
    "place",
    "image_path",
    "box_x1",
    "box_y1",
    "box_x2",
    "box_y2",
    "authorised_by",
    "ingest_id",
    "expires_at",
)
"""Scalar fields of `social_media`, returned with every hit and query row."""


def watchlist_schema() -> CollectionSchema:
    """One row per enrolled face photo; `entry_id` is the primary key, `watchlist_id` the partition key."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("entry_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
    schema.add_field("person_id", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("watchlist_id", DataType.VARCHAR, max_length=ID_MAX, is_partition_key=True)
    schema.add_field("label", DataType.VARCHAR, max_length=LABEL_MAX)
    schema.add_field("category", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("source", DataType.VARCHAR, max_length=SOURCE_MAX)
    schema.add_field("authorised_by", DataType.VARCHAR, max_length=OFFICER_MAX)
    schema.add_field("expires_at", DataType.INT64)
    schema.add_field("enrolled_at", DataType.INT64)
    schema.add_field("batch", DataType.INT64)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=EMBEDDING_SIZE)
    return schema


def social_schema() -> CollectionSchema:
    """One row per face found in a social-media image; `face_id` is the primary key.

    Each row carries who authorised its ingest, the ingest's id and when it expires, so the
    faces of one post or one ingest can be deleted and expired ones purged.
    """
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
    schema.add_field("platform", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("post_id", DataType.VARCHAR, max_length=POST_ID_MAX)
    schema.add_field("url", DataType.VARCHAR, max_length=URL_MAX)
    schema.add_field("captured_at", DataType.INT64)
    schema.add_field("place", DataType.VARCHAR, max_length=PLACE_MAX)
    schema.add_field("image_path", DataType.VARCHAR, max_length=IMAGE_PATH_MAX)
    for name in ("box_x1", "box_y1", "box_x2", "box_y2"):
        schema.add_field(name, DataType.FLOAT)
    schema.add_field("authorised_by", DataType.VARCHAR, max_length=OFFICER_MAX)
    schema.add_field("ingest_id", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("expires_at", DataType.INT64)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=EMBEDDING_SIZE)
    return schema


def vector_index(hnsw: HnswConfig) -> IndexParams:
    """The HNSW index on the embedding field."""
    params = MilvusClient.prepare_index_params()
    params.add_index(
        VECTOR_FIELD,
        index_type="HNSW",
        metric_type=METRIC,
        params={"M": hnsw.m, "efConstruction": hnsw.ef_construction},
    )
    return params


@dataclass(frozen=True)
class ScalarIndex:
    """A scalar index a collection should have: on which field, of which type, under which name."""

    field: str
    index_type: str
    name: str


WATCHLIST_ID_INDEX = ScalarIndex("watchlist_id", "Trie", "watchlist_id_trie")
"""The server's index on `watchlist_id`, which every watchlist search filters on (Milvus 2.3 indexes VARCHAR with
a Trie; milvus-lite has none)."""


def collection_indexes(hnsw: HnswConfig, scalars: Sequence[ScalarIndex]) -> IndexParams:
    """The HNSW index on the embedding field and the scalar indexes, to create a collection with."""
    params = vector_index(hnsw)
    for index in scalars:
        params.add_index(index.field, index_type=index.index_type, index_name=index.name)
    return params


def scalar_index(index: ScalarIndex) -> IndexParams:
    """One scalar index, to add to a collection made without it."""
    params = MilvusClient.prepare_index_params()
    params.add_index(index.field, index_type=index.index_type, index_name=index.name)
    return params


def search_params(hnsw: HnswConfig, top_k: int) -> dict:
    """Search parameters for the HNSW index; ef is raised to top_k when a caller asks for more candidates."""
    return {"metric_type": METRIC, "params": {"ef": max(hnsw.ef, top_k)}}
