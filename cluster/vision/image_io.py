"""Reading image files into RGB frames, with errors that say what is wrong with the file.

Grayscale, palette, CMYK and RGBA images are converted to RGB (alpha is composited on
white), EXIF rotation is applied, and images over `MAX_DECODE_PIXELS` are refused before they
are decoded, so a hostile file cannot exhaust memory. Large images that are accepted are
handed on at full resolution; the face pipeline detects on a downscaled copy of them.
"""

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cluster.vision.errors import InvalidImageError
from cluster.vision.frames import validate_frame

MAX_DECODE_PIXELS = 150_000_000
"""Largest image accepted (150 megapixels, 450 MB as RGB); larger files are refused unread.

It sits below PIL's own decompression-bomb error (twice `Image.MAX_IMAGE_PIXELS`), so this
limit, with its clearer message, is the one a user meets.
"""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes into an (h, w, 3) uint8 RGB array."""
    if not data:
        raise InvalidImageError(f"{name}: the file is empty; pass a JPEG or PNG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_DECODE_PIXELS:
                raise InvalidImageError(
                    f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
                    f"{MAX_DECODE_PIXELS / 1e6:.0f} MP limit; downscale or tile the image first"
                )
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
            rgb.load()
    except UnidentifiedImageError as exc:
        raise InvalidImageError(
            f"{name}: not an image format we can read; pass a JPEG, PNG, BMP, WebP, TIFF or GIF file"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"{name}: refused as a possible decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(
            f"{name}: the image data is corrupt or truncated ({exc}); re-export or re-download the file"
        ) from exc
    return np.array(rgb)


def load_image(path: Path | str) -> np.ndarray:
    """Read an image file into an (h, w, 3) uint8 RGB array."""
    file_path = Path(path)
    try:
        data = file_path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidImageError(f"{file_path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InvalidImageError(f"{file_path}: is a directory; pass image files") from exc
    except OSError as exc:
        raise InvalidImageError(f"{file_path}: cannot read the file ({exc.strerror})") from exc
    return decode_image(data, name=str(file_path))


def load_frame(path: Path | str) -> np.ndarray:
    """An image file as a frame the face pipeline accepts (`validate_frame`); every error names the file."""
    frame = load_image(path)
    try:
        return validate_frame(frame)
    except InvalidImageError as exc:
        raise InvalidImageError(f"{path}: {exc}") from exc


def find_images(paths: list[Path]) -> list[Path]:
    """Image files named directly, plus those found (sorted) under any folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found
