"""What the API sends and accepts, as pydantic models, and the one adapter from our dataclasses to them.

Responses are built here from `Alert`, `AlertEvent`, `DeploymentStatus` and friends, so the
OpenAPI schema describes exactly what goes out, and nothing downstream of the store sees an
HTTP shape. Embeddings never leave the server; crops and photos go out as JPEG from their own
endpoints (and the page fetches them with its credential), never inlined in JSON.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from cluster.alerts.counts import AlertStats, PurgeResult, RejectionExpiry
from cluster.alerts.events import AlertEvent, AlertEventKind
from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.api.keys import USER_NAME_PATTERN, ApiUser, IssuedKey, Principal, Role
from cluster.api.public_records import PublicDeployment
from cluster.api.social_search import ControlRoomSocialSearch
from cluster.audit.actions import AuditAction
from cluster.audit.entry import AuditEntry
from cluster.cameras.health import CameraHealth, CameraState
from cluster.cases.model import Case, CaseItem, CaseKind, ItemState, MatchKind
from cluster.cases.store import CasePurge
from cluster.control_room.config import MAX_KEY_LIFETIME_DAYS
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.purpose import Purpose
from cluster.deployment.records import Phase
from cluster.live.status_board import DeploymentStatus
from cluster.oversight.report import DeploymentReport

MAX_REASON_CHARS = 2000
MAX_EVENT_ID = 2**63 - 1
"""The largest id a SQL BIGINT holds: a larger one in a request is refused (422), not passed to the database."""


def _stripped(value: object) -> object:
    """Python's own strip, as the stores apply it: pydantic's `strip_whitespace` keeps the separators U+001C-U+001F,
    so a reason of only those passed here and was refused by the store as empty (a 500, not a 422)."""
    return value.strip() if isinstance(value, str) else value


Reason = Annotated[str, BeforeValidator(_stripped), StringConstraints(max_length=MAX_REASON_CHARS)]
RequiredReason = Annotated[
    str, BeforeValidator(_stripped), StringConstraints(min_length=1, max_length=MAX_REASON_CHARS)
]


class Body(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AcknowledgeRequest(Body):
    reason: Reason = Field("", description="Optional note, such as who was sent to engage.")


class DecisionRequest(Body):
    reason: RequiredReason = Field(description="What was checked: the false-alert figures rely on it.")


class HoldRequest(Body):
    reason: RequiredReason = Field(description="The investigation the hold is for, or why it ends.")


class NewUserRequest(Body):
    name: str = Field(pattern=USER_NAME_PATTERN, description="Lower-case login name, such as pc.smith.")
    role: Role
    key_lifetime_days: int | None = Field(
        None, ge=1, le=MAX_KEY_LIFETIME_DAYS, description="Days the first key is accepted; none: the server's default."
    )


class ErrorResponse(Out):
    detail: str


class RefusalResponse(Out):
    """A 422 of a route that refuses input itself as well: its words, or the validation errors of its fields."""

    detail: str | list[dict[str, Any]]


class Identity(Out):
    name: str
    role: Role


class AlertSummary(Out):
    """One row of the alert queue."""

    alert_id: str
    deployment_id: str
    person_id: str
    watchlist_id: str
    state: AlertState
    confidence: float
    created_at: float
    updated_at: float
    first_seen: float
    last_seen: float
    cameras: list[str]
    sightings: int
    held: bool
    threshold: float
    model: str
    target_fpir: float | None = Field(description="False-alert rate the threshold was calibrated for.")
    expected_tpir: float | None = Field(description="Share of listed people the calibration expects to alert.")
    best_crop_url: str | None = Field(description="The most similar sighting's crop, if it has one.")


class SightingOut(Out):
    sighting_id: str
    camera_id: str
    similarity: float = Field(description="The match score compared with the alert's threshold (fused).")
    model_scores: dict[str, float] = Field(description="Each face model's cosine behind the match score.")
    first_seen: float
    last_seen: float
    frames: int
    box: list[float] | None
    crop_url: str | None


class AdjudicationOut(Out):
    state: AlertState
    officer: str
    reason: str
    at: float


class AlertDetail(AlertSummary):
    sightings_detail: list[SightingOut]
    adjudications: list[AdjudicationOut]
    watchlist_photo_url: str


class AlertPageOut(Out):
    alerts: list[AlertSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    last_event_id: int = Field(
        description="The event log's position when this page was read: follow /events from here (Last-Event-ID)."
    )


class AlertEventOut(Out):
    """One event of the live stream; `alert` is the alert as it stands when sent (null once purged)."""

    event_id: int
    kind: AlertEventKind
    alert_id: str
    deployment_id: str
    state: AlertState
    held: bool
    actor: str
    at: float
    alert: AlertSummary | None


class CameraHealthOut(Out):
    camera_id: str
    state: CameraState
    since: float
    fps_in: float
    fps_out: float
    frames_decoded: int
    frames_sampled: int
    frames_dropped: int
    frames_corrupt: int
    queue_length: int
    reconnects: int
    failures: int
    last_error: str | None
    last_error_time: float | None
    last_frame_time: float | None


class DeploymentCameraOut(CameraHealthOut):
    deployment_id: str


class AdjudicationFigures(Out):
    """Alerts by outcome, for the accuracy and bias reporting a deployment owes the public."""

    alerts: int
    new: int
    acknowledged: int
    confirmed: int
    rejected: int
    held: int
    false_alert_rate: float | None
    suppressed_repeats: int = Field(
        description=(
            'Sightings of a person an officer rejected ("not this person") counted instead of alerted again;'
            " not alerts, so not in the figures above."
        )
    )
    rejected_by_reason: dict[str, int] = Field(description="Rejected (false) alerts by the reason the officer gave.")


class DeploymentStatusOut(Out):
    deployment_id: str
    place: str
    starts_at: float
    ends_at: float
    watchlist_id: str
    watchlist_version: str
    threshold: float
    model: str
    target_fpir: float | None
    expected_tpir: float | None
    faces_seen: int
    non_match_deletions: int
    alerts: int
    cameras: list[CameraHealthOut]
    published_at: float
    age_s: float = Field(description="Seconds since the pipeline published this; a large value means it stopped.")
    adjudication: AdjudicationFigures


class AuthorisationOut(Out):
    """The deployment's authorisation as configured for this server."""

    deployment_id: str
    place: str
    starts_at: float
    ends_at: float
    cameras: list[str]
    watchlist_id: str
    watchlist_version: str
    target_fpir: float | None
    signage_notice: str
    authorised_by: str
    reason: str


class AuditEntryOut(Out):
    """One entry of the audit log as stored: anyone can recompute `hash` from the fields before it (and the key)."""

    seq: int
    at: float
    actor: str
    action: AuditAction
    subject: str
    details: dict[str, Any] = Field(description="Ids, counts, digests and reasons; never a face or an embedding.")
    key_id: str = Field(description="Id of the HMAC key that sealed the entry (empty: none).")
    prev_hash: str
    hash: str


class AuditPageOut(Out):
    entries: list[AuditEntryOut] = Field(description="Oldest first.")
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")
    head_seq: int = Field(
        description="The last entry's seq when the page was read: start at head_seq - N for the latest."
    )


class PublicExclusionOut(Out):
    """An exclusion window as the public sees it: when, and why (nothing personal)."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(description="Why nothing was matched then, e.g. a remembrance service.")


class PublicDeploymentOut(Out):
    """One deployment in the public records: its published terms and figures, nothing about any person."""

    deployment_id: str
    place: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    phase: Phase = Field(description="planned (not started), active (in its window now) or past.")
    purpose: Purpose = Field(description="Whom the watchlist is for: one of the categories in `purposes`.")
    signage_notice: str = Field(description="What the public was told at the deployment.")
    watchlist_size: int | None = Field(description="Entries in the watchlist version it used; null: not frozen yet.")
    faces_seen: int | None = Field(description="Faces its cameras detected; null: not started or not reported.")
    alerts: int
    confirmed: int = Field(description="Alerts an officer confirmed as the person sought.")
    false_alerts: int = Field(description="Alerts an officer rejected as someone else.")
    awaiting_decision: int = Field(description="Alerts not yet confirmed or rejected.")
    at_assembly: bool = Field(
        description="At a protest or assembly: authorised at superintendent rank or above, with its reasons recorded."
    )
    exclusion_windows: list[PublicExclusionOut] = Field(
        description="Stretches of the deployment during which nothing was matched, in time order."
    )


class PublicRecordsOut(Out):
    deployments: list[PublicDeploymentOut] = Field(description="The latest to start first.")
    purposes: dict[Purpose, str] = Field(description="Every purpose category, in words.")


class UserOut(Out):
    name: str
    role: Role
    created_at: float
    created_by: str
    active_keys: int = Field(description="Keys neither revoked nor expired.")
    next_key_expiry: float | None = Field(description="When the first of those expires (unix s); none: no active key.")


class IssuedKeyOut(Out):
    name: str
    role: Role
    key_id: str
    token: str = Field(description="Shown this once; only its digest is stored.")
    expires_at: float = Field(description="When the key stops being accepted (unix s).")


class RevokedOut(Out):
    name: str
    revoked_keys: int


class PurgeOut(Out):
    cutoff: float
    alerts: int
    sightings: int
    crops: int
    adjudications: int
    held_kept: int
    crops_erased: bool
    erasure: str
    rejected_crops: int = Field(description="Crops of rejected alerts whose oversight period was over.")
    suppression_embeddings: int = Field(description='"Not this person" embeddings older than allowed.')
    cases: int = Field(description="Cases of retrospective and social searches past `retention.case_days`, unheld.")
    case_items: int = Field(description="The candidates of those cases, with their crops.")
    cases_held_kept: int = Field(description="Expired cases a supervisor holds, kept.")


DeploymentReportOut = DeploymentReport
"""A deployment's report goes out as the document report.json holds (`cluster.oversight.report`): one shape for the
file an oversight body is handed and the API's answer, checked against the OpenAPI schema like every other."""


def alert_url(alert_id: str) -> str:
    return f"/alerts/{quote(alert_id, safe='')}"


def crop_url(alert_id: str, sighting: Sighting) -> str | None:
    if sighting.crop_jpeg is None:
        return None
    return f"{alert_url(alert_id)}/sightings/{quote(sighting.sighting_id, safe='')}/crop"


def identity(principal: Principal) -> Identity:
    return Identity(name=principal.name, role=principal.role)


def summary(alert: Alert) -> AlertSummary:
    return AlertSummary(**_summary_fields(alert))


def detail(alert: Alert) -> AlertDetail:
    return AlertDetail(
        **_summary_fields(alert),
        sightings_detail=[
            SightingOut(
                sighting_id=s.sighting_id,
                camera_id=s.camera_id,
                similarity=s.similarity,
                model_scores=dict(s.model_scores),
                first_seen=s.first_seen,
                last_seen=s.last_seen,
                frames=s.frames,
                box=None if s.box is None else [float(v) for v in s.box],
                crop_url=crop_url(alert.alert_id, s),
            )
            for s in alert.sightings
        ],
        adjudications=[
            AdjudicationOut(state=a.state, officer=a.officer, reason=a.reason, at=a.at) for a in alert.adjudications
        ],
        watchlist_photo_url=f"{alert_url(alert.alert_id)}/watchlist-photo",
    )


def event(alert_event: AlertEvent, alert: Alert | None) -> AlertEventOut:
    return AlertEventOut(
        event_id=alert_event.event_id,
        kind=alert_event.kind,
        alert_id=alert_event.alert_id,
        deployment_id=alert_event.deployment_id,
        state=alert_event.state,
        held=alert_event.held,
        actor=alert_event.actor,
        at=alert_event.at,
        alert=None if alert is None else summary(alert),
    )


def camera(health: CameraHealth) -> CameraHealthOut:
    return CameraHealthOut(**asdict(health))


def deployment_camera(deployment_id: str, health: CameraHealth) -> DeploymentCameraOut:
    return DeploymentCameraOut(deployment_id=deployment_id, **asdict(health))


def deployment_status(status: DeploymentStatus, stats: AlertStats, age_s: float) -> DeploymentStatusOut:
    return DeploymentStatusOut(
        deployment_id=status.deployment_id,
        place=status.place,
        starts_at=status.window.starts_at,
        ends_at=status.window.ends_at,
        watchlist_id=status.watchlist_id,
        watchlist_version=status.watchlist_version,
        threshold=status.threshold,
        model=status.model,
        target_fpir=status.target_fpir,
        expected_tpir=status.expected_tpir,
        faces_seen=status.faces_seen,
        non_match_deletions=status.non_match_deletions,
        alerts=status.alerts,
        cameras=[camera(health) for health in status.cameras],
        published_at=status.published_at,
        age_s=age_s,
        adjudication=AdjudicationFigures(
            alerts=stats.alerts,
            new=stats.new,
            acknowledged=stats.acknowledged,
            confirmed=stats.confirmed,
            rejected=stats.rejected,
            held=stats.held,
            false_alert_rate=stats.false_alert_rate,
            suppressed_repeats=stats.suppressed_repeats,
            rejected_by_reason=dict(stats.rejected_by_reason),
        ),
    )


def authorisation(deployment: DeploymentConfig) -> AuthorisationOut:
    return AuthorisationOut(
        deployment_id=deployment.id,
        place=deployment.place,
        starts_at=deployment.window.starts_at,
        ends_at=deployment.window.ends_at,
        cameras=list(deployment.cameras),
        watchlist_id=deployment.watchlist_id,
        watchlist_version=deployment.watchlist_version,
        target_fpir=deployment.target_fpir,
        signage_notice=deployment.signage_notice,
        authorised_by=deployment.authorised_by,
        reason=deployment.reason,
    )


def audit_page(entries: list[AuditEntry], more: bool, head_seq: int) -> AuditPageOut:
    return AuditPageOut(
        entries=[AuditEntryOut(**entry.to_json()) for entry in entries],
        next_after=entries[-1].seq if more and entries else None,
        head_seq=head_seq,
    )


def public_records(deployments: list[PublicDeployment]) -> PublicRecordsOut:
    return PublicRecordsOut(
        deployments=[
            PublicDeploymentOut(
                deployment_id=deployment.deployment_id,
                place=deployment.place,
                starts_at=datetime.fromtimestamp(deployment.starts_at, UTC),
                ends_at=datetime.fromtimestamp(deployment.ends_at, UTC),
                phase=deployment.phase,
                purpose=deployment.purpose,
                signage_notice=deployment.signage_notice,
                watchlist_size=deployment.watchlist_size,
                faces_seen=deployment.faces_seen,
                alerts=deployment.alerts,
                confirmed=deployment.confirmed,
                false_alerts=deployment.false_alerts,
                awaiting_decision=deployment.awaiting_decision,
                at_assembly=deployment.at_assembly,
                exclusion_windows=[
                    PublicExclusionOut(
                        starts_at=datetime.fromtimestamp(window.starts_at, UTC),
                        ends_at=datetime.fromtimestamp(window.ends_at, UTC),
                        reason=window.reason,
                    )
                    for window in deployment.exclusion_windows
                ],
            )
            for deployment in deployments
        ],
        purposes={purpose: purpose.label for purpose in Purpose},
    )


def user(account: ApiUser) -> UserOut:
    return UserOut(
        name=account.name,
        role=account.role,
        created_at=account.created_at,
        created_by=account.created_by,
        active_keys=account.active_keys,
        next_key_expiry=account.next_expiry,
    )


def issued_key(issued: IssuedKey) -> IssuedKeyOut:
    return IssuedKeyOut(
        name=issued.name, role=issued.role, key_id=issued.key_id, token=issued.token, expires_at=issued.expires_at
    )


def purge(result: PurgeResult, expired: RejectionExpiry, cases: CasePurge) -> PurgeOut:
    return PurgeOut(
        rejected_crops=expired.crops,
        suppression_embeddings=expired.suppression_embeddings,
        cases=cases.cases,
        case_items=cases.items,
        cases_held_kept=cases.held_kept,
        cutoff=result.cutoff,
        alerts=result.alerts,
        sightings=result.sightings,
        crops=result.crops,
        adjudications=result.adjudications,
        held_kept=result.held_kept,
        crops_erased=result.crops_erased and expired.erased and cases.erased,
        erasure=result.erasure,
    )


def _summary_fields(alert: Alert) -> dict:
    best = max(alert.sightings, key=lambda s: (s.crop_jpeg is not None, s.similarity))
    return {
        "alert_id": alert.alert_id,
        "deployment_id": alert.deployment_id,
        "person_id": alert.person_id,
        "watchlist_id": alert.watchlist_id,
        "state": alert.state,
        "confidence": alert.confidence,
        "created_at": alert.created_at,
        "updated_at": alert.updated_at,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "cameras": list(alert.cameras),
        "sightings": len(alert.sightings),
        "held": alert.held,
        "threshold": alert.threshold,
        "model": alert.model,
        "target_fpir": alert.target_fpir,
        "expected_tpir": alert.expected_tpir,
        "best_crop_url": crop_url(alert.alert_id, best),
    }


class CaseItemOut(Out):
    """One candidate of a case: where the face is, what it matched at which score, and the officer's decision."""

    number: int = Field(description="The item's number in its case, from 1.")
    source: str = Field(description="The footage file (retro) or probe photo (social) the face is in.")
    frame_index: int | None
    frame_time_s: float | None = Field(description="Seconds into the video; null for a still image.")
    box: list[float] | None
    match_kind: MatchKind
    match_id: str = Field(description="The watchlist entry, or the stored social-media face, it matched.")
    person_id: str = Field(description="The watchlist person, or platform:post_id for a social-media post.")
    label: str
    score: float = Field(description="The match score, compared with `threshold`.")
    threshold: float
    model_scores: dict[str, float]
    state: ItemState
    decided_by: str | None
    decision_reason: str | None
    decided_at: float | None
    crop_url: str | None = Field(description="The face's crop (JPEG), while the case keeps it.")


class CaseSummary(Out):
    """One row of the case list: the search's authorisation and its candidates by state."""

    case_id: str
    kind: CaseKind
    officer: str = Field(description="The officer who ran the search and answers for it.")
    reason: str = Field(description="Why the search was necessary, as authorised.")
    opened_at: float
    query: str
    threshold: float
    faces_seen: int
    items: int
    pending: int
    confirmed: int
    rejected: int
    held: bool


class CaseDetail(CaseSummary):
    query_digest: str
    model: str
    sources: list[str] = Field(description="The first sources searched, by name; `sources_count` in all.")
    sources_count: int
    sources_digest: str = Field(description="SHA-256 over every source's name, in the order searched.")
    reports: list[str] = Field(description="Report files the search wrote; deleted with the case.")
    held_by: str | None
    held_reason: str | None
    held_at: float | None
    items_detail: list[CaseItemOut]


class CaseListOut(Out):
    cases: list[CaseSummary]


def case_summary(case: Case) -> CaseSummary:
    return CaseSummary(**_case_fields(case))


def case_detail(case: Case) -> CaseDetail:
    hold = case.hold
    return CaseDetail(
        **_case_fields(case),
        query_digest=case.provenance.query_digest,
        model=case.provenance.model,
        sources=list(case.provenance.sources),
        sources_count=case.provenance.sources_count,
        sources_digest=case.provenance.sources_digest,
        reports=list(case.provenance.reports),
        held_by=None if hold is None else hold.officer,
        held_reason=None if hold is None else hold.reason,
        held_at=None if hold is None else hold.at,
        items_detail=[case_item(item) for item in case.items],
    )


def case_item(item: CaseItem) -> CaseItemOut:
    decision = item.decision
    return CaseItemOut(
        number=item.number,
        source=item.source,
        frame_index=item.frame_index,
        frame_time_s=item.frame_time_s,
        box=None if item.box is None else list(item.box),
        match_kind=item.match_kind,
        match_id=item.match_id,
        person_id=item.person_id,
        label=item.label,
        score=item.score,
        threshold=item.threshold,
        model_scores=dict(item.model_scores),
        state=item.state,
        decided_by=None if decision is None else decision.officer,
        decision_reason=None if decision is None else decision.reason,
        decided_at=None if decision is None else decision.at,
        crop_url=f"/cases/{quote(item.case_id, safe='')}/items/{item.number}/crop" if item.has_crop else None,
    )


def _case_fields(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "kind": case.kind,
        "officer": case.authorisation.officer,
        "reason": case.authorisation.reason,
        "opened_at": case.opened_at,
        "query": case.provenance.query,
        "threshold": case.provenance.threshold,
        "faces_seen": case.provenance.faces_seen,
        "items": len(case.items),
        "pending": case.pending,
        "confirmed": case.count(ItemState.CONFIRMED),
        "rejected": case.count(ItemState.REJECTED),
        "held": case.held,
    }


class SocialPostOut(Out):
    """One post the searched face appears in: the match, the post's provenance as its export gave it, its text's
    triage, and its candidate in the case the search opened."""

    rank: int = Field(description="1 is the most similar face.")
    similarity: float = Field(description="Cosine similarity of the post's face to the uploaded one.")
    platform: str
    post_id: str
    author: str | None = Field(description="The post's author; null when its record was deleted since.")
    url: str
    posted_at: float = Field(description="When the post was made (unix seconds).")
    place: str = Field(description="Where the post says it was made; empty when it says nothing.")
    image: str = Field(description="The stored image of the post the face is in.")
    flagged: bool | None = Field(
        description="Whether the post's text was flagged for an officer by the text classifier (it decides nothing);"
        " null when the post's record was deleted since."
    )
    triage_score: float | None = Field(description="The classifier's score of the text; null without text.")
    triage_model: str | None = Field(description="The classifier and its version that gave the score.")
    case_item: int = Field(description="The match's candidate number in the case, to confirm or reject there.")
    crop_url: str | None = Field(description="The face's crop in the post's image (JPEG), while the case keeps it.")


class SocialSearchOut(Out):
    """A social search: the face searched with, every post it appears in (best first), and the case opened for
    them."""

    case_id: str
    case_url: str = Field(description="The case, whose candidates an officer confirms or rejects.")
    probe: str = Field(description="What the case and the audit log call the uploaded photo.")
    face: int = Field(description="The index of the face searched with among the photo's faces.")
    faces_found: int = Field(description="Faces found in the photo.")
    min_similarity: float = Field(description="The lowest similarity listed.")
    faces_searched: int = Field(description="Stored social-media faces searched.")
    matches: list[SocialPostOut]


def social_search_out(search: ControlRoomSocialSearch) -> SocialSearchOut:
    case = search.result.case
    items = {item.match_id: item for item in case.items}
    case_path = f"/cases/{quote(case.case_id, safe='')}"
    matches = []
    for found in search.found:
        face, post = found.match.face, found.post
        item = items[face.face_id]
        matches.append(
            SocialPostOut(
                rank=found.match.rank,
                similarity=found.match.similarity,
                platform=face.platform,
                post_id=face.post_id,
                author=None if post is None else post.author,
                url=face.url,
                posted_at=face.captured_at,
                place=face.place,
                image=face.image_path,
                flagged=None if post is None else post.flagged,
                triage_score=None if post is None else post.triage_score,
                triage_model=None if post is None else f"{post.triage_model} {post.triage_model_version}",
                case_item=item.number,
                crop_url=f"{case_path}/items/{item.number}/crop" if item.has_crop else None,
            )
        )
    probe = search.result.probe
    return SocialSearchOut(
        case_id=case.case_id,
        case_url=case_path,
        probe=search.probe_name,
        face=probe.index,
        faces_found=probe.faces_found,
        min_similarity=case.provenance.threshold,
        faces_searched=case.provenance.faces_seen,
        matches=matches,
    )
