"""`lfr retro`: search recorded footage (images, videos, folders of them) against a frozen watchlist.

    lfr retro FOOTAGE... --watchlist NAME --officer NAME --reason TEXT [--version V] --out DIR [--fps 2]

Writes DIR/report.json and DIR/report.html (self-contained, with the crops of matches) and opens a
case of the matches, which officers confirm or reject in the control room (`lfr serve`). A search
needs a named officer and a reason, both recorded: without either nothing is searched or written.
The case and the two reports are purged after `retention.case_days` unless a supervisor holds it.
Faces that match nobody are counted, never kept. Without --version the latest frozen version
is searched, and one is frozen when the watchlist has none. The search is done and audited
(version, threshold, counts) by `cluster.application.retro.RetroService`. Exit status: 0 done;
1 done, but some sources could not be read (named on stderr and in the report); 2 nothing searched.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from cluster.application.retro import RetroService
from cluster.cli.case_arguments import add_authorisation_arguments, authorisation_of
from cluster.cli.watchlist_commands import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, gallery_service, guarded, one_step
from cluster.config import LfrConfig
from cluster.private_files import private_folder
from cluster.retro.footage import find_footage

DEFAULT_FPS = 2.0
MAX_FPS = 120.0


def register(commands: argparse._SubParsersAction) -> None:
    retro = commands.add_parser("retro", help="Search recorded images and videos against a frozen watchlist.")
    retro.add_argument("footage", nargs="+", type=Path, metavar="FOOTAGE", help="Images, videos or folders of them.")
    retro.add_argument("--watchlist", required=True, metavar="NAME", help="The watchlist to search against.")
    retro.add_argument(
        "--version", default=None, metavar="V", help="Its frozen version: 3, v3 or NAME@v3 (default: the latest)."
    )
    retro.add_argument("--out", type=Path, required=True, metavar="DIR", help="Folder for report.json and report.html.")
    retro.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"Video frames searched per second (default {DEFAULT_FPS:g})."
    )
    add_authorisation_arguments(retro, "the search")
    retro.set_defaults(handler=run_retro)


def run_retro(args: argparse.Namespace, config: LfrConfig) -> int:
    authorisation = authorisation_of(args)
    if authorisation is None:
        return EXIT_FAILED
    if not 0 < args.fps <= MAX_FPS:
        sys.stderr.write(f"lfr: --fps must be above 0 and at most {MAX_FPS:g}, got {args.fps}\n")
        return EXIT_FAILED

    def retro() -> int:
        sources = find_footage(args.footage)
        if not sources:
            raise ValueError(f"no images or videos found in {', '.join(str(p) for p in args.footage)}")
        private_folder(args.out)
        with (
            gallery_service(config, RetroService) as service,
            tqdm(unit="frame", file=sys.stderr, disable=None) as progress,
        ):
            outcome = service.search(
                args.watchlist,
                sources,
                version=args.version,
                out_dir=args.out,
                fps=args.fps,
                authorisation=authorisation,
                on_frame=one_step(progress),
            )
        report, calibration, version = outcome.report, outcome.calibration, outcome.version
        for failed in report.failed_sources:
            sys.stderr.write(f"lfr: not searched: {failed.error}\n")
        sys.stdout.write(
            f"searched {len(report.sources) - len(report.failed_sources)} of {len(report.sources)} sources against"
            f" {version.version_id} ({version.entry_count} entries) at {calibration.summary()}:"
            f" {report.faces_seen} faces, {len(report.matches)} matched, {report.faces_unmatched} matched nobody"
            f" (not kept)\nreport: {outcome.html_path} and {outcome.json_path}\n"
            f"case {outcome.case.case_id}: {len(outcome.case.items)} candidates for an officer to confirm or reject"
            " in the control room\n"
        )
        return EXIT_REFUSED if report.failed_sources else EXIT_OK

    return guarded(retro)
