"""Pasting a photo's face into a frame exactly where its ground-truth record says.

Each photo is cut once into a soft-edged ellipse around its face box (an RGBA crop) with two
box-filtered reductions of it, so that a face pasted at a third of its photo size is resampled
from a nearby reduction instead of aliasing. A paste maps the photo's face box onto the
truth box (scaling, squashing for yaw, rotating for roll), then blurs and relights the sprite
and alpha-blends it into the frame through numpy slices.
"""

import math

import numpy as np
from PIL import Image, ImageFilter

from cluster.crowd.photos import FacePhoto
from cluster.crowd.truth import FaceFrame, resolve_asset

MASK_HALF_WIDTH = 0.62
MASK_HALF_HEIGHT = 0.72
"""Half-axes of the cut-out ellipse as shares of the face box: wide enough for cheeks, tall
enough for the forehead above MTCNN's box."""
MASK_LIFT = 0.06
"""The ellipse centre sits this share of the box height above the box centre (towards the forehead)."""
MASK_FEATHER = 0.22
"""Share of the ellipse radius over which the alpha fades from 1 to 0."""
REDUCTIONS = (1, 2, 4)


class FaceSprite:
    """One photo's face, ready to paste at any size, squash, roll, blur and lighting."""

    def __init__(self, photo: FacePhoto) -> None:
        self.photo = photo
        rgb = Image.open(resolve_asset(photo.path)).convert("RGB")
        x1, y1, x2, y2 = photo.box
        width, height = x2 - x1, y2 - y1
        centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2 - MASK_LIFT * height
        half_x, half_y = MASK_HALF_WIDTH * width, MASK_HALF_HEIGHT * height
        left, top = math.floor(centre_x - half_x) - 1, math.floor(centre_y - half_y) - 1
        right, bottom = math.ceil(centre_x + half_x) + 1, math.ceil(centre_y + half_y) + 1
        crop = np.zeros((bottom - top, right - left, 4), np.uint8)
        src = np.asarray(rgb)
        sx1, sy1 = max(left, 0), max(top, 0)
        sx2, sy2 = min(right, src.shape[1]), min(bottom, src.shape[0])
        crop[sy1 - top : sy2 - top, sx1 - left : sx2 - left, :3] = src[sy1:sy2, sx1:sx2]
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
        radius = np.hypot((xs - centre_x) / half_x, (ys - centre_y) / half_y)
        alpha = np.clip((1.0 - radius) / MASK_FEATHER, 0.0, 1.0)
        inside = np.zeros(alpha.shape, bool)
        inside[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = True
        crop[..., 3] = np.round(alpha * inside * 255).astype(np.uint8)
        full = Image.fromarray(crop)
        self._levels = {factor: full.reduce(factor) if factor > 1 else full for factor in REDUCTIONS}
        self._origin = (left, top)
        self._mask_centre = (centre_x, centre_y)
        self._half_axes = (half_x, half_y)

    def paste(self, frame: np.ndarray, face: FaceFrame) -> None:
        """Blend this face into `frame` (h, w, 3) uint8 in place, with the face box on `face.box`."""
        x1, y1, x2, y2 = self.photo.box
        bx1, by1, bx2, by2 = face.box
        scale_x, scale_y = (bx2 - bx1) / (x2 - x1), (by2 - by1) / (y2 - y1)
        factor = max((f for f in REDUCTIONS if f * max(scale_x, scale_y) <= 1.0), default=1)
        angle = math.radians(face.roll)
        cos, sin = math.cos(angle), math.sin(angle)
        box_centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        out_centre = np.array([(bx1 + bx2) / 2, (by1 + by2) / 2])
        # photo -> frame: out = out_centre + R @ S @ (p - box_centre)
        forward = np.array([[cos, -sin], [sin, cos]]) @ np.diag([scale_x, scale_y])
        half_x, half_y = self._half_axes
        mask_offset = np.array(self._mask_centre) - box_centre
        corners = np.array([[sx * half_x, sy * half_y] for sx in (-1, 1) for sy in (-1, 1)]) + mask_offset
        mapped = corners @ forward.T + out_centre
        pad = face.motion_blur / 2 + 3 * face.defocus + 2
        frame_h, frame_w = frame.shape[:2]
        left = max(math.floor(mapped[:, 0].min() - pad), 0)
        top = max(math.floor(mapped[:, 1].min() - pad), 0)
        right = min(math.ceil(mapped[:, 0].max() + pad), frame_w)
        bottom = min(math.ceil(mapped[:, 1].max() + pad), frame_h)
        if right <= left or bottom <= top:
            return

        # frame -> reduced crop: q = (box_centre + S^-1 R^-1 (o - out_centre) - origin) / factor
        inverse = np.linalg.inv(forward) / factor
        offset = (box_centre - np.array(self._origin)) / factor - inverse @ (out_centre - np.array([left, top]))
        data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
        sprite = self._levels[factor].transform(
            (right - left, bottom - top), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR
        )
        if face.defocus > 0:
            sprite = sprite.filter(ImageFilter.GaussianBlur(face.defocus))
        pixels = np.asarray(sprite, dtype=np.float32)
        if face.motion_blur >= 1:
            pixels = _horizontal_blur(pixels, face.motion_blur)
        alpha = pixels[..., 3:] / 255.0
        colour = (pixels[..., :3] - 128.0) * face.contrast + 128.0 + face.brightness
        region = frame[top:bottom, left:right].astype(np.float32)
        blended = region + alpha * (np.clip(colour, 0, 255) - region)
        frame[top:bottom, left:right] = np.round(blended).astype(np.uint8)


def _horizontal_blur(pixels: np.ndarray, length: float) -> np.ndarray:
    """Average over a horizontal window of `length` pixels (fractional ends weighted): motion blur."""
    whole = int(length)
    kernel = np.ones(whole + 2, np.float32)
    kernel[0] = kernel[-1] = (length - whole) / 2
    kernel /= kernel.sum()
    padded = np.pad(pixels, ((0, 0), (len(kernel) // 2, len(kernel) - 1 - len(kernel) // 2), (0, 0)), mode="edge")
    result = np.zeros_like(pixels)
    for shift, weight in enumerate(kernel):
        result += weight * padded[:, shift : shift + pixels.shape[1]]
    return result
