"""Per-camera tracking on real faces: association, best faces, the search rule and deletion of non-matches.

Scenes are synthesised from real lfw10 photos: each photo's detected face (its real embedding,
quality, box and landmarks) is moved and scaled along a path, one photo per frame, so a
tracklet holds different photos of one person, a harder case than consecutive video frames.
"""

import asyncio
import gc
import io
import threading
import time
import weakref
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from cluster.deployment.window import DeploymentWindow
from cluster.live.face_service import FrameResult, FrameTimings
from cluster.live.matching import MatchingSink
from cluster.live.silence import SilenceTicker
from cluster.matching.config import MatchingConfig
from cluster.tracking.candidate import Candidate, best_candidate
from cluster.tracking.config import TrackingConfig
from cluster.tracking.crops import cut_face_crop, face_crop_jpeg
from cluster.tracking.matching import match_and_decide
from cluster.tracking.tracker import Tracker, UnknownTrackletError
from cluster.tracking.tracklet import Tracklet
from cluster.vision.face import Face
from cluster.vision.quality import FaceQuality
from tests.lfw10_portraits import Lfw10Portraits, Photo
from tests.waiting import scaled, wait_for

CAMERA = "oxford_st_2"
PEOPLE = ("Colin_Powell", "Tony_Blair", "Jacques_Chirac")
FPS = 5.0
T0 = 1_700_000_000.0
NO_TIMINGS = FrameTimings(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def photos(lfw10_portraits: Lfw10Portraits) -> dict[str, list[Photo]]:
    """Ten photos of each person in PEOPLE with their real faces (embedded once a session)."""
    return {person: lfw10_portraits.of(person) for person in PEOPLE}


class ArrayWatchlist:
    """A real (brute-force, numpy) watchlist search over enrolled embeddings: the matcher protocol."""

    def __init__(self, entries: dict[str, np.ndarray], watchlist_id: str = "wl_test") -> None:
        self.person_ids = list(entries)
        self.embeddings = np.stack([entries[p] for p in self.person_ids])
        self.watchlist_id = watchlist_id
        self.searched = 0

    def match(self, embeddings: np.ndarray, extra=None) -> list[list[Candidate]]:
        self.searched += len(embeddings)
        similarities = embeddings @ self.embeddings.T
        return [
            [Candidate(self.person_ids[j], self.watchlist_id, float(row[j])) for j in np.argsort(-row)[:3]]
            for row in similarities
        ]


def placed(face: Face, scale: float, offset: tuple[float, float], quality: float | None = None) -> Face:
    """The face as it appears when its photo is scaled by `scale` and pasted at `offset`.

    The embedding is copied, so each frame's face owns its array (the deletion tests watch them).
    """
    shift = np.array(offset, dtype=np.float32)
    return Face(
        box=(face.box * scale + np.tile(shift, 2)).astype(np.float32),
        landmarks=(face.landmarks * scale + shift).astype(np.float32),
        score=face.score,
        quality=face.quality if quality is None else FaceQuality(1.0, 1.0, 1.0, 1.0, overall=quality),
        embedding=np.array(face.embedding, copy=True),
    )


def frame_time(seq: int) -> float:
    """When frame `seq` of the test camera was captured: FPS frames a second from T0."""
    return T0 + seq / FPS


def frame_result(seq: int, faces: list[Face], camera_id: str = CAMERA, error: str | None = None) -> FrameResult:
    """Frame `seq`'s result as the face service hands it to a sink."""
    return FrameResult(camera_id, seq, seq / FPS, frame_time(seq), tuple(faces), error, 1, NO_TIMINGS)


def scene(placements: list[tuple[Photo, float, tuple[float, float]]], size=(480, 640)) -> np.ndarray:
    """A grey frame with each photo scaled and pasted at its offset (the pixels the faces came from)."""
    frame = np.full((*size, 3), 90, dtype=np.uint8)
    for photo, scale, (x, y) in placements:
        height, width = photo.pixels.shape[:2]
        scaled = np.asarray(Image.fromarray(photo.pixels).resize((round(width * scale), round(height * scale))))
        x0, y0 = round(x), round(y)
        frame[y0 : y0 + scaled.shape[0], x0 : x0 + scaled.shape[1]] = scaled
    return frame


def walk(photos: list[Photo], start: tuple[float, float], step: tuple[float, float], frames: int, scale=0.6):
    """Per frame: a photo of the person (the next one each frame) and where it is pasted."""
    for i in range(frames):
        yield photos[i % len(photos)], scale, (start[0] + step[0] * i, start[1] + step[1] * i)


def test_tracklet_keeps_its_best_faces_and_pools_them_by_quality(photos):
    faces = [p.face for p in photos["Colin_Powell"]]
    cuts = []

    def cut(box: np.ndarray) -> np.ndarray:
        cuts.append(box)
        return np.zeros((2, 2, 3), np.uint8)

    tracklet = Tracklet(capacity=5)
    for i, face in enumerate(faces):
        tracklet.offer(face, T0 + i, cut_crop=cut)
    qualities = sorted((f.quality.overall for f in faces), reverse=True)
    assert [f.quality for f in tracklet.faces] == pytest.approx(qualities[:5])
    best = sorted(faces, key=lambda f: -f.quality.overall)[:5]
    weights = np.array([f.quality.overall for f in best])
    expected = (weights[:, None] * np.stack([f.embedding for f in best])).sum(0)
    np.testing.assert_allclose(tracklet.pooled_embedding(), expected / np.linalg.norm(expected), atol=1e-6)
    assert tracklet.crop is not None and tracklet.crop.quality == pytest.approx(qualities[0])
    assert len(cuts) < len(faces), "a crop is cut only when a face becomes the best, not for every face"


# name, per-frame horizontal steps of Powell (Blair mirrors them from the right), pixels
ENCOUNTERS = [
    ("they pass each other", [40.0] * 14),
    ("they meet and both turn back", [40.0] * 7 + [-40.0] * 7),
    ("they meet, stand together, walk on", [40.0] * 6 + [4.0, -4.0, 4.0] + [40.0] * 5),
]


@pytest.mark.parametrize("vertical_offset", [0.0, 12.0])
@pytest.mark.parametrize("steps", [row[1] for row in ENCOUNTERS], ids=[row[0] for row in ENCOUNTERS])
def test_two_people_who_meet_keep_their_own_tracklets(photos, steps, vertical_offset):
    """Face to face, boxes overlapping: when they turn back, motion alone would swap them; appearance keeps them."""
    tracker = Tracker(CAMERA)
    a_x = np.cumsum([0.0, *steps[:-1]])
    a_ids, b_ids = [], []
    for seq, x in enumerate(a_x):
        powell, blair = photos["Colin_Powell"][seq % 10], photos["Tony_Blair"][seq % 10]
        faces = [placed(blair.face, 0.6, (520.0 - x, 100.0 + vertical_offset)), placed(powell.face, 0.6, (x, 100.0))]
        update = tracker.update(faces, frame_time(seq))
        b_ids.append(update.tracklet_ids[0])
        a_ids.append(update.tracklet_ids[1])
    assert len(set(a_ids)) == 1 and len(set(b_ids)) == 1, (a_ids, b_ids)
    assert a_ids[0] != b_ids[0]
    assert tracker.counts().tracklets_started == 2


def test_a_ghost_does_not_take_over_a_watchlist_candidate_it_meets(photos):
    """Blair matched nobody (a box-only ghost now); Powell, awaiting his decision, meets him and both turn back.

    Motion alone would swap them at the turn; the ghost has no appearance, so it only gets the
    face that Powell's track did not claim by appearance.
    """
    tracker = Tracker(CAMERA)
    a_x = np.cumsum([0.0, *([40.0] * 7 + [-40.0] * 6)])
    a_ids, b_ids = [], []
    for seq, x in enumerate(a_x):
        powell, blair = photos["Colin_Powell"][seq % 10], photos["Tony_Blair"][seq % 10]
        update = tracker.update(
            [placed(powell.face, 0.6, (x, 100.0)), placed(blair.face, 0.6, (520.0 - x, 100.0))], frame_time(seq)
        )
        a_ids.append(update.tracklet_ids[0])
        b_ids.append(update.tracklet_ids[1])
        for ready in update.ready:
            if ready.tracklet_id == b_ids[0]:
                assert tracker.decide(ready.tracklet_id, None) is None
    assert len(set(a_ids)) == 1 and len(set(b_ids)) == 1, (a_ids, b_ids)
    holdings = tracker.holdings()
    assert holdings.tracklets_with_faces == 1, "only Powell's tracklet may hold faces"
    assert tracker.counts().tracklets_deleted_no_match == 1


# name, qualities of successive frames, frames the person is then unseen, frame index of the
# search (None: never while in view), searched when the track ends, unsearched count
READY_RULE = [
    ("three good faces are enough", [0.8] * 6, 0, 2, False, 0),
    ("poor faces are never searched", [0.35] * 6, 20, None, False, 1),
    ("faces below enrolment quality never join", [0.2] * 6, 20, None, False, 1),
    ("a good face lifts earlier poor ones", [0.35, 0.35, 0.35, 0.9, 0.9], 0, 3, False, 0),
    ("two good faces are searched when the track ends", [0.8, 0.8], 20, None, True, 0),
]


@pytest.mark.parametrize(
    ("qualities", "unseen_frames", "ready_at", "ready_at_end", "unsearched"),
    [row[1:] for row in READY_RULE],
    ids=[row[0] for row in READY_RULE],
)
def test_a_tracklet_is_searched_once_it_holds_enough_good_evidence(
    photos, qualities, unseen_frames, ready_at, ready_at_end, unsearched
):
    tracker = Tracker(CAMERA, TrackingConfig(max_missed_frames=5, min_pooled_quality=0.45, min_enrol_quality=0.3))
    ready_frames, ended_ready = [], []
    steps = list(walk(photos["Jacques_Chirac"], (50.0, 100.0), (20.0, 0.0), len(qualities)))
    for seq, ((photo, scale, offset), quality) in enumerate(zip(steps, qualities)):
        update = tracker.update([placed(photo.face, scale, offset, quality)], frame_time(seq))
        ready_frames.extend(seq for _ in update.ready)
    for seq in range(len(qualities), len(qualities) + unseen_frames):
        ended_ready.extend(tracker.update([], frame_time(seq)).ready)
    assert ready_frames == ([] if ready_at is None else [ready_at])
    assert [r.ended for r in ended_ready] == ([True] if ready_at_end else [])
    assert tracker.counts().tracklets_unsearched == unsearched
    assert tracker.counts().tracklets_searched == len(ready_frames) + len(ended_ready)


def _walk_and_delete(tracker: Tracker, photos: list[Photo], frames: int, decide_at: int) -> list[weakref.ref]:
    """Walk one person with pixels (so crops are cut), decide no-match when ready; weak refs to all data given."""
    refs = []
    for seq, (photo, scale, offset) in enumerate(walk(photos, (40.0, 60.0), (25.0, 0.0), frames)):
        face = placed(photo.face, scale, offset)
        pixels = scene([(photo, scale, offset)])
        refs += [weakref.ref(face), weakref.ref(face.embedding), weakref.ref(pixels)]
        update = tracker.update([face], frame_time(seq), pixels)
        for ready in update.ready:
            assert seq == decide_at
            before = tracker.holdings()
            assert (before.faces, before.embeddings, before.crops) == (3, 4, 1), "3 faces, the pooled one, a crop"
            tracker.decide(ready.tracklet_id, None)
            after = tracker.holdings()
            assert (after.faces, after.embeddings, after.crops) == (0, 0, 0)
    return refs


def test_a_non_match_is_deleted_at_once_and_its_later_faces_are_never_kept(photos):
    """Privacy: after a no-match decision nothing of the person remains, and nothing of him is kept again."""
    tracker = Tracker(CAMERA)
    refs = _walk_and_delete(tracker, photos["Tony_Blair"], frames=15, decide_at=2)
    holdings = tracker.holdings()
    assert (holdings.faces, holdings.embeddings, holdings.crops, holdings.tracklets_with_faces) == (0, 0, 0, 0)
    assert holdings.tracks == 1, "the person is still followed, as a box"
    counts = tracker.counts()
    assert (counts.tracklets_started, counts.tracklets_searched, counts.tracklets_deleted_no_match) == (1, 1, 1)
    assert counts.faces_seen == 15 and counts.faces_kept == 3 and counts.faces_discarded == 12
    gc.collect()
    alive = [ref() for ref in refs if ref() is not None]
    assert not alive, f"{len(alive)} faces, embeddings or frames of a non-match are still referenced"
    tracker.close()
    assert tracker.holdings().tracks == 0


def test_a_positive_decision_makes_a_sighting_with_the_best_crop(photos, face_pipeline):
    """Powell is on the watchlist, Blair is not: one sighting with Powell's crop, Blair deleted."""
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    watchlist = ArrayWatchlist(
        {"p_powell": powell[0].face.embedding, "p_chirac": photos["Jacques_Chirac"][0].face.embedding}
    )
    threshold = MatchingConfig().similarity_threshold
    tracker = Tracker(CAMERA)
    sightings, ready_ids = [], {}
    for seq in range(6):
        placements = [(powell[1 + seq], 0.8, (30.0 + 20 * seq, 20.0)), (blair[1 + seq], 0.8, (420.0 - 20 * seq, 230.0))]
        faces = [placed(photo.face, scale, offset) for photo, scale, offset in placements]
        update = tracker.update(faces, frame_time(seq), scene(placements))
        ready_ids.update({r.tracklet_id: r for r in update.ready})
        sightings += match_and_decide(tracker, update.ready, watchlist, threshold)
    assert len(sightings) == 1 and watchlist.searched == 2
    sighting = sightings[0]
    ready = ready_ids[sighting.sighting_id.split(":", 1)[1]]
    assert sighting.sighting_id == f"{CAMERA}:{ready.tracklet_id}"
    assert (sighting.person_id, sighting.watchlist_id, sighting.frames) == ("p_powell", "wl_test", 3)
    assert sighting.similarity == pytest.approx(float(ready.embedding @ powell[0].face.embedding), abs=1e-5)
    assert sighting.similarity >= threshold
    assert (sighting.first_seen, sighting.last_seen) == (T0, T0 + 2 / FPS)
    np.testing.assert_array_equal(sighting.embedding, ready.embedding)
    best = max(powell[1:4], key=lambda p: p.face.quality.overall)
    best_index = powell.index(best) - 1
    np.testing.assert_allclose(
        sighting.box, best.face.box * 0.8 + np.tile([30.0 + 20 * best_index, 20.0], 2), atol=1e-3
    )
    crop = np.array(Image.open(io.BytesIO(sighting.crop_jpeg)).convert("RGB"))
    similarities = {
        i: max(float(f.embedding @ p.face.embedding) for f in face_pipeline.process([crop])[0])
        for i, p in enumerate(powell)
    }
    assert max(similarities, key=similarities.get) == powell.index(best), "the crop must show the tracklet's best face"
    holdings = tracker.holdings()
    assert (holdings.faces, holdings.crops, holdings.embeddings) == (0, 0, 1), "only Powell's matched embedding stays"
    counts = tracker.counts()
    assert (counts.tracklets_matched, counts.tracklets_deleted_no_match) == (1, 1)


ENROLMENT_POLICY = [
    ("enrolment switched off", TrackingConfig(enrol_faces=False), 0.6, None),
    ("faces too small", TrackingConfig(), 0.15, None),
    ("faces too poor", TrackingConfig(min_enrol_quality=0.3), 0.6, 0.25),
]


@pytest.mark.parametrize(
    ("config", "scale", "quality"), [row[1:] for row in ENROLMENT_POLICY], ids=[row[0] for row in ENROLMENT_POLICY]
)
def test_faces_outside_the_enrolment_policy_are_followed_but_never_kept(photos, config, scale, quality):
    tracker = Tracker(CAMERA, config)
    ids = set()
    for seq, (photo, _, offset) in enumerate(walk(photos["Colin_Powell"], (40.0, 60.0), (10.0, 0.0), 8)):
        update = tracker.update([placed(photo.face, scale, offset, quality)], frame_time(seq))
        ids.update(update.tracklet_ids)
        assert not update.ready
        assert tracker.holdings().embeddings == 0
    tracker.close()
    counts = tracker.counts()
    assert (counts.faces_seen, counts.faces_kept, counts.tracklets_searched) == (8, 0, 0)
    assert len(ids) == 1 and counts.tracklets_unsearched == 1


# name, frames without the person, seconds from the last sighting to his return, same tracklet?
TRACK_ENDS = [
    ("back after three empty frames", 3, 0.8, True),
    ("back after four empty frames", 4, 1.0, False),
    ("back on the next frame, but 3.5 s later", 0, 3.5, False),
]


@pytest.mark.parametrize(
    ("empty_frames", "seconds_later", "same_tracklet"),
    [row[1:] for row in TRACK_ENDS],
    ids=[row[0] for row in TRACK_ENDS],
)
def test_a_track_ends_after_missed_frames_or_unseen_seconds(photos, empty_frames, seconds_later, same_tracklet):
    tracker = Tracker(CAMERA, TrackingConfig(max_missed_frames=4, max_unseen_s=3.0))
    person = photos["Jacques_Chirac"]
    first = tracker.update([placed(person[0].face, 0.6, (100.0, 100.0))], frame_time(0))
    for seq in range(1, empty_frames + 1):
        tracker.update([], frame_time(seq))
    back_face = placed(person[1].face, 0.6, (102.0, 100.0))
    back = tracker.update([back_face], T0 + seconds_later)
    assert (back.tracklet_ids == first.tracklet_ids) is same_tracklet
    assert tracker.counts().tracklets_ended == (0 if same_tracklet else 1)


def test_an_unanswered_search_expires_and_deletes_the_tracklet(photos):
    tracker = Tracker(CAMERA, TrackingConfig(decision_timeout_s=5.0))
    ready = []
    for seq, (photo, scale, offset) in enumerate(walk(photos["Colin_Powell"], (40.0, 60.0), (10.0, 0.0), 4)):
        ready += tracker.update([placed(photo.face, scale, offset)], frame_time(seq)).ready
    assert len(ready) == 1 and tracker.holdings().embeddings > 0
    tracker.advance(T0 + 3.0)
    assert tracker.holdings().embeddings > 0, "not yet overdue"
    tracker.advance(T0 + 6.0)
    assert tracker.holdings().embeddings == 0 and tracker.counts().decisions_expired == 1
    with pytest.raises(UnknownTrackletError, match="not awaiting a decision"):
        tracker.decide(ready[0].tracklet_id, None)


def test_unusable_faces_and_stale_frames_are_counted_not_tracked(photos):
    tracker = Tracker(CAMERA)
    good = placed(photos["Colin_Powell"][0].face, 0.6, (40.0, 60.0))
    broken = replace(good, embedding=np.full(128, np.nan, dtype=np.float32))
    update = tracker.update([broken, good], frame_time(3))
    assert update.tracklet_ids[0] is None and update.tracklet_ids[1] is not None
    assert tracker.update([good], frame_time(2)).skipped
    counts = tracker.counts()
    assert (counts.faces_invalid, counts.frames_out_of_order, counts.frames, counts.faces_seen) == (1, 1, 1, 3)
    assert counts.faces_seen == counts.faces_kept + counts.faces_discarded + counts.faces_invalid


def test_bad_input_is_refused_with_a_clear_message(photos):
    tracker = Tracker(CAMERA)
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    sink = MatchingSink(CAMERA, watchlist, MatchingConfig().similarity_threshold, CollectingOutlet())
    with pytest.raises(ValueError, match="one MatchingSink per camera"):
        sink.accept(frame_result(0, [], camera_id="oxford_circus"), scene([]))
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.update([], frame_time(0), np.zeros((10, 10), np.float32))
    with pytest.raises(UnknownTrackletError, match="never\\s+emitted"):
        tracker.decide("nope-1", None)
    with pytest.raises(ValidationError, match="must not exceed best_faces"):
        TrackingConfig(best_faces=3, min_faces_for_decision=4)
    with pytest.raises(ValueError, match="finite match score"):
        Candidate("p1", "wl", float("nan"))
    with pytest.raises(ValueError, match="faceres cosine must be in -1..1"):
        Candidate("p1", "wl", 4.2, {"faceres": 1.5})


def test_a_matcher_must_answer_every_tracklet(photos):
    class Forgetful(ArrayWatchlist):
        def match(self, embeddings, extra=None):
            return super().match(embeddings)[:-1]

    tracker = Tracker(CAMERA)
    ready = []
    for seq, (photo, scale, offset) in enumerate(walk(photos["Colin_Powell"], (40.0, 60.0), (10.0, 0.0), 3)):
        ready += tracker.update([placed(photo.face, scale, offset)], frame_time(seq)).ready
    watchlist = Forgetful({"p_powell": photos["Colin_Powell"][0].face.embedding})
    with pytest.raises(ValueError, match=r"one\s+list"):
        match_and_decide(tracker, ready, watchlist, MatchingConfig().similarity_threshold)


def test_best_candidate_applies_the_threshold():
    candidates = [Candidate("a", "wl", 0.91), Candidate("b", "wl", 0.95), Candidate("c", "wl", 0.93)]
    assert best_candidate(candidates, 0.92).person_id == "b"
    assert best_candidate(candidates, 0.96) is None
    assert best_candidate([], 0.5) is None


def test_crops_are_copies_clipped_to_the_frame(photos):
    frame = scene([(photos["Colin_Powell"][0], 1.0, (0.0, 0.0))])
    crop = cut_face_crop(frame, np.array([-20.0, 10.0, 60.0, 90.0]))
    assert crop.base is None, "a view would keep the whole frame alive"
    assert crop.shape == (110, 80, 3)
    jpeg = face_crop_jpeg(frame, photos["Colin_Powell"][0].face.box)
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    with pytest.raises(ValueError, match="outside"):
        cut_face_crop(frame, np.array([700.0, 10.0, 760.0, 90.0]))


class CollectingOutlet:
    """Where a camera's sightings go: here kept in order, as the Coordinator would receive them."""

    def __init__(self) -> None:
        self.sent: list = []
        self.flushes = 0

    def send(self, sightings: list) -> None:
        self.sent.extend(sightings)

    def flush(self) -> None:
        self.flushes += 1


class GalleryOutage:
    """The watchlist search failing for its first `failures` calls (an injected fault), then answering."""

    def __init__(self, watchlist: ArrayWatchlist, failures: int) -> None:
        self.watchlist = watchlist
        self.failures = failures

    def match(self, embeddings: np.ndarray, extra=None) -> list[list[Candidate]]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("gallery unavailable (injected)")
        return self.watchlist.match(embeddings)


class SetClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def powell_and_blair(photos, sink: MatchingSink, seqs: range, clock: SetClock | None = None) -> None:
    """Powell and Blair walk past the camera, one frame per seq; the clock moves a second per frame."""
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    for seq in seqs:
        placements = [(powell[1 + seq], 0.8, (30.0 + 20 * seq, 20.0)), (blair[1 + seq], 0.8, (420.0 - 20 * seq, 230.0))]
        faces = [placed(photo.face, scale, offset) for photo, scale, offset in placements]
        if clock is not None:
            clock.now = float(seq)
        sink.accept(frame_result(seq, faces), scene(placements))


def test_matching_sink_delivers_matches_and_deletes_the_rest(photos):
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    outlet = CollectingOutlet()
    sink = MatchingSink(CAMERA, watchlist, MatchingConfig().similarity_threshold, outlet)
    powell_and_blair(photos, sink, range(6))
    sink.close()
    summary = sink.summary()
    assert [s.person_id for s in outlet.sent] == ["p_powell"] and summary.sightings == 1
    assert summary.tracker.tracklets_deleted_no_match == 1, "Blair matched nobody and must be deleted"
    assert (summary.holdings.embeddings, summary.holdings.crops) == (0, 0)
    assert outlet.flushes == 1, "closing must wait for what was sent"
    assert 1 <= len(summary.searches) <= watchlist.searched, "each search that answered is timed for load tests"
    assert all(search.seconds >= 0 and search.at <= time.time() for search in summary.searches)


def test_matching_sink_matches_nothing_outside_the_deployment_window(photos):
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    outlet = CollectingOutlet()
    window = DeploymentWindow(T0 - 3600, T0)
    sink = MatchingSink(CAMERA, watchlist, MatchingConfig().similarity_threshold, outlet, window=window)
    powell_and_blair(photos, sink, range(6))
    summary = sink.summary()
    assert summary.frames_outside_window == 6 and summary.tracker.frames == 0
    assert watchlist.searched == 0 and outlet.sent == []


def test_a_failed_frame_is_counted_and_misses_no_track(photos):
    """Three frames the face service failed (a replica died) between good ones: no track may end for want of faces
    it was never shown, as it would after two empty frames."""
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    threshold, tracking = MatchingConfig().similarity_threshold, TrackingConfig(max_missed_frames=2)
    sink = MatchingSink(CAMERA, watchlist, threshold, CollectingOutlet(), tracking)
    powell_and_blair(photos, sink, range(2))
    for seq in range(2, 5):
        sink.accept(frame_result(seq, [], error="RayActorError: the replica died"), scene([]))
    powell_and_blair(photos, sink, range(5, 7))
    summary = sink.summary()
    assert (summary.frames_failed, summary.tracker.frames) == (3, 4)
    assert (summary.tracker.tracklets_started, summary.tracker.tracklets_ended) == (2, 0)


def test_matching_sink_rides_out_a_gallery_outage(photos):
    """The first search fails: the tracklets wait (not deleted, not lost) and are searched again a second later."""
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    outlet, clock = CollectingOutlet(), SetClock()
    sink = MatchingSink(
        CAMERA, GalleryOutage(watchlist, failures=1), MatchingConfig().similarity_threshold, outlet, clock=clock
    )
    powell_and_blair(photos, sink, range(3), clock)
    failed = sink.summary()
    assert failed.search_failures == 1 and failed.awaiting_search == 2 and outlet.sent == []
    powell_and_blair(photos, sink, range(3, 5), clock)
    recovered = sink.summary()
    assert recovered.awaiting_search == 0 and [s.person_id for s in outlet.sent] == ["p_powell"]
    assert recovered.tracker.tracklets_deleted_no_match == 1


class RunningTicker:
    """A `SilenceTicker` running on an event loop of its own, as beside a forwarder, until stopped."""

    def __init__(self, ticker: SilenceTicker) -> None:
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(ticker.run())
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def test_a_silent_camera_keeps_no_tracklet_past_the_decision_timeout(photos):
    """Faces come while the gallery is down, then the camera goes silent: with no further frame, the waiting
    tracklets (which matched nobody yet), their faces, embeddings and crops are gone within the decision timeout
    and one tick."""
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    tracking = TrackingConfig(decision_timeout_s=1.0)
    outlet = CollectingOutlet()
    gallery_down = GalleryOutage(watchlist, failures=1_000_000)
    sink = MatchingSink(CAMERA, gallery_down, MatchingConfig().similarity_threshold, outlet, tracking)
    ticker = SilenceTicker(sink, interval_s=0.1)
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    for seq in range(3):
        placements = [(powell[1 + seq], 0.8, (30.0 + 20 * seq, 20.0)), (blair[1 + seq], 0.8, (420.0 - 20 * seq, 230.0))]
        faces = tuple(placed(photo.face, scale, offset) for photo, scale, offset in placements)
        sink.accept(FrameResult(CAMERA, seq, seq / FPS, time.time(), faces, None, 1, NO_TIMINGS), scene(placements))
        ticker.heard()
    last_frame = time.time()
    waiting = sink.summary()
    assert waiting.awaiting_search == 2 and waiting.tracker.tracklets_searched == 2
    assert waiting.holdings.embeddings > 0 and waiting.holdings.crops == 2
    running = RunningTicker(ticker)
    try:
        wait_for(
            lambda: sink.summary().holdings.embeddings == 0,
            tracking.decision_timeout_s + 2.0,
            "the silent camera's waiting tracklets being deleted",
        )
        gone_after_s = time.time() - last_frame
    finally:
        running.stop()
    gone = sink.summary()
    assert gone_after_s <= scaled(tracking.decision_timeout_s + 0.5)
    assert gone.tracker.decisions_expired == 2 and gone.awaiting_search == 0
    assert (gone.holdings.faces, gone.holdings.crops, gone.holdings.patches) == (0, 0, 0)
    assert gone.tracker.frames == 3 and outlet.sent == [] and ticker.ticks > 0
