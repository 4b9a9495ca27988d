"""Starting or joining Ray for the product's own commands, reliably on a loaded machine.

On a busy laptop Ray's own start can fail for reasons that pass: the raylet gives up when its
dashboard agent is slow to write its port file (Ray issue 65983), or the node does not register
within Ray's fixed 30 s ("The current node timed out during startup"). Such a start is shut
down, waited for and tried again, with what happened logged and shown; any other failure, or
the last attempt's, is raised as `RayStartError` saying what to do.

A local cluster keeps its objects in memory only (`object_memory.py`: no spilling, no disk
fallback); its tmpfs directory is wiped by `stop_ray`. A cluster joined by address was started
by its operator, with the same options (`ray start` arguments in `docs/security.md`).
"""

import logging
from collections.abc import Callable

import ray
import structlog
from ray import serve
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from actors.camera_registry import NAMESPACE
from cluster.application.object_memory import ObjectMemory, ObjectMemoryError

log = structlog.get_logger(__name__)

START_ATTEMPTS = 3
TRANSIENT_START_MESSAGES = (
    "timed out during startup",
    "Timed out waiting for file",
    "Timed out after",
    "GCS cannot find the node",
)
"""Ray start failures that a loaded machine causes and a second try usually gets past."""


_object_memory: ObjectMemory | None = None
"""The tmpfs directory of the local cluster this process started, wiped when it stops."""


class RayStartError(RuntimeError):
    """Ray could not be started or joined; the message says why and what to do."""


def _is_transient(error: BaseException) -> bool:
    return any(message in str(error) for message in TRANSIENT_START_MESSAGES)


def start_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Join the Ray cluster at `address`, or start a local one; the GCS address of the cluster joined.

    Does nothing but return the address when this process is already connected. A local cluster
    gets `num_cpus` and an object store of `object_store_memory` bytes (None: Ray's defaults),
    kept in memory only.
    """
    global _object_memory
    if ray.is_initialized():
        return ray.get_runtime_context().gcs_address
    local: dict = {}
    if address is None:
        if _object_memory is not None:
            _object_memory.wipe()
        try:
            _object_memory = ObjectMemory.create()
        except ObjectMemoryError as exc:
            raise RayStartError(str(exc)) from exc
        local = {"num_cpus": num_cpus, "object_store_memory": object_store_memory, **_object_memory.init_options()}

    def before_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        ray.shutdown()
        log.warning("ray_start_retry", attempt=state.attempt_number, error=str(error).splitlines()[0])
        if progress is not None:
            progress(
                f"Ray did not start on attempt {state.attempt_number} ({str(error).splitlines()[0]}); trying again"
            )

    retrying = Retrying(
        stop=stop_after_attempt(START_ATTEMPTS),
        wait=wait_exponential(multiplier=2, max=10),
        retry=retry_if_exception(_is_transient),
        before_sleep=before_retry,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    **local,
                )
    except Exception as exc:
        stop_ray()
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise RayStartError(
            f"could not start or join {where} after {START_ATTEMPTS} attempts: {str(exc).splitlines()[0]};"
            " if the machine is busy, try again when it is quieter; see /tmp/ray/session_latest/logs/raylet.err"
        ) from exc
    gcs_address = ray.get_runtime_context().gcs_address
    log.info("ray_started", address=gcs_address, joined=address is not None)
    return gcs_address


def stop_ray(*, stop_serve: bool = False) -> None:
    """Disconnect from Ray (stopping the local cluster if this process started it).

    stop_serve: first shut Serve down, for a local cluster this process started. Serve keeps its
    client in the process; left behind, a later connection in the same process (a test, a notebook)
    would reach for the old cluster's Serve controller.
    """
    global _object_memory
    if stop_serve and ray.is_initialized():
        serve.shutdown()
    ray.shutdown()
    if _object_memory is not None:
        _object_memory.wipe()
        _object_memory = None
