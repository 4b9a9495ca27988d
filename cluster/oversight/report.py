"""A deployment's report: the figures an oversight body asks for, built from its records, as one typed document.

report.json is this document; report.html shows it (`cluster.oversight.html_report`); the control
room serves it (supervisor). It holds counts, rates, times and officers' names, never a person id,
a face crop or an embedding: an alert appears only by its id where it is held.

The false-alert rate is compared per watchlist search, the unit the threshold was calibrated for
(FPIR: the share of searches of people not on the list that match someone on it): sightings in
rejected alerts over the searches that were not of a confirmed person. Undecided alerts count as
neither, so the report also gives the rate if every one of them were false.
"""

import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cluster.alerts.model import Alert, AlertState
from cluster.evaluation.openset import CONFIDENCE
from cluster.gallery.attributes import ATTRIBUTE_VALUES, NOT_RECORDED
from cluster.oversight.figures import (
    SMALL_COUNT,
    GroupFigures,
    Outcomes,
    Percentiles,
    RateFigure,
    breakdown,
    percentiles,
    rate_of,
)
from cluster.oversight.records import CameraCounts, DeploymentRecords, Run

REPORT_VERSION = 1
Outcome = Literal["confirmed", "rejected", "not adjudicated"]


class Document(BaseModel):
    """A part of the report: immutable, and nothing but its declared fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RateOut(Document):
    """count of total, its rate and its interval (Wilson) at `confidence`."""

    count: int
    total: int
    rate: float
    low: float
    high: float
    confidence: float


class OutcomesOut(Document):
    alerts: int
    confirmed: int
    rejected: int
    not_adjudicated: int
    false_share: RateOut | None
    """Rejected among adjudicated alerts."""


class AssemblyOut(Document):
    """The supervisor-level authorisation of a deployment at a protest or assembly, with its reasons."""

    authorised_by_supervisor: str
    rank: str
    necessity: str
    proportionality: str


class ExclusionOut(Document):
    """A stretch of the deployment during which nothing was matched."""

    starts_at: str
    ends_at: str
    reason: str


class ReportAuthorisation(Document):
    place: str
    starts_at: str
    ends_at: str
    authorised_by: str
    reason: str
    signage_notice: str | None
    cameras: list[str]
    assembly: AssemblyOut | None = None
    """Present when the deployment was at a protest or assembly."""
    exclusion_windows: list[ExclusionOut] = []


class RunOut(Document):
    started_at: float
    stopped_at: float | None
    error: str | None
    faces_seen: int | None
    watchlist_searches: int | None


class WatchlistOut(Document):
    version: str
    digest: str
    entries: int
    people: int | None
    categories: dict[str, int] | None
    frozen_at: int | None


class MatchingOut(Document):
    threshold: float | None
    model: str
    target_fpir: float
    """The expected false-alert rate: the share of searches of people not on the list the threshold lets alert."""
    expected_tpir: float | None
    list_size: int | None
    fusion: str | None


class FalseAlertRateOut(Document):
    expected_fpir: float
    observed: RateOut | None
    """False matches (sightings in rejected alerts) per search not of a confirmed person."""
    if_undecided_false: RateOut | None
    """The same, if every undecided alert were false."""
    false_alerts_per_face: RateOut | None
    """Rejected alerts per face seen (the figure some forces publish)."""


class AdjudicationTimeOut(Document):
    decided: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    seconds: list[float]
    """Each decided alert's time from being raised to its first final decision."""


class CameraOut(Document):
    camera_id: str
    faces_seen: int | None
    watchlist_searches: int | None
    sightings: int
    outcomes: OutcomesOut
    """Alerts with a sighting from this camera (an alert seen by several cameras counts for each)."""


class HeldOut(Document):
    alert_id: str
    state: str
    held_by: str
    held_at: float


class ReportPurge(Document):
    at: float
    actor: str
    deployment_alerts: int
    alerts: int
    held_kept: int


class GroupOut(Document):
    group: str
    people: int
    """People of the watchlist in this group, as enrolment recorded them."""
    outcomes: OutcomesOut


class BreakdownOut(Document):
    attribute: str
    groups: list[GroupOut]


class DeploymentReport(Document):
    """Everything the report says about one deployment (see the module docstring)."""

    report_version: int
    deployment_id: str
    generated_at: float
    authorisation: ReportAuthorisation
    runs: list[RunOut]
    watchlist: WatchlistOut
    matching: MatchingOut
    faces_seen: int | None
    watchlist_searches: int | None
    alerts_raised: int
    """Alerts the audit log says the deployment raised, purged ones included."""
    alerts_purged: int
    outcomes: OutcomesOut
    """Of the alerts still in the store."""
    false_alert_rate: FalseAlertRateOut
    adjudication_time: AdjudicationTimeOut
    cameras: list[CameraOut]
    held: list[HeldOut]
    retention_runs: int
    purges: list[ReportPurge]
    """Purges that deleted alerts of this deployment."""
    breakdowns: list[BreakdownOut]
    limits: list[str]
    """What the figures can and cannot show, in words."""


def outcome_of(alert: Alert) -> Outcome:
    if alert.state is AlertState.CONFIRMED:
        return "confirmed"
    if alert.state is AlertState.REJECTED:
        return "rejected"
    return "not adjudicated"


def decision_seconds(alert: Alert) -> float | None:
    """Seconds from the alert being raised to its first confirmation or rejection; None while undecided."""
    final = [a.at for a in alert.adjudications if a.state.is_final]
    return None if not final else max(0.0, min(final) - alert.created_at)


def build_report(records: DeploymentRecords, now: float | None = None) -> DeploymentReport:
    """The report of `records` (see the module docstring)."""
    alerts = records.alerts
    outcomes = _tally(alerts)
    runs = records.runs
    faces = _total(run.faces_seen for run in runs)
    searches = _total(run.tracklets_searched for run in runs)
    times = [s for s in (decision_seconds(alert) for alert in alerts) if s is not None]
    spread = percentiles(times)
    authorisation = records.authorisation
    version = records.version
    calibration = None if version is None else version.calibration
    purged = sum(purge.deployment_alerts for purge in records.purges)
    report = DeploymentReport(
        report_version=REPORT_VERSION,
        deployment_id=records.deployment_id,
        generated_at=time.time() if now is None else now,
        authorisation=ReportAuthorisation(
            place=authorisation.place,
            starts_at=authorisation.starts_at,
            ends_at=authorisation.ends_at,
            authorised_by=authorisation.authorised_by,
            reason=authorisation.reason,
            signage_notice=authorisation.signage_notice,
            cameras=list(authorisation.cameras),
            assembly=None if authorisation.assembly is None else AssemblyOut(**asdict(authorisation.assembly)),
            exclusion_windows=[ExclusionOut(**asdict(window)) for window in authorisation.exclusion_windows],
        ),
        runs=[
            RunOut(
                started_at=run.started_at,
                stopped_at=run.stopped_at,
                error=run.error,
                faces_seen=run.faces_seen,
                watchlist_searches=run.tracklets_searched,
            )
            for run in runs
        ],
        watchlist=WatchlistOut(
            version=authorisation.watchlist_version,
            digest=authorisation.watchlist_digest,
            entries=authorisation.entries,
            people=records.composition.people,
            categories=None if records.composition.categories is None else dict(records.composition.categories),
            frozen_at=None if version is None else version.frozen_at,
        ),
        matching=MatchingOut(
            threshold=authorisation.threshold,
            model=authorisation.model,
            target_fpir=authorisation.target_fpir,
            expected_tpir=None if calibration is None else calibration.expected_tpir,
            list_size=None if calibration is None else calibration.list_size,
            fusion=None if calibration is None else calibration.fusion,
        ),
        faces_seen=faces,
        watchlist_searches=searches,
        alerts_raised=len(records.raised),
        alerts_purged=purged,
        outcomes=_outcomes(outcomes),
        false_alert_rate=_false_alert_rate(alerts, authorisation.target_fpir, faces, searches),
        adjudication_time=AdjudicationTimeOut(
            decided=len(times),
            p50_s=None if spread is None else spread.p50,
            p90_s=None if spread is None else spread.p90,
            max_s=None if spread is None else spread.max,
            seconds=sorted(times),
        ),
        cameras=_cameras(records),
        held=[
            HeldOut(
                alert_id=hold.alert_id,
                state=next(a.state.value for a in alerts if a.alert_id == hold.alert_id),
                held_by=hold.held_by,
                held_at=hold.held_at,
            )
            for hold in records.holds
        ],
        retention_runs=len(records.purges),
        purges=[
            ReportPurge(
                at=p.at, actor=p.actor, deployment_alerts=p.deployment_alerts, alerts=p.alerts, held_kept=p.held_kept
            )
            for p in records.purges
            if p.deployment_alerts
        ],
        breakdowns=_breakdowns(records),
        limits=[],
    )
    return report.model_copy(update={"limits": limits(report, spread)})


def _total(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any part is unknown (a run without a stop entry, or one from before the figure)."""
    values = list(values)
    if not values or any(value is None for value in values):
        return None
    return sum(value for value in values if value is not None)


def _tally(alerts: Iterable[Alert]) -> Outcomes:
    outcomes = Outcomes()
    for alert in alerts:
        outcomes = outcomes.plus(outcome_of(alert))
    return outcomes


def _rate(figure: RateFigure | None) -> RateOut | None:
    if figure is None:
        return None
    return RateOut(
        count=figure.count,
        total=figure.total,
        rate=figure.rate,
        low=figure.low,
        high=figure.high,
        confidence=figure.confidence,
    )


def _outcomes(outcomes: Outcomes) -> OutcomesOut:
    return OutcomesOut(
        alerts=outcomes.alerts,
        confirmed=outcomes.confirmed,
        rejected=outcomes.rejected,
        not_adjudicated=outcomes.not_adjudicated,
        false_share=_rate(outcomes.false_share()),
    )


def _false_alert_rate(
    alerts: tuple[Alert, ...], expected: float, faces: int | None, searches: int | None
) -> FalseAlertRateOut:
    sightings = {outcome: 0 for outcome in ("confirmed", "rejected", "not adjudicated")}
    for alert in alerts:
        sightings[outcome_of(alert)] += len(alert.sightings)
    rejected_alerts = sum(1 for alert in alerts if alert.state is AlertState.REJECTED)
    observed = upper = None
    if searches is not None:
        not_mated = max(0, searches - sightings["confirmed"])
        false, undecided = sightings["rejected"], sightings["not adjudicated"]
        if false + undecided <= not_mated:
            observed = _rate(rate_of(false, not_mated))
            upper = _rate(rate_of(false + undecided, not_mated))
    per_face = None if not faces or rejected_alerts > faces else _rate(rate_of(rejected_alerts, faces))
    return FalseAlertRateOut(
        expected_fpir=expected, observed=observed, if_undecided_false=upper, false_alerts_per_face=per_face
    )


def _cameras(records: DeploymentRecords) -> list[CameraOut]:
    named = list(records.authorisation.cameras)
    for run in records.runs:
        named += [camera for camera in run.cameras if camera not in named]
    for alert in records.alerts:
        named += [camera for camera in alert.cameras if camera not in named]
    rows = []
    for camera in named:
        counts = [_camera_counts(run, camera) for run in records.runs]
        seen = [alert for alert in records.alerts if camera in alert.cameras]
        rows.append(
            CameraOut(
                camera_id=camera,
                faces_seen=_total(None if c is None else c.faces_seen for c in counts),
                watchlist_searches=_total(None if c is None else c.tracklets_searched for c in counts),
                sightings=sum(1 for alert in seen for s in alert.sightings if s.camera_id == camera),
                outcomes=_outcomes(_tally(seen)),
            )
        )
    return rows


def _camera_counts(run: Run, camera: str) -> CameraCounts | None:
    """A camera's counts in one run: zeros when the run recorded other cameras but not this one (it did not run
    then), None when the run recorded no per-camera counts (no stop entry, or one from before they were kept)."""
    if camera in run.cameras:
        return run.cameras[camera]
    if run.cameras or (run.error is not None and run.faces_seen == 0):
        return CameraCounts(faces_seen=0, tracklets_searched=0, tracklets_deleted_no_match=0, sightings=0)
    return None


def _breakdowns(records: DeploymentRecords) -> list[BreakdownOut]:
    """Outcomes by each recorded attribute of the alerted person, and by their category."""
    alerted = [(alert.person_id, outcome_of(alert)) for alert in records.alerts]
    people = records.people
    found: list[BreakdownOut] = []
    for attribute, values in ATTRIBUTE_VALUES.items():
        of_person = {pid: getattr(person.attributes, attribute) for pid, person in people.items()}
        found.append(
            BreakdownOut(attribute=attribute, groups=_groups(breakdown(values, NOT_RECORDED, of_person, alerted)))
        )
    categories = tuple(sorted({person.category for person in people.values()}))
    of_category: dict[str, str | None] = {pid: person.category for pid, person in people.items()}
    found.append(
        BreakdownOut(attribute="category", groups=_groups(breakdown(categories, NOT_RECORDED, of_category, alerted)))
    )
    return found


def _groups(rows: tuple[GroupFigures, ...]) -> list[GroupOut]:
    return [GroupOut(group=row.group, people=row.people, outcomes=_outcomes(row.outcomes)) for row in rows]


def limits(report: DeploymentReport, spread: Percentiles | None) -> list[str]:
    """What this report's figures can and cannot show, in plain words, some of it from its own counts."""
    outcomes = report.outcomes
    adjudicated = outcomes.confirmed + outcomes.rejected
    said = [
        "These are the records of one deployment: counts of what happened, not a measure of how the system would do"
        " elsewhere, on other people or on other days.",
        f"Intervals are {CONFIDENCE:.0%} Wilson intervals: the range of rates these counts are consistent with."
        " Where they are wide, the counts are too small to say more.",
        "An alert is false when an officer rejected it and true when an officer confirmed it; an officer's decision"
        " can itself be wrong, and alerts not adjudicated are neither.",
        "The breakdowns use only what enrolment recorded about each watchlist person (not recorded is shown as such,"
        " never inferred from a face). They count outcomes per group; they cannot show why a group differs, and"
        " with few alerts per group a difference is as likely to be chance as bias. Nothing is known here about"
        " passers-by who were not alerted.",
    ]
    if adjudicated < SMALL_COUNT:
        said.append(
            f"Only {adjudicated} alert{'s were' if adjudicated != 1 else ' was'} adjudicated:"
            " too few for the share of false alerts, overall or by group, to be more than an indication."
        )
    if outcomes.not_adjudicated:
        said.append(
            f"{outcomes.not_adjudicated} alert{'s were' if outcomes.not_adjudicated != 1 else ' was'} not adjudicated;"
            " the false-alert rate is given with them counted as neither, and as if all were false."
        )
    if report.watchlist_searches is None:
        said.append(
            "The number of watchlist searches is not recorded for every run (a run still going, killed, or recorded"
            " before the figure was kept), so the observed false-alert rate per search cannot be given."
        )
    else:
        expected = report.false_alert_rate.expected_fpir * report.watchlist_searches
        said.append(
            f"At the expected rate, {report.watchlist_searches} searches would give about {expected:.2g} false"
            " matches; an observed count near that says the calibration held here, not that it always will."
        )
    if report.alerts_purged:
        said.append(
            f"{report.alerts_purged} of the {report.alerts_raised} alerts raised were purged under retention before"
            " this report; outcomes, cameras, times and breakdowns cover only the alerts still held."
        )
    if report.watchlist.people is None:
        said.append("The watchlist version was frozen before its people and categories were recorded.")
    if spread is None:
        said.append("No alert was confirmed or rejected, so there is no time to adjudication to show.")
    return said
