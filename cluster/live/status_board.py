"""The status board: where the live pipeline posts how a deployment is doing, for the control room to read.

The pipeline publishes a `DeploymentStatus` snapshot every few seconds; the API (its own
process, which may stay up while the cluster restarts) reads the latest one per deployment.
Only the latest snapshot of each deployment is kept: this is a board, not a history (the
audit log and the alert store keep the history that must be kept).

A snapshot holds counts and camera health only: faces seen is a count, never a face.
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from cluster.cameras.health import CameraHealth, CameraState
from cluster.database.engine import Database
from cluster.database.schema import require_current
from cluster.deployment.window import DeploymentWindow

SNAPSHOT_VERSION = 1

metadata = sa.MetaData()

deployment_status = sa.Table(
    "deployment_status",
    metadata,
    sa.Column("deployment_id", sa.String, primary_key=True),
    sa.Column("published_at", sa.Double, nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class DeploymentStatus:
    """A deployment as the pipeline sees it now.

    faces_seen: faces detected in the window (a count only; nothing of them is kept).
    non_match_deletions: tracklets deleted because they matched nobody.
    alerts: alerts raised in this deployment so far.
    published_at: when the pipeline took the snapshot (unix seconds).
    target_fpir / expected_tpir: what the threshold in force was calibrated for.
    """

    deployment_id: str
    place: str
    window: DeploymentWindow
    watchlist_id: str
    watchlist_version: str
    threshold: float
    model: str
    faces_seen: int
    non_match_deletions: int
    alerts: int
    cameras: tuple[CameraHealth, ...]
    published_at: float
    target_fpir: float | None = None
    expected_tpir: float | None = None

    def __post_init__(self) -> None:
        if not self.deployment_id.strip():
            raise ValueError("DeploymentStatus.deployment_id must not be empty")
        for name in ("faces_seen", "non_match_deletions", "alerts"):
            if getattr(self, name) < 0:
                raise ValueError(f"DeploymentStatus.{name} is a count, so >= 0; got {getattr(self, name)}")
        if not math.isfinite(self.threshold) or not math.isfinite(self.published_at):
            raise ValueError(
                f"DeploymentStatus {self.deployment_id}: threshold and published_at must be finite numbers"
            )
        ids = [camera.camera_id for camera in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"DeploymentStatus {self.deployment_id}: cameras listed twice in {ids}")


class StatusBoard:
    """Latest `DeploymentStatus` per deployment, in the records database."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self._clock = clock
        require_current(database)

    def publish(self, status: DeploymentStatus) -> None:
        """Replace the deployment's snapshot with `status`."""
        values = {
            "deployment_id": status.deployment_id,
            "published_at": status.published_at,
            "snapshot": _encode(status),
        }
        with self.database.writing() as connection:
            updated = connection.execute(
                deployment_status.update()
                .where(deployment_status.c.deployment_id == status.deployment_id)
                .values(**values)
            ).rowcount
            if not updated:
                connection.execute(deployment_status.insert().values(**values))

    def latest(self, deployment_id: str) -> DeploymentStatus | None:
        """The deployment's latest snapshot, or None when none was ever published."""
        query = sa.select(deployment_status.c.snapshot).where(deployment_status.c.deployment_id == deployment_id)
        with self.database.reading() as connection:
            text = connection.execute(query).scalar()
        return None if text is None else _decode(text)

    def all_latest(self) -> list[DeploymentStatus]:
        """Every deployment's latest snapshot, most recently published first."""
        query = sa.select(deployment_status.c.snapshot).order_by(
            deployment_status.c.published_at.desc(), deployment_status.c.deployment_id
        )
        with self.database.reading() as connection:
            return [_decode(text) for text in connection.execute(query).scalars()]

    def age_s(self, status: DeploymentStatus) -> float:
        """Seconds since the snapshot was taken: a stale board means the pipeline stopped publishing."""
        return max(0.0, self._clock() - status.published_at)


def _encode(status: DeploymentStatus) -> str:
    document = asdict(status)
    document["version"] = SNAPSHOT_VERSION
    return json.dumps(document, sort_keys=True, allow_nan=False)


def _decode(text: str) -> DeploymentStatus:
    document = json.loads(text)
    version = document.pop("version", None)
    if version != SNAPSHOT_VERSION:
        raise ValueError(
            f"deployment status snapshot version {version!r} is not {SNAPSHOT_VERSION}: the pipeline and the"
            " API run different releases; upgrade the older one"
        )
    cameras = tuple(
        CameraHealth(**{**camera, "state": CameraState(camera["state"])}) for camera in document.pop("cameras")
    )
    window = DeploymentWindow.from_document(document.pop("window"))
    return DeploymentStatus(**document, window=window, cameras=cameras)
