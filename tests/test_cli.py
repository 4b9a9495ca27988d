"""The `lfr` command run as a user runs it: a real subprocess on real images."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cluster.vision.image_io import load_image
from tests.paths import FACE_RECOGNITION, LFW10

pytestmark = pytest.mark.slow

LFR = Path(sys.executable).parent / "lfr"
"""The console script installed beside this interpreter, as a user would run it."""
CONFIDENT = 0.9
"""A detection at least this sure is a person's face; MTCNN also reports weaker ones in busy backgrounds."""


def lfr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LFR), *args], capture_output=True, text=True, timeout=300)


def test_faces_json_lists_boxes_and_quality():
    result = lfr("faces", "--json", str(FACE_RECOGNITION / "obama.jpg"), str(LFW10 / "Tony_Blair"))
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout)["images"]
    assert len(images) == 11
    obama = images[0]
    assert obama["error"] is None
    people = [face for face in obama["faces"] if face["score"] >= CONFIDENT]
    assert len(people) == 1, f"one person in obama.jpg; detections: {obama['faces']}"
    face = people[0]
    assert face["score"] > 0.99 and set(face["quality"]) == {"size", "sharpness", "pose", "detection", "overall"}
    x1, y1, x2, y2 = face["box"]
    assert x1 < 497 < x2 and y1 < 277 < y2, "obama's nose tip lies inside his face box"


def test_faces_text_output():
    result = lfr("faces", str(LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg"))
    assert result.returncode == 0, result.stderr
    assert "Tony_Blair_0001.jpg: 1 face" in result.stdout and "quality" in result.stdout


def test_bad_files_are_reported_and_the_rest_still_processed(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not pixels")
    truncated = tmp_path / "truncated.jpg"
    data = (LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    good = LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg"
    result = lfr("faces", "--json", str(text), str(truncated), str(tiny), str(good))
    assert result.returncode == 1
    images = {Path(i["image"]).name: i for i in json.loads(result.stdout)["images"]}
    assert "not an image format" in images["notes.jpg"]["error"]
    assert "corrupt or truncated" in images["truncated.jpg"]["error"]
    assert "too small to hold a face" in images["tiny.png"]["error"]
    assert images["Tony_Blair_0001.jpg"]["error"] is None and len(images["Tony_Blair_0001.jpg"]["faces"]) == 1
    for name in ("notes.jpg", "truncated.jpg", "tiny.png"):
        assert name in result.stderr


def test_rgba_png_is_processed():
    result = lfr("faces", "--json", str(FACE_RECOGNITION / "32bit.png"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"][0]["error"] is None


def test_100_megapixel_jpeg_is_downscaled_for_detection(tmp_path):
    portrait = Image.open(LFW10 / "Colin_Powell" / "Colin_Powell_0001.jpg").resize((1000, 1000))
    canvas = Image.new("RGB", (10_000, 10_000), (90, 90, 90))
    canvas.paste(portrait, (7000, 2000))
    path = tmp_path / "huge.jpg"
    canvas.save(path, quality=80)
    result = lfr("faces", "--json", str(path))
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)["images"][0]["faces"]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0]["box"]
    assert x1 < 7500 < x2 and y1 < 2500 < y2


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (FACE_RECOGNITION / "obama.jpg", FACE_RECOGNITION / "obama2.jpg", True),
        (FACE_RECOGNITION / "obama.jpg", FACE_RECOGNITION / "biden.jpg", False),
    ],
)
def test_compare(a, b, verdict):
    result = lfr("compare", "--json", str(a), str(b))
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["same_person"] is verdict
    assert (outcome["similarity"] >= outcome["threshold"]) is verdict


def test_compare_without_a_face_says_so(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (128, 128, 128)).save(blank)
    result = lfr("compare", str(blank), str(FACE_RECOGNITION / "obama.jpg"))
    assert result.returncode == 1
    assert "no face found" in result.stderr


def test_embed_writes_one_row_per_face(tmp_path, face_pipeline):
    output = tmp_path / "out" / "faces.npz"
    photos = [*sorted((LFW10 / "Gerhard_Schroeder").glob("*.jpg")), FACE_RECOGNITION / "obama.jpg"]
    result = lfr("embed", str(LFW10 / "Gerhard_Schroeder"), str(photos[-1]), "--output", str(output))
    assert result.returncode == 0, result.stderr
    rows = np.load(output)
    n = len(rows["source"])
    assert n == sum(len(faces) for faces in face_pipeline.process([load_image(photo) for photo in photos]))
    assert rows["embedding"].shape == (n, 128) and rows["box"].shape == (n, 4)
    assert rows["face_index"].shape == (n,) and rows["quality"].shape == (n,)
    assert np.allclose(np.linalg.norm(rows["embedding"], axis=1), 1.0, atol=1e-5)
    assert {Path(s).parent.name for s in rows["source"]} == {"Gerhard_Schroeder", "face_recognition"}


def test_bad_config_is_refused_with_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("face_models:\n  detector:\n    min_face_sise: 30\n")
    result = lfr("--config", str(config), "faces", str(FACE_RECOGNITION / "obama.jpg"))
    assert result.returncode == 2
    assert "face_models.detector.min_face_sise" in result.stderr
