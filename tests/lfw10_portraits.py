"""Real lfw10 photos with their portrait faces, embedded once a session for every test that walks them.

The tracking, face-patch, fusion and coordination tests all walk the same people's photos through
their scenes; each person's photos are embedded the first time a test asks for them and then kept,
instead of once in every module.
"""

from dataclasses import dataclass

import numpy as np

from cluster.enrolment.faces import portrait_face
from cluster.vision.face import Face
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import FacePipeline
from tests.paths import LFW10


@dataclass(frozen=True, eq=False)
class Photo:
    """A real lfw10 photo and its portrait face (the one nearest the centre, LFW's person)."""

    pixels: np.ndarray
    face: Face


class Lfw10Portraits:
    """Each person's lfw10 photos in name order with their portrait faces, embedded by `pipeline` on first use."""

    def __init__(self, pipeline: FacePipeline) -> None:
        self._pipeline = pipeline
        self._photos: dict[str, list[Photo]] = {}

    def of(self, person: str) -> list[Photo]:
        if person not in self._photos:
            paths = sorted((LFW10 / person).glob("*.jpg"))
            images = [load_image(path) for path in paths]
            photos = []
            for path, image, faces in zip(paths, images, self._pipeline.process(images), strict=True):
                face = portrait_face(image.shape, faces)
                if face is None:
                    raise ValueError(f"no face found in {path}: lfw10 photos each show their person")
                photos.append(Photo(image, face))
            self._photos[person] = photos
        return self._photos[person]
