"""`RetroService`: a retrospective search of recorded footage against a frozen watchlist, audited.

A search always runs against a frozen version; when the watchlist has none, one is frozen
through `WatchlistService.freeze` (its own audit entries say why). The version is checked
against the rows in Milvus (`Watchlists.verify`) before any footage is read. The search's intent
entry (version, threshold, the sources as a count, a digest and the first few names) is written
before any footage is read, so a search is on record even if it never ends; its outcome (counts,
the people matched, the report's path) once the reports are written, before the caller is told
what matched. Neither lists every source: a search of a large archive would pass the audit log's
entry limit, and then the search could not be audited at all.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.application.audited import AuditedOperation
from cluster.application.watchlists import WatchlistService, watchlist_subject
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.scoring import match_scoring
from cluster.retro.footage import FootageFrame, FootageSource
from cluster.retro.html_report import write_html_report
from cluster.retro.json_report import write_json_report
from cluster.retro.report import RetroReport
from cluster.retro.search import RetroSearch
from cluster.retro.versions import choose_version
from cluster.vision.pipeline import FacePipeline

FROZEN_FOR_SEARCH = "retrospective search of a watchlist without a frozen version"
PERSONS_NAMED = 16
"""People matched that the search's outcome entry names; more are counted and digested."""


@dataclass(frozen=True)
class RetroOutcome:
    """A finished search: its report, the threshold it used, and where the JSON and HTML reports were written."""

    report: RetroReport
    calibration: CalibratedThreshold
    json_path: Path
    html_path: Path


class RetroService:
    """Retrospective searches on one gallery, each recorded in the audit log with the officer who ran it."""

    def __init__(self, gallery: Gallery, audit: AuditLog, config: LfrConfig) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config

    def search(
        self,
        watchlist_id: str,
        sources: Sequence[FootageSource],
        *,
        version: str | None,
        out_dir: Path,
        fps: float,
        officer: str,
        on_frame: Callable[[FootageFrame], None] = lambda frame: None,
    ) -> RetroOutcome:
        """Search `sources` against a version of the watchlist (None: the latest) and write the reports to `out_dir`."""
        watchlists = WatchlistService(self.gallery, self.audit, self.config)
        choice = choose_version(
            self.gallery.watchlists,
            watchlist_id,
            version,
            freeze=lambda: watchlists.freeze(watchlist_id, officer=officer, reason=FROZEN_FOR_SEARCH),
        )
        calibration = choice.version.calibration
        if calibration is None:
            raise ValueError(
                f"{choice.version.version_id} was frozen before thresholds were calibrated; run `lfr watchlist"
                f" freeze {watchlist_id}` and search the new version"
            )
        self.gallery.watchlists.verify(choice.version)
        scoring = match_scoring(self.config.face_models.models)
        search = RetroSearch(
            FacePipeline(self.config.face_models),
            self.gallery.watchlists,
            choice.version,
            calibration.threshold,
            fps,
            fusion=scoring.fusion,
            top_k=self.config.gallery.top_k,
        )
        operation = AuditedOperation(
            self.audit,
            officer,
            AuditAction.SEARCH,
            watchlist_subject(choice.version.version_id),
            {
                "kind": "retrospective",
                "version_digest": choice.version.digest,
                "calibration": calibration.record(),
                "fps": fps,
                "sources": name_summary([str(source.path) for source in sources]),
            },
        )
        try:
            report = search.run(sources, officer, on_frame=on_frame)
            json_path = write_json_report(report, out_dir)
            html_path = write_html_report(report, out_dir)
        except BaseException as exc:
            operation.failed(exc)
            raise
        operation.done(
            {
                "kind": "retrospective",
                "sources_searched": len(report.sources),
                "frames": sum(source.frames for source in report.sources),
                "faces_seen": report.faces_seen,
                "matches": len(report.matches),
                "persons_matched": name_summary(
                    sorted({match.person_id for match in report.matches}), named=PERSONS_NAMED
                ),
                "report": str(json_path),
            }
        )
        return RetroOutcome(report, calibration, json_path, html_path)
