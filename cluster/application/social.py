"""`SocialService`: ingesting social-media posts and searching where a face appears, each audited.

An ingest stores faces (an enrolment into `social_media`); a search reveals where a person was
seen (a search). An ingest of thousands of posts runs far too long to hold the audit log's
write lock, so the log is checked writable before the first post is read and the entry written
at the end; an ingest stopped part-way writes a "stopped" entry naming the error, since the
batches stored before it stay stored. A search's entry is written before its matches are
returned, so no match is shown unrecorded.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster.application.audited import check_audit_log
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.config import LfrConfig
from cluster.enrolment.faces import ChosenFace, RefusedPhoto, choose_faces
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import SocialMatch
from cluster.retro.social_ingest import IngestSummary, SocialIngest
from cluster.retro.social_manifest import Manifest, ManifestPost
from cluster.vision.pipeline import FacePipeline

SOCIAL_SUBJECT = "social_media"


@dataclass(frozen=True)
class SocialSearchResult:
    """The face searched with (or why the photo was refused) and the posts it appears in, best first."""

    probe: ChosenFace | RefusedPhoto
    matches: tuple[SocialMatch, ...]


class SocialService:
    """Social-media ingest and search on one gallery, each recorded in the audit log."""

    def __init__(self, gallery: Gallery, audit: AuditLog, config: LfrConfig) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config

    def ingest(
        self,
        manifest_path: Path,
        manifest: Manifest,
        *,
        officer: str,
        on_post: Callable[[ManifestPost], None] = lambda post: None,
    ) -> IngestSummary:
        """Store every face of the manifest's posts; the entry names the manifest, the counts and the lines skipped."""
        check_audit_log(self.audit, officer, AuditAction.ENROLMENT, SOCIAL_SUBJECT)
        ingest = SocialIngest(FacePipeline(self.config.face_models), self.gallery.social)
        try:
            summary = ingest.ingest(manifest.posts, on_post=on_post)
        except BaseException as exc:
            self.audit.record(
                officer,
                AuditAction.ENROLMENT,
                SOCIAL_SUBJECT,
                {"manifest": str(manifest_path), "stage": "stopped", "error": str(exc)},
            )
            raise
        skipped = summary.skipped_lines(manifest)
        self.audit.record(
            officer,
            AuditAction.ENROLMENT,
            SOCIAL_SUBJECT,
            {
                "manifest": str(manifest_path),
                "posts": summary.posts,
                "faces": summary.faces,
                "lines_without_face": list(summary.without_face),
                "lines_skipped": skipped,
            },
        )
        return summary

    def search(
        self, photo: Path, *, officer: str, face_index: int | None, top_k: int, min_similarity: float
    ) -> SocialSearchResult:
        """The posts where the face of `photo` appears at or above `min_similarity`; a refused photo searches nothing.

        Only a search that ran is audited: a photo refused before searching reveals nothing.
        """
        check_audit_log(self.audit, officer, AuditAction.SEARCH, SOCIAL_SUBJECT)
        (probe,) = choose_faces(FacePipeline(self.config.face_models), [photo], face_index)
        if isinstance(probe, RefusedPhoto):
            return SocialSearchResult(probe, ())
        (matches,) = self.gallery.social.search(probe.face.embedding[None], top_k=top_k, min_similarity=min_similarity)
        self.audit.record(
            officer,
            AuditAction.SEARCH,
            SOCIAL_SUBJECT,
            {
                "probe": str(photo),
                "face": probe.index,
                "top_k": top_k,
                "min_similarity": min_similarity,
                "hits": len(matches),
            },
        )
        return SocialSearchResult(probe, tuple(matches))
