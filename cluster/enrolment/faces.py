"""Choosing the one face of a photo: the one policy, for enrolment, searches, comparison and evaluation.

A photo's face is chosen by a `FaceChoice`. An officer's photo (enrolment, a social search, a
comparison... anything a person is put on a list or searched for by) must show exactly one face
(`None`): a photo with no face is refused, and so is a photo with several faces unless the
officer names one by its index (the index that `lfr faces PHOTO` prints). The face nearest the
centre, or the largest, is never chosen silently there: in a press or crowd photo that may be a
bystander, who would then be on a watchlist. Only a labelled portrait set, where the person is
known to be the central face (evaluation, the impostor cohort, the demo's own photos, a
comparison of two portraits), takes the face nearest the centre (`PORTRAIT`).

`watchlist_entry` is the one place a chosen face becomes a `WatchlistEntry`: every enrolment
path (`lfr watchlist add`, `lfr watchlist import`) goes through it, so what an entry takes
from the face (its embedding today) changes in one place.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

import numpy as np

from cluster.gallery.records import WatchlistEntry
from cluster.vision.detections import nearest_centre
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.image_io import load_frame
from cluster.vision.pipeline import FacePipeline

PHOTOS_PER_BATCH = 8
"""Photos detected and embedded in one pipeline call."""

PORTRAIT: Final = "portrait"
FaceChoice = int | Literal["portrait"] | None
"""Which face of a photo to take: the index an officer named; None, the photo's only face (a photo
with several is refused); PORTRAIT, the face nearest the centre (labelled portrait sets only)."""


class FaceChoiceError(ValueError):
    """A photo from which no single face can be taken; the message names the file and what to do."""


@dataclass(frozen=True)
class FaceOption:
    """How the officer's interface names the choice of a face, so that a refusal tells them what to send there.

    named: what an index asked for follows ("--face " in "--face 5 asked for"); choose: how to choose one of several.
    """

    named: str
    choose: str


CLI_FACE = FaceOption(
    "--face ",
    "pass --face N (in an import manifest, a face column) to choose one (`lfr faces PHOTO` lists them)",
)
"""The command line's `--face N` (and an import manifest's face column)."""


@dataclass(frozen=True, eq=False)
class ChosenFace:
    """The face taken from a photo: its index among the faces found there, and how many were found."""

    path: Path
    index: int
    face: Face
    faces_found: int


@dataclass(frozen=True)
class RefusedPhoto:
    """A photo nothing was taken from, and why (the message names the file)."""

    path: Path
    reason: str


def watchlist_entry(
    chosen: ChosenFace,
    *,
    person_id: str,
    label: str,
    category: str,
    source: str,
    authorised_by: str,
    expires_at: int | None,
) -> WatchlistEntry:
    """The watchlist entry of a chosen face; its fields are checked by `WatchlistEntry` (InvalidRecordError)."""
    return WatchlistEntry(
        person_id=person_id,
        label=label,
        category=category,
        source=source,
        authorised_by=authorised_by,
        embedding=chosen.face.embedding,
        expires_at=expires_at,
        extra_embeddings=chosen.face.extra_embeddings,
    )


def portrait_face(image_shape: tuple[int, ...], faces: Sequence[Face]) -> Face | None:
    """The face nearest the image's centre: whom a portrait is of (None when there is no face).

    Only for labelled portrait sets (evaluation, the impostor cohort, the demo's own photos), where the
    person is known to be the central face; an officer's enrolment photo never has its face guessed.
    """
    index = _central_index(image_shape, faces)
    return None if index is None else faces[index]


def _central_index(image_shape: tuple[int, ...], faces: Sequence[Face]) -> int | None:
    return nearest_centre(image_shape, np.array([face.box for face in faces], np.float32).reshape(-1, 4))


def describe_faces(faces: Sequence[Face]) -> str:
    """'face 0 at (x1, y1)-(x2, y2), face 1 at ...', so an officer can tell which index is whom."""
    return ", ".join(
        f"face {index} at ({face.box[0]:.0f}, {face.box[1]:.0f})-({face.box[2]:.0f}, {face.box[3]:.0f})"
        for index, face in enumerate(faces)
    )


def choose_face(
    path: Path,
    image_shape: tuple[int, ...],
    faces: Sequence[Face],
    choice: FaceChoice,
    option: FaceOption = CLI_FACE,
) -> ChosenFace:
    """The face of the photo that `choice` names (see `FaceChoice`); FaceChoiceError when there is none, saying what
    to do in the terms of `option`."""
    if not faces:
        raise FaceChoiceError(
            f"{path}: no face found; use a photo where the face is frontal and at least 20 pixels wide"
        )
    face_index = _central_index(image_shape, faces) if choice == PORTRAIT else choice
    if face_index is None:
        if len(faces) > 1:
            raise FaceChoiceError(
                f"{path}: {len(faces)} faces found ({describe_faces(faces)}); the photo is refused rather than"
                f" guessing whom to enrol: {option.choose} or crop the photo"
            )
        return ChosenFace(path, 0, faces[0], 1)
    if not 0 <= face_index < len(faces):
        raise FaceChoiceError(
            f"{path}: {option.named}{face_index} asked for, but {len(faces)} face{'s' if len(faces) != 1 else ''} found"
            f" ({describe_faces(faces)}); pass an index from 0 to {len(faces) - 1}"
        )
    return ChosenFace(path, face_index, faces[face_index], len(faces))


def choose_faces(
    pipeline: FacePipeline, paths: Sequence[Path], face_index: int | None = None, option: FaceOption = CLI_FACE
) -> Iterator[ChosenFace | RefusedPhoto]:
    """For each photo in order, its chosen face or the reason it was refused; one bad photo never stops the rest."""
    return choose_each_face(pipeline, [(path, face_index) for path in paths], option=option)


def choose_each_face(
    pipeline: FacePipeline,
    photos: Sequence[tuple[Path, FaceChoice]],
    photos_per_batch: int = PHOTOS_PER_BATCH,
    *,
    option: FaceOption = CLI_FACE,
) -> Iterator[ChosenFace | RefusedPhoto]:
    """As `choose_faces`, with each photo's own choice of face.

    A manifest names a face per row, so one import mixes photos with and without a chosen face.
    Photos are loaded and run through the pipeline `photos_per_batch` at a time, so memory stays
    bounded however many are passed.
    """
    for start in range(0, len(photos), photos_per_batch):
        batch = photos[start : start + photos_per_batch]
        frames: list[np.ndarray] = []
        outcomes: list[RefusedPhoto | int] = []
        for path, _ in batch:
            try:
                frames.append(load_frame(path))
                outcomes.append(len(frames) - 1)
            except InvalidImageError as exc:
                outcomes.append(RefusedPhoto(path, str(exc)))
        found = pipeline.process(frames)
        results: list[ChosenFace | RefusedPhoto] = []
        for (path, choice), outcome in zip(batch, outcomes):
            if isinstance(outcome, RefusedPhoto):
                results.append(outcome)
                continue
            try:
                results.append(choose_face(path, frames[outcome].shape, found[outcome], choice, option))
            except FaceChoiceError as exc:
                results.append(RefusedPhoto(path, str(exc)))
        yield from _with_second_stage(pipeline, frames, outcomes, results)


def _with_second_stage(
    pipeline: FacePipeline,
    frames: Sequence[np.ndarray],
    outcomes: Sequence[RefusedPhoto | int],
    results: Sequence[ChosenFace | RefusedPhoto],
) -> Iterator[ChosenFace | RefusedPhoto]:
    """The results with each chosen face also embedded by the second model (only the chosen face, not the others)."""
    chosen: list[list[Face]] = [[] for _ in frames]
    for outcome, result in zip(outcomes, results):
        if isinstance(result, ChosenFace) and isinstance(outcome, int):
            chosen[outcome] = [result.face]
    embedded = pipeline.with_second_stage(frames, chosen)
    for outcome, result in zip(outcomes, results):
        if isinstance(result, ChosenFace) and isinstance(outcome, int):
            yield replace(result, face=embedded[outcome][0])
        else:
            yield result
