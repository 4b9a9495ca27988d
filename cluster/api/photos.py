"""Watchlist photos: the enrolment image an officer compares with the live crop.

The API asks a `WatchlistPhotos` for the photo of an alert's person; the gallery will answer
from its enrolment images. Until it does, `FolderWatchlistPhotos` reads
`<root>/<watchlist_id>/<person_id>.jpg`.
"""

import re
from pathlib import Path
from typing import Protocol

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class WatchlistPhotos(Protocol):
    def photo(self, person_id: str, watchlist_id: str) -> bytes | None:
        """The person's watchlist photo as JPEG, or None when there is none."""


class FolderWatchlistPhotos:
    """Photos as JPEG files in `<root>/<watchlist_id>/<person_id>.jpg`; no root means no photos."""

    def __init__(self, root: Path | None) -> None:
        if root is not None and not Path(root).is_dir():
            raise ValueError(f"watchlist photo folder {root} does not exist: create it or leave --photos-dir out")
        self.root = None if root is None else Path(root)

    def photo(self, person_id: str, watchlist_id: str) -> bytes | None:
        if self.root is None or not (_SAFE_ID.fullmatch(person_id) and _SAFE_ID.fullmatch(watchlist_id)):
            return None
        path = self.root / watchlist_id / f"{person_id}.jpg"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
