"""`EnrolmentKey`: which face of which photo of which person a watchlist entry was enrolled from.

A bulk import is re-run after a partial failure, or simply run twice; the key is how it knows
a row is already enrolled. It names the photo by the SHA-256 of its bytes, not its path, so
a renamed or moved file is still the same photo and an edited one is a new photo.
"""

import re
from dataclasses import dataclass

from cluster.gallery.errors import InvalidRecordError
from cluster.gallery.records import check_id

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class EnrolmentKey:
    """A watchlist holds at most one committed entry per key."""

    person_id: str
    photo_sha256: str
    face_index: int

    def __post_init__(self) -> None:
        check_id(self.person_id, "person_id")
        if not SHA256_PATTERN.fullmatch(self.photo_sha256):
            raise InvalidRecordError(f"photo_sha256 must be 64 lowercase hex digits, got {self.photo_sha256!r}")
        if isinstance(self.face_index, bool) or not isinstance(self.face_index, int) or self.face_index < 0:
            raise InvalidRecordError(f"face_index must be an int >= 0, got {self.face_index!r}")
