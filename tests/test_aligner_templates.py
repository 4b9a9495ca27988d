"""Named aligner templates: the ArcFace layout for faceres, next to the dlib default."""

import numpy as np
import pytest

from cluster.vision.aligner import (
    ARCFACE_CHIP_SIZE,
    ARCFACE_TEMPLATE_112,
    CHIP_SIZE,
    FaceAligner,
    arcface_template,
    chip_template,
)
from tests.test_aligner import _blob_centres, _frame_with_blobs, _random_similarity


def test_arcface_template_is_the_112_template_doubled() -> None:
    np.testing.assert_array_equal(arcface_template(), ARCFACE_TEMPLATE_112 * 2)
    np.testing.assert_allclose(arcface_template(112), ARCFACE_TEMPLATE_112)
    assert ARCFACE_CHIP_SIZE == 224


def test_dlib_stays_the_default() -> None:
    aligner = FaceAligner()
    assert aligner.template_name == "dlib" and aligner.chip_size == CHIP_SIZE
    np.testing.assert_array_equal(aligner.template, chip_template())


@pytest.mark.parametrize("scale", [0.8, 1.0, 3.0])
def test_landmarks_land_on_the_arcface_template(scale: float) -> None:
    """Blobs drawn at the landmarks appear at the ArcFace points of a 224x224 chip."""
    template = arcface_template()
    to_frame = _random_similarity(np.random.default_rng(int(scale * 10)), scale)
    landmarks = template @ to_frame[:, :2].T + to_frame[:, 2]
    frame = _frame_with_blobs(landmarks, sigma=1.5 * scale)
    chips = FaceAligner(template="arcface").align(frame, landmarks[None])
    assert chips.shape == (1, ARCFACE_CHIP_SIZE, ARCFACE_CHIP_SIZE, 3) and chips.dtype == np.uint8
    error = np.abs(_blob_centres(chips[0], template) - template).max()
    assert error < 0.5, f"blob centres off their template points by {error:.2f} px"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template": "insightface"}, "unknown aligner template 'insightface'; expecting one of dlib, arcface"),
        ({"template": "arcface", "padding": 0.25}, "padding applies to the dlib template only"),
        ({"template": "arcface", "chip_size": 8}, "chip_size must be at least 16"),
        ({"padding": 1.5}, "padding must be within 0..1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaceAligner(**kwargs)
