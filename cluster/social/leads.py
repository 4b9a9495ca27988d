"""Leads: the faces of a flagged post searched against the authorised watchlists, each candidate an item in a case.

Only a post whose text the triage flagged is searched: the faces of every other post are stored
for `lfr social search` under the social retention rule, and purged with it, but never compared
with a watchlist. Each watchlist is searched at one frozen version, at the threshold its
calibration set (on the fused score of every configured model, as `lfr retro` and the live match
stage score), so a lead names exactly which entries were searched and why the score counted.
A face's best candidate at or above the threshold is a lead; a face that matched nobody is
dropped, and so is one the second model could not embed (a fused score needs every model). The
candidates of one post against one version become one case (`cluster.cases`), for an officer to
confirm or reject in the control room; opening it writes CASE_OPENED, and a search entry names
the post, the ingest that stored it, the authorisation and the case. Nothing here
enrols anyone: a watchlist changes only through a separate, authorised enrolment.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases.model import Candidate, Case, CaseAuthorisation, CaseKind, MatchKind, Provenance
from cluster.cases.store import CaseStore
from cluster.gallery.records import WatchlistCandidate, WatchlistVersion
from cluster.gallery.watchlists import Watchlists
from cluster.matching.fusion import ScoreFusion
from cluster.social.ingest import StoredPost
from cluster.tracking.crops import face_crop_jpeg
from cluster.vision.image_io import load_image

LEAD_KIND = "social_lead"
"""The `kind` of a lead's search entry in the audit log."""


@dataclass(frozen=True)
class LeadList:
    """One watchlist a watch searches: its frozen version and the calibrated threshold on the fused score."""

    version: WatchlistVersion
    threshold: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f"{self.version.version_id}: the threshold must be a finite match score")


@dataclass(frozen=True)
class Lead:
    """One case opened for one flagged post against one watchlist version."""

    case: Case
    post_url: str
    watchlist_version: str
    persons: tuple[str, ...]


class LeadSearch:
    """Searches the faces of flagged posts against each `LeadList` and opens a case per post and list with a match."""

    def __init__(
        self,
        watchlists: Watchlists,
        lists: Sequence[LeadList],
        fusion: ScoreFusion | None,
        model_name: str,
        cases: CaseStore,
        audit: AuditLog,
        authorisation: CaseAuthorisation,
        ingest_id: str,
        top_k: int | None = None,
    ) -> None:
        self.watchlists = watchlists
        self.lists = tuple(lists)
        self.fusion = fusion
        self.model_name = model_name
        self.cases = cases
        self.audit = audit
        self.authorisation = authorisation
        self.ingest_id = ingest_id
        self.top_k = top_k
        self.searched_posts = 0

    def search(self, stored: StoredPost) -> list[Lead]:
        """The leads of one stored post: none unless its text was flagged and it has a face."""
        if not stored.score.flagged or not stored.faces:
            return []
        self.searched_posts += 1
        needed = () if self.fusion is None else self.fusion.models[1:]
        searchable = [(path, face) for path, face in stored.faces if all(m in face.extra_embeddings for m in needed)]
        if not searchable:
            return []
        probes = np.stack([face.embedding for _, face in searchable])
        extra = {model: np.stack([face.extra_embeddings[model] for _, face in searchable]) for model in needed}
        leads = []
        for listed in self.lists:
            found = self.watchlists.search(probes, listed.version, top_k=self.top_k, extra=extra or None)
            candidates = []
            for (path, face), ranked in zip(searchable, found, strict=True):
                scored = [(self._score(candidate), candidate) for candidate in ranked]
                best = max(scored, key=lambda pair: pair[0], default=None)
                if best is not None and best[0] >= listed.threshold:
                    candidates.append(self._candidate(path, face.box, best[1], best[0], listed.threshold))
            if candidates:
                leads.append(self._open(stored, listed, candidates))
        return leads

    def _score(self, candidate: WatchlistCandidate) -> float:
        return candidate.similarity if self.fusion is None else float(self.fusion.fuse(candidate.model_scores))

    def _candidate(
        self, path: str, box: np.ndarray, best: WatchlistCandidate, score: float, threshold: float
    ) -> Candidate:
        corners = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        return Candidate(
            source=path,
            frame_index=None,
            frame_time_s=None,
            box=corners,
            match_kind=MatchKind.WATCHLIST_ENTRY,
            match_id=best.entry.entry_id,
            person_id=best.entry.person_id,
            label=best.entry.label,
            score=score,
            threshold=threshold,
            crop_jpeg=face_crop_jpeg(load_image(path), np.asarray(box, dtype=np.float64)),
            model_scores=dict(best.model_scores),
        )

    def _open(self, stored: StoredPost, listed: LeadList, candidates: list[Candidate]) -> Lead:
        post, version = stored.post, listed.version
        case = self.cases.open(
            CaseKind.RETROSPECTIVE,
            self.authorisation,
            Provenance(
                query=f"watchlist {version.version_id} ({version.entry_count} entries), faces of a flagged post",
                query_digest=version.digest,
                model=self.model_name,
                threshold=listed.threshold,
                sources=(post.url,),
                sources_count=1,
                sources_digest=hashlib.sha256(post.url.encode()).hexdigest(),
                faces_seen=len(stored.faces),
            ),
            candidates,
        )
        persons = tuple(sorted({candidate.person_id for candidate in candidates}))
        self.audit.record(
            self.authorisation.officer,
            AuditAction.SEARCH,
            f"watchlist:{version.version_id}",
            {
                "kind": LEAD_KIND,
                "reason": self.authorisation.reason,
                "version_digest": version.digest,
                "threshold": round(listed.threshold, 6),
                "platform": post.platform,
                "post_id": post.post_id,
                "url": post.url,
                "ingest_id": self.ingest_id,
                "triage_score": stored.score.score,
                "faces": len(stored.faces),
                "hits": len(candidates),
                "case_id": case.case_id,
            },
        )
        return Lead(case, post.url, version.version_id, persons)
