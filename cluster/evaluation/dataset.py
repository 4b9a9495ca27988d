"""Labelled face photos for evaluation and calibration: `<folder>/<person>/<photo>.jpg`.

LFW-style folders hold one portrait per photo, so each photo's face is the one nearest its
centre (`portrait_face`); a photo where no face is found is kept as a failure to enrol or
to acquire, never silently dropped, because open-set rates must count it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cluster.enrolment.faces import portrait_face
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.image_io import find_images, load_image
from cluster.vision.pipeline import FacePipeline

PHOTOS_PER_BATCH = 16


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo of a known person."""

    path: Path
    person: str


@dataclass(frozen=True, eq=False)
class LabelledFace:
    """A labelled photo and the portrait face found in it (None: no usable face)."""

    photo: LabelledPhoto
    face: Face | None
    error: str | None = None


def labelled_photos(folder: Path) -> list[LabelledPhoto]:
    """Every image under `folder/<person>/`, sorted by person then file name."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; pass a folder holding one sub-folder of photos per person")
    photos = [
        LabelledPhoto(path, person.name)
        for person in sorted(p for p in root.iterdir() if p.is_dir())
        for path in find_images([person])
    ]
    if not photos:
        raise ValueError(f"no photos under {root}/<person>/; expected one sub-folder of JPEG or PNG photos per person")
    return photos


def portrait_faces(pipeline: FacePipeline, photos: Sequence[LabelledPhoto]) -> Iterator[LabelledFace]:
    """Each photo's portrait face with every configured model's embedding, in order, in batches.

    Unreadable photos and photos without a face say why.
    """
    for start in range(0, len(photos), PHOTOS_PER_BATCH):
        batch = photos[start : start + PHOTOS_PER_BATCH]
        images: list[np.ndarray | None] = []
        errors: list[str | None] = []
        for photo in batch:
            try:
                images.append(load_image(photo.path))
                errors.append(None)
            except InvalidImageError as exc:
                images.append(None)
                errors.append(str(exc))
        readable = [image for image in images if image is not None]
        chosen = [portrait_face(image.shape, faces) for image, faces in zip(readable, pipeline.process(readable))]
        embedded = iter(pipeline.with_second_stage(readable, [[face] if face else [] for face in chosen]))
        for photo, image, error in zip(batch, images, errors):
            if image is None:
                yield LabelledFace(photo, None, error)
                continue
            faces = next(embedded)
            face = faces[0] if faces else None
            yield LabelledFace(photo, face, None if face is not None else f"{photo.path}: no face found")
