"""The aligner puts each landmark on its template point, at any scale and rotation."""

import numpy as np
import pytest

from cluster.vision.aligner import CHIP_SIZE, FaceAligner, chip_template, similarity_transforms


def _random_similarity(rng: np.random.Generator, scale: float) -> np.ndarray:
    angle = rng.uniform(-0.6, 0.6)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.concatenate([scale * rotation, rng.uniform(200, 400, size=(2, 1))], axis=1)


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    template = chip_template()
    truths = np.stack([_random_similarity(rng, s) for s in (0.5, 1.0, 3.0, 7.5)])
    to_frame = truths
    frame_points = np.einsum("nij,kj->nki", to_frame[:, :, :2], template) + to_frame[:, None, :, 2]
    fitted = similarity_transforms(frame_points, template)
    mapped = np.einsum("nij,nkj->nki", fitted[:, :, :2], frame_points) + fitted[:, None, :, 2]
    assert np.abs(mapped - template).max() < 1e-9


def test_similarity_transform_never_reflects():
    template = chip_template()
    mirrored = template.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    fitted = similarity_transforms(mirrored[None], template)
    assert np.linalg.det(fitted[0, :, :2]) > 0


def _frame_with_blobs(points: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """A black square frame, with room around the points, and a bright Gaussian blob at each."""
    size = int(points.max() + 100)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.zeros((size, size), np.float64)
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat((255 * np.clip(image, 0, 1)).astype(np.uint8)[:, :, None], 3, axis=2)


def _blob_centres(chip: np.ndarray, template: np.ndarray, radius: int = 8) -> np.ndarray:
    grey = chip[:, :, 0].astype(np.float64)
    centres = []
    for tx, ty in template:
        x0, y0 = int(tx) - radius, int(ty) - radius
        window = grey[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
        ys, xs = np.mgrid[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
        centres.append([(window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()])
    return np.array(centres)


@pytest.mark.parametrize("scale", [0.6, 1.0, 2.5, 4.0])
def test_landmarks_land_on_the_template(scale):
    """Blobs drawn at the landmarks appear at the template points in the chip."""
    rng = np.random.default_rng(int(scale * 10))
    template = chip_template()
    to_frame = _random_similarity(rng, scale)
    landmarks = template @ to_frame[:, :2].T + to_frame[:, 2]
    frame = _frame_with_blobs(landmarks, sigma=1.5 * scale)
    chips = FaceAligner().align(frame, landmarks[None])
    assert chips.shape == (1, CHIP_SIZE, CHIP_SIZE, 3) and chips.dtype == np.uint8
    error = np.abs(_blob_centres(chips[0], template) - template).max()
    assert error < 0.5, f"blob centres off their template points by {error:.2f} px"


def test_shrinking_is_antialiased():
    """Fine stripes shrunk 6x must average to grey, not alias into coarse bands."""
    size = 1200
    stripes = ((np.arange(size) // 2) % 2 * 255).astype(np.uint8)
    frame = np.repeat(np.repeat(stripes[None, :, None], size, axis=0), 3, axis=2)
    template = chip_template()
    landmarks = template * 6.0 + 100.0
    chip = FaceAligner().align(frame, landmarks[None])[0].astype(np.float64)
    assert abs(chip.mean() - 127.5) < 10
    assert chip[10:-10, 10:-10].std() < 12, "aliasing: the stripes survived the shrink"


def test_several_faces_of_different_sizes_in_one_call():
    template = chip_template()
    small = template * 0.5 + 20
    large = template * 3 + 300
    frame = _frame_with_blobs(np.concatenate([small, large]), sigma=2.0)
    chips = FaceAligner().align(frame, np.stack([small, large]))
    assert chips.shape == (2, CHIP_SIZE, CHIP_SIZE, 3)
    for chip in chips:
        assert np.abs(_blob_centres(chip, template) - template).max() < 1.0


def test_no_faces_gives_an_empty_batch():
    frame = np.zeros((100, 100, 3), np.uint8)
    assert FaceAligner().align(frame, np.zeros((0, 5, 2))).shape == (0, CHIP_SIZE, CHIP_SIZE, 3)


def test_nan_landmarks_are_refused():
    frame = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="NaN"):
        FaceAligner().align(frame, np.full((1, 5, 2), np.nan))
