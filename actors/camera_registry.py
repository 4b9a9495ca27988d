"""CameraRegistry: the one actor that knows which cameras run, and starts and stops their actors.

It is a named actor (`camera_registry` in namespace `lfr`) so that any driver on the cluster
(`lfr cameras add/remove/list`) can find it. It is not detached: it belongs to the process
that started it (`lfr cameras run`) and ends with it, taking its camera actors along (they
are its children), so stopping that one process stops the whole camera side cleanly.

Cameras come from two places. `reload(cameras)` makes the running set match the configuration
file: it adds new cameras, removes those the file no longer lists, restarts those whose config
changed, and leaves every other actor untouched. `add`/`remove` act on one camera at run time;
a camera added that way is not the file's, so a reload leaves it alone (unless the file now
defines that id, which then takes over). A config camera removed at run time returns at the
next reload if the file still lists it.

Calls run one at a time (the actor's default), so a reload and a `list` never see each other
half-done; nothing in them waits long (`STOP_WAIT_S`, `ANSWER_TIMEOUT_S`).
"""

from dataclasses import dataclass
from typing import Any

import ray
import structlog
from ray.actor import ActorHandle

from actors.camera_actor import CameraActor
from cluster.cameras.config import CAMERA_ACTOR_CPUS, CameraConfig, verify_cameras
from cluster.cameras.errors import DuplicateCameraError, UnknownCameraError
from cluster.cameras.health import CameraHealth
from cluster.cameras.status import ActorProcess, CameraStatus
from cluster.live.placement import NodePlacement

log = structlog.get_logger(__name__)

REGISTRY_NAME = "camera_registry"
NAMESPACE = "lfr"

STOP_WAIT_S = 2.0
"""How long a removed camera may take to close its stream cleanly before its actor is killed."""

ANSWER_TIMEOUT_S = 1.0
"""How long `list` waits for the cameras' answers; a camera that misses it is listed with its problem."""


@dataclass(frozen=True)
class ReloadResult:
    """Camera ids by what a reload did to them."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    restarted: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass
class _Entry:
    config: CameraConfig
    actor: ActorHandle
    managed_by_config: bool


@ray.remote(num_cpus=0, max_restarts=0)
class CameraRegistry:
    def __init__(self, camera_cpus: float = CAMERA_ACTOR_CPUS, placement: NodePlacement | None = None) -> None:
        self._camera_cpus = camera_cpus
        self._placement = placement or NodePlacement()
        self._entries: dict[str, _Entry] = {}

    def add(self, config: CameraConfig) -> None:
        """Start a camera at run time; refused when the id runs already or a neighbour is unknown."""
        if config.id in self._entries:
            raise DuplicateCameraError(
                f"camera '{config.id}' already runs; remove it first (lfr cameras remove {config.id}) or use another id"
            )
        for index, neighbour in enumerate(config.neighbours):
            if neighbour.camera_id not in self._entries:
                raise UnknownCameraError(
                    f"neighbours[{index}].camera_id: unknown camera '{neighbour.camera_id}';"
                    f" running: {', '.join(sorted(self._entries)) or 'none'}"
                )
        self._entries[config.id] = _Entry(config, self._start(config), managed_by_config=False)
        log.info("camera_added", camera_id=config.id)

    def remove(self, camera_id: str) -> None:
        """Stop a camera and end its actor."""
        if camera_id not in self._entries:
            raise UnknownCameraError(
                f"no camera '{camera_id}' runs; running: {', '.join(sorted(self._entries)) or 'none'}"
            )
        self._stop([self._entries.pop(camera_id).actor])
        log.info("camera_removed", camera_id=camera_id)

    def changes(self, cameras: list[CameraConfig]) -> ReloadResult:
        """What `reload(cameras)` would do, without doing it (so a consumer can stop its readers first)."""
        wanted = {camera.id: camera for camera in cameras}
        removed = [cid for cid, entry in self._entries.items() if entry.managed_by_config and cid not in wanted]
        added, restarted, unchanged = [], [], []
        for cid, config in wanted.items():
            entry = self._entries.get(cid)
            if entry is None:
                added.append(cid)
            elif entry.config != config:
                restarted.append(cid)
            else:
                unchanged.append(cid)
        return ReloadResult(tuple(added), tuple(removed), tuple(restarted), tuple(unchanged))

    def reload(self, cameras: list[CameraConfig]) -> ReloadResult:
        """Make the running cameras match the configuration's `cameras`; the others keep running untouched."""
        verify_cameras(cameras)
        wanted = {camera.id: camera for camera in cameras}
        result = self.changes(cameras)
        for cid in result.unchanged:
            self._entries[cid].managed_by_config = True
        self._stop([self._entries.pop(cid).actor for cid in (*result.removed, *result.restarted)])
        for cid in (*result.added, *result.restarted):
            self._entries[cid] = _Entry(wanted[cid], self._start(wanted[cid]), managed_by_config=True)
        log.info("cameras_reloaded", added=result.added, removed=result.removed, restarted=result.restarted)
        return result

    def stop_all(self) -> None:
        """Stop every camera, whatever added it (the end of a run)."""
        self._stop([entry.actor for entry in self._entries.values()])
        self._entries.clear()
        log.info("cameras_stopped")

    def actor(self, camera_id: str) -> ActorHandle:
        """The camera's actor, for a consumer to pull frames from."""
        if camera_id not in self._entries:
            raise UnknownCameraError(f"no camera '{camera_id}' runs")
        return self._entries[camera_id].actor

    def _start(self, config: CameraConfig) -> ActorHandle:
        # mypy does not apply class decorators: at run time CameraActor is an ActorClass.
        options = {"num_cpus": self._camera_cpus, **self._placement.ray_options()}
        return CameraActor.options(**options).remote(config)  # type: ignore[attr-defined]

    def _stop(self, actors: list[ActorHandle]) -> None:
        """Let the cameras close their streams (briefly), then end their actors."""
        if not actors:
            return
        ray.wait([actor.stop.remote() for actor in actors], num_returns=len(actors), timeout=STOP_WAIT_S)
        for actor in actors:
            ray.kill(actor, no_restart=True)

    def list(self) -> list[CameraStatus]:
        """Every camera with its health, in id order; a camera that does not answer in time says so."""
        entries = sorted(self._entries.values(), key=lambda entry: entry.config.id)
        if not entries:
            return []
        health_refs: list[ray.ObjectRef[CameraHealth]] = [entry.actor.health.remote() for entry in entries]
        process_refs: list[ray.ObjectRef[ActorProcess]] = [entry.actor.process.remote() for entry in entries]
        ray.wait(health_refs + process_refs, num_returns=len(health_refs) * 2, timeout=ANSWER_TIMEOUT_S)
        statuses = []
        for entry, health_ref, process_ref in zip(entries, health_refs, process_refs, strict=True):
            health, health_problem = _answer(health_ref)
            process, process_problem = _answer(process_ref)
            statuses.append(
                CameraStatus.of(
                    entry.config,
                    managed_by_config=entry.managed_by_config,
                    health=health,
                    process=process,
                    problem=health_problem or process_problem,
                )
            )
        return statuses


def _answer(ref: ray.ObjectRef) -> tuple[Any, str | None]:
    """The value of a finished call, or None and the reason there is none."""
    ready, _ = ray.wait([ref], timeout=0)
    if not ready:
        return None, f"the camera's actor did not answer within {ANSWER_TIMEOUT_S:g} s"
    try:
        return ray.get(ref), None
    except ray.exceptions.RayActorError as exc:
        return None, f"the camera's actor died: {str(exc).splitlines()[0]}"
