"""FacePipeline on real faces: one Face per person, consistent batches, clear errors."""

import numpy as np
import pytest

from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.image_io import load_image
from tests.paths import FACE_RECOGNITION, LFW10


def _box_contains(box: np.ndarray, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_one_face_per_portrait(face_pipeline):
    frames = [load_image(LFW10 / "Hugo_Chavez" / f"Hugo_Chavez_000{i}.jpg") for i in (1, 2, 3)]
    results = face_pipeline.process(frames)
    assert len(results) == 3
    for faces in results:
        central = [f for f in faces if _box_contains(f.box, 125, 125)]
        assert len(central) == 1
        face = central[0]
        assert isinstance(face, Face)
        assert face.embedding.dtype == np.float32
        assert abs(np.linalg.norm(face.embedding) - 1.0) < 1e-5
        assert 0.0 < face.quality.overall <= 1.0 and face.score > 0.9


@pytest.mark.slow
def test_mixed_sizes_in_one_batch_match_single_frames(face_pipeline):
    frames = [
        load_image(FACE_RECOGNITION / "obama.jpg"),
        load_image(LFW10 / "Tony_Blair" / "Tony_Blair_0002.jpg"),
        load_image(FACE_RECOGNITION / "biden.jpg"),
    ]
    batched = face_pipeline.process(frames)
    for frame, faces in zip(frames, batched):
        alone = face_pipeline.process([frame])[0]
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces):
            assert np.abs(a.box - b.box).max() < 0.5
            assert a.similarity(b) > 0.999


@pytest.mark.slow
def test_same_person_is_more_similar_than_different_people(face_pipeline):
    def best(path):
        return max(face_pipeline.process([load_image(path)])[0], key=lambda f: f.quality.overall)

    obama, obama2, biden = (best(FACE_RECOGNITION / n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    assert obama.similarity(obama2) > obama.similarity(biden) + 0.1


def test_image_with_no_face_gives_no_faces(face_pipeline):
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    grey = np.full((480, 640, 3), 128, np.uint8)
    assert face_pipeline.process([noise, grey]) == [[], []]


def test_empty_batch_gives_empty_result(face_pipeline):
    assert face_pipeline.process([]) == []


@pytest.mark.parametrize(
    ("bad_frame", "expected"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty image"),
        (np.zeros((100, 100), np.uint8), "convert grayscale or RGBA"),
        (np.zeros((100, 100, 4), np.uint8), "convert grayscale or RGBA"),
        (np.zeros((1, 1, 3), np.uint8), "too small to hold a face"),
        (np.zeros((100, 100, 3), np.float32), "expected dtype uint8"),
        ("not an array", "expected a numpy array"),
    ],
)
def test_bad_frame_names_its_index_and_fails_before_any_work(face_pipeline, bad_frame, expected):
    good = load_image(LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg")
    with pytest.raises(InvalidImageError, match=expected) as caught:
        face_pipeline.process([good, bad_frame])
    assert str(caught.value).startswith("frame 1:")


@pytest.mark.slow
def test_100_megapixel_frame_is_detected_on_a_downscaled_copy(face_pipeline):
    """A 10000x10000 frame: detection runs within the pixel budget, boxes come back in full-size pixels."""
    portrait = load_image(LFW10 / "Colin_Powell" / "Colin_Powell_0001.jpg")
    big = np.full((10_000, 10_000, 3), 90, np.uint8)
    top, left = 6000, 3000
    enlarged = np.repeat(np.repeat(portrait, 4, axis=0), 4, axis=1)
    big[top : top + 1000, left : left + 1000] = enlarged
    faces = face_pipeline.process([big])[0]
    assert len(faces) == 1
    centre_x, centre_y = left + 500, top + 500
    assert _box_contains(faces[0].box, centre_x, centre_y)
    small = face_pipeline.process([portrait])[0]
    reference = max(small, key=lambda f: f.quality.overall)
    assert faces[0].similarity(reference) > 0.9, "the full-resolution chip should match the original"
