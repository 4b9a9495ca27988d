"""Five-point face alignment: a similarity transform from detected landmarks to a fixed chip.

Each embedder was trained on chips with the face at a fixed place, so every face, enrolled or
live, goes through this one class, built with the template of the embedder it feeds: "dlib"
(150x150, the default, for the dlib ResNet) or "arcface" (InsightFace's five-point template
scaled to 224x224, for faceres). The transform is fitted per face in closed form (Umeyama least
squares, no reflection); sampling runs as one batched `grid_sample`. When a face is larger than
the chip its region is first shrunk with an antialiasing filter, so that the chip does not alias
(bilinear sampling alone would skip pixels).
"""

import numpy as np
import torch
import torch.nn.functional as F

from cluster.vision.frames import validate_frame

CHIP_SIZE = 150
CHIP_PADDING = 0.25
"""Border around the landmark template, as a fraction of the template's extent (dlib's 25%)."""

TEMPLATE_UNIT = np.array(
    [
        [0.2207, 0.2094],  # left eye
        [0.7680, 0.2111],  # right eye
        [0.5002, 0.5217],  # nose tip
        [0.2473, 0.8093],  # left mouth corner
        [0.7526, 0.8143],  # right mouth corner
    ],
    dtype=np.float64,
)
"""Where MTCNN's five points sit in a unit face square, fitted to dlib's chip layout."""

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],  # left eye
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)
"""InsightFace's ArcFace landmark targets in a 112x112 chip, pixel centres at integer coordinates."""
ARCFACE_CHIP_SIZE = 224
"""The arcface template's default chip: twice ArcFace's 112, the input size of faceres."""

TEMPLATES = ("dlib", "arcface")
"""Template names `FaceAligner` accepts; "dlib" is the default."""


def chip_template(chip_size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The dlib template's five landmark targets in chip pixel coordinates, shape (5, 2)."""
    return (padding + TEMPLATE_UNIT) / (1.0 + 2.0 * padding) * chip_size


def arcface_template(chip_size: int = ARCFACE_CHIP_SIZE) -> np.ndarray:
    """The ArcFace template's five landmark targets scaled to a chip_size chip, shape (5, 2).

    Scaled as InsightFace scales it (points times chip_size / 112), so 224 puts them at twice
    the 112 coordinates.
    """
    return ARCFACE_TEMPLATE_112 * (chip_size / 112.0)


def similarity_transforms(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms mapping each point set in `source` onto `target`.

    source: (n, k, 2) points per face; target: (k, 2). Returns (n, 2, 3) matrices M with
    target ~= M[:, :2] @ p + M[:, 2]. Reflections are excluded, as a mirrored face is not
    the same face.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.ndim != 3 or src.shape[1:] != dst.shape or dst.shape[1] != 2:
        raise ValueError(f"expected source (n, {len(dst)}, 2) for target {dst.shape}, got {src.shape}")
    src_mean = src.mean(axis=1, keepdims=True)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    covariance = np.einsum("ki,nkj->nij", dst_c, src_c) / len(dst)
    u, sigma, vt = np.linalg.svd(covariance)
    det_sign = np.sign(np.linalg.det(u @ vt))
    correction = np.ones((len(src), 2))
    correction[:, 1] = det_sign
    rotation = u @ (correction[:, :, None] * vt)
    src_var = (src_c**2).sum(axis=(1, 2)) / len(dst)
    scale = (sigma * correction).sum(axis=1) / np.maximum(src_var, 1e-12)
    linear = scale[:, None, None] * rotation
    translation = dst_mean - np.einsum("nij,nj->ni", linear, src_mean[:, 0, :])
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def _homogeneous(affine: np.ndarray) -> np.ndarray:
    """(n, 2, 3) affine matrices as (n, 3, 3), so that they can be inverted and composed."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (len(affine), 1, 3))
    return np.concatenate([affine, bottom], axis=1)


class FaceAligner:
    """Cuts aligned chips for an embedder out of a frame, given MTCNN landmarks.

    template: "dlib" (default; chip_size defaults to 150 and padding to dlib's 0.25) or "arcface"
    (chip_size defaults to 224; the template fixes its own margins, so padding is refused).
    """

    def __init__(
        self,
        chip_size: int | None = None,
        padding: float | None = None,
        device: str = "cpu",
        template: str = "dlib",
    ):
        if template not in TEMPLATES:
            raise ValueError(f"unknown aligner template {template!r}; expecting one of {', '.join(TEMPLATES)}")
        if template == "arcface" and padding is not None:
            raise ValueError("padding applies to the dlib template only; the arcface template fixes its own margins")
        size = chip_size if chip_size is not None else (CHIP_SIZE if template == "dlib" else ARCFACE_CHIP_SIZE)
        if size < 16:
            raise ValueError(f"chip_size must be at least 16 pixels, got {size}")
        margin = CHIP_PADDING if padding is None else padding
        if not 0.0 <= margin <= 1.0:
            raise ValueError(f"padding must be within 0..1, got {margin}")
        self.template_name = template
        self.chip_size = size
        self.device = torch.device(device)
        self.template = chip_template(size, margin) if template == "dlib" else arcface_template(size)
        centres = torch.arange(size, dtype=torch.float64)
        grid_y, grid_x = torch.meshgrid(centres, centres, indexing="ij")
        self._chip_points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)

    def align(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Chips of shape (n, chip, chip, 3) uint8 for the n faces whose landmarks are given."""
        validate_frame(frame)
        points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
        if len(points) == 0:
            return np.zeros((0, self.chip_size, self.chip_size, 3), np.uint8)
        if not np.isfinite(points).all():
            raise ValueError("landmarks contain NaN or infinite values; drop those faces before aligning")
        to_chip = similarity_transforms(points, self.template)
        pixels = torch.from_numpy(frame).to(self.device).permute(2, 0, 1)
        sources, to_source = self._shrunk_regions(pixels, to_chip)
        return self._sample(sources, to_source)

    def _shrunk_regions(self, pixels: torch.Tensor, to_chip: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Crop each face's region, shrink it to chip scale with antialiasing, pad to one batch.

        Returns the padded batch (n, 3, h, w) float32 and, per face, the affine map from chip
        pixels to pixels of its crop.
        """
        _, height, width = pixels.shape
        chip_to_frame = np.linalg.inv(_homogeneous(to_chip))
        last = self.chip_size - 1
        corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], dtype=np.float64)
        crops, maps = [], []
        for face_to_chip, face_to_frame in zip(to_chip, chip_to_frame):
            preimage = corners @ face_to_frame[:2].T
            x0 = int(np.clip(np.floor(preimage[:, 0].min()) - 1, 0, width - 1))
            y0 = int(np.clip(np.floor(preimage[:, 1].min()) - 1, 0, height - 1))
            x1 = int(np.clip(np.ceil(preimage[:, 0].max()) + 2, x0 + 1, width))
            y1 = int(np.clip(np.ceil(preimage[:, 1].max()) + 2, y0 + 1, height))
            crop = pixels[:, y0:y1, x0:x1].float()
            scale = min(1.0, float(np.sqrt(abs(np.linalg.det(face_to_chip[:, :2])))))
            if scale < 1.0:
                size = (max(1, round((y1 - y0) * scale)), max(1, round((x1 - x0) * scale)))
                crop = F.interpolate(crop[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
            sy, sx = crop.shape[1] / (y1 - y0), crop.shape[2] / (x1 - x0)
            frame_to_crop = np.array(
                [[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5], [0.0, 0.0, 1.0]]
            )
            maps.append((frame_to_crop @ face_to_frame)[:2])
            crops.append(crop)
        max_h = max(c.shape[1] for c in crops)
        max_w = max(c.shape[2] for c in crops)
        batch = torch.zeros((len(crops), 3, max_h, max_w), dtype=torch.float32, device=self.device)
        for index, crop in enumerate(crops):
            batch[index, :, : crop.shape[1], : crop.shape[2]] = crop
        return batch, np.stack(maps)

    def _sample(self, sources: torch.Tensor, to_source: np.ndarray) -> np.ndarray:
        """Bilinear sampling of every chip pixel centre from its face's source crop."""
        _, _, height, width = sources.shape
        maps = torch.from_numpy(to_source)
        coords = torch.einsum("nij,hwj->nhwi", maps, self._chip_points)
        norm = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=torch.float64)
        grid = (coords * norm - 1.0).float().to(self.device)
        chips = F.grid_sample(sources, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return chips.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
