"""Our batched MTCNN detector against facenet-pytorch's MTCNN (the reference) on real photos.

Agreement means: every face either side scores >= 0.9 has a counterpart with IoU >= 0.9 and all
five landmarks within 2 px. Also covered: mixed-size batches equal frame-by-frame detection,
faceless frames, bad frames, bad parameters and missing weights.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cluster.vision import detector as detector_module
from cluster.vision import mtcnn_nets
from cluster.vision.detections import Detections
from cluster.vision.detector import MTCNNDetector
from cluster.vision.errors import InvalidImageError, ModelWeightsError
from loadtest.detector_agreement import Agreement, compare, reference_detections
from tests.paths import FACE_RECOGNITION, LFW10

REFERENCE_IMAGES = sorted(FACE_RECOGNITION.glob("obama*.jpg")) + [FACE_RECOGNITION / "biden.jpg"]
PEOPLE = sorted(p.name for p in LFW10.iterdir() if p.is_dir())


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    return MTCNNDetector()


@pytest.fixture(scope="module")
def reference():
    facenet = pytest.importorskip("facenet_pytorch")
    return facenet.MTCNN(keep_all=True, device=torch.device("cpu"))


def reference_faces(reference, image: np.ndarray) -> Detections:
    return reference_detections(*reference.detect(image, landmarks=True))


def describe(agreement: Agreement, faces: int) -> str:
    return (
        f"{faces} reference faces; worst IoU {agreement.worst_iou:.4f}, worst landmark error "
        f"{agreement.worst_landmark_px:.3f} px, {agreement.unmatched_reference} reference faces "
        f"unmatched, {agreement.unmatched_ours} extra faces of ours"
    )


def agreement_over(detector: MTCNNDetector, reference, images: list[np.ndarray]) -> tuple[Agreement, int]:
    """Compare frame by frame; our detector gets all images as one batch."""
    total = Agreement(worst_iou=1.0, worst_landmark_px=0.0, unmatched_reference=0, unmatched_ours=0)
    faces = 0
    for image, ours in zip(images, detector.detect(images), strict=True):
        theirs = reference_faces(reference, image)
        faces += len(theirs)
        total = total.merge(compare(ours, theirs))
    return total, faces


@pytest.mark.slow
@pytest.mark.parametrize("person", PEOPLE)
def test_agrees_with_reference_on_lfw(detector: MTCNNDetector, reference, person: str) -> None:
    images = [load_rgb(path) for path in sorted((LFW10 / person).glob("*.jpg"))]
    agreement, faces = agreement_over(detector, reference, images)
    assert faces >= len(images), f"the reference found only {faces} faces in {len(images)} photos"
    assert agreement.ok, describe(agreement, faces)


@pytest.mark.slow
@pytest.mark.parametrize("path", REFERENCE_IMAGES, ids=lambda p: p.name)
def test_agrees_with_reference_on_large_photos(detector: MTCNNDetector, reference, path: Path) -> None:
    agreement, faces = agreement_over(detector, reference, [load_rgb(path)])
    assert faces >= 1
    assert agreement.ok, describe(agreement, faces)


def mixed_batch() -> list[np.ndarray]:
    lfw = sorted(LFW10.glob("*/*.jpg"))
    return [
        load_rgb(lfw[0]),
        load_rgb(FACE_RECOGNITION / "obama.jpg"),
        load_rgb(lfw[11]),
        load_rgb(FACE_RECOGNITION / "biden.jpg"),
        load_rgb(lfw[22]),
        np.full((480, 640, 3), 128, np.uint8),
    ]


@pytest.mark.slow
def test_mixed_size_batch_agrees_with_reference(detector: MTCNNDetector, reference) -> None:
    agreement, faces = agreement_over(detector, reference, mixed_batch())
    assert agreement.ok, describe(agreement, faces)


@pytest.mark.slow
def test_mixed_size_batch_equals_one_frame_at_a_time(detector: MTCNNDetector) -> None:
    frames = mixed_batch()
    batched = detector.detect(frames)
    assert len(batched) == len(frames)
    for index, (frame, together) in enumerate(zip(frames, batched, strict=True)):
        (alone,) = detector.detect([frame])
        assert len(together) == len(alone), f"frame {index}: {len(together)} faces in a batch, {len(alone)} alone"
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=1e-3, err_msg=f"frame {index}")
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5, err_msg=f"frame {index}")
        np.testing.assert_allclose(together.landmarks, alone.landmarks, atol=1e-3, err_msg=f"frame {index}")


def test_output_types_and_order(detector: MTCNNDetector) -> None:
    (found,) = detector.detect([load_rgb(FACE_RECOGNITION / "obama.jpg")])
    assert len(found) >= 1
    assert found.boxes.dtype == found.scores.dtype == found.landmarks.dtype == np.float32
    assert np.all(np.diff(found.scores) <= 0), "faces should come highest score first"
    box = found.boxes[0]
    inside = (found.landmarks[0] >= box[:2]) & (found.landmarks[0] <= box[2:])
    assert inside.all(), "landmarks of the best face should lie inside its box"


@pytest.mark.parametrize(
    "frame",
    [
        np.full((480, 640, 3), 128, np.uint8),
        np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.full((12, 12, 3), 200, np.uint8),
    ],
    ids=["flat-grey", "noise", "smallest-frame"],
)
def test_frame_without_faces_gives_empty_detections(detector: MTCNNDetector, frame: np.ndarray) -> None:
    (found,) = detector.detect([frame])
    assert len(found) == 0
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.landmarks.shape == (0, 5, 2)


def test_empty_batch(detector: MTCNNDetector) -> None:
    assert detector.detect([]) == []


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((480, 640), np.uint8),
        np.zeros((480, 640, 4), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((480, 640, 3), np.float32),
        [[0, 0, 0]],
    ],
    ids=["empty", "grayscale", "rgba", "1x1", "float", "list"],
)
def test_bad_frame_is_refused_with_its_index(
    detector: MTCNNDetector, bad: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object) -> None:
        raise AssertionError("detection started before every frame was validated")

    monkeypatch.setattr(detector_module, "_summed_area_tables", must_not_run)
    good = np.full((480, 640, 3), 128, np.uint8)
    with pytest.raises(InvalidImageError, match=r"^frame 1: "):
        detector.detect([good, bad, good])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_size": 11},
        {"min_face_size": 20.5},
        {"min_face_size": True},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.0, 0.7, 0.7)},
        {"thresholds": (0.6, 1.0, 0.7)},
        {"thresholds": (0.6, 0.7, 1.5)},
        {"pyramid_factor": 0.0},
        {"pyramid_factor": 1.0},
        {"pyramid_factor": 1.2},
        {"nms_thresholds": (0.5, 0.7, 0.7)},
        {"nms_thresholds": (0.5, 0.7, 0.7, 1.2)},
        {"half": True, "device": "cpu"},
        {"device": "not-a-device"},
    ],
    ids=lambda kwargs: ",".join(f"{k}={v}" for k, v in kwargs.items()),
)
def test_invalid_parameters_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MTCNNDetector(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where CUDA is absent")
def test_cuda_without_gpu_raises_value_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        MTCNNDetector(device="cuda")


def test_nets_match_facenet_pytorch_modules() -> None:
    """Our module names and layer order load facenet-pytorch's weights to the same function."""
    facenet_mtcnn = pytest.importorskip("facenet_pytorch.models.mtcnn")
    ours = mtcnn_nets.load_nets(torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    cases = [
        (ours.pnet, facenet_mtcnn.PNet(), (2, 3, 37, 53)),
        (ours.rnet, facenet_mtcnn.RNet(), (5, 3, 24, 24)),
        (ours.onet, facenet_mtcnn.ONet(), (5, 3, 48, 48)),
    ]
    with torch.inference_mode():
        for net, theirs, shape in cases:
            x = torch.rand(shape, generator=generator) * 2 - 1
            mine = net(x.contiguous(memory_format=torch.channels_last))
            expected = theirs.eval()(x)
            # facenet-pytorch returns the full softmax; we return the face probability.
            expected = (*expected[:-1], expected[-1][:, 1])
            for got, want in zip(mine, expected, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_missing_package_raises_model_weights_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mtcnn_nets.importlib.util, "find_spec", lambda name: None)
    mtcnn_nets.read_weights.cache_clear()
    try:
        with pytest.raises(ModelWeightsError, match=r"pip install --no-deps facenet-pytorch==2\.6\.0"):
            mtcnn_nets.read_weights(mtcnn_nets.PNET_WEIGHTS)
    finally:
        mtcnn_nets.read_weights.cache_clear()


def test_missing_weight_file_raises_model_weights_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mtcnn_nets, "weights_dir", lambda: tmp_path)
    mtcnn_nets.read_weights.cache_clear()
    try:
        with pytest.raises(ModelWeightsError, match=r"onet\.pt.*pip install --no-deps"):
            mtcnn_nets.read_weights(mtcnn_nets.ONET_WEIGHTS)
    finally:
        mtcnn_nets.read_weights.cache_clear()


def test_corrupt_weight_file_raises_model_weights_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / mtcnn_nets.RNET_WEIGHTS).write_bytes(b"not a state dict")
    monkeypatch.setattr(mtcnn_nets, "weights_dir", lambda: tmp_path)
    mtcnn_nets.read_weights.cache_clear()
    try:
        with pytest.raises(ModelWeightsError, match=r"rnet\.pt could not be read"):
            mtcnn_nets.read_weights(mtcnn_nets.RNET_WEIGHTS)
    finally:
        mtcnn_nets.read_weights.cache_clear()
