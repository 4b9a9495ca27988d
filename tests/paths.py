"""Where the real face images for tests live (see tests/data/PROVENANCE.md)."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
FACES = DATA / "faces"
LFW10 = FACES / "lfw10"
FACE_RECOGNITION = FACES / "face_recognition"
LFW_PUBLIC = FACES / "lfw-public"
