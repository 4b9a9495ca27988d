"""The lfw10 photos (ten people, ten photos each, shipped with the crowd assets) embedded one face per photo.

The accuracy and gallery benchmarks and the identification tests all measure these same
embeddings. Each photo gives the face nearest its centre, where LFW puts its person.
"""

import numpy as np

from cluster.crowd.photos import LFW10
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import FacePipeline


def embed_lfw10(pipeline: FacePipeline) -> tuple[np.ndarray, list[str], list[str]]:
    """(embeddings (n, 128), each photo's person, each photo's file name), people and photos in name order."""
    embeddings, people, names = [], [], []
    for person in sorted(p for p in LFW10.iterdir() if p.is_dir()):
        paths = sorted(person.glob("*.jpg"))
        for path, faces in zip(paths, pipeline.process([load_image(p) for p in paths])):
            if not faces:
                raise SystemExit(f"no face found in {path}")
            frame_centre = np.array([125.0, 125.0])
            distances = [np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - frame_centre) for f in faces]
            embeddings.append(faces[int(np.argmin(distances))].embedding)
            people.append(person.name)
            names.append(path.name)
    return np.stack(embeddings), people, names
