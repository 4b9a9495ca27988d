"""Where the real face images for tests live (see tests/data/PROVENANCE.md; lfw10 ships with the crowd assets)."""

from pathlib import Path

from cluster.crowd.photos import LFW10 as LFW10_PHOTOS

DATA = Path(__file__).resolve().parent / "data"
FACES = DATA / "faces"
LFW10 = LFW10_PHOTOS
FACE_RECOGNITION = FACES / "face_recognition"
LFW_PUBLIC = FACES / "lfw-public"
