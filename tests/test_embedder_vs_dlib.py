"""FaceEmbedder against dlib itself: same chips in, same 128-d descriptors out.

dlib detects, finds 5 landmarks and cuts the 150x150 chips, so the only thing compared is the
network: our torch port against dlib's `compute_face_descriptor` on the same pixels.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cluster.vision.embedder import CHIP_SIZE, FaceEmbedder
from cluster.vision.errors import InvalidImageError
from tests.paths import FACE_RECOGNITION, LFW10

MAX_ABS_DIFF = 1e-4


def _face_images() -> list[Path]:
    lfw = sorted(LFW10.glob("*/*.jpg"))
    per_person: dict[str, list[Path]] = {}
    for path in lfw:
        per_person.setdefault(path.parent.name, []).append(path)
    chosen = [path for paths in per_person.values() for path in paths[:3]]
    return chosen + sorted(FACE_RECOGNITION.glob("obama*.jpg")) + [FACE_RECOGNITION / "biden.jpg"]


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


class DlibReference:
    """dlib's own detector, 5-point landmarks, chip cutter and descriptor."""

    def __init__(self) -> None:
        self.dlib = pytest.importorskip("dlib")
        models = _models_dir()
        self.detector = self.dlib.get_frontal_face_detector()
        self.landmarks = self.dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.recogniser = self.dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def chips(self, image: np.ndarray) -> list[np.ndarray]:
        """150x150 chips of every face found, largest first."""
        boxes = sorted(self.detector(image, 1), key=lambda box: -box.area())
        return [
            self.dlib.get_face_chip(image, self.landmarks(image, box), size=CHIP_SIZE, padding=0.25) for box in boxes
        ]

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        return np.array([np.array(self.recogniser.compute_face_descriptor(chip)) for chip in chips], dtype=np.float32)


@pytest.fixture(scope="module")
def reference() -> DlibReference:
    return DlibReference()


@pytest.fixture(scope="module")
def dlib_faces(reference: DlibReference) -> tuple[np.ndarray, np.ndarray]:
    """Chips cut by dlib from real photos, and dlib's descriptors of them."""
    chips = np.stack([chip for path in _face_images() for chip in reference.chips(_rgb(path))])
    return chips, reference.descriptors(chips)


@pytest.fixture(scope="module")
def plain_chips() -> np.ndarray:
    """Real faces squeezed to 150x150 without dlib: enough for checks that do not compare with dlib."""
    paths = sorted(LFW10.glob("*/*_0001.jpg"))
    return np.stack([np.asarray(Image.fromarray(_rgb(p)).resize((CHIP_SIZE, CHIP_SIZE))) for p in paths])


@pytest.mark.slow
def test_matches_dlib(embedder: FaceEmbedder, dlib_faces: tuple[np.ndarray, np.ndarray]) -> None:
    chips, reference = dlib_faces
    assert len(chips) >= 20, f"dlib found only {len(chips)} faces in the test photos"
    ours = embedder.descriptors(chips)
    assert ours.shape == reference.shape == (len(chips), 128)
    assert ours.dtype == np.float32
    diff = float(np.abs(ours - reference).max())
    assert diff <= MAX_ABS_DIFF, f"max abs difference from dlib over {len(chips)} faces is {diff:.3g}"


@pytest.mark.slow
def test_matches_dlib_without_channels_last(dlib_faces: tuple[np.ndarray, np.ndarray]) -> None:
    chips, reference = dlib_faces
    diff = float(np.abs(FaceEmbedder(channels_last=False).descriptors(chips) - reference).max())
    assert diff <= MAX_ABS_DIFF, f"max abs difference from dlib (NCHW) is {diff:.3g}"


@pytest.mark.slow
def test_matches_dlib_batch_call(
    embedder: FaceEmbedder, reference: DlibReference, dlib_faces: tuple[np.ndarray, np.ndarray]
) -> None:
    """dlib's list-of-chips overload (its batched path) agrees too."""
    subset = dlib_faces[0][:8]
    batch = np.array([np.array(d) for d in reference.recogniser.compute_face_descriptor(list(subset))])
    diff = float(np.abs(embedder.descriptors(subset) - batch).max())
    assert diff <= MAX_ABS_DIFF, f"max abs difference from dlib's batch call is {diff:.3g}"


@pytest.mark.slow
def test_same_person_closer_than_different(embedder: FaceEmbedder, reference: DlibReference) -> None:
    """A check of meaning on top of the numeric one: dlib's 0.6 threshold separates these people."""
    paths = [LFW10 / "George_W_Bush/George_W_Bush_0001.jpg", LFW10 / "George_W_Bush/George_W_Bush_0002.jpg"]
    paths.append(LFW10 / "Tony_Blair/Tony_Blair_0001.jpg")
    bush_a, bush_b, blair = embedder.descriptors(np.stack([reference.chips(_rgb(path))[0] for path in paths]))
    assert np.linalg.norm(bush_a - bush_b) < 0.6 < np.linalg.norm(bush_a - blair)


def test_batched_equals_one_at_a_time(embedder: FaceEmbedder, plain_chips: np.ndarray) -> None:
    batched = embedder.descriptors(plain_chips)
    single = np.concatenate([embedder.descriptors(chip[None]) for chip in plain_chips])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)


def test_chunked_batches_equal_one_batch(embedder: FaceEmbedder, plain_chips: np.ndarray) -> None:
    chunked = FaceEmbedder(max_batch=3).descriptors(plain_chips)
    np.testing.assert_allclose(chunked, embedder.descriptors(plain_chips), rtol=0, atol=1e-5)


def test_embed_is_unit_length(embedder: FaceEmbedder, plain_chips: np.ndarray) -> None:
    embeddings = embedder.embed(plain_chips)
    assert embeddings.shape == (len(plain_chips), 128)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    raw = embedder.descriptors(plain_chips)
    np.testing.assert_allclose(embeddings * np.linalg.norm(raw, axis=1, keepdims=True), raw, atol=1e-6)


def test_read_only_and_strided_input(embedder: FaceEmbedder, plain_chips: np.ndarray) -> None:
    expected = embedder.descriptors(plain_chips[::2])
    frozen = plain_chips.copy()
    frozen.setflags(write=False)
    np.testing.assert_array_equal(embedder.descriptors(frozen[::2]), expected)


def test_empty_batch(embedder: FaceEmbedder) -> None:
    none = np.zeros((0, 150, 150, 3), np.uint8)
    for result in (embedder.descriptors(none), embedder.embed(none)):
        assert result.shape == (0, 128)
        assert result.dtype == np.float32


@pytest.mark.parametrize(
    ("chips", "mentions"),
    [
        (np.zeros((2, 160, 160, 3), np.uint8), "got shape (2, 160, 160, 3)"),
        (np.zeros((2, 150, 150), np.uint8), "got shape (2, 150, 150)"),
        (np.zeros((2, 150, 150, 4), np.uint8), "got shape (2, 150, 150, 4)"),
        (np.zeros((2, 150, 150, 3), np.float32), "got dtype float32"),
        (np.zeros((150, 150, 3), np.uint8), "chip[None]"),
        ([np.zeros((150, 150, 3), np.uint8)], "got list"),
    ],
)
def test_bad_input(embedder: FaceEmbedder, chips: object, mentions: str) -> None:
    with pytest.raises(InvalidImageError) as info:
        embedder.embed(chips)  # type: ignore[arg-type]
    message = str(info.value)
    assert mentions in message
    assert "(n, 150, 150, 3), dtype uint8" in message
    if "chip[None]" not in mentions:
        assert "aligner" in message


def test_half_on_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match="only supported on cuda"):
        FaceEmbedder(device="cpu", half=True)


def test_bad_max_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        FaceEmbedder(max_batch=0)
