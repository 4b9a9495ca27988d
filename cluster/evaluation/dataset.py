"""Labelled face photos for evaluation and calibration: `<folder>/<person>/<photo>.jpg`.

LFW-style folders hold one portrait per photo, so each photo's face is the one nearest its
centre (the enrolment policy's `PORTRAIT` choice); a photo where no face is found is kept as a failure to enrol or
to acquire, never silently dropped, because open-set rates must count it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.enrolment.faces import PORTRAIT, ChosenFace, choose_each_face
from cluster.vision.face import Face
from cluster.vision.image_io import find_images
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
    chosen = choose_each_face(pipeline, [(photo.path, PORTRAIT) for photo in photos], PHOTOS_PER_BATCH)
    for photo, result in zip(photos, chosen, strict=True):
        if isinstance(result, ChosenFace):
            yield LabelledFace(photo, result.face)
        else:
            yield LabelledFace(photo, None, result.reason)
