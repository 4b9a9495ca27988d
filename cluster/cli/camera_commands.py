"""`lfr cameras run|add|remove|list`: a deployment's cameras on a Ray cluster.

`run` starts a local Ray cluster, the camera registry and the configured cameras, shows a live
status table, reloads the configuration when its file changes or on SIGHUP (cameras whose
config did not change keep running untouched), and stops everything on Ctrl-C or SIGTERM.
`add`, `remove` and `list` talk to the registry of a running `run`, found with
`ray.init(address="auto")` or at `--address HOST:PORT`.
"""

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import ray
from pydantic import ValidationError
from ray.actor import ActorHandle

from actors.camera_actor import CAMERA_ACTOR_CPUS
from actors.camera_registry import NAMESPACE, REGISTRY_NAME, CameraRegistry, ReloadResult
from cluster.cameras.config import CameraConfig
from cluster.cameras.status import CameraStatus
from cluster.config import ConfigError, LfrConfig, load_config

ADDRESS_PROBE_TIMEOUT_S = 2.0
"""Ray retries an unreachable address for minutes; a plain TCP connect tells us at once."""

CALL_TIMEOUT_S = 30.0
LIST_TIMEOUT_S = 10.0


class CameraClusterError(Exception):
    """There is no camera cluster to talk to; the message says how to start or find one."""


def register(commands: argparse._SubParsersAction) -> None:
    cameras = commands.add_parser("cameras", help="Run a deployment's cameras; add, remove or list them at run time.")
    actions = cameras.add_subparsers(dest="cameras_action", required=True, metavar="ACTION")

    run = actions.add_parser("run", help="Start Ray and the configured cameras; show their status live.")
    run.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="YAML configuration with a cameras section; reloaded when the file changes or on SIGHUP.",
    )
    run.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="Logical CPUs for the local Ray cluster.")
    run.add_argument(
        "--cpus-per-camera", type=float, default=CAMERA_ACTOR_CPUS, help="Logical CPUs reserved per camera actor."
    )
    run.add_argument("--refresh", type=float, default=1.0, help="Seconds between status updates.")
    run.set_defaults(handler=run_cameras)

    add = actions.add_parser("add", help="Start one more camera on the running cluster.")
    add.add_argument("camera_id", metavar="ID", help="A slug such as oxford_st_2.")
    add.add_argument("url", metavar="URL", help="rtsp://, http(s):// (MPEG-TS), file:// or a file path.")
    add.add_argument("--signage", required=True, help="The notice displayed to the public at this camera.")
    add.add_argument("--fps", type=float, default=None, help="Frames per second handed downstream.")
    add.add_argument("--max-width", type=int, default=None)
    add.add_argument("--max-height", type=int, default=None)
    add.add_argument("--loop", action="store_true", help="Files only: start again at the end.")
    add.add_argument("--fast", action="store_true", help="Files only: decode as fast as possible, not in real time.")
    add.add_argument("--location", default=None, help="Place name; give --lat and --lon with it.")
    add.add_argument("--lat", type=float, default=None)
    add.add_argument("--lon", type=float, default=None)
    _add_address(add)
    add.set_defaults(handler=run_add)

    remove = actions.add_parser("remove", help="Stop one camera on the running cluster.")
    remove.add_argument("camera_id", metavar="ID")
    _add_address(remove)
    remove.set_defaults(handler=run_remove)

    listing = actions.add_parser("list", help="Show every camera's state and health.")
    listing.add_argument("--json", action="store_true", help="Print one JSON document instead of a table.")
    _add_address(listing)
    listing.set_defaults(handler=run_list)


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default=None, help="HOST:PORT of the Ray cluster (default: the one running on this machine)."
    )


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


def run_add(args: argparse.Namespace, _config: LfrConfig) -> int:
    fields = {
        "id": args.camera_id,
        "source": args.url,
        "signage_notice": args.signage,
        "sample_fps": args.fps,
        "max_width": args.max_width,
        "max_height": args.max_height,
        "loop": args.loop or None,
        "realtime": False if args.fast else None,
    }
    if args.location is not None or args.lat is not None or args.lon is not None:
        fields["location"] = {"name": args.location, "lat": args.lat, "lon": args.lon}
    try:
        camera = CameraConfig.model_validate({key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        sys.stderr.write(f"lfr: invalid camera '{args.camera_id}':\n{_validation_lines(exc)}\n")
        return 2
    try:
        _call(connect_registry(args.address).add.remote(camera))
    except (CameraClusterError, LookupError, ValueError) as exc:
        sys.stderr.write(f"lfr: {_message(exc)}\n")
        return 1
    sys.stdout.write(f"added camera {camera.id} ({camera.source_kind}, {camera.sample_fps:g} fps)\n")
    return 0


def run_remove(args: argparse.Namespace, _config: LfrConfig) -> int:
    try:
        _call(connect_registry(args.address).remove.remote(args.camera_id))
    except (CameraClusterError, LookupError) as exc:
        sys.stderr.write(f"lfr: {_message(exc)}\n")
        return 1
    sys.stdout.write(f"removed camera {args.camera_id}\n")
    return 0


def run_list(args: argparse.Namespace, _config: LfrConfig) -> int:
    try:
        statuses = _call(connect_registry(args.address).list.remote(), LIST_TIMEOUT_S)
    except CameraClusterError as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps({"cameras": [status.to_json() for status in statuses]}, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(statuses, time.time()))
    return 0


def run_cameras(args: argparse.Namespace, config: LfrConfig) -> int:
    config_path: Path | None = getattr(args, "config", None)
    if config_path is None:
        sys.stderr.write("lfr: give the deployment's configuration: lfr cameras run --config FILE\n")
        return 2
    ray.init(
        num_cpus=args.num_cpus,
        include_dashboard=False,
        namespace=NAMESPACE,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    stopping, reload_requested = threading.Event(), threading.Event()
    previous_handlers = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGINT, lambda *_: stopping.set()),
            (signal.SIGTERM, lambda *_: stopping.set()),
            (signal.SIGHUP, lambda *_: reload_requested.set()),
        )
    }
    registry = CameraRegistry.options(name=REGISTRY_NAME, namespace=NAMESPACE).remote(args.cpus_per_camera)
    try:
        address = ray.get_runtime_context().gcs_address
        header = (
            f"Ray at {address}; cameras from {config_path} (reloaded on change or SIGHUP); Ctrl-C stops\n"
            f"from another shell: lfr cameras list (from another machine: RAY_AUTH_MODE=token"
            f" lfr cameras list --address {address})\n"
        )
        note = _describe_reload(_call(registry.reload.remote(config.cameras)))
        signature = _file_signature(config_path)
        while not stopping.is_set():
            if reload_requested.is_set() or _file_signature(config_path) != signature:
                reload_requested.clear()
                signature = _file_signature(config_path)
                note = _reload(registry, config_path)
            statuses = _call(registry.list.remote(), LIST_TIMEOUT_S)
            screen = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
            sys.stdout.write(screen + header + format_table(statuses, time.time()) + _progress_line(statuses, note))
            sys.stdout.flush()
            stopping.wait(args.refresh)
        sys.stdout.write("stopping the cameras\n")
        _call(registry.stop_all.remote())
        return 0
    except CameraClusterError as exc:
        sys.stderr.write(f"lfr: {exc}; stopping\n")
        return 1
    finally:
        ray.shutdown()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def _reload(registry: ActorHandle, config_path: Path) -> str:
    """Reload the file's cameras; a file that does not load leaves the running cameras as they are."""
    try:
        cameras = load_config(config_path).cameras
        return _describe_reload(_call(registry.reload.remote(cameras)))
    except (ConfigError, ValueError) as exc:
        first, *details = str(exc).splitlines()
        return f"kept the running cameras: {' '.join([first, '; '.join(line.strip() for line in details)])}"


def _describe_reload(result: ReloadResult) -> str:
    changes = [
        f"{what} {', '.join(ids)}"
        for what, ids in (("added", result.added), ("removed", result.removed), ("restarted", result.restarted))
        if ids
    ]
    return f"{time.strftime('%H:%M:%S')} config loaded: " + ("; ".join(changes) or "no change")


def _file_signature(path: Path) -> tuple[int, int] | None:
    """What tells us the file changed: its modification time and size (None while it is missing)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _progress_line(statuses: list[CameraStatus], note: str) -> str:
    states: dict[str, int] = {}
    for status in statuses:
        state = str(status.health.state) if status.health else "unknown"
        states[state] = states.get(state, 0) + 1
    fps_out = sum(status.health.fps_out for status in statuses if status.health)
    summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "no cameras"
    return f"{time.strftime('%H:%M:%S')}  {summary}  |  {fps_out:.1f} frames/s out  |  {note}\n"


def format_table(statuses: list[CameraStatus], now: float) -> str:
    """One row per camera: state and for how long, rates, counts, memory, and the last error."""
    columns = ("CAMERA", "STATE", "FOR", "FPS IN", "FPS OUT", "DECODED", "DROPPED", "RECONN", "LAST FRAME", "MEM")
    rows = []
    for status in statuses:
        health, process = status.health, status.process
        if health is None:
            rows.append((status.camera_id, "unknown", "", "", "", "", "", "", "", "", status.problem or ""))
            continue
        last_frame = f"{now - health.last_frame_time:.1f}s ago" if health.last_frame_time else "never"
        rows.append(
            (
                status.camera_id,
                str(health.state),
                f"{now - health.since:.0f}s",
                f"{health.fps_in:.1f}",
                f"{health.fps_out:.1f}",
                str(health.frames_decoded),
                str(health.frames_dropped),
                str(health.reconnects),
                last_frame,
                f"{process.rss_bytes / 2**20:.0f}MiB" if process else "?",
                health.last_error or "",
            )
        )
    if not rows:
        return "no cameras run\n"
    widths = [max(len(columns[i]), *(len(row[i]) for row in rows)) for i in range(len(columns))]
    lines = ["  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)) + "  LAST ERROR"]
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        lines.append(f"{cells}  {row[-1]}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _validation_lines(error: ValidationError) -> str:
    return "\n".join(
        f"  {'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}" for item in error.errors()
    )


def _message(exc: Exception) -> str:
    """An exception's message without the quotes `str()` puts around a LookupError's."""
    return str(exc.args[0]) if exc.args else str(exc)
