"""`RetroSearch`: every face in recorded footage compared with one frozen version of a watchlist.

Frames are detected and embedded in batches (every face by every configured model: footage
is searched offline, so the second model runs on all of it), and all faces of a batch are
searched in one round trip to the gallery: the primary model shortlists `top_k` entries per
face and the fused score of every model ranks them. A face whose best candidate reaches the
threshold becomes a `RetroMatch` with its crop; any other face is counted and dropped with its
frame, so nothing of people who matched nobody outlives the batch they were in.
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from cluster.gallery.records import WatchlistCandidate, WatchlistVersion
from cluster.gallery.watchlists import Watchlists
from cluster.matching.fusion import ScoreFusion
from cluster.retro.footage import FootageError, FootageFrame, FootageSource, read_frames
from cluster.retro.report import RetroMatch, RetroReport, SourceSummary
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.face import Face
from cluster.vision.pipeline import FacePipeline, models_name

log = structlog.get_logger(__name__)

FRAMES_PER_BATCH = 8
"""Frames detected and embedded in one pipeline call; their faces go to the gallery in one search."""


@dataclass
class _Tally:
    """Running counts of one source while it is searched."""

    frames: int = 0
    faces: int = 0
    matches: int = 0
    error: str | None = None


class RetroSearch:
    """Searches footage against one frozen watchlist version at one threshold."""

    def __init__(
        self,
        pipeline: FacePipeline,
        watchlists: Watchlists,
        version: WatchlistVersion,
        threshold: float,
        sample_fps: float,
        frames_per_batch: int = FRAMES_PER_BATCH,
        fusion: ScoreFusion | None = None,
        top_k: int | None = None,
    ) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite match score, got {threshold}")
        if not sample_fps > 0:
            raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch must be >= 1, got {frames_per_batch}")
        self.pipeline = pipeline
        self.watchlists = watchlists
        self.version = version
        self.threshold = threshold
        self.sample_fps = sample_fps
        self.frames_per_batch = frames_per_batch
        self.fusion = fusion
        self.top_k = top_k
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
            version=self.version,
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
            version_id=self.version.version_id,
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
            candidates = self.watchlists.search(probes, self.version, top_k=self.top_k, extra=extra or None)
            for (position, frame, face), ranked in zip(found, candidates):
                scored = [(self._score(candidate), candidate) for candidate in ranked]
                best = max(scored, key=lambda pair: pair[0], default=None)
                if best is not None and best[0] >= self.threshold:
                    tallies[position].matches += 1
                    matches.append(self._match(frame, face, best[1], best[0]))
        if on_frame is not None:
            for _, frame in batch:
                on_frame(frame)
        return matches

    def _score(self, candidate: WatchlistCandidate) -> float:
        """The candidate's match score: fused from every model's cosine, or the primary cosine alone."""
        return candidate.similarity if self.fusion is None else float(self.fusion.fuse(candidate.model_scores))

    def _match(self, frame: FootageFrame, face: Face, best: WatchlistCandidate, score: float) -> RetroMatch:
        box = (float(face.box[0]), float(face.box[1]), float(face.box[2]), float(face.box[3]))
        return RetroMatch(
            source=frame.source.path,
            kind=frame.source.kind,
            frame_index=frame.index,
            frame_time_s=frame.time_s,
            box=box,
            detection_score=face.score,
            quality=face.quality.overall,
            person_id=best.entry.person_id,
            label=best.entry.label,
            category=best.entry.category,
            entry_id=best.entry.entry_id,
            similarity=score,
            threshold=self.threshold,
            model_name=self.model_name,
            watchlist_version=self.version.version_id,
            crop_jpeg=face_crop_jpeg(frame.pixels, face.box),
            model_scores=dict(best.model_scores),
        )
