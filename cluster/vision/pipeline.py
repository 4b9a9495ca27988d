"""`FacePipeline`: frames in, recognised faces out.

The one entry point to the face models. It validates every frame first (so one bad frame
cannot fail a batch half-way), detects in one batched call, aligns, embeds every face of every
frame in one batched call, and scores quality. Frames larger than the detector's pixel budget
are detected on a downscaled copy and aligned from the full-resolution frame.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import structlog
import torch
from PIL import Image

from cluster.vision.aligner import FaceAligner
from cluster.vision.config import FaceModelsConfig
from cluster.vision.detections import Detections
from cluster.vision.detector import MTCNNDetector
from cluster.vision.device import resolve_target
from cluster.vision.embedder import FaceEmbedder
from cluster.vision.errors import InvalidImageError
from cluster.vision.face import Face
from cluster.vision.frames import validate_frame
from cluster.vision.quality import face_quality
from cluster.vision.second_stage import SecondStage
from cluster.vision.stage_times import StageTimes

log = structlog.get_logger(__name__)


def _downscaled(frame: np.ndarray, max_pixels: int) -> tuple[np.ndarray, float]:
    """The frame shrunk to at most `max_pixels`, and the scale applied.

    PIL resizes in uint8 with an antialiasing filter, so a 100-megapixel frame costs no float copy.
    """
    height, width = frame.shape[:2]
    if height * width <= max_pixels:
        return frame, 1.0
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small = Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(small), size[0] / width


MODEL_NAME = "mtcnn+dlib_resnet_v1"
"""The detector and primary model by name; `models_name` adds the second stage in use."""


def models_name(config: FaceModelsConfig) -> str:
    """'mtcnn+dlib_resnet_v1+faceres': the face models a score came from, as alerts and reports record them."""
    second = config.second_stage
    return MODEL_NAME if second is None else f"{MODEL_NAME}+{second.model}"


@dataclass(frozen=True, eq=False)
class TimedFaces:
    """Faces per frame (as `process` returns them) and the time each stage took for the whole batch."""

    faces: list[list[Face]]
    times: StageTimes


class FacePipeline:
    """Detection, alignment, embedding and quality for batches of RGB frames."""

    def __init__(self, config: FaceModelsConfig | None = None):
        self.config = config or FaceModelsConfig()
        target = resolve_target(self.config.device, self.config.half)
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)
        detector_config = self.config.detector
        self.detector = MTCNNDetector(
            min_face_size=detector_config.min_face_size,
            thresholds=detector_config.thresholds,
            pyramid_factor=detector_config.pyramid_factor,
            device=target.device,
            half=target.half,
            compile_backend=detector_config.compile,
        )
        self.aligner = FaceAligner(device=target.device)
        self.embedder = FaceEmbedder(
            device=target.device,
            threads=self.config.threads,
            channels_last=self.config.embedder.channels_last,
            half=target.half,
            max_batch=self.config.embedder.max_batch,
        )
        second = self.config.second_stage
        self.second_stage = (
            None
            if second is None
            else SecondStage(
                second.model,
                device=target.device,
                half=target.half,
                threads=self.config.threads,
                channels_last=second.channels_last,
                max_batch=second.max_batch,
                flip=second.flip,
            )
        )
        self.target = target
        log.info("face_pipeline_ready", device=target.device, half=target.half, threads=torch.get_num_threads())

    def process(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces per frame, in input order. Raises InvalidImageError naming a bad frame's index."""
        return self.process_timed(frames).faces

    def with_second_stage(self, frames: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> list[list[Face]]:
        """The given faces of each frame, each also embedded by the second-stage model (when one is configured).

        Enrolment, retrospective search and evaluation call this for the faces they keep; live
        frames do not, and give the second model only a tracklet's best faces.
        """
        if self.second_stage is None:
            return [list(found) for found in faces]
        landmarks = [np.stack([f.landmarks for f in found]) if found else np.zeros((0, 5, 2)) for found in faces]
        vectors = iter(self.second_stage.embed(frames, landmarks))
        name = self.second_stage.name
        return [[replace(face, extra_embeddings={name: next(vectors)}) for face in found] for found in faces]

    def process_timed(self, frames: Sequence[np.ndarray]) -> TimedFaces:
        """As `process`, with the seconds spent detecting, aligning and embedding (quality counts as embedding)."""
        for index, frame in enumerate(frames):
            try:
                validate_frame(frame)
            except InvalidImageError as exc:
                raise InvalidImageError(f"frame {index}: {exc}") from exc
        if not frames:
            return TimedFaces([], StageTimes(0.0, 0.0, 0.0))
        started = time.perf_counter()
        detections = self._detect(frames)
        detected = time.perf_counter()
        chips_per_frame = [self.aligner.align(frame, found.landmarks) for frame, found in zip(frames, detections)]
        chips = np.concatenate(chips_per_frame)
        aligned = time.perf_counter()
        embeddings = self.embedder.embed(chips)
        results: list[list[Face]] = []
        offset = 0
        for found, chips_of_frame in zip(detections, chips_per_frame):
            faces = []
            for i in range(len(found)):
                faces.append(
                    Face(
                        box=found.boxes[i],
                        landmarks=found.landmarks[i],
                        score=float(found.scores[i]),
                        quality=face_quality(found.landmarks[i], chips_of_frame[i], float(found.scores[i])),
                        embedding=embeddings[offset + i],
                    )
                )
            offset += len(found)
            results.append(faces)
        times = StageTimes(
            detect_s=detected - started, align_s=aligned - detected, embed_s=time.perf_counter() - aligned
        )
        return TimedFaces(results, times)

    def _detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect on frames within the pixel budget; map boxes of shrunk frames back."""
        max_pixels = self.config.detector.max_pixels
        shrunk = [_downscaled(frame, max_pixels) for frame in frames]
        for index, (_, scale) in enumerate(shrunk):
            if scale < 1.0:
                log.info("frame_downscaled_for_detection", frame=index, scale=round(scale, 4))
        found = self.detector.detect([small for small, _ in shrunk])
        return [
            d if scale == 1.0 else Detections(d.boxes / scale, d.scores, d.landmarks / scale)
            for d, (_, scale) in zip(found, shrunk)
        ]
