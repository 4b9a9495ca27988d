"""What a retrospective search found: typed records that the JSON and HTML writers turn into files.

Only matches are kept, each with the crop that evidences it. Faces that matched nobody appear
only as counts (per source and in all): no crop, no box, no embedding of them survives the search.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cluster.gallery.records import WatchlistVersion
from cluster.retro.footage import SourceKind

FORMAT = "lfr-retro-report/1"


@dataclass(frozen=True)
class RetroMatch:
    """A face in the footage that matched a watchlist entry at or above the threshold.

    box: x1 y1 x2 y2 in the frame's pixels. frame_time_s: seconds into the video (None for an image).
    similarity: the match score compared with `threshold` (fused from every model when the
    version is calibrated); model_scores: each model's cosine, by name.
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
    watchlist_version: str
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
    """A whole search: against which version, at which threshold, by whom, over what, and what matched."""

    version: WatchlistVersion
    threshold: float
    model_name: str
    sample_fps: float
    officer: str
    started_at: float
    finished_at: float
    sources: tuple[SourceSummary, ...]
    matches: tuple[RetroMatch, ...]

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
