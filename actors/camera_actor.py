"""CameraActor: one camera in its own Ray actor, so that a bad stream can only hurt itself.

The PyAV container, the decoder and the reader thread are built inside the actor from the
config; only the config goes in and only typed values (frames, health) come out.

The camera starts in `__init__`, so an actor that Ray restarts after a crash (`max_restarts`)
streams again without its owner having to notice. Frames are pulled in their own concurrency
group: a consumer waiting in `next_frames` never delays `health()` or `stop()`.
"""

import os

import ray

from cluster.cameras.camera import Camera
from cluster.cameras.config import CAMERA_ACTOR_CPUS, CameraConfig
from cluster.cameras.frames import CameraFrame
from cluster.cameras.health import CameraHealth
from cluster.cameras.status import ActorProcess
from cluster.processes import process_memory

MAX_CAMERA_RESTARTS = 3


# Ray's typed ray.remote() lists the options of tasks only, not those of actors such as max_concurrency.
@ray.remote(  # type: ignore[call-overload]
    num_cpus=CAMERA_ACTOR_CPUS,
    max_restarts=MAX_CAMERA_RESTARTS,
    max_concurrency=4,
    concurrency_groups={"frames": 1},
)
class CameraActor:
    def __init__(self, config: CameraConfig) -> None:
        self._camera = Camera(config)
        self._camera.start()

    def start(self) -> None:
        """Start reading again after `stop()`; does nothing while the camera runs."""
        self._camera.start()

    def stop(self) -> bool:
        """Stop reading; True when the reader ended within the camera's stop timeout."""
        return self._camera.stop()

    def health(self) -> CameraHealth:
        return self._camera.health()

    def process(self) -> ActorProcess:
        memory = process_memory()
        actor_id = ray.get_runtime_context().get_actor_id()
        if actor_id is None:
            raise RuntimeError("CameraActor.process() reports on its actor: call it through the actor's handle")
        return ActorProcess(
            actor_id=actor_id,
            pid=os.getpid(),
            rss_bytes=memory.own_bytes,
            shared_bytes=memory.shared_bytes,
        )

    @ray.method(concurrency_group="frames")
    def next_frames(self, max_frames: int, timeout_s: float, newest_only: bool = False) -> list[CameraFrame]:
        """The oldest queued frames, up to `max_frames`, waiting at most `timeout_s` when none is queued.

        newest_only: the newest `max_frames`, older ones dropped and counted in the camera's health.
        """
        return self._camera.next_frames(max_frames, timeout_s, newest_only)
