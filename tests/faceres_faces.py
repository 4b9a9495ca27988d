"""Real faces for the faceres tests: lfw10 photos, detected by our MTCNN, aligned to the ArcFace template."""

import numpy as np

from cluster.vision.aligner import FaceAligner
from cluster.vision.detector import MTCNNDetector
from cluster.vision.image_io import load_image
from tests.paths import LFW10


def lfw10_arcface_chips(detector: MTCNNDetector, per_person: int) -> tuple[np.ndarray, list[str]]:
    """The first `per_person` photos of every lfw10 person as 224x224 chips, and whose each chip is.

    LFW photos are centred on the person they are filed under, so the detected face nearest the
    centre is theirs (some photos show other people behind them).
    """
    people = sorted(p.name for p in LFW10.iterdir() if p.is_dir())
    paths = [path for person in people for path in sorted((LFW10 / person).glob("*.jpg"))[:per_person]]
    images = [load_image(path) for path in paths]
    aligner = FaceAligner(template="arcface")
    chips = []
    for path, image, found in zip(paths, images, detector.detect(images)):
        assert len(found) > 0, f"no face found in {path}"
        centre = np.array(image.shape[1::-1]) / 2.0
        box_centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2.0
        nearest = int(np.argmin(np.linalg.norm(box_centres - centre, axis=1)))
        chips.append(aligner.align(image, found.landmarks[nearest : nearest + 1])[0])
    return np.stack(chips), [path.parent.name for path in paths]
