"""`SocialWatchRun`: `lfr social watch`, a growing export followed by a Ray actor until it is stopped.

The watch is an ingest like `lfr social ingest`, and audited as one: its intent entry (the
source, the authorisation, the expiry, the classifier and threshold, the watchlist versions and
thresholds its leads use, and the ingest id its faces and posts carry) is written before the
actor starts, and its outcome (posts, faces, flagged, leads, positions skipped) when it stops,
or a failed outcome with how far it got: for a JSON-lines manifest, the byte offset and line it
marked read and a SHA-256 of the manifest's bytes before them. A later watch of the same manifest
resumes there when its first bytes are still those (`resume_point`), and reads it from the
beginning, saying so, when they are not; a folder is always read from its first file. Every
lead is audited on its own as it is opened (`cluster.social.leads`). The faces and posts of a
watch expire `gallery.social.retention_days` after the watch started, never later than the rule
allows for any post, and are purged then.

The face service is the cluster's own when it runs one (a live deployment's, a RayService's),
so the posts' images share its batches with the cameras' frames; otherwise one is deployed for
the watch. Each watchlist is searched at a frozen version: the latest, or one frozen now when it has none
(audited by `WatchlistService.freeze`), at the threshold its calibration set, and checked
against the rows in Milvus before the watch starts. A watch needs at least one watchlist.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import structlog
from ray import serve
from ray.actor import ActorHandle

from actors.face_service import APP_NAME
from actors.live_pipeline import deploy_face_service
from actors.social_watcher import SocialWatcher, WatchPlan
from cluster.application.audited import AuditedOperation
from cluster.application.social import SOCIAL_SUBJECT, IngestAuthorisation
from cluster.application.watchlists import WatchlistService
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases.model import CaseAuthorisation
from cluster.config import LfrConfig
from cluster.enrolment.expiry import DAY_S, iso
from cluster.gallery.gallery import Gallery
from cluster.social.follow import MANIFEST_SUFFIXES, ReadUpTo, follower_for, prefix_sha256
from cluster.social.ingest import IngestLabel
from cluster.social.triage import TextTriage
from cluster.social.watch import WatchProgress

log = structlog.get_logger(__name__)

FROZEN_FOR_WATCH = "social-media watch of a watchlist without a frozen version"
POLL_S = 0.5
"""How long a watch waits after a step that found nothing new before it looks again."""
ACTOR_TIMEOUT_S = 300.0
"""A step unanswered this long (a face service gone) stops the watch with an error."""


@dataclass(frozen=True)
class WatchSettings:
    """What to follow, under whose authorisation, which watchlists its flagged posts' faces are searched against."""

    source: Path
    watchlists: tuple[str, ...]
    authorisation: IngestAuthorisation
    officer: str

    def __post_init__(self) -> None:
        if not self.watchlists:
            raise ValueError("name the watchlists a flagged post's faces are searched against: --watchlist NAME")
        follower_for(self.source)  # refuses a source that cannot be followed before anything starts


class SocialWatchRun:
    """One watch: started, run until stopped (or once, or for a while), then stopped with its outcome audited."""

    def __init__(
        self, gallery: Gallery, audit: AuditLog, config: LfrConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.gallery = gallery
        self.audit = audit
        self.config = config
        self._clock = clock
        self._operation: AuditedOperation | None = None
        self._actor: ActorHandle | None = None
        self.versions: tuple[tuple[str, float], ...] = ()
        self.expires_at = 0
        self._source: Path | None = None

    @property
    def ingest_id(self) -> str:
        if self._operation is None:
            raise RuntimeError("the watch has not started")
        return self._operation.operation_id

    def start(self, settings: WatchSettings, progress: Callable[[str], None] = lambda line: None) -> None:
        """Choose the versions, audit the watch's intent, deploy the face service if needed, start the actor."""
        authorisation = settings.authorisation
        leads_by = CaseAuthorisation(authorisation.authorised_by, authorisation.reason)
        self.versions = tuple(self._version(watchlist_id, settings.officer) for watchlist_id in settings.watchlists)
        triage = TextTriage(self.config.social.triage)
        self.expires_at = int(self._clock() + self.config.gallery.social.retention_days * DAY_S)
        self._source = settings.source
        resume_from, resuming = resume_point(self.audit, settings.source, progress)
        self._operation = AuditedOperation(
            self.audit,
            settings.officer,
            AuditAction.ENROLMENT,
            SOCIAL_SUBJECT,
            {
                "source": str(settings.source),
                "format": "watch",
                "authorised_by": authorisation.authorised_by,
                "reason": authorisation.reason,
                "expires_at": iso(self.expires_at),
                "triage_model": f"{triage.model.name} {triage.model.version}",
                "triage_threshold": triage.threshold,
                "leads_against": [{"version": v, "threshold": round(t, 6)} for v, t in self.versions],
                **resuming,
            },
        )
        try:
            _face_service(self.config, progress)
            plan = WatchPlan(
                settings.source,
                self.config,
                IngestLabel(authorisation.authorised_by, self.ingest_id, self.expires_at),
                leads_by,
                self.versions,
                APP_NAME,
                resume_from,
            )
            # mypy does not apply class decorators: at run time SocialWatcher is an ActorClass.
            self._actor = SocialWatcher.remote(plan)  # type: ignore[attr-defined]
            _answer(self._actor.progress.remote())
        except BaseException as exc:
            self._operation.failed(exc, {"ingest_id": self.ingest_id})
            self._operation = None
            raise
        log.info("social_watch_started", source=str(settings.source), ingest_id=self.ingest_id)

    def run(
        self,
        stopping: threading.Event,
        on_progress: Callable[[WatchProgress], None] = lambda progress: None,
        *,
        once: bool = False,
        duration_s: float | None = None,
    ) -> WatchProgress:
        """Step until `stopping` is set, after one step with `once`, or after `duration_s`; the last figures."""
        actor = self._require_actor()
        ends_at = None if duration_s is None else time.monotonic() + duration_s
        while True:
            progress: WatchProgress = _answer(actor.step.remote())
            on_progress(progress)
            if once or stopping.is_set() or (ends_at is not None and time.monotonic() >= ends_at):
                return progress
            if not progress.done and stopping.wait(POLL_S):
                return progress

    def stop(self, error: BaseException | None = None) -> WatchProgress | None:
        """End the actor and record the watch's outcome (failed, with how far it got, when `error`)."""
        actor, operation = self._actor, self._operation
        self._actor = self._operation = None
        final: WatchProgress | None = None
        if actor is not None:
            try:
                final = _answer(actor.close.remote())
            except (ray.exceptions.RayError, TimeoutError) as exc:
                log.warning("social_watch_close_failed", error=str(exc).splitlines()[0])
                error = error or exc
            ray.kill(actor)
        if operation is not None:
            details = self._outcome(final, operation.operation_id)
            if error is None:
                operation.done(details)
            else:
                operation.failed(error, details)
        return final

    def _outcome(self, final: WatchProgress | None, ingest_id: str) -> dict[str, object]:
        source = {} if self._source is None else {"source": str(self._source.resolve())}
        if final is None:
            return {"ingest_id": ingest_id, **source}
        read = {} if final.read_up_to is None else {"read_up_to": final.read_up_to.details()}
        return {
            **source,
            **read,
            "posts": final.posts,
            "faces": final.faces,
            "flagged": final.flagged,
            "searched": final.searched,
            "leads": final.leads,
            "candidates": final.candidates,
            "skipped": final.skipped,
            "ingest_id": ingest_id,
        }

    def _version(self, watchlist_id: str, officer: str) -> tuple[str, float]:
        searched = WatchlistService(self.gallery, self.audit, self.config).searched_version(
            watchlist_id, None, officer=officer, frozen_for=FROZEN_FOR_WATCH, then="watch again"
        )
        return searched.version.version_id, searched.calibration.threshold

    def _require_actor(self) -> ActorHandle:
        if self._actor is None:
            raise RuntimeError("the watch has not started (or has stopped)")
        return self._actor


def resume_point(
    audit: AuditLog, source: Path, progress: Callable[[str], None]
) -> tuple[ReadUpTo | None, dict[str, object]]:
    """Where the last watch of this manifest stopped, when the manifest still begins with the bytes it read, and
    what the new watch's intent entry says of it (said on the terminal too). A folder is read from its first file."""
    if source.suffix not in MANIFEST_SUFFIXES:
        return None, {}
    recorded = last_read_up_to(audit, source)
    if recorded is None:
        return None, {}
    if prefix_sha256(source, recorded.offset) == recorded.sha256:
        progress(
            f"resuming after line {recorded.line} (byte {recorded.offset}), where the last watch of {source} stopped"
        )
        return recorded, {"resumes_from": recorded.details()}
    progress(
        f"{source} no longer begins with the {recorded.offset} bytes the last watch of it read (replaced or"
        " rewritten): reading it from the beginning"
    )
    return None, {"resume_refused": {**recorded.details(), "why": "the manifest's first bytes changed"}}


def last_read_up_to(audit: AuditLog, source: Path) -> ReadUpTo | None:
    """How far the last watch of `source` that recorded it read the manifest, from the watches' audited outcomes.

    Reads the social-media ingests' entries newest first and stops at the first that recorded this source, so a
    watch's start costs a few entries however long the audit log (which is kept for ever) has grown."""
    resolved = str(source.resolve())
    before: int | None = None
    while entries := audit.about(SOCIAL_SUBJECT, (AuditAction.ENROLMENT,), before_seq=before):
        for entry in entries:
            read = entry.details.get("read_up_to")
            if entry.details.get("source") == resolved and read:
                return ReadUpTo(int(read["offset"]), int(read["line"]), str(read["sha256"]))
        before = entries[-1].seq
    return None


def _face_service(config: LfrConfig, progress: Callable[[str], None]) -> None:
    """Use the cluster's running face service (a live deployment's, a RayService's), or deploy one for the watch."""
    serve.start(proxy_location="Disabled")
    if APP_NAME in serve.status().applications:
        progress("using the cluster's face service")
        return
    progress("deploying the face service")
    deploy_face_service(config.face_models, config.face_service)


def _answer(ref: ray.ObjectRef, timeout_s: float = ACTOR_TIMEOUT_S) -> Any:
    """An actor call's result (Ray's stubs leave actor method results untyped)."""
    return ray.get(ref, timeout=timeout_s)
