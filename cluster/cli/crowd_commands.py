"""`lfr crowd make`: synthesise a recorded multi-camera crowd with ground truth (see cluster/crowd/synthesis.py).

A bad request (an odd frame size, too many people, a missing background) is reported on stderr
with exit status 2 before any video is written.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from cluster.config import LfrConfig
from cluster.crowd.spec import MAX_PEOPLE, CrowdSpec
from cluster.crowd.synthesis import TRUTH_FILE, make_crowd


def register(commands: argparse._SubParsersAction) -> None:
    crowd = commands.add_parser("crowd", help="Synthesise recorded crowds of known people for load tests and demos.")
    actions = crowd.add_subparsers(dest="crowd_command", required=True, metavar="ACTION")
    make = actions.add_parser(
        "make",
        help="Write one MP4 per camera and ground_truth.json into OUT_DIR.",
        description="Composite real faces (the lfw10 photos shipped in the package) walking along a street of cameras.",
    )
    make.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="Folder for cam0.mp4, ... and ground_truth.json.")
    make.add_argument("--cameras", type=int, default=4, help="Cameras in a line along the street (default 4).")
    make.add_argument("--seconds", type=float, default=60.0, help="Length of each video (default 60).")
    make.add_argument("--seed", type=int, default=1, help="Same seed, same crowd (default 1).")
    make.add_argument("--fps", type=int, default=25, help="Frames per second (default 25).")
    make.add_argument("--width", type=int, default=1280, help="Frame width, even (default 1280).")
    make.add_argument("--height", type=int, default=720, help="Frame height, even (default 720).")
    make.add_argument("--people", type=int, default=MAX_PEOPLE, help=f"Real people, 1 to {MAX_PEOPLE} (default all).")
    make.add_argument(
        "--watchlist-fraction", type=float, default=0.3, help="Share of the people on the watchlist (default 0.3)."
    )
    make.add_argument(
        "--walking-seconds",
        type=float,
        nargs=2,
        default=(4.0, 8.0),
        metavar=("MIN", "MAX"),
        help="Range of walking times between neighbouring cameras (default 4 8).",
    )
    make.add_argument(
        "--background", type=Path, default=None, metavar="FILE", help="Background video (default: the street clip)."
    )
    make.set_defaults(handler=run_crowd_make)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def run_crowd_make(args: argparse.Namespace, config: LfrConfig) -> int:
    started = time.monotonic()
    try:
        spec = CrowdSpec(
            cameras=args.cameras,
            seconds=args.seconds,
            seed=args.seed,
            fps=args.fps,
            width=args.width,
            height=args.height,
            people=args.people,
            watchlist_fraction=args.watchlist_fraction,
            walking_seconds=tuple(args.walking_seconds),
        )
        truth = make_crowd(spec, args.out_dir, background=args.background, progress=sys.stderr.isatty())
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return 2
    per_camera = Counter(appearance.camera for appearance in truth.appearances)
    watchlist = [person.id for person in truth.watchlist]
    lines = [
        f"wrote {spec.cameras} camera{'s' if spec.cameras != 1 else ''} x {spec.seconds:g} s "
        f"({spec.frames} frames, {spec.width}x{spec.height} at {spec.fps} fps) to {args.out_dir} "
        f"in {time.monotonic() - started:.1f} s",
        *(f"  {camera.file}  {_size(args.out_dir / camera.file)}" for camera in truth.cameras),
        f"  {TRUTH_FILE}  {_size(args.out_dir / TRUTH_FILE)}",
        f"background: {truth.background}",
        f"people: {len(truth.people)}; on the watchlist: {len(watchlist)} ({', '.join(watchlist) or 'none'})",
        f"appearances: {len(truth.appearances)} "
        f"({', '.join(f'{camera.id} {per_camera[camera.id]}' for camera in truth.cameras)})",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
