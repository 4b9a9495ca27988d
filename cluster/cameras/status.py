"""What `lfr cameras list` shows per camera: its configuration in brief, its health, its process."""

from dataclasses import asdict, dataclass

from cluster.cameras.config import CameraConfig, SourceKind
from cluster.cameras.health import CameraHealth
from cluster.cameras.source import redact


@dataclass(frozen=True)
class ActorProcess:
    """The Ray actor a camera runs in and its operating-system process.

    The actor id stays when Ray restarts a crashed actor (the pid changes); a camera the
    registry replaced gets a new actor id. `rss_bytes` is the process's own resident memory;
    `shared_bytes` is the shared memory it has mapped, mostly Ray's object store holding the
    frames it handed out (they belong to the store, and leave when their consumers drop them).
    """

    actor_id: str
    pid: int
    rss_bytes: int
    shared_bytes: int


@dataclass(frozen=True)
class CameraStatus:
    """One camera as its registry sees it.

    `health` and `process` are None when the camera's actor did not answer in time; `problem`
    then says why.
    """

    camera_id: str
    source: str
    source_kind: SourceKind
    location: str | None
    sample_fps: float
    managed_by_config: bool
    health: CameraHealth | None
    process: ActorProcess | None
    problem: str | None

    @classmethod
    def of(
        cls,
        config: CameraConfig,
        *,
        managed_by_config: bool,
        health: CameraHealth | None,
        process: ActorProcess | None,
        problem: str | None,
    ) -> "CameraStatus":
        return cls(
            camera_id=config.id,
            source=redact(config.source),
            source_kind=config.source_kind,
            location=config.location.name if config.location else None,
            sample_fps=config.sample_fps,
            managed_by_config=managed_by_config,
            health=health,
            process=process,
            problem=problem,
        )

    def to_json(self) -> dict:
        """A JSON-ready dict (the state as its string value)."""
        record = asdict(self)
        if self.health is not None:
            record["health"]["state"] = str(self.health.state)
        return record
