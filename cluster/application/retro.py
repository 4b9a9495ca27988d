"""`RetroService`: a retrospective search of recorded footage against a frozen watchlist, audited.

A search always runs against a frozen version; when the watchlist has none, one is frozen
through `WatchlistService.freeze` (its own audit entries say why). The version is checked
against the rows in Milvus (`Watchlists.verify`) before any footage is read. The search's intent
entry (version, threshold, the sources as a count, a digest and the first few names) is written
before any footage is read, so a search is on record even if it never ends; its outcome (counts,
the people matched, the report's path) once the reports are written, before the caller is told
what matched. Neither lists every source: a search of a large archive would pass the audit log's
entry limit, and then the search could not be audited at all.

A search needs an authorisation (a named officer and a reason, `CaseAuthorisation`), and what it
found becomes a case (`cluster.cases`): one item per match with its crop, for an officer to confirm
or reject in the control room, kept (with the reports, which embed the same crops) only as long as
`retention.case_days` allows. The case is opened before the outcome entry, which names it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.application.audited import AuditedOperation
from cluster.application.watchlists import WatchlistService, watchlist_subject
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.log import AuditLog
from cluster.cases.model import Candidate, Case, CaseAuthorisation, CaseKind, MatchKind, Provenance
from cluster.cases.store import CaseStore
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import WatchlistVersion
from cluster.matching.calibration import CalibratedThreshold
from cluster.matching.scoring import match_scoring
from cluster.retro.footage import FootageFrame, FootageSource
from cluster.retro.html_report import write_html_report
from cluster.retro.json_report import write_json_report
from cluster.retro.report import RetroMatch, RetroReport
from cluster.retro.search import RetroSearch, WatchlistMatcher
from cluster.vision.pipeline import FacePipeline

FROZEN_FOR_SEARCH = "retrospective search of a watchlist without a frozen version"
PERSONS_NAMED = 16
"""People matched that the search's outcome entry names; more are counted and digested."""


@dataclass(frozen=True)
class RetroOutcome:
    """A finished search: its report, the version searched and the threshold it used, where the JSON and HTML reports
    were written, and the case opened for its matches."""

    report: RetroReport
    version: WatchlistVersion
    calibration: CalibratedThreshold
    json_path: Path
    html_path: Path
    case: Case


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
        authorisation: CaseAuthorisation,
        on_frame: Callable[[FootageFrame], None] = lambda frame: None,
    ) -> RetroOutcome:
        """Search `sources` against a version of the watchlist (None: the latest), write the reports to `out_dir` and
        open a case of the matches."""
        officer = authorisation.officer
        cases = CaseStore(self.audit.database, self.audit)
        searched = WatchlistService(self.gallery, self.audit, self.config).searched_version(
            watchlist_id, version, officer=officer, frozen_for=FROZEN_FOR_SEARCH, then="search the new version"
        )
        calibration = searched.calibration
        scoring = match_scoring(self.config.face_models.models)
        search = RetroSearch(
            FacePipeline(self.config.face_models),
            WatchlistMatcher(self.gallery.watchlists, searched.version, scoring.fusion, self.config.gallery.top_k),
            searched.version,
            calibration.threshold,
            fps,
        )
        operation = AuditedOperation(
            self.audit,
            officer,
            AuditAction.SEARCH,
            watchlist_subject(searched.version.version_id),
            {
                "kind": "retrospective",
                "reason": authorisation.reason,
                "version_digest": searched.version.digest,
                "calibration": calibration.record(),
                "fps": fps,
                "sources": name_summary([str(source.path) for source in sources]),
            },
        )
        try:
            report = search.run(sources, officer, on_frame=on_frame)
            json_path = write_json_report(report, out_dir)
            html_path = write_html_report(report, out_dir)
            case = cases.open(
                CaseKind.RETROSPECTIVE,
                authorisation,
                footage_provenance(
                    f"watchlist {searched.version.version_id} ({searched.version.entry_count} entries)",
                    searched.version.digest,
                    report,
                    sources,
                    (json_path, html_path),
                ),
                [match_candidate(match, MatchKind.WATCHLIST_ENTRY) for match in report.matches],
            )
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
                "case_id": case.case_id,
            }
        )
        return RetroOutcome(report, searched.version, calibration, json_path, html_path, case)


def footage_provenance(
    query: str, query_digest: str, report: RetroReport, sources: Sequence[FootageSource], reports: Sequence[Path]
) -> Provenance:
    """Where a footage search's case came from: what was searched for, the model and threshold, the footage
    (bounded), the reports."""
    footage = name_summary([str(source.path) for source in sources])
    return Provenance(
        query=query,
        query_digest=query_digest,
        model=report.model_name,
        threshold=report.threshold,
        sources=tuple(footage["first"]),
        sources_count=footage["count"],
        sources_digest=footage["sha256"],
        faces_seen=report.faces_seen,
        reports=tuple(str(path) for path in reports),
    )


def match_candidate(match: RetroMatch, kind: MatchKind) -> Candidate:
    """A footage face that matched, as a case's item: where it is, its crop, and what it matched."""
    return Candidate(
        source=str(match.source),
        frame_index=match.frame_index,
        frame_time_s=match.frame_time_s,
        box=match.box,
        match_kind=kind,
        match_id=match.entry_id,
        person_id=match.person_id,
        label=match.label,
        score=match.similarity,
        threshold=match.threshold,
        crop_jpeg=match.crop_jpeg,
        model_scores=match.model_scores,
    )
