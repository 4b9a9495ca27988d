"""The replayed cameras: the crowd's videos served as RTSP cameras, as many as the ramp's largest step.

Camera i replays the crowd's camera i mod k (k cameras in the crowd). The first k are the crowd's own
cameras, under their own ids and neighbours; beyond that, copy c of the street runs under
`<id>_copy<c>` with its neighbours in the same copy, so the Coordinator fuses each copy of the street
on its own, as a further street where the same people walk. Scoring maps a copy back to the
crowd's camera it replays.
"""

from dataclasses import dataclass
from pathlib import Path

from cluster.cameras.config import CameraConfig, Neighbour
from cluster.crowd.truth import CrowdTruth

COPY_MARK = "_copy"


@dataclass(frozen=True)
class ReplayCamera:
    """One replayed camera: its id in the run, the crowd camera whose video it plays, and which copy of the street."""

    id: str
    crowd_camera: str
    video: Path
    copy: int
    neighbours: tuple[Neighbour, ...]


def replay_cameras(truth: CrowdTruth, crowd_dir: Path, count: int) -> tuple[ReplayCamera, ...]:
    """`count` cameras over the crowd's videos (see the module docstring)."""
    if count < 1:
        raise ValueError(f"a load test needs at least one camera, got {count}")
    cameras = []
    for index in range(count):
        copy, crowd = divmod(index, len(truth.cameras))
        camera = truth.cameras[crowd]
        cameras.append(
            ReplayCamera(
                id=copy_id(camera.id, copy),
                crowd_camera=camera.id,
                video=crowd_dir / camera.file,
                copy=copy,
                neighbours=tuple(
                    Neighbour(camera_id=copy_id(n.camera, copy), walking_seconds=n.walking_seconds)
                    for n in camera.neighbours
                ),
            )
        )
    ids = {camera.id for camera in cameras}
    # A copy that is cut short (fewer cameras than the crowd's) leaves out neighbours that do not run.
    return tuple(
        ReplayCamera(c.id, c.crowd_camera, c.video, c.copy, tuple(n for n in c.neighbours if n.camera_id in ids))
        for c in cameras
    )


def copy_id(camera_id: str, copy: int) -> str:
    return camera_id if copy == 0 else f"{camera_id}{COPY_MARK}{copy}"


def camera_configs(
    cameras: tuple[ReplayCamera, ...], urls: list[str], sample_fps: float, signage: str, *, neighbours: bool
) -> list[CameraConfig]:
    """The cameras' configuration, each reading its RTSP URL.

    neighbours: with their walking times (what the Coordinator fuses over: every camera of the ramp), or
    without (what the cameras run with: a step runs some of them, and a camera's own settings must not
    change as others join, or the reload would restart it).
    """
    if len(urls) != len(cameras):
        raise ValueError(f"{len(cameras)} cameras but {len(urls)} URLs")
    return [
        CameraConfig(
            id=camera.id,
            source=url,
            neighbours=camera.neighbours if neighbours else (),
            sample_fps=sample_fps,
            signage_notice=signage,
        )
        for camera, url in zip(cameras, urls, strict=True)
    ]
