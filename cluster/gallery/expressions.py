"""Milvus boolean filter expressions, built only from checked ids and integers.

Values are written into the expression (Milvus 2.3 has no expression templates), so every
string passes `check_id` first: ids cannot carry quotes or backslashes into a filter.
"""

from collections.abc import Iterable

from cluster.gallery.records import WatchlistVersion, check_id


def quoted(value: str, what: str) -> str:
    """A checked id as a double-quoted expression literal."""
    return f'"{check_id(value, what)}"'


def frozen_entries_filter(watchlist_id: str, max_batch: int, excluded_batches: Iterable[int], now: int) -> str:
    """Entries of the watchlist's batches up to `max_batch` (less the excluded ones) not expired at `now`."""
    expression = (
        f"watchlist_id == {quoted(watchlist_id, 'watchlist_id')}"
        f" and batch <= {int(max_batch)} and expires_at > {int(now)}"
    )
    excluded = [str(int(batch)) for batch in excluded_batches]
    if excluded:
        expression += f" and batch not in [{', '.join(excluded)}]"
    return expression


def watchlist_search_filter(version: WatchlistVersion, now: int) -> str:
    """Entries of the frozen version that have not expired at `now`."""
    return frozen_entries_filter(version.watchlist_id, version.max_batch, version.excluded_batches, now)


def watchlist_filter(watchlist_id: str, person_id: str | None = None, max_batch: int | None = None) -> str:
    """Entries of one watchlist; of one person in it when `person_id` is given; up to a batch when given."""
    expression = f"watchlist_id == {quoted(watchlist_id, 'watchlist_id')}"
    if person_id is not None:
        expression += f" and person_id == {quoted(person_id, 'person_id')}"
    if max_batch is not None:
        expression += f" and batch <= {int(max_batch)}"
    return expression


def batch_filter(watchlist_id: str, batch: int) -> str:
    """The entries one enrolment batch wrote."""
    return f"watchlist_id == {quoted(watchlist_id, 'watchlist_id')} and batch == {int(batch)}"


def expired_filter(now: int) -> str:
    """Entries whose expiry is at or before `now`."""
    return f"expires_at <= {int(now)}"


def ids_filter(field: str, ids: Iterable[str]) -> str:
    """Rows whose primary key `field` is one of `ids`."""
    return f"{field} in [{', '.join(quoted(value, field) for value in ids)}]"


def social_filter(
    platform: str | None, captured_from: int | None, captured_to: int | None, now: int | None = None
) -> str:
    """Social-media faces of one platform and/or a capture window, not expired at `now` when given; empty when
    unrestricted."""
    clauses = []
    if platform is not None:
        clauses.append(f"platform == {quoted(platform, 'platform')}")
    if captured_from is not None:
        clauses.append(f"captured_at >= {int(captured_from)}")
    if captured_to is not None:
        clauses.append(f"captured_at <= {int(captured_to)}")
    if now is not None:
        clauses.append(f"expires_at > {int(now)}")
    return " and ".join(clauses)


def ingest_filter(ingest_id: str) -> str:
    """The social-media faces one ingest stored."""
    return f"ingest_id == {quoted(ingest_id, 'ingest_id')}"
