"""`lfr faces`, `lfr compare` and `lfr embed`: the face models on image files.

Output goes to stdout (text or JSON); per-image errors go to stderr and do not stop the
other images, but make the command exit with status 1.
"""

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cluster.config import LfrConfig
from cluster.enrolment.faces import PORTRAIT, ChosenFace, FaceChoiceError, choose_face
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.image_io import find_images, load_frame
from cluster.vision.pipeline import FacePipeline

IMAGES_PER_BATCH = 8


def register(commands: argparse._SubParsersAction) -> None:
    faces = commands.add_parser("faces", help="List the faces found in images.")
    faces.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="Image files or folders.")
    faces.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    faces.set_defaults(handler=run_faces)

    compare = commands.add_parser(
        "compare", help="Say whether the faces nearest the centres of two images are one person."
    )
    compare.add_argument("first", type=Path, metavar="A")
    compare.add_argument("second", type=Path, metavar="B")
    compare.add_argument("--json", action="store_true", help="Print JSON instead of text.")
    compare.set_defaults(handler=run_compare)

    embed = commands.add_parser("embed", help="Write one embedding per face to an .npz file.")
    embed.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="Image files or folders.")
    embed.add_argument("--output", type=Path, required=True, help="Destination .npz file.")
    embed.set_defaults(handler=run_embed)


def _faces_in_images(pipeline: FacePipeline, paths: list[Path]) -> Iterator[tuple[Path, list[Face] | str]]:
    """Each image with its faces, or with the error message that explains why it was skipped."""
    for start in range(0, len(paths), IMAGES_PER_BATCH):
        loaded: list[tuple[Path, np.ndarray]] = []
        for path in paths[start : start + IMAGES_PER_BATCH]:
            try:
                loaded.append((path, load_frame(path)))
            except InvalidImageError as exc:
                yield path, str(exc)
        if not loaded:
            continue
        for (path, _), faces in zip(loaded, pipeline.process([frame for _, frame in loaded])):
            yield path, faces


def _face_record(index: int, face: Face) -> dict[str, Any]:
    return {
        "index": index,
        "box": [round(float(v), 1) for v in face.box],
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
        "score": round(face.score, 4),
        "quality": {name: round(value, 3) for name, value in asdict(face.quality).items()},
    }


def run_faces(args: argparse.Namespace, config: LfrConfig) -> int:
    pipeline = FacePipeline(config.face_models)
    records: list[dict[str, Any]] = []
    failed = 0
    for path, result in _faces_in_images(pipeline, find_images(args.images)):
        if isinstance(result, str):
            failed += 1
            sys.stderr.write(f"lfr: {result}\n")
            records.append({"image": str(path), "error": result, "faces": []})
            continue
        records.append({"image": str(path), "error": None, "faces": [_face_record(i, f) for i, f in enumerate(result)]})
        if not args.json:
            sys.stdout.write(f"{path}: {len(result)} face{'s' if len(result) != 1 else ''}\n")
            for index, face in enumerate(result):
                x1, y1, x2, y2 = face.box
                q = face.quality
                sys.stdout.write(
                    f"  face {index}: box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})"
                    f"  score {face.score:.3f}  quality {q.overall:.2f}"
                    f" (size {q.size:.2f}, sharpness {q.sharpness:.2f},"
                    f" pose {q.pose:.2f}, detection {q.detection:.2f})\n"
                )
    if args.json:
        sys.stdout.write(json.dumps({"images": records}, indent=2) + "\n")
    return 1 if failed else 0


def _portrait(pipeline: FacePipeline, path: Path) -> ChosenFace:
    """The face nearest the image's centre (the face policy's PORTRAIT choice), with how many it holds."""
    frame = load_frame(path)
    return choose_face(path, frame.shape, pipeline.process([frame])[0], PORTRAIT)


def run_compare(args: argparse.Namespace, config: LfrConfig) -> int:
    pipeline = FacePipeline(config.face_models)
    try:
        first, second = _portrait(pipeline, args.first), _portrait(pipeline, args.second)
    except (InvalidImageError, FaceChoiceError) as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return 1
    similarity = first.face.similarity(second.face)
    threshold = config.matching.similarity_threshold
    same = similarity >= threshold
    if args.json:
        result = {
            "similarity": round(similarity, 4),
            "threshold": threshold,
            "same_person": same,
            "faces_in_a": first.faces_found,
            "faces_in_b": second.faces_found,
        }
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    for chosen in (first, second):
        if chosen.faces_found > 1:
            sys.stdout.write(
                f"note: {chosen.path} holds {chosen.faces_found} faces; comparing the one nearest its centre\n"
            )
    verdict = "same person" if same else "different people"
    sys.stdout.write(f"similarity {similarity:.4f} (threshold {threshold:.2f}): {verdict}\n")
    return 0


def run_embed(args: argparse.Namespace, config: LfrConfig) -> int:
    pipeline = FacePipeline(config.face_models)
    paths = find_images(args.images)
    sources, indices, boxes, qualities, embeddings = [], [], [], [], []
    failed = without_face = 0
    progress = tqdm(total=len(paths), unit="image", file=sys.stderr, disable=None)
    for path, result in _faces_in_images(pipeline, paths):
        progress.update(1)
        if isinstance(result, str):
            failed += 1
            sys.stderr.write(f"lfr: {result}\n")
            continue
        without_face += not result
        for index, face in enumerate(result):
            sources.append(str(path))
            indices.append(index)
            boxes.append(face.box)
            qualities.append(face.quality.overall)
            embeddings.append(face.embedding)
    progress.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.output,
        source=np.array(sources, dtype=str),
        face_index=np.array(indices, dtype=np.int32),
        box=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        quality=np.array(qualities, dtype=np.float32),
        embedding=np.array(embeddings, dtype=np.float32).reshape(-1, 128),
    )
    sys.stdout.write(
        f"wrote {len(sources)} faces from {len(paths) - failed} images to {args.output}"
        f" ({without_face} without a face, {failed} unreadable)\n"
    )
    return 1 if failed else 0
