"""The live pipeline's match stage: one camera's results -> tracklets -> watchlist search -> sightings.

`MatchingSink` is the result sink a camera's forwarder runs. It feeds every frame's faces to
that camera's `Tracker` (a failed frame only moves its clock on), searches the tracklets that
have enough evidence against the deployment's watchlist in one batched call, answers the
tracker (which deletes a non-match on the spot) and hands the sightings of possible matches to
its outlet (the Coordinator, in the cluster). Frames captured outside the deployment's window,
or inside one of its exclusion windows, are not tracked or matched at all: their faces are never
searched nor kept; only the two counts are. `GalleryMatcher` is the search:
the deployment's frozen watchlist version in Milvus, one round trip per batch of tracklets.

When the watchlist cannot be searched (the gallery is down), the tracklets stay awaiting a
decision and the search is retried with the next frames; the tracker deletes them if no
decision comes within its decision timeout, so an outage costs possible matches, never privacy.

With a second face model (a `SecondStageClient`), the tracker keeps a patch of the frame around
each of a tracklet's few best faces; a ready tracklet's patches go to the second model first,
and only a tracklet that came back with its second-model embedding is searched, the patches
dropped from the sink's copy. The call is asynchronous: the sink sends it and goes on tracking,
and picks the answer up with a later frame, so a camera's results are never held up by it. A
failed or timed-out call is retried like a failed search; a tracklet whose patches the model
could not use at all is deleted undecided (`Tracker.discard`). Never is a tracklet decided on
the first model alone, nor kept for want of the second beyond the decision timeout (a call in
flight when the tracker deletes its tracklets holds their patches until it returns or times out).
"""

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import structlog

from cluster.alerts.model import Sighting
from cluster.deployment.window import Admission, DeploymentWindow
from cluster.gallery.records import WatchlistVersion
from cluster.gallery.watchlists import Watchlists
from cluster.live.face_service import FrameResult
from cluster.matching.fusion import ScoreFusion
from cluster.tracking.candidate import Candidate, WatchlistMatcher
from cluster.tracking.config import TrackingConfig
from cluster.tracking.matching import match_and_decide
from cluster.tracking.patches import FacePatch
from cluster.tracking.tracker import ReadyTracklet, Tracker, TrackerCounts, TrackerHoldings
from cluster.vision.face import PRIMARY_MODEL

log = structlog.get_logger(__name__)

SEARCH_RETRY_S = 1.0
"""After a failed watchlist search or second-model call, wait this long before trying again."""
SEARCH_SAMPLES = 512
"""The summary carries the timings of this many most recent watchlist searches."""
CLOSE_WAIT_S = 15.0
"""When the camera stops, how long to wait for a second-model call (each call also has its own timeout)."""


class SightingOutlet(Protocol):
    """Where a camera's sightings go (the Coordinator): `send` must not block, `flush` waits for what was sent."""

    def send(self, sightings: list[Sighting]) -> None: ...

    def flush(self) -> None: ...


class SecondStageClient(Protocol):
    """The second face model, for the best face patches of tracklets that are ready to be decided.

    model: the model's name, as match scores and the gallery know it. faces_per_tracklet: how many
    of a tracklet's best faces it is given (the tracker keeps patches of that many). `submit` must
    not block: it returns a future of one L2-normalised vector per tracklet, in order (None for a
    tracklet none of whose patches the model could use), which fails as a whole when the model
    cannot be reached or does not answer within the client's timeout.
    """

    @property
    def model(self) -> str: ...

    @property
    def faces_per_tracklet(self) -> int: ...

    def submit(self, tracklets: Sequence[Sequence[FacePatch]]) -> Future[list[np.ndarray | None]]: ...


class GalleryMatcher:
    """Searches a frozen watchlist version in the gallery; candidates as the tracker takes them.

    With `fusion`, each candidate's match score is the fusion of every model's cosine (the
    primary model shortlists `top_k` entries, the second-stage models rescore the shortlist);
    without, it is the primary cosine. With `threshold`, candidates whose primary cosine cannot
    reach it (whatever the other models say) are left out by the gallery, which then fetches no
    entry at all for a face that matches nobody.
    """

    def __init__(
        self,
        watchlists: Watchlists,
        version: WatchlistVersion,
        top_k: int | None = None,
        fusion: ScoreFusion | None = None,
        threshold: float | None = None,
    ) -> None:
        self._watchlists = watchlists
        self._version = version
        self._top_k = top_k
        self._fusion = fusion
        self._floor = None
        if threshold is not None:
            self._floor = threshold if fusion is None else fusion.lowest_cosine(PRIMARY_MODEL, threshold)

    def match(self, embeddings: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> list[list[Candidate]]:
        found = self._watchlists.search(
            embeddings, self._version, top_k=self._top_k, min_similarity=self._floor, extra=extra
        )
        return [
            sorted(
                (
                    Candidate(
                        c.entry.person_id,
                        c.entry.watchlist_id,
                        c.similarity if self._fusion is None else float(self._fusion.fuse(c.model_scores)),
                        c.model_scores,
                    )
                    for c in candidates
                ),
                key=lambda candidate: -candidate.similarity,
            )
            for candidates in found
        ]


@dataclass(frozen=True)
class SearchTiming:
    """One watchlist search that answered: when it ended (unix seconds) and how long it took."""

    at: float
    seconds: float


@dataclass(frozen=True)
class MatchingSummary:
    """What one camera's match stage did: counts only, nothing of any face.

    frames_outside_window: frames captured before the deployment's window or after it.
    frames_excluded: frames captured inside one of its exclusion windows.
    searches: the most recent watchlist searches' timings (at most SEARCH_SAMPLES), for load tests.
    """

    camera_id: str
    tracker: TrackerCounts
    holdings: TrackerHoldings
    frames_failed: int
    frames_outside_window: int
    frames_excluded: int
    sightings: int
    search_failures: int
    awaiting_search: int
    second_stage_failures: int
    searches: tuple[SearchTiming, ...] = ()


@dataclass(frozen=True, eq=False)
class _PendingEmbeddings:
    """A second-model call in flight and the tracklets it is for."""

    future: Future[list[np.ndarray | None]]
    tracklets: list[ReadyTracklet]


class MatchingSink:
    """Tracks, matches and reports one camera's faces; see the module docstring."""

    def __init__(
        self,
        camera_id: str,
        matcher: WatchlistMatcher,
        threshold: float,
        outlet: SightingOutlet,
        tracking: TrackingConfig | None = None,
        window: DeploymentWindow | None = None,
        second_stage: SecondStageClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        observe_search: Callable[[float], None] | None = None,
    ) -> None:
        """observe_search: told the seconds of each watchlist search that answered (a latency metric)."""
        self.camera_id = camera_id
        self._observe_search = observe_search
        keep_patches = 0 if second_stage is None else second_stage.faces_per_tracklet
        self._tracker = Tracker(camera_id, tracking, keep_patches=keep_patches)
        self._matcher = matcher
        self._threshold = threshold
        self._outlet = outlet
        self._window = window
        self._second_stage = second_stage
        self._clock = clock
        self._awaiting: list[ReadyTracklet] = []
        self._embedding: _PendingEmbeddings | None = None
        self._retry_at = 0.0
        self._embed_retry_at = 0.0
        self._frames_failed = 0
        self._outside_window = 0
        self._excluded = 0
        self._sightings = 0
        self._search_failures = 0
        self._second_stage_failures = 0
        self._searches: deque[SearchTiming] = deque(maxlen=SEARCH_SAMPLES)
        self._log = log.bind(camera_id=camera_id)

    def accept(self, result: FrameResult, pixels: np.ndarray) -> None:
        if result.camera_id != self.camera_id:
            raise ValueError(
                f"this sink serves camera '{self.camera_id}' but got a result of '{result.camera_id}';"
                " build one MatchingSink per camera"
            )
        admission = Admission.ALLOWED if self._window is None else self._window.admission(result.captured_at)
        if admission is Admission.OUTSIDE:
            self._outside_window += 1
            return
        if admission is Admission.EXCLUDED:
            self._excluded += 1
            return
        if result.ok:
            update = self._tracker.update(result.faces, result.captured_at, pixels)
        else:
            self._frames_failed += 1
            update = self._tracker.advance(result.captured_at)
        self._advance(update.ready)

    def tick(self, now: float) -> None:
        """No result came for a while (`cluster.live.silence`): move the tracker's clock to `now` (unix seconds).

        Tracks unseen too long end (a tracklet with evidence is searched), and tracklets whose
        decision is overdue are deleted with their faces, embeddings and crops: a camera that
        goes silent keeps nothing past the decision timeout.
        """
        self._advance(self._tracker.advance(now).ready)

    def close(self) -> None:
        """The camera stopped: end every track, decide what has evidence (the rest is dropped), deliver.

        This one waits for the second model (up to CLOSE_WAIT_S per call), as nothing is left to track.
        """
        self._advance(self._tracker.close().ready, closing=True)
        self._outlet.flush()

    def summary(self) -> MatchingSummary:
        return MatchingSummary(
            camera_id=self.camera_id,
            tracker=self._tracker.counts(),
            holdings=self._tracker.holdings(),
            frames_failed=self._frames_failed,
            frames_outside_window=self._outside_window,
            frames_excluded=self._excluded,
            sightings=self._sightings,
            search_failures=self._search_failures,
            awaiting_search=len(self._awaiting) + (0 if self._embedding is None else len(self._embedding.tracklets)),
            second_stage_failures=self._second_stage_failures,
            searches=tuple(self._searches),
        )

    def _advance(self, ready: Sequence[ReadyTracklet], closing: bool = False) -> None:
        """Take in newly ready tracklets; move each on: to the second model (when on), then to the search."""
        self._awaiting = [t for t in self._awaiting if self._tracker.is_awaiting(t.tracklet_id)]
        self._awaiting.extend(ready)
        second_stage = self._second_stage
        if second_stage is not None:
            wait_s = CLOSE_WAIT_S if closing else 0.0
            self._collect_embeddings(second_stage.model, wait_s)
            self._request_embeddings(second_stage, retry_now=closing)
            self._collect_embeddings(second_stage.model, wait_s)
        self._search(retry_now=closing)

    def _request_embeddings(self, second_stage: SecondStageClient, retry_now: bool) -> None:
        """Send the patches of the tracklets that lack the second model's embedding, one call at a time."""
        unscored = [t for t in self._awaiting if not self._searchable(t)]
        if not unscored or self._embedding is not None or (not retry_now and self._clock() < self._embed_retry_at):
            return
        self._awaiting = [t for t in self._awaiting if self._searchable(t)]
        try:
            future = second_stage.submit([t.patches for t in unscored])
        except Exception as exc:
            self._second_stage_failed(unscored, exc)
            return
        self._embedding = _PendingEmbeddings(future, unscored)

    def _collect_embeddings(self, model: str, wait_s: float) -> None:
        """Attach the second model's answer, if it came (waiting up to `wait_s`), to the tracklets still awaiting."""
        pending = self._embedding
        if pending is None:
            return
        if wait_s > 0.0:
            wait([pending.future], timeout=wait_s)
        if not pending.future.done():
            if wait_s > 0.0:
                self._log.warning("second_stage_unanswered", tracklets=len(pending.tracklets), waited_s=wait_s)
            return
        self._embedding = None
        try:
            vectors = pending.future.result()
            if len(vectors) != len(pending.tracklets):
                raise ValueError(f"{len(vectors)} embeddings for {len(pending.tracklets)} tracklets; expected one each")
        except Exception as exc:
            self._second_stage_failed(pending.tracklets, exc)
            return
        for tracklet, vector in zip(pending.tracklets, vectors):
            if not self._tracker.is_awaiting(tracklet.tracklet_id):
                continue
            if vector is None:
                self._tracker.discard(tracklet.tracklet_id, reason=f"{model} could not embed any of its face patches")
                continue
            self._awaiting.append(replace(tracklet, patches=(), extra_embeddings={model: vector}))

    def _searchable(self, tracklet: ReadyTracklet) -> bool:
        """Whether the tracklet has every model's embedding (only the primary's, when there is no second model)."""
        return self._second_stage is None or bool(tracklet.extra_embeddings)

    def _second_stage_failed(self, tracklets: list[ReadyTracklet], exc: Exception) -> None:
        self._second_stage_failures += 1
        self._embed_retry_at = self._clock() + SEARCH_RETRY_S
        self._awaiting.extend(tracklets)
        self._log.warning("second_stage_failed", tracklets=len(tracklets), error=f"{type(exc).__name__}: {exc}")

    def _search(self, retry_now: bool) -> None:
        """Search the tracklets that have every model's embedding; decide them, deliver the sightings."""
        batch = [t for t in self._awaiting if self._searchable(t)]
        if not batch or (not retry_now and self._clock() < self._retry_at):
            return
        self._awaiting = [t for t in self._awaiting if not self._searchable(t)]
        started = time.monotonic()
        try:
            sightings = match_and_decide(self._tracker, batch, self._matcher, self._threshold)
        except Exception as exc:
            self._search_failures += 1
            self._retry_at = self._clock() + SEARCH_RETRY_S
            self._awaiting.extend(batch)
            self._log.warning("watchlist_search_failed", tracklets=len(batch), error=f"{type(exc).__name__}: {exc}")
            return
        seconds = time.monotonic() - started
        self._searches.append(SearchTiming(time.time(), seconds))
        if self._observe_search is not None:
            self._observe_search(seconds)
        if sightings:
            self._sightings += len(sightings)
            self._outlet.send(sightings)
