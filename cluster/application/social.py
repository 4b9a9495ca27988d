"""`SocialService`: ingesting social-media posts, searching where a face appears, deleting and purging, each audited.

An ingest stores faces (an enrolment into `social_media`), so like a watchlist it needs an
authorisation: the officer who authorised it and why, both recorded. Every face it stores
expires `gallery.social.retention_days` after the ingest (at most 31 days, by policy), is not
searched after that, and is purged by `purge_expired`, which the retention timer runs wherever
the gallery is served. The posts themselves (provenance, text, the triage score, model and
version, and whether the post is flagged for an officer) are kept in the records database with
the same expiry, and every deletion and purge removes them with their faces. An ingest's intent
entry (source, format, authorisation, expiry, the classifier and threshold, the ingest id its
faces and posts carry) is written before the first post is read, and its outcome (counts, posts
flagged, positions skipped) when it ends; an ingest stopped part-way records a failed outcome
with what it left stored, and one killed leaves its intent unfinished (`lfr audit unfinished`):
either way `delete_ingest` removes what it stored. Flagging decides nothing: it marks a post for
an officer to read. A search reveals where a person was seen: it needs an authorisation (a named
officer and a reason, `CaseAuthorisation`), and what it found becomes a case (`cluster.cases`),
one item per post the face appears in with the crop of that post's face, for an officer to
confirm or reject in the control room and kept only as long as `retention.case_days` allows.
The case (CASE_OPENED) and the search's entry, which names it, are written before the matches
are returned, so no match is shown unrecorded.
"""

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from cluster.application.audited import AuditedOperation, audited_change, check_audit_log
from cluster.audit.actions import AuditAction
from cluster.audit.bounded import name_summary
from cluster.audit.log import AuditLog
from cluster.cases.model import Candidate, Case, CaseAuthorisation, CaseKind, MatchKind, Provenance
from cluster.cases.store import CaseStore
from cluster.config import LfrConfig
from cluster.enrolment.expiry import DAY_S, iso
from cluster.enrolment.faces import CLI_FACE, ChosenFace, FaceOption, RefusedPhoto, choose_faces
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import OFFICER_MAX, SOURCE_MAX, SocialMatch, check_text
from cluster.social.ingest import IngestLabel, IngestSummary, SocialIngest
from cluster.social.post import Feed, Post
from cluster.social.records import PostsDeleted, SocialPostRecords
from cluster.social.triage import TextTriage
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.image_io import load_image
from cluster.vision.pipeline import MODEL_NAME, FacePipeline

SOCIAL_SUBJECT = "social_media"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class IngestAuthorisation:
    """Who authorised an ingest of social-media faces, and why it is necessary: both required."""

    authorised_by: str
    reason: str

    def __post_init__(self) -> None:
        check_text(self.authorised_by, "the authorising officer (--authorised-by)", OFFICER_MAX)
        check_text(self.reason, "the reason for the ingest (--reason)", SOURCE_MAX)


@dataclass(frozen=True)
class IngestResult:
    """A finished ingest: what it stored, the id its faces carry, and when they expire."""

    summary: IngestSummary
    ingest_id: str
    expires_at: int


@dataclass(frozen=True)
class SocialDeletion:
    """What a deletion or purge removed: faces from the gallery, posts from the records database.

    erased: whether the deleted posts were then erased from the database's files (see `Database.erase_deleted`)."""

    faces: int
    posts: int
    erased: bool = True


@dataclass(frozen=True)
class SocialSearchResult:
    """The face searched with, the posts it appears in, best first, and the case opened for them."""

    probe: ChosenFace
    matches: tuple[SocialMatch, ...]
    case: Case


class SocialService:
    """Social-media ingest, search, deletion and purging on one gallery, each recorded in the audit log."""

    def __init__(
        self, gallery: Gallery, audit: AuditLog, config: LfrConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config
        self.posts = SocialPostRecords(audit.database)
        self._clock = clock

    def ingest(
        self,
        feed: Feed,
        *,
        officer: str,
        authorisation: IngestAuthorisation,
        on_post: Callable[[Post], None] = lambda post: None,
    ) -> IngestResult:
        """Store every face of the feed's posts and the posts with their triage, all expiring after the retention."""
        triage = TextTriage(self.config.social.triage)
        expires_at = int(self._clock() + self.config.gallery.social.retention_days * DAY_S)
        operation = AuditedOperation(
            self.audit,
            officer,
            AuditAction.ENROLMENT,
            SOCIAL_SUBJECT,
            {
                "source": str(feed.source),
                "format": feed.format,
                "posts": len(feed.posts),
                "authorised_by": authorisation.authorised_by,
                "reason": authorisation.reason,
                "expires_at": iso(expires_at),
                "triage_model": f"{triage.model.name} {triage.model.version}",
                "triage_threshold": triage.threshold,
            },
        )
        label = IngestLabel(authorisation.authorised_by, operation.operation_id, expires_at)
        ingest = SocialIngest(
            FacePipeline(self.config.face_models).process, self.gallery.social, self.posts, triage, label
        )
        try:
            summary = ingest.ingest(feed.posts, on_post=on_post)
        except BaseException as exc:
            operation.failed(
                exc,
                {
                    "source": str(feed.source),
                    "posts_read": ingest.posts_read,
                    "faces_stored": ingest.faces_stored,
                    "ingest_id": operation.operation_id,
                },
            )
            raise
        operation.done(
            {
                "source": str(feed.source),
                "posts": summary.posts,
                "faces": summary.faces,
                "unit": str(feed.unit),
                "without_face": list(summary.without_face),
                "flagged": list(summary.flagged),
                "skipped": summary.skipped(feed),
                "ingest_id": operation.operation_id,
            }
        )
        return IngestResult(summary, operation.operation_id, expires_at)

    def search(
        self,
        photo: Path,
        *,
        authorisation: CaseAuthorisation,
        face_index: int | None,
        top_k: int,
        min_similarity: float,
        probe_name: str | None = None,
        face_option: FaceOption = CLI_FACE,
    ) -> SocialSearchResult | RefusedPhoto:
        """The posts where the face of `photo` appears at or above `min_similarity`, opened as a case; or why the photo
        was refused, having searched nothing.

        probe_name: what the case and the audit log call the photo (default its path), such as the control room's
        name for an upload, whose file is gone once the search ends. face_option: how the caller's officer chooses a
        face, for the refusal of a group photo. Only a search that ran is audited: a photo refused before searching
        reveals nothing.
        """
        officer = authorisation.officer
        check_audit_log(self.audit, officer, AuditAction.SEARCH, SOCIAL_SUBJECT)
        cases = CaseStore(self.audit.database, self.audit)
        (probe,) = choose_faces(FacePipeline(self.config.face_models), [photo], face_index, face_option)
        if isinstance(probe, RefusedPhoto):
            return probe
        faces_stored = self.gallery.social.count()
        (matches,) = self.gallery.social.search(probe.face.embedding[None], top_k=top_k, min_similarity=min_similarity)
        case = cases.open(
            CaseKind.SOCIAL,
            authorisation,
            _provenance(probe, probe_name or str(photo), min_similarity, faces_stored),
            [_candidate(match, min_similarity) for match in matches],
        )
        self.audit.record(
            officer,
            AuditAction.SEARCH,
            SOCIAL_SUBJECT,
            {
                "kind": "social",
                "reason": authorisation.reason,
                "probe": probe_name or str(photo),
                "face": probe.index,
                "top_k": top_k,
                "min_similarity": min_similarity,
                "hits": len(matches),
                "case_id": case.case_id,
            },
        )
        return SocialSearchResult(probe, tuple(matches), case)

    def delete_post(self, platform: str, post_id: str, *, officer: str, reason: str) -> SocialDeletion:
        """Delete one post: its stored faces and its record."""
        check_text(reason, "the reason for the deletion (--reason)", SOURCE_MAX)
        return self._delete(
            "post",
            {"platform": platform, "post_id": post_id},
            lambda: self._both(
                self.gallery.social.delete_post(platform, post_id), lambda: self.posts.delete_post(platform, post_id)
            ),
            officer=officer,
            reason=reason,
        )

    def delete_ingest(self, ingest_id: str, *, officer: str, reason: str) -> SocialDeletion:
        """Delete every face and post one ingest stored."""
        check_text(reason, "the reason for the deletion (--reason)", SOURCE_MAX)
        return self._delete(
            "ingest",
            {"ingest_id": ingest_id},
            lambda: self._both(
                self.gallery.social.delete_ingest(ingest_id), lambda: self.posts.delete_ingest(ingest_id)
            ),
            officer=officer,
            reason=reason,
        )

    def _delete(
        self,
        scope: str,
        selector: dict[str, str],
        delete: Callable[[], SocialDeletion],
        *,
        officer: str,
        reason: str,
    ) -> SocialDeletion:
        """An officer's deletion of what `selector` names (one post, one ingest), audited with its reason."""
        return audited_change(
            self.audit,
            officer,
            AuditAction.PURGE,
            SOCIAL_SUBJECT,
            delete,
            lambda deleted: {"change": f"{scope}_deleted", **selector, **_counts(deleted)},
            intent={"change": f"delete_{scope}", **selector, "reason": reason},
        )

    def purge_expired(self, *, officer: str) -> SocialDeletion:
        """Delete every face and post whose expiry has passed."""
        purged_at = int(self._clock())
        return audited_change(
            self.audit,
            officer,
            AuditAction.PURGE,
            SOCIAL_SUBJECT,
            lambda: self._both(
                self.gallery.social.purge_expired(now=purged_at), lambda: self.posts.purge_expired(now=purged_at)
            ),
            lambda deleted: {"change": "expired_purged", "expired_before": iso(purged_at), **_counts(deleted)},
            intent={"change": "purge_expired", "expired_before": iso(purged_at)},
        )

    @staticmethod
    def _both(faces: int, delete_posts: Callable[[], PostsDeleted]) -> SocialDeletion:
        posts = delete_posts()
        return SocialDeletion(faces, posts.rows, posts.erased)


def _counts(deleted: SocialDeletion) -> dict[str, object]:
    return {"faces_deleted": deleted.faces, "posts_deleted": deleted.posts, "posts_erased": deleted.erased}


def _provenance(probe: ChosenFace, probe_name: str, min_similarity: float, faces_stored: int) -> Provenance:
    """What the case searched for (one face of a photo, by the photo's SHA-256) and in what (the stored posts)."""
    collection = name_summary([SOCIAL_SUBJECT])
    return Provenance(
        query=f"face {probe.index} of {probe_name}",
        query_digest=hashlib.sha256(probe.path.read_bytes()).hexdigest(),
        model=MODEL_NAME,
        threshold=min_similarity,
        sources=tuple(collection["first"]),
        sources_count=collection["count"],
        sources_digest=collection["sha256"],
        faces_seen=faces_stored,
    )


def _candidate(match: SocialMatch, min_similarity: float) -> Candidate:
    face = match.face
    return Candidate(
        source=face.image_path,
        frame_index=None,
        frame_time_s=None,
        box=face.box,
        match_kind=MatchKind.SOCIAL_FACE,
        match_id=face.face_id,
        person_id=f"{face.platform}:{face.post_id}",
        label=face.url,
        score=match.similarity,
        threshold=min_similarity,
        crop_jpeg=_post_crop(face.image_path, face.box),
    )


def _post_crop(image_path: str, box: Sequence[float]) -> bytes | None:
    """The face in the post's stored image, or None (logged) where the image can no longer be read."""
    try:
        return face_crop_jpeg(load_image(image_path), np.asarray(box, dtype=np.float64))
    except ValueError as exc:  # an unreadable image (InvalidImageError), or a box no longer inside it
        log.warning("social_case_crop_missing", image_path=image_path, error=str(exc))
        return None
