"""`Tracker`: one camera's faces linked into tracklets, each decided once against the watchlist.

The life of a track:
- collecting: it keeps its best faces (a `Tracklet`). Once it keeps enough good faces, or it
  ends with some, it is emitted as a `ReadyTracklet` for the caller to search.
- awaiting: emitted; its evidence is frozen (faces that continue it are counted, not kept)
  until the caller calls `decide`. Without a decision in `decision_timeout_s` it is deleted.
- matched: `decide` with a candidate made a `Sighting`; the track keeps only the pooled
  embedding that matched, to follow the person, and is never searched again.
- ghost: `decide` with no candidate (or `discard`) deleted every face, embedding, patch and crop of
  it at once. The
  track lives on as a box and a velocity, so that the same person's next faces are known as
  his and dropped unkept, instead of starting a tracklet that would be kept and searched again.

With `keep_patches`, each of a tracklet's best `keep_patches` faces also keeps a `FacePatch` of
its frame, for the second face model; the patches go with the `ReadyTracklet` and are deleted
with the rest of the evidence.
A track unseen for `max_missed_frames` frames or `max_unseen_s` seconds ends and is forgotten;
only counts remain.

Why a ghost keeps no embedding. Association runs in two rounds: first the tracks that have an
appearance (collecting with kept faces, awaiting, matched) take faces by geometry and
appearance; then ghosts, and tracks whose faces were all too poor to keep, take what is left
by geometry alone. A ghost can therefore never take a face that resembles a live track, so a
watchlist candidate walking past a ghost keeps his track. The worst a ghost can do is take a
face that resembled no live track nearby: that face is dropped unkept, and if it was not the
ghost's person, that person starts a new tracklet on the next frame. Two ghosts swapping people
loses nothing, as both drop what they take. A running embedding would make that rare case
tidier, at the price of holding a biometric template of someone who matched nobody for as long
as he stays in view; the design holds none.
"""

import enum
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import structlog

from cluster.alerts.model import Sighting
from cluster.tracking.association import (
    appearance_cost,
    box_centres,
    box_sizes,
    combined_cost,
    geometry_cost,
    greedy_assign,
)
from cluster.tracking.candidate import Candidate
from cluster.tracking.config import TrackingConfig
from cluster.tracking.crops import check_frame, cut_face_crop, encode_jpeg
from cluster.tracking.patches import FacePatch, cut_face_patch
from cluster.tracking.tracklet import Tracklet
from cluster.vision.face import EMBEDDING_SIZE, Face

VELOCITY_SMOOTHING = 0.5
"""Weight of the newest observed velocity against the running estimate."""


class TrackState(enum.StrEnum):
    """Where a track is in its life (see the module docstring)."""

    COLLECTING = "collecting"
    AWAITING = "awaiting"
    MATCHED = "matched"
    GHOST = "ghost"


class UnknownTrackletError(LookupError):
    """`decide` named a tracklet that is not awaiting a decision."""


@dataclass(frozen=True, eq=False)
class ReadyTracklet:
    """A tracklet to search against the watchlist; answer with `Tracker.decide(tracklet_id, ...)`.

    embedding: (128,) float32 pooled, L2-normalised. quality: mean quality of its kept faces.
    ended: the track had already ended when it was emitted. patches: the frame patches of its
    best faces, best first (empty unless the tracker keeps patches). extra_embeddings:
    second-stage model name -> the pooled embedding of its best faces by that model (set by the
    match stage, which then drops the patches).
    """

    tracklet_id: str
    camera_id: str
    embedding: np.ndarray
    quality: float
    faces: int
    first_seen: float
    last_seen: float
    ended: bool
    patches: tuple[FacePatch, ...] = ()
    extra_embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackerUpdate:
    """What one frame (or a clock advance) changed.

    tracklet_ids: the tracklet of each face of the frame, in the order given; None for a face
    whose numbers are unusable; empty for a clock advance or a skipped frame.
    ready: tracklets to search now. ended: tracklets that ended.
    skipped: the frame was captured no later than one already tracked, and was not used.
    """

    camera_id: str
    tracklet_ids: tuple[str | None, ...]
    ready: tuple[ReadyTracklet, ...]
    ended: tuple[str, ...]
    skipped: bool = False


@dataclass(frozen=True)
class TrackerCounts:
    """Everything that survives about faces that matched nobody: numbers.

    frames: frames tracked; faces_seen: faces in every frame received, so
    faces_seen = faces_kept + faces_discarded + faces_invalid. faces_kept: faces that joined a
    tracklet's evidence (better ones may have pushed them out since). faces_discarded: faces
    never kept (policy, a decided or awaiting tracklet, not among the best, a stale frame).
    tracklets_unsearched: tracklets that ended without evidence good enough to search.
    tracklets_unscored: emitted tracklets deleted undecided because the second face model could
    not embed their patches.
    """

    frames: int = 0
    frames_out_of_order: int = 0
    faces_seen: int = 0
    faces_invalid: int = 0
    faces_kept: int = 0
    faces_discarded: int = 0
    tracklets_started: int = 0
    tracklets_ended: int = 0
    tracklets_searched: int = 0
    tracklets_matched: int = 0
    tracklets_deleted_no_match: int = 0
    tracklets_unsearched: int = 0
    tracklets_unscored: int = 0
    decisions_expired: int = 0


@dataclass(frozen=True)
class TrackerHoldings:
    """What the tracker holds in memory right now, for privacy checks.

    embeddings counts every (128,) vector held: kept faces plus the pooled embedding of each
    awaiting or matched tracklet. crops counts face crops, patches face patches.
    """

    tracks: int
    tracklets_with_faces: int
    faces: int
    embeddings: int
    crops: int
    patches: int


class _Track:
    """One track's association state and, while it is collecting, its evidence."""

    def __init__(self, tracklet_id: str, box: np.ndarray, seen_at: float, capacity: int, patches: int) -> None:
        self.tracklet_id = tracklet_id
        self.state = TrackState.COLLECTING
        self.box = box
        self.velocity = np.zeros(2)
        self.first_seen = seen_at
        self.last_seen = seen_at
        self.frames = 1
        self.missed = 0
        self.tracklet = Tracklet(capacity, patches)
        self.pooled: np.ndarray | None = None
        self.emitted_at: float | None = None

    def appearance(self) -> np.ndarray | None:
        """The embedding association compares faces with; None for ghosts and tracks with no kept face."""
        if self.state is TrackState.COLLECTING:
            return self.tracklet.pooled_embedding() if len(self.tracklet) else None
        return self.pooled

    def predicted_centre(self, now: float) -> np.ndarray:
        return box_centres(self.box[None])[0] + self.velocity * max(0.0, now - self.last_seen)

    def observe(self, box: np.ndarray, seen_at: float) -> None:
        step = seen_at - self.last_seen
        if step > 0.0:
            moved = (box_centres(box[None])[0] - box_centres(self.box[None])[0]) / step
            if self.frames == 1:
                self.velocity = moved
            else:
                self.velocity = (1 - VELOCITY_SMOOTHING) * self.velocity + VELOCITY_SMOOTHING * moved
        self.box = box
        self.last_seen = max(self.last_seen, seen_at)
        self.frames += 1
        self.missed = 0

    def forget_evidence(self) -> None:
        self.tracklet.clear()
        self.pooled = None


def _usable(face: Face) -> bool:
    """A face whose numbers can be tracked at all: finite box of positive size, finite embedding."""
    box = np.asarray(face.box, dtype=np.float64)
    finite = np.all(np.isfinite(box)) and np.all(np.isfinite(face.embedding))
    return bool(finite and box[2] > box[0] and box[3] > box[1])


def joins_tracklet(face: Face, config: TrackingConfig) -> bool:
    """The enrolment policy: may this face be kept as evidence? Faces that may not only move boxes."""
    if not config.enrol_faces:
        return False
    quality = face.quality.overall
    width, height = face.box[2] - face.box[0], face.box[3] - face.box[1]
    large_enough = min(width, height) >= config.min_enrol_face_px
    return bool(np.isfinite(quality) and quality >= config.min_enrol_quality and large_enough)


class Tracker:
    """Tracks the faces of ONE camera; feed it that camera's results in order with `update`.

    keep_patches: how many of a tracklet's best faces keep a patch of their frame for the second
    face model (0: none). It is not a tracking setting: the match stage sets it from the second
    model's faces per tracklet when, and only when, that model is on.
    """

    def __init__(self, camera_id: str, config: TrackingConfig | None = None, keep_patches: int = 0) -> None:
        self.camera_id = camera_id
        self.config = config or TrackingConfig()
        if not 0 <= keep_patches <= self.config.best_faces:
            raise ValueError(
                f"keep_patches ({keep_patches}) must be within 0..tracking.best_faces ({self.config.best_faces}):"
                " patches are kept for a tracklet's best faces only; lower"
                " face_models.second_stage.faces_per_tracklet or raise tracking.best_faces"
            )
        self.keep_patches = keep_patches
        self._session = uuid.uuid4().hex[:8]
        self._next_number = 1
        self._tracks: list[_Track] = []
        self._ended_awaiting: dict[str, _Track] = {}
        self._counts: Counter[str] = Counter()
        self._last_frame_at = float("-inf")
        self._now = float("-inf")
        self._log = structlog.get_logger(__name__).bind(camera_id=camera_id)

    def update(self, faces: Sequence[Face], captured_at: float, frame: np.ndarray | None = None) -> TrackerUpdate:
        """Associate the faces of one frame captured at `captured_at` (unix seconds) by this tracker's camera.

        `frame` (its RGB pixels) only if crops and patches are wanted. It is used during this call
        only: a crop is copied out of it for a tracklet's new best face, a patch for a face that
        enters its best `keep_patches`, and nothing else of it is kept. A frame captured no later
        than one already tracked (results can arrive out of order) is counted and skipped.
        """
        if frame is not None:
            check_frame(frame)
        self._counts["faces_seen"] += len(faces)
        if captured_at <= self._last_frame_at:
            self._counts["frames_out_of_order"] += 1
            self._counts["faces_discarded"] += len(faces)
            self._log.debug("frame_out_of_order", captured_at=captured_at, last_frame_at=self._last_frame_at)
            return TrackerUpdate(self.camera_id, (), (), (), skipped=True)
        self._last_frame_at = captured_at
        self._now = now = max(self._now, captured_at)
        self._counts["frames"] += 1
        ready: list[ReadyTracklet] = []
        ended = self._end_unseen(ready)
        tracklet_ids, seen = self._associate(faces, now, frame)
        for track in [t for t in self._tracks if t not in seen]:
            track.missed += 1
            if track.missed >= self.config.max_missed_frames:
                ended.append(self._end(track, ready))
        for track in self._tracks:
            if track.state is TrackState.COLLECTING and self._ready_to_search(track):
                ready.append(self._emit(track, ended=False))
        self._expire_decisions()
        return TrackerUpdate(self.camera_id, tracklet_ids, tuple(ready), tuple(ended))

    def advance(self, now: float) -> TrackerUpdate:
        """Apply the clock when no faces come (a stalled camera, a failed frame): end unseen tracks, expire decisions.

        Unlike an empty frame, it is no missed frame for any track.
        """
        self._now = max(self._now, now)
        ready: list[ReadyTracklet] = []
        ended = self._end_unseen(ready)
        self._expire_decisions()
        return TrackerUpdate(self.camera_id, (), tuple(ready), tuple(ended))

    def close(self) -> TrackerUpdate:
        """End every track (the camera stops); tracklets with enough evidence are emitted a last time."""
        ready: list[ReadyTracklet] = []
        ended = [self._end(track, ready) for track in list(self._tracks)]
        return TrackerUpdate(self.camera_id, (), tuple(ready), tuple(ended))

    def is_awaiting(self, tracklet_id: str) -> bool:
        """Whether the tracklet was emitted and still waits for its decision (not decided, not expired)."""
        if tracklet_id in self._ended_awaiting:
            return True
        return any(t.tracklet_id == tracklet_id and t.state is TrackState.AWAITING for t in self._tracks)

    def decide(self, tracklet_id: str, candidate: Candidate | None) -> Sighting | None:
        """Record the watchlist decision of an emitted tracklet.

        None (no match): every face, embedding, patch and crop of the tracklet is deleted now; its
        later faces are dropped unkept. A candidate: the tracklet becomes a `Sighting` (returned)
        and its faces, patches and crop are deleted from the tracker. Raises UnknownTrackletError
        for a tracklet that is not awaiting a decision (never emitted, already decided, or expired).
        """
        track, live = self._awaiting_track(tracklet_id)
        if candidate is None:
            self._delete(track)
            self._counts["tracklets_deleted_no_match"] += 1
            self._log.debug("tracklet_deleted_no_match", tracklet_id=tracklet_id)
            return None
        sighting = self._sighting(track, candidate)
        track.tracklet.clear()
        track.state = TrackState.MATCHED
        if not live:
            track.pooled = None
        self._counts["tracklets_matched"] += 1
        self._log.info("tracklet_matched", sighting_id=sighting.sighting_id, similarity=round(sighting.similarity, 4))
        return sighting

    def discard(self, tracklet_id: str, reason: str) -> None:
        """Delete an emitted tracklet that cannot be decided (the second model could not embed its patches).

        As with a non-match, all its evidence goes now and its later faces are dropped unkept:
        a tracklet is never decided on part of the models, and never kept for want of them.
        Raises UnknownTrackletError as `decide` does.
        """
        track, _ = self._awaiting_track(tracklet_id)
        self._delete(track)
        self._counts["tracklets_unscored"] += 1
        self._log.warning("tracklet_unscored", tracklet_id=tracklet_id, reason=reason)

    def counts(self) -> TrackerCounts:
        """What has been seen and done so far, as numbers only."""
        return TrackerCounts(**{f.name: self._counts[f.name] for f in fields(TrackerCounts)})

    def holdings(self) -> TrackerHoldings:
        """What is held in memory now: after every non-match is decided, no embedding or crop of it."""
        tracks = [*self._tracks, *self._ended_awaiting.values()]
        faces = sum(len(t.tracklet) for t in tracks)
        pooled = sum(1 for t in tracks if t.pooled is not None)
        return TrackerHoldings(
            tracks=len(self._tracks),
            tracklets_with_faces=sum(1 for t in tracks if len(t.tracklet)),
            faces=faces,
            embeddings=faces + pooled,
            crops=sum(1 for t in tracks if t.tracklet.crop is not None),
            patches=sum(len(t.tracklet.patches) for t in tracks),
        )

    def _awaiting_track(self, tracklet_id: str) -> tuple[_Track, bool]:
        """The awaiting track of `tracklet_id` (taken out of the ended ones if it ended) and whether it is live."""
        track = self._ended_awaiting.pop(tracklet_id, None)
        live = track is None
        if track is None:
            track = next((t for t in self._tracks if t.tracklet_id == tracklet_id), None)
        if track is None or track.state is not TrackState.AWAITING:
            raise UnknownTrackletError(
                f"tracklet '{tracklet_id}' of camera '{self.camera_id}' is not awaiting a decision: it was never"
                f" emitted, was already decided, or expired after {self.config.decision_timeout_s:g} s"
            )
        return track, live

    def _delete(self, track: _Track) -> None:
        """Forget every face, embedding, patch and crop of the track; it lives on as a ghost box."""
        track.forget_evidence()
        track.state = TrackState.GHOST

    def _associate(
        self, faces: Sequence[Face], now: float, frame: np.ndarray | None
    ) -> tuple[tuple[str | None, ...], set[_Track]]:
        """Give every usable face a track (continued or born); returns each face's tracklet and the tracks seen."""
        usable = [i for i, face in enumerate(faces) if _usable(face)]
        if len(usable) < len(faces):
            self._counts["faces_invalid"] += len(faces) - len(usable)
            self._log.warning(
                "faces_invalid", count=len(faces) - len(usable), reason="non-finite or empty box/embedding"
            )
        boxes = np.array([faces[i].box for i in usable], dtype=np.float64).reshape(-1, 4)
        embeddings = np.array([faces[i].embedding for i in usable], dtype=np.float32).reshape(-1, EMBEDDING_SIZE)
        owner: dict[int, _Track] = {}
        appearances = [(t, t.appearance()) for t in self._tracks]
        with_appearance = [(t, a) for t, a in appearances if a is not None]
        without = [t for t, a in appearances if a is None]
        if with_appearance and usable:
            tracks = [t for t, _ in with_appearance]
            geometry = self._geometry(tracks, boxes, now)
            appearance = appearance_cost(
                np.stack([a for _, a in with_appearance]), embeddings, self.config.association_min_similarity
            )
            for row, column in greedy_assign(combined_cost(geometry, appearance)):
                owner[column] = tracks[row]
        left = [c for c in range(len(usable)) if c not in owner]
        if without and left:
            geometry = self._geometry(without, boxes[left], now)
            for row, column in greedy_assign(geometry):
                owner[left[column]] = without[row]
        ids: dict[int, str] = {}
        seen: set[_Track] = set()
        for column, index in enumerate(usable):
            track = owner.get(column)
            if track is None:
                track = self._birth(boxes[column], now)
            else:
                track.observe(boxes[column], now)
            self._keep_or_discard(track, faces[index], now, frame)
            ids[index] = track.tracklet_id
            seen.add(track)
        return tuple(ids.get(i) for i in range(len(faces))), seen

    def _geometry(self, tracks: list[_Track], boxes: np.ndarray, now: float) -> np.ndarray:
        config = self.config
        predicted = np.stack([t.predicted_centre(now) for t in tracks])
        sizes = box_sizes(np.stack([t.box for t in tracks]))
        radii = np.array(
            [max(config.association_min_radius, config.association_max_speed * (now - t.last_seen)) for t in tracks]
        )
        return geometry_cost(predicted, sizes, radii, boxes, config.association_max_size_ratio)

    def _birth(self, box: np.ndarray, now: float) -> _Track:
        track = _Track(f"{self._session}-{self._next_number}", box, now, self.config.best_faces, self.keep_patches)
        self._next_number += 1
        self._tracks.append(track)
        self._counts["tracklets_started"] += 1
        return track

    def _keep_or_discard(self, track: _Track, face: Face, now: float, frame: np.ndarray | None) -> None:
        if track.state is TrackState.COLLECTING and joins_tracklet(face, self.config):
            cut = None if frame is None else (lambda box: cut_face_crop(frame, box))
            cut_patch = None if frame is None or not self.keep_patches else (lambda kept: self._patch(frame, kept))
            if track.tracklet.offer(face, now, cut, cut_patch):
                self._counts["faces_kept"] += 1
                return
        self._counts["faces_discarded"] += 1

    def _patch(self, frame: np.ndarray, face: Face) -> FacePatch | None:
        """The face's patch, or None (logged) where none can be cut: one odd face never fails a frame."""
        try:
            return cut_face_patch(frame, face.landmarks, face.quality.overall)
        except ValueError as exc:
            self._log.warning("face_patch_not_cut", reason=str(exc))
            return None

    def _ready_to_search(self, track: _Track) -> bool:
        tracklet = track.tracklet
        enough = len(tracklet) >= self.config.min_faces_for_decision
        return enough and tracklet.pooled_quality >= self.config.min_pooled_quality

    def _emit(self, track: _Track, ended: bool) -> ReadyTracklet:
        track.pooled = track.tracklet.pooled_embedding()
        track.state = TrackState.AWAITING
        track.emitted_at = self._now
        self._counts["tracklets_searched"] += 1
        return ReadyTracklet(
            tracklet_id=track.tracklet_id,
            camera_id=self.camera_id,
            embedding=track.pooled,
            quality=track.tracklet.pooled_quality,
            faces=len(track.tracklet),
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            ended=ended,
            patches=track.tracklet.patches,
        )

    def _end_unseen(self, ready: list[ReadyTracklet]) -> list[str]:
        stale = [t for t in self._tracks if self._now - t.last_seen > self.config.max_unseen_s]
        return [self._end(track, ready) for track in stale]

    def _end(self, track: _Track, ready: list[ReadyTracklet]) -> str:
        """Remove a track from association; an emitted or emittable tracklet waits for its decision."""
        self._tracks.remove(track)
        self._counts["tracklets_ended"] += 1
        if track.state is TrackState.COLLECTING:
            if len(track.tracklet) and track.tracklet.pooled_quality >= self.config.min_pooled_quality:
                ready.append(self._emit(track, ended=True))
            else:
                track.forget_evidence()
                self._counts["tracklets_unsearched"] += 1
        if track.state is TrackState.AWAITING:
            self._ended_awaiting[track.tracklet_id] = track
        else:
            track.forget_evidence()
        return track.tracklet_id

    def _expire_decisions(self) -> None:
        """Delete tracklets whose decision is overdue, as if they had matched nobody."""
        timeout = self.config.decision_timeout_s
        overdue = [
            t
            for t in [*self._tracks, *self._ended_awaiting.values()]
            if t.state is TrackState.AWAITING and t.emitted_at is not None and self._now - t.emitted_at > timeout
        ]
        for track in overdue:
            self._ended_awaiting.pop(track.tracklet_id, None)
            self._delete(track)
            self._counts["decisions_expired"] += 1
            self._log.warning("decision_expired", tracklet_id=track.tracklet_id, seconds=self.config.decision_timeout_s)

    def _sighting(self, track: _Track, candidate: Candidate) -> Sighting:
        """The evidence of an awaiting tracklet (pooled embedding set, faces kept) as a Sighting."""
        crop = track.tracklet.crop
        return Sighting(
            sighting_id=f"{self.camera_id}:{track.tracklet_id}",
            camera_id=self.camera_id,
            person_id=candidate.person_id,
            watchlist_id=candidate.watchlist_id,
            similarity=candidate.similarity,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            frames=track.frames,
            embedding=np.array(track.pooled, dtype=np.float32),
            crop_jpeg=encode_jpeg(crop.pixels) if crop is not None else None,
            box=np.array(track.tracklet.best_box(), dtype=np.float32),
            model_scores=candidate.model_scores,
        )
