"""Recorded crowds with known identities, for load tests and the end-to-end demo.

No real multi-camera footage of known people exists for us, so real faces (the ten LFW people
of tests/data) are composited onto a street background and written as one H.264 MP4 per
camera, with `ground_truth.json` saying who is where in every frame:

    truth = make_crowd(CrowdSpec(cameras=4, seconds=60, seed=1), Path("out/crowd"))

The same spec and seed give byte-identical ground truth and identical decoded frames (on one
machine: x264's output depends on its thread count, which is fixed here).
"""

import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import structlog
from tqdm import tqdm

from cluster.crowd.background import (
    GeneratedBackground,
    VideoBackground,
    background_length,
    choose_background,
    open_background,
)
from cluster.crowd.photos import find_people, locate_faces
from cluster.crowd.schedule import plan_appearances, plan_people, plan_street
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.sprites import FaceSprite
from cluster.crowd.truth import CameraTruth, CrowdTruth

log = structlog.get_logger(__name__)

TRUTH_FILE = "ground_truth.json"
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "threads": "2", "x264-params": "bframes=0"}
"""Half the size of ultrafast for ~1.4x its encoding time. No B-frames, so decode order is display
order (simple to replay live); a fixed thread count keeps the bitstream reproducible."""


def make_crowd(spec: CrowdSpec, out_dir: Path, background: Path | None = None, progress: bool = False) -> CrowdTruth:
    """Write cam0.mp4 ... and ground_truth.json into `out_dir` and return the truth.

    background: a video to composite onto; by default the street clip of ../shared or of
    tests/data/video, else a drawn street. Shows a tqdm bar of frames written on stderr if
    `progress`.
    """
    started = time.monotonic()
    background_name = choose_background(background)
    scenery = open_background(background_name, spec.width, spec.height, spec.fps, spec.seed)
    photos = {name: locate_faces(paths) for name, paths in find_people().items()}
    people = plan_people(spec, photos)
    cameras = plan_street(spec, background_length(scenery))
    aspects = {photo.path: photo.aspect for found in photos.values() for photo in found}
    truth = CrowdTruth(
        spec=spec,
        background=background_name,
        cameras=cameras,
        people=people,
        appearances=plan_appearances(spec, cameras, people, aspects),
    )
    sprites = {photo.path: FaceSprite(photo) for found in photos.values() for photo in found}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TRUTH_FILE).unlink(missing_ok=True)
    with tqdm(
        total=spec.cameras * spec.frames, unit="frame", desc="crowd", file=sys.stderr, disable=not progress
    ) as bar:
        for camera in cameras:
            _write_camera(truth, camera, scenery, sprites, out_dir / camera.file, bar)
    truth.save(out_dir / TRUTH_FILE)
    log.info(
        "crowd_made",
        out_dir=str(out_dir),
        cameras=spec.cameras,
        frames=spec.frames,
        appearances=len(truth.appearances),
        seconds=round(time.monotonic() - started, 1),
    )
    return truth


def _write_camera(
    truth: CrowdTruth,
    camera: CameraTruth,
    scenery: VideoBackground | GeneratedBackground,
    sprites: dict[str, FaceSprite],
    path: Path,
    bar: tqdm,
) -> None:
    """Composite and encode one camera's video, frame by frame."""
    placed = truth.faces_by_frame(camera.id)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=camera.fps, options=X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = camera.width, camera.height, "yuv420p"
        stream.codec_context.gop_size = camera.fps
        stream.codec_context.time_base = Fraction(1, camera.fps)
        for index, background in enumerate(scenery.frames(camera.background_offset, camera.frames)):
            frame = np.array(background)
            for appearance, face in placed[index]:
                sprites[appearance.photos[face.photo]].paste(frame, face)
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
            bar.update()
        container.mux(stream.encode(None))
