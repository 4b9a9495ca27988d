"""`ModelVectors`: the vectors of second-stage face models, one collection per model.

The primary model's vector lives in the row of its entry (`watchlist`, `social_media`);
every further model has its own collection, `<collection>__<model>`, holding the same primary
keys with that model's vector (Milvus 2.3 allows one vector field per collection). A search
shortlists candidates by the primary vector, then fetches the other models' vectors of the
shortlist by key; deletions go to every model's collection, so removing or purging an entry
leaves no vector of it anywhere.
"""

from collections.abc import Sequence

import numpy as np
import structlog
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from cluster.gallery.bulk import ID_LOOKUP_CHUNK, delete_matching, insert_rows, query_ids
from cluster.gallery.connection import MilvusConnection
from cluster.gallery.embeddings import as_embedding_batch
from cluster.gallery.expressions import ids_filter
from cluster.gallery.records import ID_MAX
from cluster.gallery.schema import METRIC, VECTOR_FIELD

log = structlog.get_logger(__name__)

SEPARATOR = "__"


def model_collection(base: str, model: str) -> str:
    """`watchlist__faceres`: the collection of `model`'s vectors beside `base`."""
    return f"{base}{SEPARATOR}{model}"


class ModelVectors:
    """Second-stage model vectors beside one base collection, keyed by the base's primary key."""

    def __init__(self, connection: MilvusConnection, base: str, primary_key: str, consistency: str) -> None:
        self.connection = connection
        self.base = base
        self.primary_key = primary_key
        self.consistency = consistency
        self._known: set[str] = set()
        """Models whose collection has been seen to exist (collections are never dropped, so this only grows)."""

    def existing_models(self) -> list[str]:
        """Models that have a collection beside the base."""
        prefix = f"{self.base}{SEPARATOR}"
        names = self.connection.run(
            self.base,
            "list model collections",
            lambda client: client.list_collections(timeout=self.connection.timeouts.request_s),
        )
        return sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix))

    def _ensure(self, model: str, dim: int) -> str:
        name = model_collection(self.base, model)
        timeout = self.connection.timeouts.request_s

        def ensure(client: MilvusClient) -> None:
            if not client.has_collection(name, timeout=timeout):
                schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field(self.primary_key, DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
                schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
                index = MilvusClient.prepare_index_params()
                index.add_index(VECTOR_FIELD, index_type="FLAT", metric_type=METRIC)
                try:
                    client.create_collection(
                        name, schema=schema, index_params=index, consistency_level=self.consistency, timeout=timeout
                    )
                    log.info("milvus_collection_created", collection=name, dim=dim)
                except MilvusException:
                    if not client.has_collection(name, timeout=timeout):
                        raise
            found = client.describe_collection(name, timeout=timeout)["fields"]
            dims = [field.get("params", {}).get("dim") for field in found if field["name"] == VECTOR_FIELD]
            if dims and dims[0] is not None and int(dims[0]) != dim:
                raise ValueError(
                    f"collection {name!r} holds {dims[0]}-d vectors but model {model!r} gives {dim}-d ones: another"
                    " model was stored under that name; use another model name or drop the collection"
                )
            client.load_collection(name, timeout=timeout)

        self.connection.run(name, f"prepare collection {name}", ensure)
        self._known.add(model)
        return name

    def insert(self, model: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store `model`'s vectors under the given primary keys (the collection is made on first use)."""
        batch = as_embedding_batch(vectors, f"{model} embeddings", size=np.shape(vectors)[-1])
        name = self._ensure(model, batch.shape[1])
        rows = [{self.primary_key: key, VECTOR_FIELD: vector} for key, vector in zip(ids, batch)]
        insert_rows(self.connection, name, rows, self.primary_key, f"store {model} vectors")

    def fetch(self, model: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """`model`'s vectors of these keys (keys without one are absent)."""
        rows = self._rows(model, ids, [self.primary_key, VECTOR_FIELD], f"fetch {model} vectors")
        return {str(row[self.primary_key]): np.asarray(row[VECTOR_FIELD], dtype=np.float32) for row in rows}

    def count(self, model: str, ids: Sequence[str]) -> int:
        """How many of these keys have a vector of `model` (only the keys are read, never the vectors)."""
        return len(self._rows(model, ids, [self.primary_key], f"count {model} vectors"))

    def _rows(self, model: str, ids: Sequence[str], fields: list[str], operation: str) -> list[dict]:
        if not ids:
            return []
        if model not in self._known:
            if model not in self.existing_models():
                return []
            self._known.add(model)
        return query_ids(
            self.connection,
            model_collection(self.base, model),
            self.primary_key,
            list(dict.fromkeys(ids)),
            fields,
            operation,
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete these keys' vectors from every model's collection."""
        if not ids:
            return
        for model in self.existing_models():
            name = model_collection(self.base, model)
            for start in range(0, len(ids), ID_LOOKUP_CHUNK):
                delete_matching(
                    self.connection,
                    name,
                    ids_filter(self.primary_key, ids[start : start + ID_LOOKUP_CHUNK]),
                    self.primary_key,
                    f"delete {model} vectors",
                )
