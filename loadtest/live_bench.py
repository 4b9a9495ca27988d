"""What the live-pipeline benchmarks share: looping file cameras, and a pipeline warmed up on every camera."""

import time
from collections.abc import Sequence
from pathlib import Path

from actors.live_pipeline import LivePipeline
from cluster.cameras.config import CameraConfig

SIGNAGE = "Live facial recognition in use (benchmark)"


def looping_cameras(files: Sequence[Path], sample_fps: float) -> list[CameraConfig]:
    """One camera per file, playing it in a loop at full resolution (up to 4K), sampled at `sample_fps`."""
    return [
        CameraConfig(
            id=f"cam{i}",
            source=str(path),
            loop=True,
            sample_fps=sample_fps,
            max_width=3840,
            max_height=2160,
            signage_notice=SIGNAGE,
        )
        for i, path in enumerate(files)
    ]


def warm_up(pipeline: LivePipeline, startup_timeout_s: float, warmup_s: float) -> None:
    """Wait until every camera has had a result (RuntimeError after `startup_timeout_s`), then `warmup_s` more."""
    deadline = time.monotonic() + startup_timeout_s
    while not all(s.results_ok for s in pipeline.stats()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no results from every camera within {startup_timeout_s:.0f} s: {pipeline.stats()}")
        time.sleep(0.5)
    time.sleep(warmup_s)
