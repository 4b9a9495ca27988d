"""Quality ranks large, sharp, frontal, confident faces above small, blurred, turned ones."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from cluster.vision.aligner import chip_template
from cluster.vision.quality import face_quality
from tests.paths import LFW10


@pytest.fixture(scope="module")
def sharp_chip() -> np.ndarray:
    with Image.open(LFW10 / "Colin_Powell" / "Colin_Powell_0001.jpg") as image:
        return np.asarray(image.convert("RGB").crop((50, 50, 200, 200)))


def _frontal_landmarks(eye_distance: float) -> np.ndarray:
    template = chip_template()
    return template * eye_distance / (template[1, 0] - template[0, 0])


def test_frontal_sharp_large_confident_face_scores_high(sharp_chip):
    quality = face_quality(_frontal_landmarks(80), sharp_chip, 0.999)
    assert quality.pose > 0.9 and quality.size == 1.0 and quality.sharpness > 0.6
    assert quality.overall > 0.8


def test_blur_lowers_sharpness(sharp_chip):
    blurred = np.asarray(Image.fromarray(sharp_chip).filter(ImageFilter.GaussianBlur(3)))
    sharp = face_quality(_frontal_landmarks(80), sharp_chip, 0.99)
    soft = face_quality(_frontal_landmarks(80), blurred, 0.99)
    assert soft.sharpness < sharp.sharpness / 2
    assert soft.overall < sharp.overall


def test_small_faces_score_lower(sharp_chip):
    sizes = [face_quality(_frontal_landmarks(d), sharp_chip, 0.99).size for d in (6, 20, 40, 90)]
    assert sizes[0] == 0.0 and sizes == sorted(sizes) and sizes[-1] == 1.0


@pytest.mark.parametrize(("nose_shift_x", "nose_shift_y"), [(0.3, 0.0), (0.0, 0.25), (0.5, 0.2)])
def test_turned_faces_score_lower_on_pose(sharp_chip, nose_shift_x, nose_shift_y):
    frontal = _frontal_landmarks(60)
    turned = frontal.copy()
    eye_distance = frontal[1, 0] - frontal[0, 0]
    turned[2] += (nose_shift_x * eye_distance, nose_shift_y * eye_distance)
    assert face_quality(turned, sharp_chip, 0.99).pose < face_quality(frontal, sharp_chip, 0.99).pose - 0.2


def test_degenerate_landmarks_give_zero_pose(sharp_chip):
    assert face_quality(np.zeros((5, 2)), sharp_chip, 0.99).pose == 0.0
