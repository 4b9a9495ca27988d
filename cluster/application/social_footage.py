"""`SocialFootageService`: recorded footage searched for the faces of one flagged social-media post, audited.

Issue 18's retrospective step: a flagged post's faces are searched against the watchlists as it
arrives (`lfr social watch`), and, on request, against the deployment's footage here. The request
needs an authorisation (a named officer and a reason, `CaseAuthorisation`). A post that is not
stored, not flagged, or whose faces are gone is refused before anything is read, searched or
written (`cluster.social.footage_search`). The search's intent entry (the post, the faces searched
with, the threshold and its calibration, the models, the footage as a count, a digest and the
first few names) is written before any footage is read; its outcome (counts, the report, the case)
once the reports are written and the case opened. Each footage face that matched a face of the post
is an item of that one case, with its crop, for an officer to confirm or reject in the control
room, kept (with the reports) only as long as `retention.case_days` allows; faces that matched no
face of the post are counted and never kept.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.application.audited import AuditedOperation
from cluster.application.retro import footage_provenance, match_candidate
from cluster.application.social import SOCIAL_SUBJECT
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.log import AuditLog
from cluster.cases.model import Case, CaseAuthorisation, CaseKind, MatchKind
from cluster.cases.store import CaseStore
from cluster.config import LfrConfig
from cluster.gallery.gallery import Gallery
from cluster.matching.scoring import match_scoring
from cluster.private_files import private_folder
from cluster.retro.footage import FootageFrame, FootageSource
from cluster.retro.html_report import write_html_report
from cluster.retro.json_report import write_json_report
from cluster.retro.report import PostQuery, RetroReport
from cluster.retro.search import RetroSearch
from cluster.social.footage_search import (
    FOOTAGE_KIND,
    PostFaces,
    PostFacesMatcher,
    embed_post_faces,
    stored_post,
)
from cluster.social.records import SocialPostRecords
from cluster.vision.pipeline import FacePipeline, models_name


@dataclass(frozen=True)
class SocialFootageOutcome:
    """A finished search: its report (with the post searched for and the threshold), the reports' paths and the
    case opened for its matches."""

    report: RetroReport
    post: PostQuery
    json_path: Path
    html_path: Path
    case: Case


class SocialFootageService:
    """Footage searches for flagged posts on one gallery, each recorded in the audit log with its officer."""

    def __init__(self, gallery: Gallery, audit: AuditLog, config: LfrConfig) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config

    def search(
        self,
        platform: str,
        post_id: str,
        sources: Sequence[FootageSource],
        *,
        face_index: int | None,
        out_dir: Path,
        fps: float,
        authorisation: CaseAuthorisation,
        on_frame: Callable[[FootageFrame], None] = lambda frame: None,
    ) -> SocialFootageOutcome:
        """Search `sources` for the post's stored faces (all, or face `face_index`), write the reports to `out_dir`
        (created owner-only) and open a case of the matches. PostNotSearchable, before anything is written, for a post
        that may not be searched."""
        record, stored = stored_post(
            SocialPostRecords(self.audit.database), self.gallery.social, platform, post_id, face_index
        )
        pipeline = FacePipeline(self.config.face_models)
        faces = embed_post_faces(pipeline, record, stored)
        scoring = match_scoring(self.config.face_models.models)
        calibration = scoring.threshold_for(self.config.matching.target_fpir, len(faces.faces))
        query = PostQuery(
            record.platform, record.post_id, record.url, record.ingest_id, faces.face_ids, faces.digest, calibration
        )
        cases = CaseStore(self.audit.database, self.audit)
        private_folder(out_dir)
        search = RetroSearch(pipeline, PostFacesMatcher(faces, scoring.fusion), query, calibration.threshold, fps)
        operation = AuditedOperation(
            self.audit,
            authorisation.officer,
            AuditAction.SEARCH,
            SOCIAL_SUBJECT,
            {
                "kind": FOOTAGE_KIND,
                "reason": authorisation.reason,
                **_post_details(faces),
                "calibration": calibration.record(),
                "model": models_name(self.config.face_models),
                "fps": fps,
                "sources": name_summary([str(source.path) for source in sources]),
            },
        )
        try:
            report = search.run(sources, authorisation.officer, on_frame=on_frame)
            json_path = write_json_report(report, out_dir)
            html_path = write_html_report(report, out_dir)
            case = cases.open(
                CaseKind.RETROSPECTIVE,
                authorisation,
                footage_provenance(
                    f"{_faces(len(faces.faces))} of flagged post {faces.key} ({faces.record.url})",
                    faces.digest,
                    report,
                    sources,
                    (json_path, html_path),
                ),
                [match_candidate(match, MatchKind.SOCIAL_FACE) for match in report.matches],
            )
        except BaseException as exc:
            operation.failed(exc)
            raise
        operation.done(
            {
                "kind": FOOTAGE_KIND,
                "post": faces.key,
                "sources_searched": len(report.sources),
                "frames": sum(source.frames for source in report.sources),
                "faces_seen": report.faces_seen,
                "matches": len(report.matches),
                "report": str(json_path),
                "case_id": case.case_id,
            }
        )
        return SocialFootageOutcome(report, query, json_path, html_path, case)


def _post_details(faces: PostFaces) -> dict[str, object]:
    """The post searched for, as the intent entry names it: its key, URL, ingest, triage and the faces searched."""
    record = faces.record
    return {
        "post": faces.key,
        "url": record.url,
        "ingest_id": record.ingest_id,
        "triage_score": record.triage_score,
        "face_ids": list(faces.face_ids),
        "query_digest": faces.digest,
    }


def _faces(count: int) -> str:
    return f"{count} face{'s' if count != 1 else ''}"
