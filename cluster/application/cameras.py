"""Camera changes at run time (`lfr cameras add/remove/list`): found on a running cluster, and audited.

The cameras run under the `CameraRegistry` of a live run (`lfr cameras run`, `lfr run`). This
module finds that registry (on this machine, or at an address), asks it to add or remove one
camera, and writes one audit entry per change with who made it.
"""

import logging
import os
import socket

import ray
from ray.actor import ActorHandle

from actors.camera_registry import NAMESPACE, REGISTRY_NAME
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cameras.config import CameraConfig
from cluster.cameras.status import CameraStatus

ADDRESS_PROBE_TIMEOUT_S = 2.0
"""Ray retries an unreachable address for minutes; a plain TCP connect tells us at once."""
CALL_TIMEOUT_S = 30.0
LIST_TIMEOUT_S = 10.0


class CameraClusterError(Exception):
    """No usable camera cluster: the message says what to start or pass."""


class CameraControl:
    """The running cameras of a live run, changed one at a time with an audit entry for each."""

    def __init__(self, registry: ActorHandle, audit: AuditLog, actor: str) -> None:
        self._registry = registry
        self._audit = audit
        self._actor = actor

    @classmethod
    def connect(cls, address: str | None, audit: AuditLog, actor: str) -> "CameraControl":
        return cls(connect_registry(address), audit, actor)

    def add(self, camera: CameraConfig) -> None:
        """Start a camera; refused (LookupError, ValueError) when its id runs already or a neighbour is unknown."""
        _call(self._registry.add.remote(camera))
        self._audit.record(
            self._actor,
            AuditAction.CONFIG_CHANGE,
            f"camera:{camera.id}",
            {"change": "added", "source_kind": str(camera.source_kind), "sample_fps": camera.sample_fps},
        )

    def remove(self, camera_id: str) -> None:
        """Stop a camera; LookupError when none with that id runs."""
        _call(self._registry.remove.remote(camera_id))
        self._audit.record(self._actor, AuditAction.CONFIG_CHANGE, f"camera:{camera_id}", {"change": "removed"})


def running_cameras(address: str | None) -> list[CameraStatus]:
    """Every running camera with its health, in id order (a read: nothing to audit, no database opened)."""
    statuses: list[CameraStatus] = _call(connect_registry(address).list.remote(), LIST_TIMEOUT_S)
    return statuses


def connect_registry(address: str | None) -> ActorHandle:
    """The camera registry of a running cluster; CameraClusterError saying what to do when there is none.

    Clusters that `lfr cameras run` starts use Ray's token authentication (Ray's default), and
    Ray sends its token only to a cluster it found itself (`auto`): with an explicit address,
    set RAY_AUTH_MODE=token in the environment, as Ray requires.
    """
    if not ray.is_initialized():
        if address is not None:
            _probe(address)
        try:
            ray.init(address=address or "auto", namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as exc:
            hint = (
                "; if it uses token authentication (as `lfr cameras run` does), set RAY_AUTH_MODE=token"
                if address is not None and os.environ.get("RAY_AUTH_MODE") != "token"
                else ""
            )
            raise CameraClusterError(
                f"no running camera cluster found ({exc}){hint}; start one with `lfr cameras run --config FILE`,"
                " or pass --address HOST:PORT"
            ) from exc
    try:
        return ray.get_actor(REGISTRY_NAME, namespace=NAMESPACE)
    except ValueError as exc:
        raise CameraClusterError(
            f"the Ray cluster at {ray.get_runtime_context().gcs_address} runs no camera registry;"
            " start one with `lfr cameras run --config FILE`"
        ) from exc


def _probe(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise CameraClusterError(f"--address must be HOST:PORT, got '{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise CameraClusterError(
            f"nothing answers at {address} ({exc.strerror or exc}); is `lfr cameras run` running there?"
        ) from exc


def _call(ref: ray.ObjectRef, timeout_s: float = CALL_TIMEOUT_S):
    """The result of a registry call; its own error (not Ray's wrapper) when it raised."""
    try:
        return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.RayTaskError as exc:
        raise exc.cause from None
    except ray.exceptions.GetTimeoutError as exc:
        raise CameraClusterError(f"the camera registry did not answer within {timeout_s:g} s") from exc
    except ray.exceptions.RayActorError as exc:
        raise CameraClusterError(f"the camera registry is gone: {str(exc).splitlines()[0]}") from exc
