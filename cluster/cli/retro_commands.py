"""`lfr retro`: search recorded footage (images, videos, folders of them) against a frozen watchlist.

    lfr retro FOOTAGE... --watchlist NAME [--version V] --out DIR [--fps 2] [--officer NAME]

Writes DIR/report.json and DIR/report.html (self-contained, with the crops of matches).
Faces that match nobody are counted, never kept. Without --version the latest frozen version
is searched, and one is frozen when the watchlist has none. The search is audited with the
version, the threshold and the counts. Exit status: 0 done; 1 done, but some sources could
not be read (named on stderr and in the report); 2 nothing searched.
"""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from cluster.audit.actions import AuditAction
from cluster.cli.watchlist_commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    add_officer_argument,
    guarded,
    officer_of,
    open_audit,
)
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.matching.scoring import match_scoring
from cluster.retro.footage import find_footage
from cluster.retro.html_report import write_html_report
from cluster.retro.json_report import write_json_report
from cluster.retro.search import RetroSearch
from cluster.retro.versions import choose_version
from cluster.vision.pipeline import FacePipeline

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
    add_officer_argument(retro)
    retro.set_defaults(handler=run_retro)


def run_retro(args: argparse.Namespace, config: LfrConfig) -> int:
    if not 0 < args.fps <= MAX_FPS:
        sys.stderr.write(f"lfr: --fps must be above 0 and at most {MAX_FPS:g}, got {args.fps}\n")
        return EXIT_FAILED

    def retro() -> int:
        sources = find_footage(args.footage)
        if not sources:
            raise ValueError(f"no images or videos found in {', '.join(str(p) for p in args.footage)}")
        args.out.mkdir(parents=True, exist_ok=True)
        audit = open_audit(config)
        officer = officer_of(args)
        scoring = match_scoring(config.face_models.models)
        with Gallery.open(config.gallery) as gallery:
            choice = choose_version(
                gallery.watchlists,
                args.watchlist,
                args.version,
                calibrate=lambda entries: scoring.threshold_for(config.matching.target_fpir, entries),
                models=config.face_models.models[1:],
            )
            calibration = choice.version.calibration
            if calibration is None:
                raise ValueError(
                    f"{choice.version.version_id} was frozen before thresholds were calibrated; run `lfr watchlist"
                    f" freeze {args.watchlist}` and search the new version"
                )
            threshold = calibration.threshold
            if choice.frozen_now:
                audit.record(
                    officer,
                    AuditAction.WATCHLIST_CHANGE,
                    f"watchlist:{args.watchlist}",
                    {
                        "change": "frozen",
                        "version": choice.version.version_id,
                        "entries": choice.version.entry_count,
                        "digest": choice.version.digest,
                        "calibration": calibration.record(),
                        "reason": "retrospective search of a watchlist without a frozen version",
                    },
                )
            pipeline = FacePipeline(config.face_models)
            search = RetroSearch(
                pipeline,
                gallery.watchlists,
                choice.version,
                threshold,
                args.fps,
                fusion=scoring.fusion,
                top_k=config.gallery.top_k,
            )
            with tqdm(unit="frame", file=sys.stderr, disable=None) as progress:
                report = search.run(sources, officer, on_frame=lambda _: progress.update(1))
        json_path = write_json_report(report, args.out)
        html_path = write_html_report(report, args.out)
        audit.record(
            officer,
            AuditAction.SEARCH,
            f"watchlist:{choice.version.version_id}",
            {
                "kind": "retrospective",
                "version_digest": choice.version.digest,
                "calibration": calibration.record(),
                "sources": [str(source.path) for source in report.sources],
                "frames": sum(source.frames for source in report.sources),
                "faces_seen": report.faces_seen,
                "matches": len(report.matches),
                "persons_matched": sorted({match.person_id for match in report.matches}),
                "report": str(json_path),
            },
        )
        for failed in report.failed_sources:
            sys.stderr.write(f"lfr: not searched: {failed.error}\n")
        sys.stdout.write(
            f"searched {len(report.sources) - len(report.failed_sources)} of {len(report.sources)} sources against"
            f" {choice.version.version_id} ({choice.version.entry_count} entries) at {calibration.summary()}:"
            f" {report.faces_seen} faces, {len(report.matches)} matched, {report.faces_unmatched} matched nobody"
            f" (not kept)\nreport: {html_path} and {json_path}\n"
        )
        return EXIT_REFUSED if report.failed_sources else EXIT_OK

    return guarded(retro)
