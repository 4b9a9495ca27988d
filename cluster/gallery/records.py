"""Typed objects that go into and come out of the gallery.

Inputs (`WatchlistEntry`, `SocialFace`) check themselves on construction, so a bad field fails
before anything is sent to Milvus, with the field named. Outputs are plain frozen records that
`cluster.gallery.rows` builds from Milvus rows; nothing outside the gallery sees a Milvus row.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.embeddings import as_embedding
from cluster.gallery.errors import InvalidRecordError
from cluster.matching.calibration import CalibratedThreshold

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""Ids (watchlist, person, entry, category, platform) that are safe inside a Milvus filter expression."""

ID_MAX = 64
LABEL_MAX = 256
SOURCE_MAX = 512
OFFICER_MAX = 128
POST_ID_MAX = 128
URL_MAX = 2048
PLACE_MAX = 256
IMAGE_PATH_MAX = 1024


def check_id(value: str, what: str) -> str:
    """The id itself, or InvalidRecordError saying which characters are allowed."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidRecordError(
            f"{what} must be 1-64 characters of letters, digits and . _ : - starting with a letter or digit,"
            f" got {value!r}"
        )
    return value


def check_text(value: str, what: str, max_bytes: int, required: bool = True) -> str:
    """The text itself, or InvalidRecordError when it is missing or longer than Milvus will store."""
    if not isinstance(value, str):
        raise InvalidRecordError(f"{what} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRecordError(f"{what} must not be empty")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidRecordError(f"{what} is {size} bytes of UTF-8; at most {max_bytes} are stored, shorten it")
    return value


def check_time(value: int, what: str) -> int:
    """A unix time in whole seconds, or InvalidRecordError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidRecordError(f"{what} must be a unix time in whole seconds (int >= 0), got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class WatchlistEntry:
    """One face photo of a person to enrol into a watchlist.

    expires_at: unix seconds after which the entry is no longer searched (and is purged);
    None means the watchlist's own expiry. extra_embeddings: second-stage model name -> its
    unit vector of the same face (stored in that model's collection).
    """

    person_id: str
    label: str
    category: str
    source: str
    authorised_by: str
    embedding: np.ndarray
    expires_at: int | None = None
    extra_embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_id(self.person_id, "person_id")
        check_text(self.label, "label", LABEL_MAX)
        check_id(self.category, "category")
        check_text(self.source, "source", SOURCE_MAX)
        check_text(self.authorised_by, "authorised_by", OFFICER_MAX)
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", check_time(self.expires_at, "expires_at"))
        object.__setattr__(self, "embedding", as_embedding(self.embedding, f"embedding of {self.person_id}"))
        extra = {
            check_id(model, "model name"): as_embedding(
                vector, f"{model} embedding of {self.person_id}", np.size(vector)
            )
            for model, vector in self.extra_embeddings.items()
        }
        object.__setattr__(self, "extra_embeddings", extra)


@dataclass(frozen=True)
class EnrolledEntry:
    """A stored watchlist entry (its embedding stays in Milvus)."""

    entry_id: str
    person_id: str
    watchlist_id: str
    label: str
    category: str
    source: str
    authorised_by: str
    expires_at: int
    enrolled_at: int
    batch: int


@dataclass(frozen=True)
class PersonRecord:
    """What enrolment recorded about one watchlist person beyond their photos: category and attributes.

    recorded_at: when the person was first recorded on this watchlist (unix seconds); recorded_by: the
    officer who last recorded them (a later enrolment of the same person replaces category and attributes).
    """

    watchlist_id: str
    person_id: str
    category: str
    attributes: PersonAttributes
    recorded_by: str
    recorded_at: int

    def __post_init__(self) -> None:
        check_id(self.watchlist_id, "watchlist_id")
        check_id(self.person_id, "person_id")
        check_id(self.category, "category")
        check_text(self.recorded_by, "recorded_by", OFFICER_MAX)
        object.__setattr__(self, "recorded_at", check_time(self.recorded_at, "recorded_at"))


@dataclass(frozen=True)
class WatchlistCandidate:
    """A watchlist entry found for a probe face; rank 1 is the most similar by the primary model.

    similarity: the primary model's cosine. model_scores: every model's cosine that could be
    computed (the primary one included), from which the fused match score is made.
    """

    entry: EnrolledEntry
    similarity: float
    rank: int
    model_scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Enrolment:
    """What one `enrol` call stored: the batch number and the new entries' ids, in input order."""

    watchlist_id: str
    batch: int
    entry_ids: tuple[str, ...]


@dataclass(frozen=True)
class Watchlist:
    """An authorised watchlist, as the catalogue records it."""

    watchlist_id: str
    name: str
    reason: str
    authorised_by: str
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class WatchlistVersion:
    """A frozen version of a watchlist: the entries of its enrolment batches up to `max_batch`.

    `excluded_batches` are batches at or below `max_batch` whose enrolment failed. `digest` is
    the SHA-256 of the fingerprints (id, person, expiry, embedding) of the entries the version
    held when it was frozen (`cluster.gallery.fingerprints`), so a deployment's log names exactly
    what it searched, and a version whose rows changed in Milvus is refused. Entries expired since
    are not searched; a person removed since is not searched either, and the version must then be
    frozen again before it is deployed. `calibration` is the threshold
    computed at freezing for the stated false-alert rate and this version's size.
    """

    watchlist_id: str
    number: int
    max_batch: int
    excluded_batches: tuple[int, ...]
    entry_count: int
    digest: str
    frozen_at: int
    watchlist_expires_at: int
    calibration: CalibratedThreshold | None = None

    @property
    def version_id(self) -> str:
        """`<watchlist_id>@v<number>`, the id a deployment binds to."""
        return f"{self.watchlist_id}@v{self.number}"


@dataclass(frozen=True, eq=False)
class SocialFace:
    """A face found in a social-media image, to store for retrospective search.

    box: (4,) x1 y1 x2 y2 in the image's pixels. authorised_by: who authorised the ingest that
    stores it; ingest_id: that ingest's operation id in the audit log (so what one ingest stored
    can be found and deleted); expires_at: unix seconds after which it is no longer searched and
    is purged.
    """

    platform: str
    post_id: str
    url: str
    captured_at: int
    place: str
    image_path: str
    box: np.ndarray
    authorised_by: str
    ingest_id: str
    expires_at: int
    embedding: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        check_id(self.platform, "platform")
        check_text(self.post_id, "post_id", POST_ID_MAX)
        check_text(self.url, "url", URL_MAX)
        object.__setattr__(self, "captured_at", check_time(self.captured_at, "captured_at"))
        check_text(self.place, "place", PLACE_MAX, required=False)
        check_text(self.image_path, "image_path", IMAGE_PATH_MAX)
        check_text(self.authorised_by, "authorised_by", OFFICER_MAX)
        check_id(self.ingest_id, "ingest_id")
        object.__setattr__(self, "expires_at", check_time(self.expires_at, "expires_at"))
        box = np.asarray(self.box, dtype=np.float32)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise InvalidRecordError(f"box must be 4 finite numbers x1 y1 x2 y2, got {self.box!r}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "embedding", as_embedding(self.embedding, f"embedding of post {self.post_id}"))


@dataclass(frozen=True)
class StoredSocialFace:
    """A stored social-media face (its embedding stays in Milvus)."""

    face_id: str
    platform: str
    post_id: str
    url: str
    captured_at: int
    place: str
    image_path: str
    box: tuple[float, float, float, float]
    authorised_by: str
    ingest_id: str
    expires_at: int


@dataclass(frozen=True)
class SocialMatch:
    """A social-media face found for a probe; rank 1 is the most similar."""

    face: StoredSocialFace
    similarity: float
    rank: int
