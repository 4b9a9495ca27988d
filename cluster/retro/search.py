"""`RetroSearch`: every face in recorded footage compared with one frozen version of a watchlist, or with the faces
of one flagged social-media post.

Frames are detected and embedded in batches (every face by every configured model: footage
is searched offline, so the second model runs on all of it), and all faces of a batch go to the
`FaceMatcher` at once. Against a watchlist (`WatchlistMatcher`) that is one round trip to the
gallery: the primary model shortlists `top_k` entries per face and the fused score of every model
ranks them; against a post (`cluster.social.footage_search`) the post's few faces are compared in
memory. A face whose best candidate reaches the threshold becomes a `RetroMatch` with its crop;
any other face is counted and dropped with its frame, so nothing of people who matched nobody
outlives the batch they were in.
"""

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import structlog

from cluster.gallery.records import WatchlistCandidate, WatchlistVersion
from cluster.gallery.watchlists import Watchlists
from cluster.matching.fusion import ScoreFusion
from cluster.retro.footage import FootageError, FootageFrame, FootageSource, read_frames
from cluster.retro.report import Query, RetroMatch, RetroReport, SourceSummary
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.face import Face
from cluster.vision.pipeline import FacePipeline, models_name

log = structlog.get_logger(__name__)

FRAMES_PER_BATCH = 8
"""Frames detected and embedded in one pipeline call; their faces go to the matcher in one call."""


@dataclass(frozen=True)
class Hit:
    """The best candidate a matcher found for one footage face, with its match score (fused when fused)."""

    score: float
    person_id: str
    label: str
    category: str
    entry_id: str
    model_scores: Mapping[str, float] = field(default_factory=dict)


class FaceMatcher(Protocol):
    """Finds each footage face's best candidate: the primary embeddings (n, 128) and each further model's (n, d)."""

    def best(self, probes: np.ndarray, extra: Mapping[str, np.ndarray]) -> list[Hit | None]: ...


class WatchlistMatcher:
    """The best entry of one frozen watchlist version per face, by the gallery's search and the fused score."""

    def __init__(
        self, watchlists: Watchlists, version: WatchlistVersion, fusion: ScoreFusion | None, top_k: int | None
    ) -> None:
        self.watchlists = watchlists
        self.version = version
        self.fusion = fusion
        self.top_k = top_k

    def best(self, probes: np.ndarray, extra: Mapping[str, np.ndarray]) -> list[Hit | None]:
        found = self.watchlists.search(probes, self.version, top_k=self.top_k, extra=dict(extra) or None)
        hits: list[Hit | None] = []
        for ranked in found:
            scored = [(self._score(candidate), candidate) for candidate in ranked]
            best = max(scored, key=lambda pair: pair[0], default=None)
            hits.append(None if best is None else _hit(best[0], best[1]))
        return hits

    def _score(self, candidate: WatchlistCandidate) -> float:
        """The candidate's match score: fused from every model's cosine, or the primary cosine alone."""
        return candidate.similarity if self.fusion is None else float(self.fusion.fuse(candidate.model_scores))


def _hit(score: float, candidate: WatchlistCandidate) -> Hit:
    entry = candidate.entry
    return Hit(score, entry.person_id, entry.label, entry.category, entry.entry_id, dict(candidate.model_scores))


@dataclass
class _Tally:
    """Running counts of one source while it is searched."""

    frames: int = 0
    faces: int = 0
    matches: int = 0
    error: str | None = None


class RetroSearch:
    """Searches footage with one matcher (a frozen watchlist version, or a post's faces) at one threshold."""

    def __init__(
        self,
        pipeline: FacePipeline,
        matcher: FaceMatcher,
        query: Query,
        threshold: float,
        sample_fps: float,
        frames_per_batch: int = FRAMES_PER_BATCH,
    ) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite match score, got {threshold}")
        if not sample_fps > 0:
            raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch must be >= 1, got {frames_per_batch}")
        self.pipeline = pipeline
        self.matcher = matcher
        self.query = query
        self.threshold = threshold
        self.sample_fps = sample_fps
        self.frames_per_batch = frames_per_batch
        self.model_name = models_name(pipeline.config)

    def run(
        self,
        sources: Sequence[FootageSource],
        officer: str,
        on_frame: Callable[[FootageFrame], object] | None = None,
    ) -> RetroReport:
        """Search every source in order; a source that cannot be read is reported and the rest still searched."""
        started_at = time.time()
        tallies = [_Tally() for _ in sources]
        matches: list[RetroMatch] = []
        batch: list[tuple[int, FootageFrame]] = []
        for position, source in enumerate(sources):
            try:
                for frame in read_frames(source, self.sample_fps):
                    batch.append((position, frame))
                    if len(batch) >= self.frames_per_batch:
                        matches.extend(self._search_batch(batch, tallies, on_frame))
                        batch = []
            except FootageError as exc:
                tallies[position].error = str(exc)
                log.warning("retro_source_failed", source=str(source.path), error=str(exc))
        if batch:
            matches.extend(self._search_batch(batch, tallies, on_frame))
        summaries = tuple(
            SourceSummary(source.path, source.kind, tally.frames, tally.faces, tally.matches, tally.error)
            for source, tally in zip(sources, tallies)
        )
        report = RetroReport(
            query=self.query,
            threshold=self.threshold,
            model_name=self.model_name,
            sample_fps=self.sample_fps,
            officer=officer,
            started_at=started_at,
            finished_at=time.time(),
            sources=summaries,
            matches=tuple(matches),
        )
        log.info(
            "retro_search_done",
            query=report.query_name,
            sources=len(sources),
            faces=report.faces_seen,
            matches=len(report.matches),
        )
        return report

    def _search_batch(
        self,
        batch: list[tuple[int, FootageFrame]],
        tallies: list[_Tally],
        on_frame: Callable[[FootageFrame], object] | None,
    ) -> list[RetroMatch]:
        frames = [frame.pixels for _, frame in batch]
        faces_per_frame = self.pipeline.with_second_stage(frames, self.pipeline.process(frames))
        found: list[tuple[int, FootageFrame, Face]] = []
        for (position, frame), faces in zip(batch, faces_per_frame):
            tallies[position].frames += 1
            tallies[position].faces += len(faces)
            found.extend((position, frame, face) for face in faces)
        matches: list[RetroMatch] = []
        if found:
            probes = np.stack([face.embedding for _, _, face in found])
            models = sorted(found[0][2].extra_embeddings)
            extra = {model: np.stack([face.extra_embeddings[model] for _, _, face in found]) for model in models}
            for (position, frame, face), hit in zip(found, self.matcher.best(probes, extra), strict=True):
                if hit is not None and hit.score >= self.threshold:
                    tallies[position].matches += 1
                    matches.append(self._match(frame, face, hit))
        if on_frame is not None:
            for _, frame in batch:
                on_frame(frame)
        return matches

    def _match(self, frame: FootageFrame, face: Face, hit: Hit) -> RetroMatch:
        box = (float(face.box[0]), float(face.box[1]), float(face.box[2]), float(face.box[3]))
        return RetroMatch(
            source=frame.source.path,
            kind=frame.source.kind,
            frame_index=frame.index,
            frame_time_s=frame.time_s,
            box=box,
            detection_score=face.score,
            quality=face.quality.overall,
            person_id=hit.person_id,
            label=hit.label,
            category=hit.category,
            entry_id=hit.entry_id,
            similarity=hit.score,
            threshold=self.threshold,
            model_name=self.model_name,
            watchlist_version=self.query.version_id if isinstance(self.query, WatchlistVersion) else None,
            crop_jpeg=face_crop_jpeg(frame.pixels, face.box),
            model_scores=dict(hit.model_scores),
        )
