"""Image files become RGB frames, or fail with an error that says what to do."""

import io

import numpy as np
import pytest
from PIL import Image

from cluster.vision.errors import InvalidImageError
from cluster.vision.image_io import MAX_DECODE_PIXELS, decode_image, find_images, load_image
from tests.paths import FACE_RECOGNITION, LFW10


def test_jpeg_loads_as_rgb_uint8():
    frame = load_image(LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg")
    assert frame.shape == (250, 250, 3) and frame.dtype == np.uint8


def test_rgba_png_is_composited_to_rgb():
    """32bit.png from face_recognition's test images has an alpha channel."""
    with Image.open(FACE_RECOGNITION / "32bit.png") as original:
        assert original.mode == "RGBA"
    frame = load_image(FACE_RECOGNITION / "32bit.png")
    assert frame.ndim == 3 and frame.shape[2] == 3


def test_grayscale_is_converted(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (64, 48), 90).save(path)
    frame = load_image(path)
    assert frame.shape == (48, 64, 3) and (frame == 90).all()


def test_truncated_jpeg_is_refused():
    data = (LFW10 / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], name="half.jpg")


def test_text_file_named_jpg_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(InvalidImageError, match="not an image format we can read") as caught:
        load_image(path)
    assert "notes.jpg" in str(caught.value)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "absent.jpg", "no such file"),
        (lambda tmp: tmp, "is a directory"),
    ],
)
def test_missing_paths_are_refused(tmp_path, make, expected):
    with pytest.raises(InvalidImageError, match=expected):
        load_image(make(tmp_path))


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(path)


def test_oversized_image_is_refused_before_decoding():
    """A PNG header claiming more pixels than the limit is refused without decoding the pixels."""
    side = int(MAX_DECODE_PIXELS**0.5) + 100
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    with pytest.raises(InvalidImageError, match="megapixels, over the"):
        decode_image(buffer.getvalue(), name="huge.png")


def test_find_images_expands_folders(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/1.jpg", "a/2.PNG", "a/readme.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = find_images([tmp_path / "a", tmp_path / "direct.jpg"])
    assert [p.name for p in found] == ["1.jpg", "2.PNG", "direct.jpg"]
