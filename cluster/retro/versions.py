"""Which frozen version of a watchlist a retrospective search uses.

A search always runs against a frozen version, so its report names exactly which entries were
searched: the one asked for (`3`, `v3` or `NAME@v3`), else the latest, else one frozen now.
A watchlist whose authorisation has expired is refused before any footage is read.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cluster.gallery.errors import UnknownWatchlistError, WatchlistExpiredError
from cluster.gallery.records import WatchlistVersion
from cluster.gallery.watchlists import Watchlists

VERSION_PATTERN = re.compile(r"^(?:(?P<watchlist_id>.+)@)?v?(?P<number>[1-9][0-9]*)$")


@dataclass(frozen=True)
class VersionChoice:
    """The version to search, and whether it was frozen just now because the watchlist had none."""

    version: WatchlistVersion
    frozen_now: bool


def choose_version(
    watchlists: Watchlists,
    watchlist_id: str,
    requested: str | None,
    *,
    freeze: Callable[[], WatchlistVersion],
    now: float | None = None,
) -> VersionChoice:
    """The requested version of the watchlist, else its latest, else a new one frozen by `freeze`.

    freeze: freezes the watchlist when it has no version (the caller calibrates the version and audits it).
    UnknownWatchlistError when there is no such watchlist or version; WatchlistExpiredError when
    the watchlist's authorisation has run out.
    """
    watchlist = watchlists.get(watchlist_id)
    if watchlist.expires_at <= (time.time() if now is None else now):
        raise WatchlistExpiredError(
            f"watchlist {watchlist_id!r} expired at {datetime.fromtimestamp(watchlist.expires_at, UTC).isoformat()};"
            " it may no longer be searched"
        )
    if requested is not None:
        match = VERSION_PATTERN.fullmatch(requested.strip())
        if match is None:
            raise UnknownWatchlistError(
                f"version {requested!r} is not a version id; pass its number (3), v3 or {watchlist_id}@v3"
            )
        named = match["watchlist_id"]
        if named is not None and named != watchlist_id:
            raise UnknownWatchlistError(
                f"version {requested!r} is a version of {named!r}, not of the watchlist searched ({watchlist_id!r})"
            )
        return VersionChoice(watchlists.version(f"{watchlist_id}@v{match['number']}"), frozen_now=False)
    versions = watchlists.versions(watchlist_id)
    if versions:
        return VersionChoice(versions[-1], frozen_now=False)
    return VersionChoice(freeze(), frozen_now=True)
