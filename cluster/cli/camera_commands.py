"""`lfr cameras run|add|remove|list`: a deployment's cameras on a Ray cluster.

`run` starts a local Ray cluster, the camera registry and the configured cameras, shows a live
status table, reloads the configuration when its file changes or on SIGHUP (cameras whose
config did not change keep running untouched), and stops everything on Ctrl-C or SIGTERM.
`add`, `remove` and `list` talk to the registry of a running `run`, found with
`ray.init(address="auto")` or at `--address HOST:PORT`.
"""

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from cluster.application.cameras import CameraClusterError, CameraControl, running_cameras
from cluster.application.live_run import LiveRun, LiveRunSettings, LiveSnapshot, stop_and_reload_signals
from cluster.audit.opening import open_audit_log
from cluster.cameras.config import CAMERA_ACTOR_CPUS, CameraConfig
from cluster.cameras.status import CameraStatus
from cluster.config import LfrConfig


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


def _control(args: argparse.Namespace, config: LfrConfig) -> CameraControl:
    """The running cameras, with the configured audit log recording who changes them."""
    return CameraControl.connect(args.address, open_audit_log(config.database, config.audit), _operator())


def _say(message: str) -> None:
    sys.stdout.write(f"{message}\n")


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def run_add(args: argparse.Namespace, config: LfrConfig) -> int:
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
        _control(args, config).add(camera)
    except (CameraClusterError, LookupError, ValueError) as exc:
        sys.stderr.write(f"lfr: {_message(exc)}\n")
        return 1
    sys.stdout.write(f"added camera {camera.id} ({camera.source_kind}, {camera.sample_fps:g} fps)\n")
    return 0


def run_remove(args: argparse.Namespace, config: LfrConfig) -> int:
    try:
        _control(args, config).remove(args.camera_id)
    except (CameraClusterError, LookupError) as exc:
        sys.stderr.write(f"lfr: {_message(exc)}\n")
        return 1
    sys.stdout.write(f"removed camera {args.camera_id}\n")
    return 0


def run_list(args: argparse.Namespace, _config: LfrConfig) -> int:
    try:
        statuses = running_cameras(args.address)
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
    settings = LiveRunSettings(
        actor=_operator(),
        num_cpus=args.num_cpus,
        faces=False,
        config_path=config_path,
        period_s=args.refresh,
        camera_cpus=args.cpus_per_camera,
    )
    run = LiveRun(config, settings)
    run.start(progress=_say)
    try:
        address = run.ray_address
        header = (
            f"Ray at {address}; cameras from {config_path} (reloaded on change or SIGHUP); Ctrl-C stops\n"
            f"from another shell: lfr cameras list (from another machine: RAY_AUTH_MODE=token"
            f" lfr cameras list --address {address})\n"
        )

        def show(snapshot: LiveSnapshot) -> None:
            screen = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
            statuses = list(snapshot.cameras)
            sys.stdout.write(
                screen + header + format_table(statuses, snapshot.at) + _progress_line(statuses, snapshot.note)
            )
            sys.stdout.flush()

        with stop_and_reload_signals() as (stopping, reload_requested):
            run.run(stopping, reload_requested, show)
        sys.stdout.write("stopping the cameras\n")
        return 0
    finally:
        run.stop()


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
