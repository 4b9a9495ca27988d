"""SocialWatcher: the Ray actor that follows one social-media export for `lfr social watch`.

A thin shell over `cluster.social.watch.SocialWatch`: it opens its own audit log and
gallery from the configuration (live objects are never shipped between processes), finds faces
through the face service the cameras use (`ServeFaceFinder`: a post's images go as one
`FrameGroup`, joining the replicas' batches beside the cameras' frames, and each face's patch to
`embed_patches` for the second model, as the live match stage does), and exports the watch's
figures as metrics after every step. Its methods are plain (not async): a step waits for the
face service's answers on the actor's own thread, never on an event loop.
"""

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import structlog
from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.metrics import SOCIAL_BACKLOG, SOCIAL_LAG, SOCIAL_LEADS, SOCIAL_POSTS, counter, gauge, histogram
from cluster.audit.opening import open_audit_log
from cluster.cameras.frames import CameraFrame
from cluster.cases.model import CaseAuthorisation
from cluster.cases.store import CaseStore
from cluster.config import LfrConfig
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.gallery import Gallery
from cluster.live.face_service import FrameGroup, FrameRequest, FrameResult, PatchRequest, PatchResult
from cluster.matching.scoring import match_scoring
from cluster.social.follow import ManifestFollower, ReadUpTo, follower_for
from cluster.social.ingest import IngestLabel, SocialIngest
from cluster.social.leads import LeadList, LeadSearch
from cluster.social.post import FeedError
from cluster.social.records import SocialPostRecords
from cluster.social.triage import TextTriage
from cluster.social.watch import RetriedFaceFinder, SocialWatch, WatchProgress
from cluster.tracking.patches import cut_face_patch
from cluster.vision.config import SecondStageConfig
from cluster.vision.face import Face
from cluster.vision.pipeline import models_name

log = structlog.get_logger(__name__)

SOURCE_ID = "social"
"""What the face service's metrics and logs call the watch's images (in place of a camera id)."""
REQUEST_TIMEOUT_S = 60.0
"""A face service request unanswered this long fails the step (the posts are not marked read)."""


@dataclass(frozen=True)
class WatchPlan:
    """What a watcher needs, as plain settings: the export, the ingest's label, who authorised it, the lists."""

    source: Path
    config: LfrConfig
    label: IngestLabel
    authorisation: CaseAuthorisation
    versions: tuple[tuple[str, float], ...]
    """Each watchlist version searched, by id, with its calibrated threshold."""
    face_app: str
    resume_from: ReadUpTo | None = None
    """Where an earlier watch of the same manifest stopped, its bytes checked unchanged: read from there."""


class ServeFaceFinder:
    """Finds faces through the face service: the images as one frame group, then each face's second-model vector."""

    def __init__(self, handle: DeploymentHandle, second_stage: SecondStageConfig | None) -> None:
        self._handle = handle
        self._second_stage = second_stage
        self._seq = 0

    def __call__(self, images: Sequence[np.ndarray], /) -> list[list[Face]]:
        requests = []
        for pixels in images:
            requests.append(FrameRequest(CameraFrame(SOURCE_ID, self._seq, 0.0, time.time(), pixels)))
            self._seq += 1
        results: list[FrameResult] = self._handle.frames.remote(FrameGroup(tuple(requests))).result(
            timeout_s=REQUEST_TIMEOUT_S
        )
        faces = []
        for result in results:
            if result.error is not None:
                log.warning("social_image_refused", error=result.error)
            faces.append(list(result.faces))
        if self._second_stage is None:
            return faces
        return [self._with_second_model(pixels, found) for pixels, found in zip(images, faces, strict=True)]

    def _with_second_model(self, pixels: np.ndarray, faces: list[Face]) -> list[Face]:
        """The faces, each with its second-model vector where the model could embed it (logged where not)."""
        if not faces or self._second_stage is None:
            return faces
        patches = tuple((cut_face_patch(pixels, face.landmarks, face.quality.overall),) for face in faces)
        answer: PatchResult = self._handle.embed_patches.remote(PatchRequest(SOURCE_ID, patches)).result(
            timeout_s=REQUEST_TIMEOUT_S
        )
        model = self._second_stage.model
        if answer.model != model:
            raise RuntimeError(
                f"the face service embeds with {answer.model}, the configuration with {model}: deploy the face service"
                " from the same configuration as the watch"
            )
        kept = []
        for face, vector, error in zip(faces, answer.embeddings, answer.errors, strict=True):
            if vector is None:
                log.warning("social_second_model_failed", error=error)
                kept.append(face)
            else:
                kept.append(dataclasses.replace(face, extra_embeddings={model: vector}))
        return kept


class _WatchMetrics:
    def __init__(self) -> None:
        self.posts = counter(SOCIAL_POSTS)
        self.leads = counter(SOCIAL_LEADS)
        self.lag = histogram(SOCIAL_LAG)
        self.backlog = gauge(SOCIAL_BACKLOG)
        self._skipped = 0
        self._leads = 0

    def record(self, progress: WatchProgress) -> None:
        for done in progress.done:
            self.posts.inc(1, tags={"outcome": "processed"})
            if done.flagged:
                self.posts.inc(1, tags={"outcome": "flagged"})
            self.lag.observe(max(0.0, done.lag_from_post_s), tags={"stage": "posted"})
            self.lag.observe(max(0.0, done.lag_from_seen_s), tags={"stage": "exported"})
        if progress.skipped > self._skipped:
            self.posts.inc(progress.skipped - self._skipped, tags={"outcome": "skipped"})
            self._skipped = progress.skipped
        if progress.leads > self._leads:
            self.leads.inc(progress.leads - self._leads)
            self._leads = progress.leads
        self.backlog.set(float(progress.backlog_bytes))


@ray.remote(num_cpus=0, max_restarts=0)
class SocialWatcher:
    def __init__(self, plan: WatchPlan) -> None:
        config = plan.config
        audit = open_audit_log(config.database, config.audit)
        self._gallery = Gallery.open(config.gallery, Catalogue(audit.database))
        lists = [
            LeadList(self._gallery.watchlists.version(version_id), threshold) for version_id, threshold in plan.versions
        ]
        for listed in lists:
            self._gallery.watchlists.verify(listed.version)
        second_stage = config.face_models.second_stage
        finder = RetriedFaceFinder(ServeFaceFinder(serve.get_app_handle(plan.face_app), second_stage))
        ingest = SocialIngest(
            finder,
            self._gallery.social,
            SocialPostRecords(audit.database),
            TextTriage(config.social.triage),
            plan.label,
        )
        scoring = match_scoring(config.face_models.models)
        leads = LeadSearch(
            self._gallery.watchlists,
            lists,
            scoring.fusion,
            models_name(config.face_models),
            CaseStore(audit.database, audit),
            audit,
            plan.authorisation,
            plan.label.ingest_id,
            top_k=config.gallery.top_k,
        )
        follower = follower_for(plan.source)
        if plan.resume_from is not None and not (
            isinstance(follower, ManifestFollower) and follower.resume(plan.resume_from)
        ):
            raise FeedError(
                f"{plan.source} changed while the watch started: its first {plan.resume_from.offset} bytes are no"
                " longer those the last watch read; start the watch again"
            )
        self._watch = SocialWatch(follower, ingest, leads)
        self._metrics = _WatchMetrics()

    def step(self) -> WatchProgress:
        """Process what the export gained since the last step; the watch's figures after."""
        progress = self._watch.step()
        self._metrics.record(progress)
        return progress

    def progress(self) -> WatchProgress:
        return self._watch.progress()

    def close(self) -> WatchProgress:
        """The final figures, with how far a manifest was read; the gallery connection closed."""
        self._gallery.close()
        return self._watch.final()
