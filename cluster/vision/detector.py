"""Batched MTCNN face detection in torch, matching facenet-pytorch's `MTCNN.detect` output.

The cascade is the classic one (P-Net over an image pyramid, then R-Net and O-Net on crops), with
the same area-interpolation resampling, thresholds and NMS steps as facenet-pytorch, so boxes and
landmarks agree with it. It is faster because:

- each frame gets one summed-area table (exact integer sums); every pyramid level and every
  R-/O-Net crop is an exact area average read from it with a few gathers, instead of one
  `interpolate(mode="area")` pass per pyramid level and one per candidate box;
- all three nets run on channels-last tensors, which oneDNN convolves and pools much faster on
  CPU than the default layout;
- frames of the same size share each P-Net call, and the candidates of all frames go through
  R-Net and O-Net together, with no numpy round trips between the stages;
- on CPU the work is cut to cache-sized calls (P-Net strips, R-/O-Net chunks of a few dozen
  crops), which run several times faster per pixel than whole 1080p levels or 1000-crop batches.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import structlog
import torch
from torchvision.ops import batched_nms

from cluster.vision.detections import Detections
from cluster.vision.errors import InvalidImageError
from cluster.vision.frames import validate_frame
from cluster.vision.mtcnn_nets import PNET_STRIDE, PNET_WINDOW, MTCNNNets, PNet, load_nets

log = structlog.get_logger(__name__)

RNET_INPUT_SIZE = 24
ONET_INPUT_SIZE = 48
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
"""Input normalisation the nets were trained with: (pixel - 127.5) / 128."""

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
DEFAULT_NMS_THRESHOLDS = (0.5, 0.7, 0.7, 0.7)
"""IoU limits for NMS within one pyramid scale, across scales, after R-Net, and (as overlap
over the smaller box) after O-Net: facenet-pytorch's values."""
MIN_FACE_SIZE_FLOOR = PNET_WINDOW
"""Smaller faces would need an upscaled pyramid, which MTCNN's first stage was not trained on."""
DEFAULT_MIN_FACE_SIZE = 20
DEFAULT_PYRAMID_FACTOR = 0.709

SHAPES_PER_CHUNK = 8
"""R-/O-Net batches are padded to a multiple of chunk / 8, so a stream of frames reuses a few
batch shapes: every new shape costs oneDNN (or cuDNN) a fresh kernel set-up."""

MIN_STRIP_ROWS = 8
"""Fewest P-Net output rows per strip: each strip re-reads 10 overlapping input rows."""

SAT_BLOCK_ROWS = 64
"""Rows of a summed-area table built per pass (see `_integrate`)."""

INT32_SAFE_PIXELS = (2**31 - 1) // 255
"""Largest frame (in pixels) whose summed-area table cannot overflow int32."""

CHANNELS = 3

COMPILE_BACKENDS = ("inductor", "cudagraphs", "eager")
"""torch.compile backends the nets may run under: inductor (CUDA graphs on a GPU), cudagraphs alone, and
eager (traced only: checks the wrapping on any machine)."""
COMPILED_SHAPES = 256
"""Input shapes each compiled net keeps (dynamo's cache): every pyramid level, strip and padded
crop batch is one, and a recompile beyond the limit would silently fall back to eager."""


@dataclass(frozen=True)
class _Batching:
    """How much work one net call gets.

    On CPU, calls whose tensors stay cache-sized run fastest (a 1080p pyramid level in one
    P-Net call, or 1000 R-Net crops, is slower per pixel than strips of it, mostly from page
    faults on fresh large buffers); on a GPU, larger calls keep the device busy.
    """

    pnet_pixels: int
    rnet_crops: int
    onet_crops: int


CPU_BATCHING = _Batching(pnet_pixels=2**18, rnet_crops=64, onet_crops=32)
GPU_BATCHING = _Batching(pnet_pixels=2**25, rnet_crops=4096, onet_crops=1024)


@dataclass(frozen=True)
class _SizeGroup:
    """Frames of one size: their summed-area tables stacked, for batched pyramid levels."""

    height: int
    width: int
    frame_ids: torch.Tensor
    tables: torch.Tensor


@dataclass(frozen=True)
class _SummedAreaTables:
    """Summed-area tables of all frames in one flat (pixels, 3) buffer.

    Frame f's table is `flat[bases[f] : bases[f] + (h + 1) * (w + 1)]` viewed as
    (h + 1, w + 1, 3), with a zero first row and column, so that the sum over rows [a, b) and
    columns [c, d) is `T[b, d] - T[a, d] - T[b, c] + T[a, c]`.
    """

    flat: torch.Tensor
    bases: torch.Tensor
    heights: torch.Tensor
    widths: torch.Tensor
    groups: list[_SizeGroup]


@dataclass(frozen=True)
class _Candidates:
    """Face boxes (n, 4) float32 x1 y1 x2 y2 with the index of the frame each belongs to."""

    boxes: torch.Tensor
    frame_ids: torch.Tensor

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, index: torch.Tensor) -> "_Candidates":
        return _Candidates(self.boxes[index], self.frame_ids[index])


def _unit_interval(name: str, value: float) -> float:
    """`value` as a float if strictly between 0 and 1 (scores and overlaps), else ValueError."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    return float(value)


def _thresholds(name: str, values: Sequence[float], count: int) -> tuple[float, ...]:
    """`count` unit-interval values, one per stage, else ValueError naming the bad one."""
    if len(values) != count:
        raise ValueError(f"{name} needs {count} values, got {len(values)}: {values}")
    return tuple(_unit_interval(f"{name}[{i}]", v) for i, v in enumerate(values))


def _device(device: str, half: bool) -> torch.device:
    """Parse the device up front, so a typo or a missing GPU fails here, not mid-detection."""
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: {err}") from err
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} GPUs are visible")
    if half and parsed.type != "cuda":
        raise ValueError(f"half=True needs a CUDA device, got {device!r}; use half=False on CPU")
    return parsed


@contextmanager
def _exact_fp32_convolutions(device: torch.device) -> Iterator[None]:
    """Keep cuDNN from running fp32 convolutions in TF32, its default on Ampere and newer GPUs.

    TF32's 10-bit mantissa moves scores and box offsets enough to change which candidates win
    NMS, so boxes drift from the fp32 reference. The flag is process-wide: it is restored on exit.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def _validated(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check every frame before any work starts; the error names the first bad frame's index."""
    checked = []
    for index, frame in enumerate(frames):
        try:
            checked.append(validate_frame(frame))
        except InvalidImageError as err:
            raise InvalidImageError(f"frame {index}: {err}") from err
    return checked


def _copy_rows(destination: torch.Tensor, source: np.ndarray | torch.Tensor) -> None:
    """Copy uint8 pixel rows into (part of) a table, converting to the table's integer dtype."""
    if isinstance(source, np.ndarray):
        np.copyto(destination.numpy(), source)
    else:
        destination.copy_(source)


def _integrate(table: torch.Tensor, frame: np.ndarray) -> None:
    """Fill one frame's (h + 1, w + 1, 3) summed-area table in place.

    Works a block of SAT_BLOCK_ROWS rows at a time, so each block is still in cache for its
    copy, both prefix sums and the carry from the block above: about twice as fast on CPU as
    whole-table passes.
    """
    source: np.ndarray | torch.Tensor = frame
    if table.device.type != "cpu":
        host = np.ascontiguousarray(frame)
        source = torch.from_numpy(host if host.flags.writeable else host.copy()).to(table.device)
    table[0] = 0
    table[:, 0] = 0
    height = frame.shape[0]
    for start in range(1, height + 1, SAT_BLOCK_ROWS):
        stop = min(start + SAT_BLOCK_ROWS, height + 1)
        block = table[start:stop]
        _copy_rows(block[:, 1:], source[start - 1 : stop - 1])
        block.cumsum_(1).cumsum_(0).add_(table[start - 1])


def _summed_area_tables(frames: list[np.ndarray], device: torch.device) -> _SummedAreaTables:
    """Build every frame's summed-area table; integer sums keep area averages exact."""
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, frame in enumerate(frames):
        by_size.setdefault((frame.shape[0], frame.shape[1]), []).append(index)
    largest = max(h * w for h, w in by_size)
    dtype = torch.int32 if largest <= INT32_SAFE_PIXELS else torch.int64
    total = sum((h + 1) * (w + 1) * len(ids) for (h, w), ids in by_size.items())
    flat = torch.empty((total, CHANNELS), dtype=dtype, device=device)
    bases = [0] * len(frames)
    groups = []
    offset = 0
    for (height, width), ids in by_size.items():
        size = (height + 1) * (width + 1)
        tables = flat[offset : offset + len(ids) * size].view(len(ids), height + 1, width + 1, CHANNELS)
        for slot, index in enumerate(ids):
            _integrate(tables[slot], frames[index])
            bases[index] = offset + slot * size
        groups.append(_SizeGroup(height, width, torch.tensor(ids, device=device), tables))
        offset += len(ids) * size
    return _SummedAreaTables(
        flat=flat,
        bases=torch.tensor(bases, device=device),
        heights=torch.tensor([f.shape[0] for f in frames], device=device),
        widths=torch.tensor([f.shape[1] for f in frames], device=device),
        groups=groups,
    )


def _area_windows(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-open ranges [lo, hi) that area interpolation of `length` pixels to `size` averages.

    Same integer rule as torch's adaptive average pooling; `start` and `length` broadcast, the
    output gains a trailing dimension of `size`.
    """
    steps = torch.arange(size, device=length.device)
    lo = start[..., None] + (steps * length[..., None]) // size
    hi = start[..., None] + ((steps + 1) * length[..., None] + size - 1) // size
    return lo, hi


def _normalised_average(sums: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Turn integer window sums into the nets' input, (average - PIXEL_MEAN) * PIXEL_SCALE."""
    return sums.to(torch.float32).mul_(PIXEL_SCALE / area.to(torch.float32)).sub_(PIXEL_MEAN * PIXEL_SCALE)


def _area_resample(
    tables: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor], cols: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """Area averages of a stack of tables (n, H+1, W+1, 3) over row x column windows, as
    normalised (n, 3, rows, cols) channels-last input for P-Net."""
    row_lo, row_hi = rows
    col_lo, col_hi = cols
    row_sums = tables.index_select(1, row_hi) - tables.index_select(1, row_lo)
    frames, height, width = row_sums.shape[0], len(row_hi), len(col_hi)
    # Gathering single values from (rows, columns x channels) is faster than gathering
    # 3-value pixels from (rows, columns, channels).
    channel = torch.arange(CHANNELS, device=tables.device)
    row_sums = row_sums.view(frames, height, -1)
    hi = row_sums.index_select(2, (col_hi[:, None] * CHANNELS + channel).flatten())
    lo = row_sums.index_select(2, (col_lo[:, None] * CHANNELS + channel).flatten())
    sums = (hi - lo).view(frames, height, width, CHANNELS)
    area = ((row_hi - row_lo)[:, None] * (col_hi - col_lo)[None, :])[..., None]
    return _normalised_average(sums, area).permute(0, 3, 1, 2)


def _strips(out_rows: int, frames: int, level_width: int, pixel_budget: int) -> list[tuple[int, int]]:
    """Split P-Net's output rows into [first, stop) strips of about `pixel_budget` input pixels."""
    step = max(MIN_STRIP_ROWS, pixel_budget // (frames * level_width * PNET_STRIDE))
    return [(first, min(first + step, out_rows)) for first in range(0, out_rows, step)]


def _area_crops(sat: _SummedAreaTables, bounds: torch.Tensor, frame_ids: torch.Tensor, size: int) -> torch.Tensor:
    """Area-resample pixel rectangles (n, 4: x0 y0 x1 y1, end exclusive) to (n, 3, size, size).

    One gather reads the four table corners of every output pixel of every crop.
    """
    row_lo, row_hi = _area_windows(bounds[:, 1], bounds[:, 3] - bounds[:, 1], size)
    col_lo, col_hi = _area_windows(bounds[:, 0], bounds[:, 2] - bounds[:, 0], size)
    rows = torch.cat([row_lo, row_hi], dim=1)
    cols = torch.cat([col_lo, col_hi], dim=1)
    stride = sat.widths[frame_ids] + 1
    pixels = sat.bases[frame_ids][:, None, None] + rows[:, :, None] * stride[:, None, None] + cols[:, None, :]
    corners = sat.flat.index_select(0, pixels.flatten()).view(len(bounds), 2 * size, 2 * size, CHANNELS)
    sums = corners[:, size:, size:] - corners[:, :size, size:] - corners[:, size:, :size] + corners[:, :size, :size]
    area = ((row_hi - row_lo)[:, :, None] * (col_hi - col_lo)[:, None, :])[..., None]
    return _normalised_average(sums, area).permute(0, 3, 1, 2)


def _crop_bounds(boxes: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Integer pixel rectangles of boxes clipped to their frame, as facenet-pytorch crops them
    (coordinates truncated, then the 1-based box clamped to the frame)."""
    whole = boxes.trunc().long()
    x0 = whole[:, 0].clamp(min=1) - 1
    y0 = whole[:, 1].clamp(min=1) - 1
    x1 = torch.minimum(whole[:, 2], widths)
    y1 = torch.minimum(whole[:, 3], heights)
    return torch.stack([x0, y0, x1, y1], dim=1)


def _inside_frame(sat: _SummedAreaTables, candidates: _Candidates) -> tuple[_Candidates, torch.Tensor]:
    """Drop candidates with no pixel inside their frame; return the rest with crop bounds."""
    bounds = _crop_bounds(candidates.boxes, sat.heights[candidates.frame_ids], sat.widths[candidates.frame_ids])
    inside = (bounds[:, 2] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 1])
    return candidates.select(inside), bounds[inside]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow boxes to squares around their centre (the nets expect square crops)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    x1 = boxes[:, 0] + width * 0.5 - side * 0.5
    y1 = boxes[:, 1] + height * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _apply_offsets(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply R-/O-Net box regression (offsets in units of the inclusive box size)."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + offsets * torch.stack([width, height, width, height], dim=1)


def _nms_min_overlap(
    boxes: torch.Tensor, scores: torch.Tensor, frame_ids: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Greedy per-frame NMS where overlap is intersection over the smaller box's area.

    Suppresses a face box nested inside a bigger one, which IoU would keep. Returns kept indices,
    highest score first.
    """
    order = scores.argsort(descending=True)
    ordered = boxes[order]
    x1, y1, x2, y2 = ordered.unbind(1)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    inter_w = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :]) + 1).clamp(min=0)
    inter_h = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :]) + 1).clamp(min=0)
    overlap = inter_w * inter_h / torch.minimum(area[:, None], area[None, :])
    same_frame = frame_ids[order][:, None] == frame_ids[order][None, :]
    suppresses = ((overlap > threshold) & same_frame).cpu().numpy()
    removed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not removed[i]:
            keep.append(i)
            removed |= suppresses[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


class MTCNNDetector:
    """Detects faces and their five landmarks in batches of RGB frames.

    `half` is accepted on CUDA (the pipeline asks for fp16 there by default) but all three nets
    stay fp32: on an H100, fp16 in any of them moved a few faces of the reference test set below
    IoU 0.9 (landmarks off by up to 12 px), because score changes in the 4th digit flip which of
    two overlapping candidates survives NMS, and it saved no time (the GPU path is bound by kernel
    launches, not arithmetic). On CPU, `half=True` is refused.
    """

    def __init__(
        self,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
        pyramid_factor: float = DEFAULT_PYRAMID_FACTOR,
        device: str = "cpu",
        half: bool = False,
        nms_thresholds: tuple[float, float, float, float] = DEFAULT_NMS_THRESHOLDS,
        compile_backend: str | None = None,
    ) -> None:
        if isinstance(min_face_size, bool) or not isinstance(min_face_size, int):
            raise ValueError(f"min_face_size must be an int, got {min_face_size!r}")
        if min_face_size < MIN_FACE_SIZE_FLOOR:
            raise ValueError(
                f"min_face_size must be at least {MIN_FACE_SIZE_FLOOR} pixels (P-Net's window), got {min_face_size}"
            )
        self.min_face_size = min_face_size
        self.thresholds = _thresholds("thresholds", thresholds, 3)
        self.pyramid_factor = _unit_interval("pyramid_factor", pyramid_factor)
        self.nms_thresholds = _thresholds("nms_thresholds", nms_thresholds, 4)
        self.device = _device(device, half)
        self.half = half
        if half:
            log.info("mtcnn_fp16_declined", reason="fp16 moves detections away from the fp32 reference")
        self._batching = CPU_BATCHING if self.device.type == "cpu" else GPU_BATCHING
        self._nets: MTCNNNets = load_nets(self.device)
        self.compile_backend = compile_backend
        if compile_backend is not None:
            self._nets = _compiled(self._nets, compile_backend, self.device)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Find faces in each RGB uint8 frame; frames may differ in size.

        Returns one `Detections` per frame, in input order, faces sorted by score (highest
        first). Raises InvalidImageError naming the first unusable frame before any work is done.
        """
        checked = _validated(frames)
        if not checked:
            return []
        with torch.inference_mode(), _exact_fp32_convolutions(self.device):
            sat = _summed_area_tables(checked, self.device)
            candidates = self._propose(sat)
            log.debug("mtcnn_stage", stage="pnet", frames=len(checked), candidates=len(candidates))
            if len(candidates):
                candidates = self._refine(sat, candidates)
            log.debug("mtcnn_stage", stage="rnet", frames=len(checked), candidates=len(candidates))
            found = self._finish(sat, candidates)
            log.debug("mtcnn_stage", stage="onet", frames=len(checked), faces=len(found[0]))
        return _split_by_frame(*found, frame_count=len(checked))

    def _pyramid_scales(self, height: int, width: int) -> list[float]:
        """Scales at which P-Net's 12-pixel window matches faces from min_face_size upwards."""
        scale = PNET_WINDOW / self.min_face_size
        shortest = min(height, width) * scale
        scales = []
        while shortest >= PNET_WINDOW:
            scales.append(scale)
            scale *= self.pyramid_factor
            shortest *= self.pyramid_factor
        return scales

    def _propose(self, sat: _SummedAreaTables) -> _Candidates:
        """Stage 1: P-Net over each size group's pyramid, NMS per scale then across scales."""
        boxes, scores, offsets, frame_ids = [], [], [], []
        for group in sat.groups:
            for scale in self._pyramid_scales(group.height, group.width):
                level_boxes, level_scores, level_offsets, level_frames = self._scan_level(group, scale)
                keep = batched_nms(level_boxes, level_scores, level_frames, self.nms_thresholds[0])
                boxes.append(level_boxes[keep])
                scores.append(level_scores[keep])
                offsets.append(level_offsets[keep])
                frame_ids.append(level_frames[keep])
        if not boxes:
            empty = torch.zeros((0, 4), device=self.device)
            return _Candidates(empty, torch.zeros((0,), dtype=torch.long, device=self.device))
        all_boxes, all_scores = torch.cat(boxes), torch.cat(scores)
        all_offsets, all_frames = torch.cat(offsets), torch.cat(frame_ids)
        keep = batched_nms(all_boxes, all_scores, all_frames, self.nms_thresholds[1])
        kept = all_boxes[keep]
        size = (kept[:, 2:] - kept[:, :2]).repeat(1, 2)
        return _Candidates(_square(kept + all_offsets[keep] * size), all_frames[keep])

    def _scan_level(
        self, group: _SizeGroup, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """P-Net windows above threshold at one pyramid scale, for all frames of a size group.

        The level is resampled and scanned in horizontal strips; a strip of output rows
        [first, stop) needs input rows [2 first, 2 (stop - 1) + 12), so strips overlap by 10 rows
        and give exactly the windows a whole-level pass would.
        """
        level_height, level_width = int(group.height * scale + 1), int(group.width * scale + 1)
        zero = torch.zeros((), dtype=torch.long, device=self.device)
        row_lo, row_hi = _area_windows(zero, torch.tensor(group.height, device=self.device), level_height)
        cols = _area_windows(zero, torch.tensor(group.width, device=self.device), level_width)
        strips = _strips(PNet.output_size(level_height), len(group.frame_ids), level_width, self._batching.pnet_pixels)
        hits = []
        for first, stop in strips:
            top, bottom = PNET_STRIDE * first, min(PNET_STRIDE * (stop - 1) + PNET_WINDOW, level_height)
            level = _area_resample(group.tables, (row_lo[top:bottom], row_hi[top:bottom]), cols)
            offsets, probability = self._nets.pnet(level)
            hits.append(_window_hits(offsets, probability, scale, self.thresholds[0], first))
        boxes, scores, offsets, slots = (torch.cat(parts) for parts in zip(*hits, strict=True))
        return boxes, scores, offsets, group.frame_ids[slots]

    def _refine(self, sat: _SummedAreaTables, candidates: _Candidates) -> _Candidates:
        """Stage 2: R-Net rescoring of all frames' candidates in one batch, NMS, regression."""
        candidates, bounds = _inside_frame(sat, candidates)
        offsets, scores = [], []
        chunk = self._batching.rnet_crops
        for start in range(0, len(candidates), chunk):
            part = slice(start, start + chunk)
            crops = _area_crops(sat, bounds[part], candidates.frame_ids[part], RNET_INPUT_SIZE)
            chunk_offsets, chunk_scores = _padded_call(self._nets.rnet, crops, chunk)
            offsets.append(chunk_offsets)
            scores.append(chunk_scores)
        all_offsets = torch.cat(offsets) if offsets else candidates.boxes.new_zeros((0, 4))
        all_scores = torch.cat(scores) if scores else candidates.boxes.new_zeros((0,))
        passed = all_scores > self.thresholds[1]
        candidates, all_offsets, all_scores = candidates.select(passed), all_offsets[passed], all_scores[passed]
        keep = batched_nms(candidates.boxes, all_scores, candidates.frame_ids, self.nms_thresholds[2])
        boxes = _square(_apply_offsets(candidates.boxes[keep], all_offsets[keep]))
        return _Candidates(boxes, candidates.frame_ids[keep])

    def _finish(
        self, sat: _SummedAreaTables, candidates: _Candidates
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage 3: O-Net scores, boxes and landmarks, then min-overlap NMS per frame."""
        candidates, bounds = _inside_frame(sat, candidates)
        offsets, points, scores = [], [], []
        chunk = self._batching.onet_crops
        for start in range(0, len(candidates), chunk):
            part = slice(start, start + chunk)
            crops = _area_crops(sat, bounds[part], candidates.frame_ids[part], ONET_INPUT_SIZE)
            chunk_offsets, chunk_points, chunk_scores = _padded_call(self._nets.onet, crops, chunk)
            offsets.append(chunk_offsets)
            points.append(chunk_points)
            scores.append(chunk_scores)
        empty = candidates.boxes.new_zeros
        all_offsets = torch.cat(offsets) if offsets else empty((0, 4))
        all_points = torch.cat(points) if points else empty((0, 10))
        all_scores = torch.cat(scores) if scores else empty((0,))
        passed = all_scores > self.thresholds[2]
        boxes, frame_ids = candidates.boxes[passed], candidates.frame_ids[passed]
        all_offsets, all_points, all_scores = all_offsets[passed], all_points[passed], all_scores[passed]
        size = boxes[:, 2:] - boxes[:, :2] + 1
        landmarks = torch.stack(
            [
                all_points[:, :5] * size[:, :1] + boxes[:, :1] - 1,
                all_points[:, 5:] * size[:, 1:] + boxes[:, 1:2] - 1,
            ],
            dim=2,
        )
        boxes = _apply_offsets(boxes, all_offsets)
        keep = _nms_min_overlap(boxes, all_scores, frame_ids, self.nms_thresholds[3])
        return boxes[keep], all_scores[keep], landmarks[keep], frame_ids[keep]


def _compiled(nets: MTCNNNets, backend: str, device: torch.device) -> MTCNNNets:
    """The nets under torch.compile: on a GPU the detector is bound by kernel launches, which
    inductor fuses and CUDA graphs replay in one call per shape (compiled on first use of a shape)."""
    if backend not in COMPILE_BACKENDS:
        raise ValueError(f"compile_backend must be one of {', '.join(COMPILE_BACKENDS)} or None, got {backend!r}")
    if backend == "cudagraphs" and device.type != "cuda":
        raise ValueError("compile_backend 'cudagraphs' needs a CUDA device; use inductor, eager or None on CPU")
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, COMPILED_SHAPES)
    mode = "reduce-overhead" if backend == "inductor" and device.type == "cuda" else None
    # torch.compile returns an OptimizedModule that calls like the net it wraps.
    return MTCNNNets(*(torch.compile(net, backend=backend, mode=mode, dynamic=False) for net in nets))  # type: ignore[arg-type]


def _padded_call(net: torch.nn.Module, crops: torch.Tensor, chunk: int) -> tuple[torch.Tensor, ...]:
    """Run `net` on crops padded with zeros to a multiple of chunk / SHAPES_PER_CHUNK."""
    granule = max(1, chunk // SHAPES_PER_CHUNK)
    missing = -len(crops) % granule
    if missing:
        padding = crops.new_zeros((missing, *crops.shape[1:])).contiguous(memory_format=torch.channels_last)
        crops = torch.cat([crops, padding])
    outputs = net(crops)
    return tuple(output[: len(crops) - missing] for output in outputs)


def _window_hits(
    offsets: torch.Tensor, probability: torch.Tensor, scale: float, threshold: float, first_row: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """P-Net windows scoring >= threshold as frame-pixel boxes, with scores, offsets and the
    slot of their frame in the batch; `first_row` is the strip's first output row."""
    hits = (probability >= threshold).nonzero()
    slot, y, x = hits.unbind(1)
    cell = torch.stack([x, y + first_row], dim=1).to(torch.float32)
    top_left = ((PNET_STRIDE * cell + 1) / scale).floor()
    bottom_right = ((PNET_STRIDE * cell + PNET_WINDOW) / scale).floor()
    boxes = torch.cat([top_left, bottom_right], dim=1)
    return boxes, probability[slot, y, x], offsets[slot, :, y, x], slot


def _split_by_frame(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    frame_ids: torch.Tensor,
    frame_count: int,
) -> list[Detections]:
    """One Detections per frame, keeping the score order within each frame."""
    boxes_np = boxes.cpu().numpy()
    scores_np = scores.cpu().numpy()
    landmarks_np = landmarks.cpu().numpy()
    frames_np = frame_ids.cpu().numpy()
    results = []
    for frame in range(frame_count):
        mine = frames_np == frame
        results.append(Detections(boxes_np[mine], scores_np[mine], landmarks_np[mine]))
    return results
