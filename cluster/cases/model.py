"""A case: one search's authorisation, where its query and footage came from, and one item per candidate match.

A retrospective search (`lfr retro`) or a social-media search (`lfr social search`) reveals where
a person was; what it found is not a result to print and forget but a case, whose candidate matches
an officer adjudicates like alerts: confirmed or rejected, each with a reason. Only candidates are
kept, each with the crop of the face that matched: a face that matched nobody is no part of a case.

Every search that opens a case needs an authorisation: a named officer (not the operating-system
user, not the system) and a reason. `CaseAuthorisation` refuses either missing, saying what to pass.
"""

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cluster.cases.errors import CaseNotFoundError

OFFICER_MAX_CHARS = 128
REASON_MAX_CHARS = 2000
SYSTEM_ACTOR_PREFIX = "system:"
OFFICER_HINT = "--officer NAME (the officer who runs the search and answers for it, such as 'DS Patel')"
REASON_HINT = "--reason TEXT (why the search is necessary: the investigation, its reference)"


class CaseKind(enum.StrEnum):
    """Which search opened the case."""

    RETROSPECTIVE = "retrospective"
    SOCIAL = "social"


class MatchKind(enum.StrEnum):
    """What a candidate was matched to: a watchlist entry (retro) or a face stored from a social-media post."""

    WATCHLIST_ENTRY = "watchlist_entry"
    SOCIAL_FACE = "social_face"


class ItemState(enum.StrEnum):
    """pending -> confirmed or rejected; both final (a mistaken decision is corrected in the case file)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self is not ItemState.PENDING


class AuthorisationError(ValueError):
    """A search without its named officer or its reason; the message says which option to pass."""


@dataclass(frozen=True)
class CaseAuthorisation:
    """Who runs the search and answers for it, and why it is necessary: both required, both recorded."""

    officer: str
    reason: str

    def __post_init__(self) -> None:
        officer, reason = (self.officer or "").strip(), (self.reason or "").strip()
        missing = [hint for hint, absent in ((OFFICER_HINT, not officer), (REASON_HINT, not reason)) if absent]
        if missing:
            raise AuthorisationError(
                "a search that opens a case needs a named officer and a reason, recorded with it; pass "
                + " and ".join(missing)
            )
        if officer.startswith(SYSTEM_ACTOR_PREFIX):
            raise AuthorisationError(f"--officer {officer!r} is the system; name the person who runs the search")
        if len(officer) > OFFICER_MAX_CHARS:
            raise AuthorisationError(f"--officer is {len(officer)} characters; at most {OFFICER_MAX_CHARS}")
        if len(reason) > REASON_MAX_CHARS:
            raise AuthorisationError(f"--reason is {len(reason)} characters; at most {REASON_MAX_CHARS}, shorten it")
        object.__setattr__(self, "officer", officer)
        object.__setattr__(self, "reason", reason)


@dataclass(frozen=True)
class Provenance:
    """Where the case's query and footage came from.

    query: what was searched for (a watchlist version, or a probe photo and its face);
    query_digest: the watchlist version's digest, or the probe photo's SHA-256;
    sources: the footage or post collection searched, by name (the first few), with `sources_count` and
    `sources_digest` of all of them; faces_seen: faces searched in all (only the candidates are kept);
    reports: files the search wrote that hold the candidates' crops, deleted with the case.
    """

    query: str
    query_digest: str
    model: str
    threshold: float
    sources: tuple[str, ...]
    sources_count: int
    sources_digest: str
    faces_seen: int
    reports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f"a case's threshold must be a finite score, got {self.threshold}")
        if self.sources_count < len(self.sources) or self.faces_seen < 0:
            raise ValueError("a case's sources_count covers the sources named, and faces_seen is >= 0")


@dataclass(frozen=True, eq=False)
class Candidate:
    """A face a search matched at or above its threshold, as the search hands it to the store.

    source / frame_index / frame_time_s / box: where the face is (frame_time_s None for a still image);
    match_id: the watchlist entry id or stored social face id; person_id: the watchlist person, or
    `platform:post_id` for a social post; label: the entry's label, or the post's URL.
    crop_jpeg: the matched face's crop, the evidence the officer adjudicates: the face in the footage
    (retro), or the face in the post's image (social); None only where that image could no longer
    be read (a post's image moved or deleted since the ingest), when the officer follows `label`.
    """

    source: str
    frame_index: int | None
    frame_time_s: float | None
    box: tuple[float, float, float, float] | None
    match_kind: MatchKind
    match_id: str
    person_id: str
    label: str
    score: float
    threshold: float
    crop_jpeg: bytes | None = field(repr=False)
    model_scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.score) and math.isfinite(self.threshold)):
            raise ValueError(f"candidate {self.match_id}: score and threshold must be finite")
        if self.crop_jpeg is not None and not self.crop_jpeg:
            raise ValueError(f"candidate {self.match_id}: an empty crop; pass the JPEG, or None if none could be cut")


@dataclass(frozen=True)
class ItemDecision:
    """An officer's decision on one candidate: what, who, why and when."""

    state: ItemState
    officer: str
    reason: str
    at: float


@dataclass(frozen=True, eq=False)
class CaseItem:
    """One candidate as stored: its number in the case (from 1), its state, and its decision once made.

    has_crop: whether its crop is stored (crops are read on their own, never with the case).
    """

    case_id: str
    number: int
    source: str
    frame_index: int | None
    frame_time_s: float | None
    box: tuple[float, float, float, float] | None
    match_kind: MatchKind
    match_id: str
    person_id: str
    label: str
    score: float
    threshold: float
    model_scores: Mapping[str, float]
    state: ItemState
    has_crop: bool
    decision: ItemDecision | None = None


@dataclass(frozen=True)
class CaseHold:
    """A supervisor's hold: the case is kept past its retention period for an investigation."""

    officer: str
    reason: str
    at: float


@dataclass(frozen=True, eq=False)
class Case:
    """One search's case: its kind, authorisation, provenance, candidates, and hold if held."""

    case_id: str
    kind: CaseKind
    authorisation: CaseAuthorisation
    opened_at: float
    provenance: Provenance
    items: tuple[CaseItem, ...]
    hold: CaseHold | None = None

    def count(self, state: ItemState) -> int:
        return sum(1 for item in self.items if item.state is state)

    @property
    def pending(self) -> int:
        return self.count(ItemState.PENDING)

    @property
    def held(self) -> bool:
        return self.hold is not None

    def item(self, number: int) -> CaseItem:
        found = next((item for item in self.items if item.number == number), None)
        if found is None:
            raise CaseNotFoundError(
                f"case {self.case_id} has no item {number}: its items are numbered 1 to {len(self.items)}"
            )
        return found
