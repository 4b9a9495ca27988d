"""What a retrospective search found: typed records that the JSON and HTML writers turn into files.

Footage is searched against a frozen watchlist version (`lfr retro`) or against the stored faces of
one flagged social-media post (`lfr social footage`, a `PostQuery`); the report names which.
Only matches are kept, each with the crop that evidences it. Faces that matched nobody appear
only as counts (per source and in all): no crop, no box, no embedding of them survives the search.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cluster.gallery.records import WatchlistVersion
from cluster.matching.calibration import CalibratedThreshold
from cluster.retro.footage import SourceKind

FORMAT = "lfr-retro-report/1"


@dataclass(frozen=True)
class PostQuery:
    """The stored faces of one flagged social-media post, searched for in footage instead of a watchlist.

    face_ids: the stored faces searched with; digest: SHA-256 over the post's key and those ids, so the
    report and the case name exactly which faces were the query. calibration: the threshold for
    `matching.target_fpir` with the faces as the list's entries, as a watchlist version's is set.
    """

    platform: str
    post_id: str
    url: str
    ingest_id: str
    face_ids: tuple[str, ...]
    digest: str
    calibration: CalibratedThreshold

    @property
    def name(self) -> str:
        """`x post 1001 (2 faces)`, as the report's title and the case's query show it."""
        faces = len(self.face_ids)
        return f"{self.platform} post {self.post_id} ({faces} face{'s' if faces != 1 else ''})"


Query = WatchlistVersion | PostQuery
"""What footage is searched against."""


@dataclass(frozen=True)
class RetroMatch:
    """A face in the footage that matched a watchlist entry, or a face of the post searched, at or above the threshold.

    box: x1 y1 x2 y2 in the frame's pixels. frame_time_s: seconds into the video (None for an image).
    similarity: the match score compared with `threshold` (fused from every model when the
    version is calibrated); model_scores: each model's cosine, by name.
    person_id / label / category / entry_id: the watchlist person, label, category and entry, or for a post
    `platform:post_id`, its URL, "social post" and the stored face's id. watchlist_version: None for a post.
    crop_jpeg: the face with some context, JPEG-encoded: the evidence an officer adjudicates.
    """

    source: Path
    kind: SourceKind
    frame_index: int
    frame_time_s: float | None
    box: tuple[float, float, float, float]
    detection_score: float
    quality: float
    person_id: str
    label: str
    category: str
    entry_id: str
    similarity: float
    threshold: float
    model_name: str
    watchlist_version: str | None
    crop_jpeg: bytes = field(repr=False)
    model_scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceSummary:
    """One searched file: frames and faces searched, matches found, and the error that stopped it, if any."""

    path: Path
    kind: SourceKind
    frames: int
    faces: int
    matches: int
    error: str | None = None


@dataclass(frozen=True)
class RetroReport:
    """A whole search: against which version or post, at which threshold, by whom, over what, and what matched."""

    query: Query
    threshold: float
    model_name: str
    sample_fps: float
    officer: str
    started_at: float
    finished_at: float
    sources: tuple[SourceSummary, ...]
    matches: tuple[RetroMatch, ...]

    @property
    def calibration(self) -> CalibratedThreshold | None:
        """How the threshold was set; None for a version frozen before thresholds were calibrated."""
        return self.query.calibration

    @property
    def query_name(self) -> str:
        """`lfw@v1` or `x post 1001 (2 faces)`: what the footage was searched against."""
        return self.query.version_id if isinstance(self.query, WatchlistVersion) else self.query.name

    @property
    def faces_seen(self) -> int:
        return sum(source.faces for source in self.sources)

    @property
    def faces_unmatched(self) -> int:
        """Faces that matched nobody: counted, never kept."""
        return self.faces_seen - len(self.matches)

    @property
    def failed_sources(self) -> tuple[SourceSummary, ...]:
        return tuple(source for source in self.sources if source.error is not None)
