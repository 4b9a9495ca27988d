"""Synthetic crowds: the ground truth matches the decoded pixels, people keep to the street's
walking times, the watchlist's enrolment photos stay out of the videos, and a seed fixes the crowd."""

import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from cluster.cli import crowd_commands
from cluster.config import LfrConfig
from cluster.crowd import background as crowd_background
from cluster.crowd.background import STREET, open_background
from cluster.crowd.photos import detect_faces, find_people, stored_boxes
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import TRUTH_FILE, make_crowd
from cluster.crowd.truth import GENERATED_BACKGROUND, CrowdTruth, resolve_asset
from cluster.vision.detector import MTCNNDetector

SMALL = CrowdSpec(cameras=2, seconds=5, width=640, height=360, people=4, seed=7, walking_seconds=(1.0, 2.0))
TINY = CrowdSpec(cameras=2, seconds=2, width=320, height=240, people=3, seed=5, walking_seconds=(0.5, 1.0))
SAMPLE_EVERY = 4
"""Frames apart of the frames checked against the detector (every frame would take minutes)."""
CHECKED_FACE_HEIGHT = 40
CHECKED_VISIBLE = 0.9
DETECTOR_MIN_FACE = 32
"""Only faces of 40 px and up are checked, so the detector need not look for smaller ones (faster)."""
SAME_VIDEO_TOLERANCE = 0.1
"""Regression: one CI run decoded a same-seed video that was not bit-identical to its twin
(encoder scheduling under load is the suspect; truth files stayed byte-identical), and a later
full run on a shared machine measured 0.0504 against the first bound of 0.05. The pictures must
still be the same to well under a grey level; another seed differs by far more than 10x this."""


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> tuple[Path, CrowdTruth]:
    out = tmp_path_factory.mktemp("crowd")
    return out, make_crowd(SMALL, out, background=STREET)


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _largest_frame_difference(a: Path, b: Path) -> float:
    """The largest per-frame mean absolute pixel difference between two videos of one length."""
    frames_a, frames_b = _decode(a), _decode(b)
    assert len(frames_a) == len(frames_b)
    return max(float(np.abs(x.astype(np.int16) - y).mean()) for x, y in zip(frames_a, frames_b))


def test_videos_are_h264_with_a_keyframe_every_second_and_truth_round_trips(crowd):
    out, truth = crowd
    assert CrowdTruth.load(out / TRUTH_FILE) == truth
    assert [camera.file for camera in truth.cameras] == ["cam0.mp4", "cam1.mp4"]
    for camera in truth.cameras:
        with av.open(str(out / camera.file)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.width, stream.height) == (SMALL.width, SMALL.height)
            keyframes = [
                i for i, packet in enumerate(p for p in container.demux(stream) if p.size) if packet.is_keyframe
            ]
        assert len(_decode(out / camera.file)) == camera.frames == SMALL.frames
        assert set(range(0, camera.frames, SMALL.fps)) <= set(keyframes)


@pytest.mark.slow
def test_truth_boxes_are_where_the_detector_finds_faces(crowd):
    """Each checked truth box has a detected face with IoU >= 0.5, and no face is found elsewhere
    unless the background alone shows it too."""
    out, truth = crowd
    detector = MTCNNDetector(min_face_size=DETECTOR_MIN_FACE)
    checked = matched = sampled = 0
    unexplained: list[tuple[str, int, np.ndarray]] = []
    for camera in truth.cameras:
        placed = truth.faces_by_frame(camera.id)
        decoded = _decode(out / camera.file)
        indices = [k for k in range(0, camera.frames, SAMPLE_EVERY) if placed[k]]
        sampled += len(indices)
        backgrounds = list(
            open_background(truth.background, camera.width, camera.height, camera.fps, SMALL.seed).frames(
                camera.background_offset, camera.frames
            )
        )
        for k, found in zip(indices, detector.detect([decoded[k] for k in indices]), strict=True):
            truth_boxes = torch.tensor([face.box for _, face in placed[k]], dtype=torch.float32)
            iou = box_iou(truth_boxes, torch.from_numpy(found.boxes))
            for row, (_, face) in enumerate(placed[k]):
                if face.height >= CHECKED_FACE_HEIGHT and face.visible >= CHECKED_VISIBLE:
                    checked += 1
                    matched += bool(len(found)) and bool(iou[row].max() >= 0.5)
            strays = [found.boxes[i] for i in range(len(found)) if not iou[:, i].max() >= 0.2]
            if strays:
                on_background = detector.detect([np.ascontiguousarray(backgrounds[k])])[0].boxes
                for box in strays:
                    overlap = box_iou(torch.from_numpy(box[None]), torch.from_numpy(on_background))
                    if not len(on_background) or overlap.max() < 0.3:
                        unexplained.append((camera.id, k, box))
    assert checked >= 30, f"too few faces checked ({checked}); the crowd is too sparse to test"
    assert matched / checked >= 0.9, f"only {matched} of {checked} truth boxes have a detected face"
    assert len(unexplained) <= max(1, sampled // 20), f"faces detected where none was pasted: {unexplained}"


def test_people_reach_the_neighbouring_camera_within_the_walking_time(crowd):
    _, truth = crowd
    low, high = SMALL.walking_seconds
    index = {camera.id: i for i, camera in enumerate(truth.cameras)}
    for camera in truth.cameras:
        assert all(low <= n.walking_seconds <= high for n in camera.neighbours)
    trips, by_person = defaultdict(list), defaultdict(list)
    for appearance in truth.appearances:
        trips[appearance.person, appearance.trip].append(appearance)
        by_person[appearance.person].append(appearance)
    transitions = 0
    for walks in trips.values():
        walks.sort(key=lambda a: a.first_frame)
        for before, after in zip(walks, walks[1:], strict=False):
            assert abs(index[after.camera] - index[before.camera]) == 1, "a trip skipped a camera"
            delay = (after.first_frame - before.last_frame) / SMALL.fps
            route = f"{before.person}: {delay} s from {before.camera} to {after.camera}"
            assert low - 1e-9 <= delay <= high + 1e-9, route
            transitions += 1
    assert transitions >= 1, "nobody walked from one camera to the next"
    for walks in by_person.values():
        walks.sort(key=lambda a: a.first_frame)
        assert all(b.first_frame > a.last_frame for a, b in zip(walks, walks[1:], strict=False)), (
            "a person was in two places"
        )


def test_watchlist_photos_for_enrolment_never_appear_in_the_videos(crowd):
    _, truth = crowd
    assert len(truth.people) == SMALL.people
    assert len(truth.watchlist) == SMALL.watchlist_size >= 1
    shown = {photo for appearance in truth.appearances for photo in appearance.photos}
    for person in truth.people:
        assert bool(person.enrolment_photos) == person.on_watchlist
        assert not set(person.enrolment_photos) & shown
        for photo in person.enrolment_photos + person.appearance_photos:
            assert resolve_asset(photo).is_file() and Path(photo).parent.name == person.id
    for appearance in truth.appearances:
        assert set(appearance.photos) <= set(truth.person(appearance.person).appearance_photos)


def test_same_seed_gives_the_same_crowd_and_another_seed_another(tmp_path, capsys):
    first = make_crowd(TINY, tmp_path / "a", background=STREET, progress=True)
    assert "frame" in capsys.readouterr().err, "progress=True shows a tqdm bar on stderr"
    second = make_crowd(TINY, tmp_path / "b", background=STREET)
    other = make_crowd(replace(TINY, seed=6), tmp_path / "c", background=STREET)
    assert (tmp_path / "a" / TRUTH_FILE).read_bytes() == (tmp_path / "b" / TRUTH_FILE).read_bytes()
    assert first == second and first.appearances != other.appearances
    for camera in first.cameras:
        same = _largest_frame_difference(tmp_path / "a" / camera.file, tmp_path / "b" / camera.file)
        assert same <= SAME_VIDEO_TOLERANCE, f"{camera.file}: frames differ by {same:.3f} grey levels on average"
    other_difference = _largest_frame_difference(tmp_path / "a" / "cam0.mp4", tmp_path / "c" / "cam0.mp4")
    assert other_difference > 10 * SAME_VIDEO_TOLERANCE


def test_draws_a_street_when_no_background_clip_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(crowd_background, "DEFAULT_BACKGROUNDS", (tmp_path / "missing.avi",))
    truth = make_crowd(replace(TINY, cameras=1), tmp_path)
    assert truth.background == GENERATED_BACKGROUND
    frames = _decode(tmp_path / "cam0.mp4")
    assert len(frames) == TINY.frames and frames[0].std() > 10
    assert not np.array_equal(frames[0], frames[-1]), "the drawn street pans"


def test_stored_photo_boxes_agree_with_the_detector():
    """Regression guard: photo_boxes.json must be rewritten when the photos or the detector change."""
    first_photos = [photos[0] for photos in find_people().values()]
    detected = detect_faces(first_photos)
    stored = stored_boxes()
    for name, box in detected.items():
        assert box is not None and stored[name] is not None
        overlap = box_iou(torch.tensor([box], dtype=torch.float32), torch.tensor([stored[name]], dtype=torch.float32))
        assert overlap.item() >= 0.9, f"{name}: stored {stored[name]}, detected {box}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cameras": 0}, "cameras must be between 1 and 64"),
        ({"cameras": True}, "cameras must be a whole number"),
        ({"seconds": 0}, "seconds must be above 0"),
        ({"seconds": 0.01}, "less than one frame"),
        ({"fps": 0}, "fps must be between 1 and 120"),
        ({"width": 641}, "must be even"),
        ({"height": 100}, "height must be between 120 and 2160"),
        ({"people": 11}, "people must be between 1 and 10"),
        ({"watchlist_fraction": 1.5}, "watchlist_fraction must be between 0 and 1"),
        ({"walking_seconds": (8.0, 4.0)}, "walking_seconds must satisfy 0 < shortest <= longest"),
        ({"walking_seconds": (0.0, 4.0)}, "walking_seconds must satisfy"),
        ({"walking_seconds": (4.0,)}, "walking_seconds must be a (shortest, longest) pair"),
        ({"seed": -1}, "seed must be between 0"),
    ],
)
def test_bad_specs_are_refused_with_the_field_named(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CrowdSpec(**{"cameras": 2, "seconds": 5.0, **changes})


def test_missing_background_and_foreign_truth_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_crowd(TINY, tmp_path, background=tmp_path / "nope.mp4")
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(ValueError, match="not a readable video"):
        make_crowd(TINY, tmp_path / "out", background=tmp_path / "notes.txt")
    assert not (tmp_path / "out").exists(), "nothing is written for a bad request"
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a crowd ground-truth file"):
        CrowdTruth.load(tmp_path / "other.json")


def _crowd_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lfr")
    crowd_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, LfrConfig())


def test_cli_writes_the_videos_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "crowd"
    size = ["--width", "320", "--height", "240", "--fps", "10"]
    argv = ["crowd", "make", str(out), "--cameras", "2", "--seconds", "1", "--people", "2", *size]
    assert _crowd_cli([*argv, "--seed", "3", "--background", str(STREET)]) == 0
    summary = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"cam0.mp4", "cam1.mp4", TRUTH_FILE}
    assert "cam1.mp4" in summary and "people: 2; on the watchlist: 1" in summary and "appearances:" in summary
    assert CrowdTruth.load(out / TRUTH_FILE).spec == CrowdSpec(
        cameras=2, seconds=1, seed=3, fps=10, width=320, height=240, people=2
    )
    assert _crowd_cli(["crowd", "make", str(tmp_path / "bad"), "--width", "321"]) == 2
    assert "even" in capsys.readouterr().err and not (tmp_path / "bad").exists()
