"""The two Milvus collections, their fields and their vector index.

`watchlist` is partitioned by watchlist id (a partition key), so a search filtered to one
watchlist touches only its partition. Both collections hold 128-d L2-normalised embeddings
under the COSINE metric (a dot product on unit vectors) in an HNSW index; milvus-lite builds
HNSW with faiss, the server with knowhere, from the same parameters.
"""

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


def search_params(hnsw: HnswConfig, top_k: int) -> dict:
    """Search parameters for the HNSW index; ef is raised to top_k when a caller asks for more candidates."""
    return {"metric_type": METRIC, "params": {"ef": max(hnsw.ef, top_k)}}
