"""What the records database holds about one deployment, gathered for its report.

Everything comes from the records database alone, so a report can be made long after the run,
on any host, without the configuration file or Milvus: the deployment's authorisation and each
run's counts from its start and stop entries in the audit log, the watchlist version and its
calibration from the catalogue, the version's people and categories from its freeze entry, the
alerts with their sightings and decisions from the alert store, holds and purges from the audit
log, and what enrolment recorded about each watchlist person from the catalogue.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster.alerts.model import Alert
from cluster.alerts.query import AlertFilter
from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.audit.entry import AuditEntry
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.errors import UnknownWatchlistError
from cluster.gallery.records import PersonRecord, WatchlistVersion

ENTRIES_PER_READ = 1000
ALERTS_PER_PAGE = 500


class NoDeploymentRecordsError(LookupError):
    """The audit log holds no start of this deployment: it never ran against this records database."""


def deployment_subject(deployment_id: str) -> str:
    """How audit entries name a deployment."""
    return f"deployment:{deployment_id}"


@dataclass(frozen=True)
class CameraCounts:
    """One camera's match-stage counts over one run (None: the run's stop entry predates the figure)."""

    faces_seen: int
    tracklets_searched: int | None
    tracklets_deleted_no_match: int
    sightings: int


@dataclass(frozen=True)
class Run:
    """One start of the deployment and its stop (None: no stop recorded; it is still running or was killed).

    error: why it stopped at its start, when it failed to. Counts are the stop entry's (None when absent).
    cameras: each camera's counts, when the stop entry holds them (empty for an older entry or a failed start).
    """

    started_at: float
    stopped_at: float | None
    error: str | None
    faces_seen: int | None
    tracklets_searched: int | None
    cameras: Mapping[str, CameraCounts] = field(default_factory=dict)


@dataclass(frozen=True)
class AssemblyAuthorisationRecord:
    """The supervisor-level authorisation a deployment at a protest or assembly recorded at its start."""

    authorised_by_supervisor: str
    rank: str
    necessity: str
    proportionality: str


@dataclass(frozen=True)
class ExclusionRecord:
    """An exclusion window as recorded at the start: ISO 8601 times and why nothing was matched then."""

    starts_at: str
    ends_at: str
    reason: str


@dataclass(frozen=True)
class Authorisation:
    """The deployment as its first start recorded it: place, window, who authorised it and why, what it searched."""

    place: str
    starts_at: str
    ends_at: str
    authorised_by: str
    reason: str
    signage_notice: str | None
    cameras: tuple[str, ...]
    watchlist_version: str
    watchlist_digest: str
    entries: int
    threshold: float | None
    target_fpir: float
    model: str
    assembly: AssemblyAuthorisationRecord | None = None
    exclusion_windows: tuple[ExclusionRecord, ...] = ()


@dataclass(frozen=True)
class Hold:
    """An alert of the deployment held past retention: by whom and since when (the reason stays with the alert)."""

    alert_id: str
    held_by: str
    held_at: float


@dataclass(frozen=True)
class Purge:
    """One retention purge: how many of this deployment's alerts it deleted, of how many in all."""

    at: float
    actor: str
    deployment_alerts: int
    alerts: int
    held_kept: int


@dataclass(frozen=True)
class Composition:
    """Who the watchlist version held, as its freeze entry recorded it (None: frozen before this was recorded)."""

    people: int | None
    categories: Mapping[str, int] | None


@dataclass(frozen=True)
class DeploymentRecords:
    """Everything the report is made from.

    raised: ids of every alert the audit log says this deployment raised (purged ones included).
    people: what enrolment recorded about each person of the watchlist, by person id.
    """

    deployment_id: str
    authorisation: Authorisation
    runs: tuple[Run, ...]
    version: WatchlistVersion | None
    composition: Composition
    alerts: tuple[Alert, ...]
    raised: frozenset[str]
    holds: tuple[Hold, ...]
    purges: tuple[Purge, ...]
    people: Mapping[str, PersonRecord]


def read_records(store: AlertStore, catalogue: Catalogue, deployment_id: str) -> DeploymentRecords:
    """The deployment's records; NoDeploymentRecordsError when the audit log holds no start of it."""
    subject = deployment_subject(deployment_id)
    starts: list[AuditEntry] = []
    stops: list[AuditEntry] = []
    raised: set[str] = set()
    held: dict[str, Hold] = {}
    purges: list[AuditEntry] = []
    freezes: list[AuditEntry] = []
    for entry in _every_entry(store):
        action, details = entry.action, entry.details
        if action is AuditAction.DEPLOYMENT_STARTED and entry.subject == subject:
            starts.append(entry)
        elif action is AuditAction.DEPLOYMENT_STOPPED and entry.subject == subject:
            stops.append(entry)
        elif action is AuditAction.ALERT_RAISED and details.get("deployment_id") == deployment_id:
            raised.add(entry.subject)
        elif action is AuditAction.ALERT_HELD and entry.subject in raised:
            held[entry.subject] = Hold(entry.subject, entry.actor, float(details.get("held_at", entry.at)))
        elif action is AuditAction.ALERT_RELEASED:
            held.pop(entry.subject, None)
        elif action is AuditAction.PURGE and entry.subject == "alerts":
            purges.append(entry)
        elif action is AuditAction.WATCHLIST_CHANGE and details.get("change") == "frozen":
            freezes.append(entry)
    if not starts:
        raise NoDeploymentRecordsError(
            f"the audit log of {store.database.describe()} records no start of deployment {deployment_id!r}: check the"
            " id, and that the configuration's database.url is the one its live run wrote to"
        )
    authorisation = _authorisation(starts[0].details)
    alerts = tuple(_alerts(store, deployment_id))
    version = _version(catalogue, authorisation.watchlist_version)
    people = {} if version is None else {p.person_id: p for p in catalogue.people(version.watchlist_id)}
    in_store = {alert.alert_id for alert in alerts}
    return DeploymentRecords(
        deployment_id=deployment_id,
        authorisation=authorisation,
        runs=tuple(_runs(starts, stops)),
        version=version,
        composition=_composition(freezes, authorisation.watchlist_version),
        alerts=alerts,
        raised=frozenset(raised | in_store),
        holds=tuple(hold for alert_id, hold in sorted(held.items()) if alert_id in in_store),
        purges=tuple(_purge(entry, raised) for entry in purges if entry.at >= starts[0].at),
        people=people,
    )


def _every_entry(store: AlertStore) -> Iterator[AuditEntry]:
    after = 0
    while True:
        entries = store.audit.entries(after_seq=after, limit=ENTRIES_PER_READ)
        yield from entries
        if len(entries) < ENTRIES_PER_READ:
            return
        after = entries[-1].seq


def _alerts(store: AlertStore, deployment_id: str) -> Iterator[Alert]:
    cursor: str | None = None
    while True:
        page = store.list(AlertFilter(deployment_id=deployment_id), limit=ALERTS_PER_PAGE, cursor=cursor)
        yield from page.alerts
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _authorisation(details: Mapping[str, Any]) -> Authorisation:
    return Authorisation(
        place=str(details["place"]),
        starts_at=str(details["starts_at"]),
        ends_at=str(details["ends_at"]),
        authorised_by=str(details["authorised_by"]),
        reason=str(details["reason"]),
        signage_notice=details.get("signage_notice"),
        cameras=tuple(details.get("cameras", ())),
        watchlist_version=str(details["watchlist_version"]),
        watchlist_digest=str(details["watchlist_digest"]),
        entries=int(details["entries"]),
        threshold=details.get("threshold"),
        target_fpir=float(details["target_fpir"]),
        model=str(details["model"]),
        assembly=_assembly(details.get("assembly")),
        exclusion_windows=tuple(
            ExclusionRecord(str(window["starts_at"]), str(window["ends_at"]), str(window["reason"]))
            for window in details.get("exclusion_windows") or ()
        ),
    )


def _assembly(details: Mapping[str, Any] | None) -> AssemblyAuthorisationRecord | None:
    """The assembly authorisation of a start entry; None for a deployment not at an assembly (or audited before)."""
    if not details:
        return None
    return AssemblyAuthorisationRecord(
        authorised_by_supervisor=str(details["authorised_by_supervisor"]),
        rank=str(details["rank"]),
        necessity=str(details["necessity"]),
        proportionality=str(details["proportionality"]),
    )


def _runs(starts: list[AuditEntry], stops: list[AuditEntry]) -> Iterator[Run]:
    """Each start paired with the first stop after it and before the next start."""
    for index, start in enumerate(starts):
        next_start = starts[index + 1].seq if index + 1 < len(starts) else None
        stop = next((s for s in stops if s.seq > start.seq and (next_start is None or s.seq < next_start)), None)
        details = {} if stop is None else stop.details
        cameras = {
            camera_id: CameraCounts(
                faces_seen=int(counts["faces_seen"]),
                tracklets_searched=counts.get("tracklets_searched"),
                tracklets_deleted_no_match=int(counts["tracklets_deleted_no_match"]),
                sightings=int(counts["sightings"]),
            )
            for camera_id, counts in details.get("per_camera", {}).items()
        }
        error = details.get("error")
        # A run that failed at its start matched nothing: its counts are zeros, not unknowns.
        nothing = 0 if error is not None else None
        yield Run(
            started_at=start.at,
            stopped_at=None if stop is None else stop.at,
            error=error,
            faces_seen=details.get("faces_seen", nothing),
            tracklets_searched=details.get("tracklets_searched", nothing),
            cameras=cameras,
        )


def _version(catalogue: Catalogue, version_id: str) -> WatchlistVersion | None:
    try:
        return catalogue.version(version_id)
    except UnknownWatchlistError:
        return None


def _composition(freezes: list[AuditEntry], version_id: str) -> Composition:
    for entry in reversed(freezes):
        if entry.details.get("version") == version_id:
            categories = entry.details.get("categories")
            return Composition(entry.details.get("people"), None if categories is None else dict(categories))
    return Composition(None, None)


def _purge(entry: AuditEntry, raised: set[str]) -> Purge:
    ids = entry.details.get("alert_ids", [])
    return Purge(
        at=entry.at,
        actor=entry.actor,
        deployment_alerts=sum(1 for alert_id in ids if alert_id in raised),
        alerts=int(entry.details.get("alerts", len(ids))),
        held_kept=int(entry.details.get("held_kept", 0)),
    )
