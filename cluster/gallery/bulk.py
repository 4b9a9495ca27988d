"""Inserts, paged reads, searches and deletions of many rows, each safe to retry.

Milvus 2.3 caps one query at 16,384 rows and accepts duplicate primary keys, and its upsert
loses rows on collections with a partition key (seen on 2.3.5: 1,500 rows upserted, 96
visible). So inserts go in chunks, and a chunk retried after a failed try first deletes its
own ids, in case that try was applied: a row is never stored twice. Reads and deletions that
must see every earlier write use Strong consistency.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from cluster.gallery.connection import MilvusConnection
from cluster.gallery.expressions import ids_filter
from cluster.gallery.schema import search_params

INSERT_CHUNK = 5000
QUERY_LIMIT = 16384
ITERATOR_BATCH = 4096
ID_LOOKUP_CHUNK = 1000
MAX_DELETE_ROUNDS = 1000
STRONG = "Strong"


def insert_rows(
    connection: MilvusConnection, collection: str, rows: Sequence[dict[str, Any]], primary_key: str, operation: str
) -> None:
    """Insert the rows in chunks; each chunk is retried without ever storing a row twice."""
    timeout = connection.timeouts.request_s
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = list(rows[start : start + INSERT_CHUNK])
        ids = [row[primary_key] for row in chunk]
        tried = False

        def attempt(client: MilvusClient, chunk: list[dict[str, Any]] = chunk, ids: list[str] = ids) -> None:
            nonlocal tried
            if tried:
                client.delete(collection, ids=ids, timeout=timeout)
            tried = True
            client.insert(collection, chunk, timeout=timeout)

        connection.run(collection, operation, attempt)


def query_all(
    connection: MilvusConnection, collection: str, expression: str, output_fields: Sequence[str], operation: str
) -> list[dict[str, Any]]:
    """Every row matching the expression, read page by page with Strong consistency."""
    timeout = connection.timeouts.request_s

    def read(client: MilvusClient) -> list[dict[str, Any]]:
        iterator = client.query_iterator(
            collection,
            batch_size=ITERATOR_BATCH,
            filter=expression,
            output_fields=list(output_fields),
            consistency_level=STRONG,
            timeout=timeout,
        )
        rows: list[dict[str, Any]] = []
        try:
            while page := iterator.next():
                rows.extend(dict(row) for row in page)
        finally:
            iterator.close()
        return rows

    return connection.run(collection, operation, read)


def query_ids(
    connection: MilvusConnection,
    collection: str,
    primary_key: str,
    ids: Sequence[str],
    output_fields: Sequence[str],
    operation: str,
    consistency: str = STRONG,
) -> list[dict[str, Any]]:
    """The rows with these primary keys (those that exist); Strong unless the caller found the ids itself."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_LOOKUP_CHUNK):
        expression = ids_filter(primary_key, ids[start : start + ID_LOOKUP_CHUNK])
        rows.extend(query_rows(connection, collection, expression, output_fields, operation, consistency=consistency))
    return rows


def query_rows(
    connection: MilvusConnection,
    collection: str,
    expression: str,
    output_fields: Sequence[str],
    operation: str,
    limit: int | None = None,
    consistency: str = STRONG,
) -> list[dict[str, Any]]:
    """One query (Strong by default): the rows matching the expression (at most `limit`, which Milvus caps at
    QUERY_LIMIT)."""
    options = {} if limit is None else {"limit": limit}

    def query(client: MilvusClient) -> list[dict[str, Any]]:
        return client.query(
            collection,
            filter=expression,
            output_fields=list(output_fields),
            consistency_level=consistency,
            timeout=connection.timeouts.request_s,
            **options,
        )

    return [dict(row) for row in connection.run(collection, operation, query)]


def search_rows(
    connection: MilvusConnection,
    collection: str,
    probes: np.ndarray,
    expression: str,
    limit: int,
    output_fields: Sequence[str],
    consistency: str,
    operation: str,
) -> list[list[Any]]:
    """Each probe's `limit` nearest rows among those matching the expression: pymilvus hits, most similar first.

    With no `output_fields` a hit carries only its primary key and similarity (the cheapest answer).
    """

    def search(client: MilvusClient) -> list[list[Any]]:
        return client.search(
            collection,
            data=probes.tolist(),
            filter=expression,
            limit=limit,
            output_fields=list(output_fields),
            search_params=search_params(connection.endpoint.hnsw, limit),
            consistency_level=consistency,
            timeout=connection.timeouts.search_s,
        )

    return connection.run(collection, operation, search)


def count_rows(connection: MilvusConnection, collection: str, expression: str, operation: str) -> int:
    """How many rows match the expression (Strong consistency)."""
    return int(query_rows(connection, collection, expression, ["count(*)"], operation)[0]["count(*)"])


def delete_matching(
    connection: MilvusConnection, collection: str, expression: str, primary_key: str, operation: str
) -> list[str]:
    """Delete every row matching the expression; the deleted primary keys.

    Rows are found first and deleted by id, round after round until a Strong query finds none,
    so the count is exact and rows written meanwhile are not missed.
    """
    timeout = connection.timeouts.request_s
    deleted: list[str] = []
    for _ in range(MAX_DELETE_ROUNDS):
        rows = query_rows(connection, collection, expression, [primary_key], operation, limit=QUERY_LIMIT)
        ids = [str(row[primary_key]) for row in rows]
        if not ids:
            break

        def delete(client: MilvusClient, ids: list[str] = ids) -> None:
            client.delete(collection, ids=ids, timeout=timeout)

        connection.run(collection, operation, delete)
        deleted.extend(ids)
    if deleted:
        connection.run(collection, operation, lambda client: client.compact(collection, timeout=timeout))
    return deleted
