"""The real people a crowd is made of: LFW photos with the face box our detector finds in each.

The box tells the compositor which part of a 250x250 photo is the face (to cut it out and to
write its box in the ground truth). Photos where no face is found near the centre are left out.
The boxes of the shipped lfw10 photos (assets/lfw10) were found once with our MTCNN detector and are kept in
`data/photo_boxes.json` (detecting 100 photos costs seconds, and whole-pixel boxes from a
file cannot drift with thread counts); other photos are detected when first asked for.
Rewrite the file after changing the photos or the detector:

    python -m cluster.crowd.photos
"""

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import structlog

from cluster.crowd.truth import ASSETS, asset_name
from cluster.vision.detections import nearest_centre
from cluster.vision.image_io import load_image

log = structlog.get_logger(__name__)

LFW10 = ASSETS / "lfw10"
PHOTO_MIN_FACE = 80
"""LFW faces fill ~100 of the 250 pixels; a larger minimum skips small background faces and is faster."""
MIN_SCORE = 0.95
MAX_CENTRE_OFFSET = 0.15
"""Largest distance of the face centre from the photo centre, as a share of the photo side."""
DETECTION_BATCH = 25
BOXES_FILE = Path(__file__).parent / "data" / "photo_boxes.json"


@dataclass(frozen=True)
class FacePhoto:
    """A photo (named as `asset_name` names it) and its face box x1 y1 x2 y2 in photo pixels."""

    path: str
    box: tuple[int, int, int, int]

    @property
    def aspect(self) -> float:
        """Face box width over height."""
        x1, y1, x2, y2 = self.box
        return (x2 - x1) / (y2 - y1)


def find_people(root: Path = LFW10) -> dict[str, list[Path]]:
    """Each person's folder name and photos, sorted, so that identities are stable."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"face photos not found at {root}; the crowd needs the lfw10 photos shipped in cluster/crowd/assets:"
            " reinstall the package"
        )
    people = {folder.name: sorted(folder.glob("*.jpg")) for folder in sorted(root.iterdir()) if folder.is_dir()}
    return {name: photos for name, photos in people.items() if photos}


def _central_face(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> tuple[int, int, int, int] | None:
    """The confident face nearest the photo centre (the portrait policy), as whole pixels, if it is near enough."""
    height, width = image.shape[:2]
    confident = boxes[scores >= MIN_SCORE]
    central = nearest_centre(image.shape, confident)
    if central is None:
        return None
    box = confident[central]
    offset = np.hypot((box[0] + box[2]) / 2 - width / 2, (box[1] + box[3]) / 2 - height / 2) / max(width, height)
    if offset > MAX_CENTRE_OFFSET:
        return None
    x1, y1 = max(0, round(float(box[0]))), max(0, round(float(box[1])))
    x2, y2 = min(width, round(float(box[2]))), min(height, round(float(box[3])))
    return x1, y1, x2, y2


def detect_faces(paths: Sequence[Path]) -> dict[str, tuple[int, int, int, int] | None]:
    """Run the detector: each photo (repo-relative name) and its central face box, or None."""
    from cluster.vision.detector import MTCNNDetector  # torch costs ~800 MB; stored boxes avoid it

    detector = MTCNNDetector(min_face_size=PHOTO_MIN_FACE)
    found: dict[str, tuple[int, int, int, int] | None] = {}
    for start in range(0, len(paths), DETECTION_BATCH):
        batch = paths[start : start + DETECTION_BATCH]
        images = [load_image(path) for path in batch]
        for path, image, detections in zip(batch, images, detector.detect(images), strict=True):
            found[asset_name(path)] = _central_face(image, detections.boxes, detections.scores)
    return found


@lru_cache(maxsize=1)
def stored_boxes() -> dict[str, tuple[int, int, int, int] | None]:
    """The boxes kept in BOXES_FILE (empty if it is missing)."""
    if not BOXES_FILE.is_file():
        return {}
    boxes = json.loads(BOXES_FILE.read_text(encoding="utf-8"))["boxes"]
    return {name: tuple(box) if box is not None else None for name, box in boxes.items()}


@lru_cache(maxsize=4)
def _boxes(paths: tuple[Path, ...]) -> tuple[tuple[int, int, int, int] | None, ...]:
    known = stored_boxes()
    missing = [path for path in paths if asset_name(path) not in known]
    detected = detect_faces(missing) if missing else {}
    return tuple(known.get(asset_name(path), detected.get(asset_name(path))) for path in paths)


def locate_faces(paths: Sequence[Path]) -> list[FacePhoto]:
    """The photos of `paths` in which a face was found, with its box, in the order given."""
    photos = []
    for path, box in zip(paths, _boxes(tuple(paths)), strict=True):
        if box is None:
            log.warning("crowd_photo_without_face", photo=str(path))
        else:
            photos.append(FacePhoto(path=asset_name(path), box=box))
    return photos


def write_boxes(root: Path = LFW10, path: Path = BOXES_FILE) -> int:
    """Detect the faces of every photo under `root` and store their boxes; returns the photo count."""
    photos = [photo for found in find_people(root).values() for photo in found]
    boxes = detect_faces(photos)
    about = f"central face box x1 y1 x2 y2 per photo, by MTCNNDetector(min_face_size={PHOTO_MIN_FACE})"
    rows = ",\n".join(f"  {json.dumps(name)}: {json.dumps(box)}" for name, box in sorted(boxes.items()))
    path.write_text(f'{{\n "about": {json.dumps(about)},\n "boxes": {{\n{rows}\n }}\n}}\n', encoding="utf-8")
    return len(boxes)


if __name__ == "__main__":
    sys.stdout.write(f"stored the face boxes of {write_boxes()} photos in {BOXES_FILE}\n")
