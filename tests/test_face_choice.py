"""The one face-choosing policy (`cluster.enrolment.faces.choose_face`): which face of a photo is taken, or why none."""

import re
from pathlib import Path

import numpy as np
import pytest

from cluster.enrolment.faces import PORTRAIT, FaceChoiceError, choose_face, portrait_face
from cluster.vision.detections import nearest_centre
from cluster.vision.face import EMBEDDING_SIZE, Face
from cluster.vision.quality import FaceQuality

PHOTO = Path("photo.jpg")
SHAPE = (200, 300, 3)
"""A 300 pixel wide, 200 pixel high photo: its centre is (150, 100)."""


def face_at(x1: float, y1: float, x2: float, y2: float, quality: float = 0.5) -> Face:
    return Face(
        box=np.array([x1, y1, x2, y2], np.float32),
        landmarks=np.zeros((5, 2), np.float32),
        score=0.99,
        quality=FaceQuality(quality, quality, quality, quality, overall=quality),
        embedding=np.ones(EMBEDDING_SIZE, np.float32) / np.sqrt(EMBEDDING_SIZE),
    )


EDGE = face_at(0, 0, 60, 60, quality=0.9)
"""A sharp bystander at the corner: never the portrait's subject however good it looks."""
CENTRE = face_at(130, 80, 170, 120, quality=0.3)
LARGE = face_at(180, 20, 300, 180, quality=0.8)


@pytest.mark.parametrize(
    ("faces", "choice", "index", "error"),
    [
        ([CENTRE], None, 0, None),
        ([EDGE, CENTRE], None, None, "2 faces found (face 0 at (0, 0)-(60, 60), face 1 at (130, 80)-(170, 120))"),
        ([EDGE, CENTRE, LARGE], 2, 2, None),
        ([EDGE, CENTRE], 2, None, "--face 2 asked for, but 2 faces found"),
        ([EDGE, CENTRE, LARGE], PORTRAIT, 1, None),
        ([LARGE, EDGE], PORTRAIT, 0, None),
        ([], PORTRAIT, None, "no face found"),
        ([], None, None, "no face found"),
        ([], 0, None, "no face found"),
    ],
)
def test_choose_face(faces, choice, index, error):
    if error is not None:
        with pytest.raises(FaceChoiceError, match=rf"^{PHOTO}: .*{re.escape(error)}"):
            choose_face(PHOTO, SHAPE, faces, choice)
        return
    chosen = choose_face(PHOTO, SHAPE, faces, choice)
    assert (chosen.path, chosen.index, chosen.faces_found) == (PHOTO, index, len(faces))
    assert chosen.face is faces[index]


def test_portrait_face_is_the_one_nearest_the_centre_or_none():
    assert portrait_face(SHAPE, [EDGE, LARGE, CENTRE]) is CENTRE
    assert portrait_face(SHAPE, []) is None


def test_nearest_centre_measures_from_the_centre_of_each_box_in_the_image_of_its_shape():
    boxes = np.array([[0, 0, 100, 200], [200, 0, 300, 200], [100, 150, 200, 200]], np.float32)
    assert nearest_centre((200, 300), boxes) == 2
    assert nearest_centre((400, 300), boxes) == 2
    assert nearest_centre((200, 500), boxes) == 1
    assert nearest_centre((200, 300), np.zeros((0, 4), np.float32)) is None
