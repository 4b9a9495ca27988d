"""The second face model on a live tracklet's best faces: patches kept and deleted, embedded, and waited for.

Real lfw10 faces (see tests/test_tracking.py for how scenes are built from them) and the real
faceres model where embeddings are compared; the second model's transport is replaced by small
in-process clients, so the sink's retry and deletion rules are tested without Ray.
"""

import gc
import subprocess
import sys
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cluster.live.face_service import PatchProcessor, PatchRequest, PatchResult
from cluster.live.matching import SEARCH_RETRY_S, MatchingSink
from cluster.tracking.candidate import Candidate
from cluster.tracking.config import TrackingConfig
from cluster.tracking.patches import FacePatch, cut_face_patch
from cluster.tracking.tracker import Tracker
from cluster.tracking.tracklet import Tracklet, pool_embeddings
from cluster.vision.aligner import ARCFACE_CHIP_SIZE, _homogeneous, arcface_template, similarity_transforms
from tests.lfw10_portraits import Lfw10Portraits, Photo
from tests.test_tracking import (
    CAMERA,
    PEOPLE,
    T0,
    CollectingOutlet,
    SetClock,
    frame_result,
    frame_time,
    placed,
    scene,
    walk,
)

MODEL = "faceres"
FACES_PER_TRACKLET = 3
# where a photo is pasted in a 480x640 frame, and its scale: inside, and cut by each edge
PLACEMENTS = [(1.0, (200.0, 100.0)), (0.8, (-40.0, 10.0)), (1.0, (450.0, 300.0)), (0.6, (5.0, -30.0))]


@pytest.fixture(scope="module")
def photos(lfw10_portraits: Lfw10Portraits) -> dict[str, list[Photo]]:
    """Ten photos of each person in test_tracking's PEOPLE with their portrait faces (embedded once a session)."""
    return {person: lfw10_portraits.of(person) for person in PEOPLE}


def as_frame(photo: Photo, scale: float, offset: tuple[float, float], size=(480, 640)):
    """The photo scaled and pasted into a grey frame at `offset` (cut by the frame's edges), and its face there."""
    height, width = photo.pixels.shape[:2]
    scaled = np.asarray(Image.fromarray(photo.pixels).resize((round(width * scale), round(height * scale))))
    frame = np.full((*size, 3), 90, dtype=np.uint8)
    x, y = round(offset[0]), round(offset[1])
    left, top = max(0, x), max(0, y)
    right, bottom = min(size[1], x + scaled.shape[1]), min(size[0], y + scaled.shape[0])
    frame[top:bottom, left:right] = scaled[top - y : bottom - y, left - x : right - x]
    return frame, placed(photo.face, scale, offset)


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


# --- patches -------------------------------------------------------------------------------


def test_a_patch_is_a_copy_with_its_landmarks_moved_into_it(photos):
    photo = photos["Colin_Powell"][0]
    frame, face = as_frame(photo, *PLACEMENTS[1])
    patch = cut_face_patch(frame, face.landmarks, 0.7)
    assert patch.pixels.base is None, "a view would keep the whole frame alive"
    corner = face.landmarks[0] - patch.landmarks[0]
    np.testing.assert_array_equal(patch.landmarks + corner, face.landmarks)
    left, top = int(corner[0]), int(corner[1])
    np.testing.assert_array_equal(
        patch.pixels, frame[top : top + patch.pixels.shape[0], left : left + patch.pixels.shape[1]]
    )
    assert left == 0, "the face is cut by the frame's left edge, so the patch stops there"
    with pytest.raises(ValueError, match="outside"):
        cut_face_patch(frame, face.landmarks + 5000.0, 0.7)
    with pytest.raises(ValueError, match="five finite landmarks"):
        cut_face_patch(frame, np.full((5, 2), np.nan), 0.7)


def test_the_patch_holds_all_the_second_model_reads(photos):
    """The aligner reads the chip's preimage, and a pixel around it, clipped to the frame: the patch must hold it."""
    template = arcface_template()
    last = ARCFACE_CHIP_SIZE - 1
    corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], dtype=np.float64)
    checked = 0
    for people in photos.values():
        for photo in people:
            for scale, offset in PLACEMENTS:
                frame, face = as_frame(photo, scale, offset)
                patch = cut_face_patch(frame, face.landmarks, 0.5)
                left, top = (face.landmarks[0] - patch.landmarks[0]).astype(int)
                right, bottom = left + patch.pixels.shape[1], top + patch.pixels.shape[0]
                to_frame = np.linalg.inv(_homogeneous(similarity_transforms(face.landmarks[None], template)))[0]
                preimage = corners @ to_frame[:2].T
                height, width = frame.shape[:2]
                x0, y0 = np.maximum(np.floor(preimage.min(axis=0)) - 1, 0)
                x1, y1 = np.minimum(np.ceil(preimage.max(axis=0)) + 2, [width, height])
                inside = left <= x0 and top <= y0 and right >= x1 and bottom >= y1
                assert inside, f"patch {(left, top, right, bottom)} misses the read region {(x0, y0, x1, y1)}"
                checked += 1
    assert checked == 30 * len(PLACEMENTS)


@pytest.mark.slow
def test_a_patch_gives_the_embedding_of_the_whole_photo(photos, face_pipeline):
    """A patch cut from a real photo, or from a frame it was pasted into, embeds as aligning the whole of it does."""
    stage = face_pipeline.second_stage
    processor = PatchProcessor(stage)
    cases = [(p.pixels, p.face) for p in photos["Tony_Blair"][:2]]
    cases += [as_frame(photos["Colin_Powell"][i], *placement) for i, placement in enumerate(PLACEMENTS)]
    for image, face in cases:
        patch = cut_face_patch(image, face.landmarks, 0.6)
        result = processor.process(PatchRequest(CAMERA, ((patch,),)))
        whole = stage.embed([image], [face.landmarks[None]])[0]
        assert result.model == MODEL and result.errors == (None,)
        np.testing.assert_allclose(result.embeddings[0], whole, atol=1e-4)


# --- tracklets and the tracker -------------------------------------------------------------


def test_a_tracklet_keeps_patches_of_its_best_faces_only(photos):
    faces = [p.face for p in photos["Colin_Powell"]]
    pixels = photos["Colin_Powell"][0].pixels
    cut, dropped = [], []

    def cut_patch(face) -> FacePatch:
        patch = cut_face_patch(pixels, face.landmarks, face.quality.overall)
        cut.append(face.quality.overall)
        dropped.append(weakref.ref(patch.pixels))
        return patch

    tracklet = Tracklet(capacity=5, patches=FACES_PER_TRACKLET)
    for i, face in enumerate(faces):
        tracklet.offer(face, T0 + i, cut_crop=None, cut_patch=cut_patch)
    best = sorted((f.quality.overall for f in faces), reverse=True)
    assert [p.quality for p in tracklet.patches] == pytest.approx(best[:FACES_PER_TRACKLET])
    assert [f.patch is not None for f in tracklet.faces] == [True] * FACES_PER_TRACKLET + [False] * 2
    assert FACES_PER_TRACKLET <= len(cut) < len(faces), "a patch is cut only for a face entering the best three"
    gc.collect()
    assert sum(ref() is not None for ref in dropped) == FACES_PER_TRACKLET, "a face pushed out keeps no patch"
    tracklet.clear()
    gc.collect()
    assert tracklet.patches == () and all(ref() is None for ref in dropped)
    with pytest.raises(ValueError, match="patches of at most"):
        Tracklet(capacity=3, patches=4)


def test_pooling_weights_each_vector_by_its_quality():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(pool_embeddings(vectors, np.array([3.0, 1.0])), unit(np.array([3.0, 1.0])), atol=1e-6)
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(pool_embeddings(opposite, np.array([0.5, 0.5])), opposite[0])
    with pytest.raises(ValueError, match="no embeddings"):
        pool_embeddings(np.zeros((0, 2)), np.zeros(0))


def walk_until_ready(tracker: Tracker, photos, refs: list | None = None):
    """Blair walks by with his frames until his tracklet is ready; weak refs to each frame and face given."""
    for seq, (photo, scale, offset) in enumerate(walk(photos["Tony_Blair"], (40.0, 60.0), (25.0, 0.0), 10)):
        face = placed(photo.face, scale, offset)
        pixels = scene([(photo, scale, offset)])
        if refs is not None:
            refs += [weakref.ref(face), weakref.ref(face.embedding), weakref.ref(pixels)]
        ready = tracker.update([face], frame_time(seq), pixels).ready
        if ready:
            return ready[0]
    pytest.fail("the tracklet never became ready")


DECISIONS = ["no match", "match", "expired", "unscored"]


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_ready_tracklet_carries_its_best_patches_and_its_decision_deletes_them(photos, decision):
    tracker = Tracker(CAMERA, TrackingConfig(decision_timeout_s=5.0), keep_patches=FACES_PER_TRACKLET)
    ready = walk_until_ready(tracker, photos)
    qualities = [p.quality for p in ready.patches]
    assert len(ready.patches) == FACES_PER_TRACKLET and qualities == sorted(qualities, reverse=True)
    assert tracker.holdings().patches == FACES_PER_TRACKLET
    patches = [weakref.ref(p.pixels) for p in ready.patches]
    if decision == "no match":
        tracker.decide(ready.tracklet_id, None)
    elif decision == "match":
        assert tracker.decide(ready.tracklet_id, Candidate("p_blair", "wl_test", 4.2)) is not None
    elif decision == "expired":
        tracker.advance(T0 + 60.0)
        assert tracker.counts().decisions_expired == 1
    else:
        tracker.discard(ready.tracklet_id, reason="no usable patch")
        assert tracker.counts().tracklets_unscored == 1
    del ready
    gc.collect()
    assert tracker.holdings().patches == 0 and all(ref() is None for ref in patches)


def test_no_patch_is_kept_without_a_second_model_or_a_frame(photos):
    without_model = Tracker(CAMERA)
    assert walk_until_ready(without_model, photos).patches == ()
    without_frames = Tracker(CAMERA, keep_patches=FACES_PER_TRACKLET)
    for seq, (photo, scale, offset) in enumerate(walk(photos["Tony_Blair"], (40.0, 60.0), (25.0, 0.0), 3)):
        without_frames.update([placed(photo.face, scale, offset)], frame_time(seq))
    assert without_frames.holdings().patches == 0
    with pytest.raises(ValueError, match="keep_patches"):
        Tracker(CAMERA, TrackingConfig(best_faces=2, min_faces_for_decision=2), keep_patches=3)


def test_a_face_no_patch_can_be_cut_around_is_kept_without_one(photos):
    """Regression guard: odd landmarks cost that face its patch, never the frame (the sink would drop the frame)."""
    tracker = Tracker(CAMERA, keep_patches=FACES_PER_TRACKLET)
    photo = photos["Tony_Blair"][0]
    odd = replace(placed(photo.face, 0.6, (40.0, 60.0)), landmarks=np.full((5, 2), np.nan, np.float32))
    update = tracker.update([odd], frame_time(0), scene([(photo, 0.6, (40.0, 60.0))]))
    assert update.tracklet_ids[0] is not None
    assert (tracker.holdings().faces, tracker.holdings().patches) == (1, 0)


# --- the face service's patch processor ----------------------------------------------------


def test_one_bad_patch_fails_only_its_own_tracklet(photos, face_pipeline):
    powell, blair = photos["Colin_Powell"][0], photos["Tony_Blair"][0]
    good = cut_face_patch(powell.pixels, powell.face.landmarks, 0.6)
    other = cut_face_patch(blair.pixels, blair.face.landmarks, 0.4)
    broken = cut_face_patch(blair.pixels, blair.face.landmarks, 0.4)
    object.__setattr__(broken, "landmarks", np.full((5, 2), np.nan, np.float32))  # as if unpickled unchecked
    tiny = FacePatch(np.zeros((8, 8, 3), np.uint8), np.full((5, 2), 4.0, np.float32), 0.9)
    request = PatchRequest(CAMERA, ((good, other), (broken,), (), (tiny, good)))
    result = PatchProcessor(face_pipeline.second_stage).process(request)
    alone = face_pipeline.second_stage.embed([good.pixels, other.pixels], [good.landmarks[None], other.landmarks[None]])
    assert [e is None for e in result.embeddings] == [False, True, True, False]
    assert "no usable face patch of 1" in result.errors[1] and "no usable face patch of 0" in result.errors[2]
    np.testing.assert_allclose(result.embeddings[0], pool_embeddings(alone, np.array([0.6, 0.4])), atol=1e-5)
    np.testing.assert_allclose(result.embeddings[3], alone[0], atol=1e-5)


class BrittleStage:
    """A second stage that fails any call holding a black patch (a stand-in for a patch that breaks the model)."""

    name = MODEL

    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        if any(not image.any() for image in images):
            raise RuntimeError("the model choked on a black patch")
        return np.stack([unit(np.array([float(image.mean()), 1.0])) for image in images])


def test_a_failed_batch_is_retried_tracklet_by_tracklet():
    landmarks = np.array([[10, 12], [20, 12], [15, 16], [11, 21], [19, 21]], dtype=np.float32)
    grey = FacePatch(np.full((32, 32, 3), 100, np.uint8), landmarks, 0.5)
    black = FacePatch(np.zeros((32, 32, 3), np.uint8), landmarks, 0.5)
    result = PatchProcessor(BrittleStage()).process(PatchRequest(CAMERA, ((grey,), (black,), (grey,))))
    assert [e is None for e in result.embeddings] == [False, True, False]
    assert "choked" in result.errors[1]
    with pytest.raises(ValueError, match="exactly one of an embedding and an error"):
        PatchResult(CAMERA, MODEL, (None,), (None,), 0.0)


# --- the sink and its second-model client --------------------------------------------------


class FakeSecondStage:
    """The `SecondStageClient` protocol in process: answers (or fails, or holds back) with unit vectors.

    It keeps nothing of what it is given but counts and weak references, as the privacy tests need.
    """

    model = MODEL
    faces_per_tracklet = FACES_PER_TRACKLET

    def __init__(self, failures: int = 0, unusable: bool = False, hold: bool = False) -> None:
        self.failures = failures
        self.unusable = unusable
        self.hold = hold
        self.held: list[Future] = []
        self.calls: list[list[int]] = []
        self.refs: list[weakref.ref] = []

    def submit(self, tracklets: Sequence[Sequence[FacePatch]]) -> Future:
        self.calls.append([len(patches) for patches in tracklets])
        self.refs += [weakref.ref(p.pixels) for patches in tracklets for p in patches]
        future: Future = Future()
        if self.failures > 0:
            self.failures -= 1
            future.set_exception(TimeoutError("the face service did not answer (injected)"))
        elif self.hold:
            self.held.append(future)
            return future
        else:
            self.answer(future, len(tracklets))
        return future

    def answer(self, future: Future, count: int) -> None:
        vectors = [None if self.unusable else unit(np.arange(1.0, 9.0) + i) for i in range(count)]
        self.refs += [weakref.ref(v) for v in vectors if v is not None]
        future.set_result(vectors)


class TwoModelWatchlist:
    """A watchlist search that, like the gallery's, needs every model's embedding; records what it was given."""

    def __init__(self, person: str, primary: np.ndarray) -> None:
        self.person = person
        self.primary = primary
        self.searches: list[dict[str, tuple[int, ...]]] = []

    def match(self, embeddings: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> list[list[Candidate]]:
        if not extra or MODEL not in extra:
            raise ValueError(f"no cosines for {MODEL}: the fused score needs it")
        self.searches.append({"primary": embeddings.shape, **{m: v.shape for m, v in extra.items()}})
        cosines = embeddings @ self.primary
        return [[Candidate(self.person, "wl_test", float(c), {"primary": float(c), MODEL: 0.5})] for c in cosines]


def sink_with(photos, client: FakeSecondStage, clock: SetClock | None = None, **tracking) -> tuple:
    watchlist = TwoModelWatchlist("p_powell", photos["Colin_Powell"][0].face.embedding)
    outlet = CollectingOutlet()
    sink = MatchingSink(
        CAMERA, watchlist, 0.92, outlet, TrackingConfig(**tracking), second_stage=client, clock=clock or SetClock()
    )
    return sink, watchlist, outlet


def powell_and_blair_walk(photos, sink: MatchingSink, seqs: range, clock: SetClock, refs: list | None = None) -> None:
    """Powell and Blair walk past the camera, a frame a second (as tests/test_tracking.py's powell_and_blair)."""
    powell, blair = photos["Colin_Powell"], photos["Tony_Blair"]
    for seq in seqs:
        placements = [(powell[1 + seq], 0.8, (30.0 + 20 * seq, 20.0)), (blair[1 + seq], 0.8, (420.0 - 20 * seq, 230.0))]
        faces = [placed(photo.face, scale, offset) for photo, scale, offset in placements]
        pixels = scene(placements)
        if refs is not None:
            refs += [weakref.ref(pixels)] + [weakref.ref(f.embedding) for f in faces]
        clock.now = float(seq)
        sink.accept(frame_result(seq, faces), pixels)


def test_the_sink_searches_each_tracklet_with_the_second_models_embedding(photos):
    client, clock = FakeSecondStage(), SetClock()
    sink, watchlist, outlet = sink_with(photos, client, clock)
    powell_and_blair_walk(photos, sink, range(5), clock)
    sink.close()
    assert client.calls == [[FACES_PER_TRACKLET, FACES_PER_TRACKLET]], "both tracklets' three best patches, once"
    assert watchlist.searches == [{"primary": (2, 128), MODEL: (2, 8)}]
    assert [s.person_id for s in outlet.sent] == ["p_powell"]
    summary = sink.summary()
    assert summary.tracker.tracklets_deleted_no_match == 1 and summary.second_stage_failures == 0
    assert (summary.holdings.patches, summary.holdings.crops, summary.awaiting_search) == (0, 0, 0)


def test_the_sink_retries_a_failed_second_model_and_never_decides_without_it(photos):
    """The first call fails: nothing is searched, the tracklets wait, and the call is made again a second later."""
    client, clock = FakeSecondStage(failures=1), SetClock()
    sink, watchlist, outlet = sink_with(photos, client, clock)
    powell_and_blair_walk(photos, sink, range(3), clock)
    failed = sink.summary()
    assert failed.second_stage_failures == 1 and failed.awaiting_search == 2
    assert watchlist.searches == [] and outlet.sent == [] and failed.holdings.patches == 2 * FACES_PER_TRACKLET
    clock.now = 2.0 + SEARCH_RETRY_S / 2
    sink.accept(frame_result(3, []), scene([]))
    assert len(client.calls) == 1, "retried before SEARCH_RETRY_S"
    powell_and_blair_walk(photos, sink, range(4, 5), clock)
    recovered = sink.summary()
    assert (
        len(client.calls) == 2 and len(watchlist.searches) == 1 and [s.person_id for s in outlet.sent] == ["p_powell"]
    )
    assert (recovered.awaiting_search, recovered.holdings.patches) == (0, 0)


def test_the_sink_goes_on_tracking_while_the_second_model_works(photos):
    """The call is asynchronous: frames keep being tracked, and the answer is picked up with a later frame."""
    client, clock = FakeSecondStage(hold=True), SetClock()
    sink, watchlist, outlet = sink_with(photos, client, clock)
    powell_and_blair_walk(photos, sink, range(4), clock)
    assert len(client.calls) == 1 and watchlist.searches == [] and sink.summary().tracker.frames == 4
    client.answer(client.held.pop(), 2)
    powell_and_blair_walk(photos, sink, range(4, 5), clock)
    assert len(watchlist.searches) == 1 and [s.person_id for s in outlet.sent] == ["p_powell"]


def test_an_unanswered_tracklet_is_deleted_at_the_decision_timeout(photos):
    """The tracker deletes what waited too long; the call in flight holds its patches only until it returns."""
    client, clock = FakeSecondStage(hold=True), SetClock()
    sink, watchlist, _ = sink_with(photos, client, clock, decision_timeout_s=0.5)
    powell_and_blair_walk(photos, sink, range(6), clock)
    summary = sink.summary()
    assert summary.tracker.decisions_expired == 2 and summary.holdings.patches == 0
    client.answer(client.held.pop(), 2)
    powell_and_blair_walk(photos, sink, range(6, 7), clock)
    assert watchlist.searches == [], "an answer that came after the tracker deleted the tracklets decides nothing"
    gc.collect()
    assert all(ref() is None for ref in client.refs), "the late call's patches and vectors outlived it"


def test_tracklets_the_second_model_cannot_embed_are_deleted_undecided(photos):
    client, clock = FakeSecondStage(unusable=True), SetClock()
    sink, watchlist, outlet = sink_with(photos, client, clock)
    powell_and_blair_walk(photos, sink, range(3), clock)
    summary = sink.summary()
    assert summary.tracker.tracklets_unscored == 2 and summary.tracker.tracklets_deleted_no_match == 0
    assert watchlist.searches == [] and outlet.sent == [] and summary.holdings.patches == 0


def test_nothing_of_a_non_match_is_held_after_its_decision(photos):
    """Privacy: once Blair is decided a non-match, no frame, face, embedding, patch or second-model vector remains."""
    client, clock = FakeSecondStage(), SetClock()
    sink, _, outlet = sink_with(photos, client, clock)
    refs: list[weakref.ref] = []
    powell_and_blair_walk(photos, sink, range(3), clock, refs)
    summary = sink.summary()
    assert summary.tracker.tracklets_deleted_no_match == 1 and len(outlet.sent) == 1
    held = summary.holdings
    assert (held.patches, held.crops, held.faces) == (0, 0, 0), held
    assert held.embeddings == 1, "only Powell's matched pooled embedding, to follow him"
    outlet.sent.clear()
    gc.collect()
    alive = [ref for ref in refs + client.refs if ref() is not None]
    assert len(refs) > 0 and len(client.refs) == 2 * FACES_PER_TRACKLET + 2
    assert not alive, f"{len(alive)} frames, embeddings, patches or vectors of the walk are still referenced"


class LocalSecondStage:
    """The `SecondStageClient` protocol over the real `PatchProcessor`, in process (answers at once)."""

    model = MODEL
    faces_per_tracklet = FACES_PER_TRACKLET

    def __init__(self, processor: PatchProcessor) -> None:
        self.processor = processor

    def submit(self, tracklets: Sequence[Sequence[FacePatch]]) -> Future:
        future: Future = Future()
        future.set_result(list(self.processor.process(PatchRequest(CAMERA, tuple(map(tuple, tracklets)))).embeddings))
        return future


class FaceresWatchlist:
    """One enrolled person, scored by the second model's cosine alone: what the sink hands the search."""

    def __init__(self, enrolled: np.ndarray) -> None:
        self.enrolled = enrolled
        self.cosines: list[float] = []

    def match(self, embeddings: np.ndarray, extra: Mapping[str, np.ndarray] | None = None) -> list[list[Candidate]]:
        cosines = extra[MODEL] @ self.enrolled
        self.cosines += [float(c) for c in cosines]
        return [[Candidate("p_powell", "wl_test", float(c), {MODEL: float(c)})] for c in cosines]


@pytest.mark.slow
def test_the_real_second_model_tells_a_tracklets_person_from_its_patches(photos, face_pipeline):
    """Powell's and Blair's tracklets, embedded by faceres from their kept patches, against Powell's enrolment."""
    powell = photos["Colin_Powell"][0]
    [[enrolled]] = face_pipeline.with_second_stage([powell.pixels], [[powell.face]])
    watchlist = FaceresWatchlist(enrolled.extra_embeddings[MODEL])
    clock = SetClock()
    sink = MatchingSink(
        CAMERA,
        watchlist,
        0.5,
        CollectingOutlet(),
        second_stage=LocalSecondStage(PatchProcessor(face_pipeline.second_stage)),
        clock=clock,
    )
    powell_and_blair_walk(photos, sink, range(3), clock)
    powell_cosine, blair_cosine = watchlist.cosines
    assert powell_cosine > blair_cosine + 0.15, (powell_cosine, blair_cosine)
    assert sink.summary().holdings.patches == 0


@pytest.mark.slow
def test_the_match_stage_imports_no_model_code():
    """Forwarders run the match stage and must stay free of torch (about 0.9 GiB each)."""
    modules = "cluster.live.matching, actors.matching_sinks, actors.stream_forwarder, loadtest.passerby_sinks"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"the match stage imported torch: {out}"
