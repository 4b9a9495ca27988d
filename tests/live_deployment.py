"""A deployment for `lfr run` as an operator writes one: a recorded crowd, a watchlist enrolled and frozen.

The crowd's cameras play recorded files; the watchlist holds some of the crowd's people, enrolled
through the audited service into milvus-lite; alerts and the audit log go to a SQLite file.
"""

from pathlib import Path

import yaml

from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.crowd.spec import CrowdSpec
from cluster.database.config import DatabaseConfig
from cluster.demo.scenario import DemoOptions, cameras_of, demo_deployment, enrol_watchlist
from cluster.gallery.config import GalleryConfig, LiteBackendConfig
from cluster.gallery.lite_backend import EmbeddedMilvus
from tests.crowds import CrowdCache

TARGET_FPIR = 1e-2


def write_deployment(workdir: Path, seconds: float, crowds: CrowdCache, cameras: int = 2) -> tuple[Path, LfrConfig]:
    """The configuration file (and its contents) for a crowd of `seconds` on `cameras` cameras (from `crowds`)."""
    truth = crowds.copy(
        CrowdSpec(cameras=cameras, seconds=seconds, fps=10, width=640, height=360, seed=2), workdir / "crowd"
    )
    config = LfrConfig(
        gallery=GalleryConfig(backend=LiteBackendConfig(data_dir=workdir / "milvus")),
        database=DatabaseConfig(url=str(workdir / "lfr.sqlite3")),
    )
    config = config.model_copy(update={"matching": config.matching.model_copy(update={"target_fpir": TARGET_FPIR})})
    version, _ = enrol_watchlist(truth, config)
    options = DemoOptions(workdir=workdir, target_fpir=TARGET_FPIR)
    config = config.model_copy(
        update={
            "cameras": cameras_of(truth, workdir / "crowd"),
            "deployment": demo_deployment(truth, version, options),
        }
    )
    path = workdir / "deployment.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path, config


def stop_gallery(config: LfrConfig) -> None:
    """Stop the milvus-lite server the enrolment started."""
    EmbeddedMilvus(config.gallery.backend, config.gallery.timeouts).stop()


def rtsp_cameras(cameras: list[CameraConfig], urls: list[str]) -> list[CameraConfig]:
    """The crowd's cameras read from the replay server, reconnecting quickly after it comes back."""
    return [
        CameraConfig.model_validate(
            {
                **camera.model_dump(),
                "source": url,
                "timeouts": {"open_s": 3.0, "read_s": 2.0},
                "backoff": {"initial_s": 0.1, "max_s": 1.0, "jitter": 0.2},
                "restart_budget": {"max_failures": 1000, "window_s": 60, "failed_retry_s": 5},
            }
        )
        for camera, url in zip(cameras, urls, strict=True)
    ]
