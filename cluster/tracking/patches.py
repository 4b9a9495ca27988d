"""Face patches: the frame pixels around a kept face, for the second face model at decision time.

The second model (faceres) is too dear to run on every face of every frame, so it runs on a
tracklet's few best faces once the tracklet is ready to be decided, when their frames are long
gone. When a face enters those few, the tracker copies (never views: a view would keep the whole
frame alive) the square of the frame its ArcFace 224x224 chip will be cut from, with the five
landmarks moved into the patch's pixels, so that aligning the patch gives the very chip that
aligning the frame would.

How large the square must be: the aligner samples the preimage of the chip's corners under the
similarity transform fitted from the landmarks (plus one pixel before and two after). That
transform maps the landmarks' centroid onto the template's, so the preimage lies within R / s of
the centroid, where R is the distance from the template's centroid to its farthest chip corner
(182 chip pixels) and s the transform's scale. Measured against the largest distance r from the
landmarks' centroid to a landmark, R / s was 3.04-3.62 times r (median 3.35; a face that fits
the template exactly gives 3.39) over 1,292 faces of lfw-public and lfw10. A square of half side
PATCH_REACH * r + PATCH_SLACK_PX, clipped to the frame, holds it with a quarter to spare. Only
landmarks that fit no face at all (then the embedding is worthless anyway) would reach beyond it.
"""

from dataclasses import dataclass

import numpy as np

from cluster.tracking.crops import check_frame

PATCH_REACH = 4.5
"""Half side of a patch, in multiples of the largest landmark distance from the landmarks' centroid."""
PATCH_SLACK_PX = 3
"""Pixels added to the half side: the aligner reads one pixel before and two after the chip's preimage."""


@dataclass(frozen=True, eq=False)
class FacePatch:
    """A copy of the frame around one kept face: pixels (h, w, 3) uint8, its landmarks (5, 2) float32 in
    the patch's pixels, and the face's quality (its weight when the second model's vectors are pooled)."""

    pixels: np.ndarray
    landmarks: np.ndarray
    quality: float

    def __post_init__(self) -> None:
        check_patch(self)


def check_patch(patch: FacePatch) -> None:
    """Raise ValueError unless `patch` holds RGB uint8 pixels, five finite landmarks and a finite quality.

    A patch built here is checked on construction; one that crossed a process boundary was
    rebuilt from its bytes without that check, so the face service checks it again.
    """
    check_frame(patch.pixels)
    if np.shape(patch.landmarks) != (5, 2) or not np.all(np.isfinite(patch.landmarks)):
        raise ValueError(f"expected five finite landmarks of shape (5, 2), got {np.shape(patch.landmarks)}")
    if not np.isfinite(patch.quality):
        raise ValueError(f"a face patch's quality must be finite, got {patch.quality}")


def cut_face_patch(frame: np.ndarray, landmarks: np.ndarray, quality: float) -> FacePatch:
    """The square of `frame` that the second model's chip of the face at `landmarks` is cut from, clipped to it."""
    check_frame(frame)
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"expected five finite landmarks of shape (5, 2), got {points.shape}")
    centre = points.astype(np.float64).mean(axis=0)
    reach = PATCH_REACH * float(np.max(np.linalg.norm(points - centre, axis=1))) + PATCH_SLACK_PX
    height, width = frame.shape[:2]
    left, top = max(0, int(np.floor(centre[0] - reach))), max(0, int(np.floor(centre[1] - reach)))
    right, bottom = min(width, int(np.ceil(centre[0] + reach))), min(height, int(np.ceil(centre[1] + reach)))
    if right <= left or bottom <= top:
        raise ValueError(f"landmarks around {centre[0]:g} {centre[1]:g} lie outside the {width}x{height} frame")
    pixels = np.array(frame[top:bottom, left:right], copy=True)
    return FacePatch(pixels, points - np.array([left, top], dtype=np.float32), float(quality))
