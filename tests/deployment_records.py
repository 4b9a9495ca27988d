"""A deployment's records written as a live run, officers and retention write them, for report tests.

The start and stop entries carry what `LiveRun` records (`_audit_deployment`); the catalogue gets
a watchlist, a calibrated version and what enrolment recorded about its people; the store gets
alerts with real face crops (lfw10), decided, held and purged through its own methods, so every
figure the report shows is one the store and the audit log hold.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass

from cluster.alerts.model import AlertState
from cluster.alerts.store import AlertStore
from cluster.audit.actions import AuditAction
from cluster.gallery.attributes import PersonAttributes
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.records import PersonRecord, Watchlist
from cluster.matching.calibration import CalibratedThreshold
from tests.api.factories import CAMERAS, DEPLOYMENT, MODELS, PEOPLE, TARGET_FPIR, THRESHOLD, WATCHLIST, make_alert

VERSION = f"{WATCHLIST}@v1"
OFFICER = "PC 1234 Example"
SUPERVISOR = "Insp 42 Oversight"
SIGNAGE = "Live facial recognition in use on this street today"
CALIBRATION = CalibratedThreshold(
    threshold=THRESHOLD,
    target_fpir=TARGET_FPIR,
    list_size=9,
    per_pair_rate=TARGET_FPIR / 9,
    expected_tpir=0.65,
    fusion="zsum",
    cohort_digest="c" * 64,
)
ATTRIBUTES = {
    PEOPLE[0]: PersonAttributes(sex="male", age_band="55_64"),
    PEOPLE[1]: PersonAttributes(sex="male", age_band="65_plus"),
    PEOPLE[2]: PersonAttributes(),
}
CATEGORIES = {PEOPLE[0]: "wanted", PEOPLE[1]: "wanted", PEOPLE[2]: "missing"}
RUN_COUNTS = (
    {CAMERAS[0]: (500, 100, 98, 2), CAMERAS[1]: (300, 60, 58, 2), CAMERAS[2]: (200, 40, 39, 1)},
    {CAMERAS[0]: (50, 10, 10, 0), CAMERAS[1]: (30, 6, 6, 0), CAMERAS[2]: (20, 4, 4, 0)},
)
"""Per run, per camera: faces seen, watchlist searches, deleted for no match, sightings."""


@dataclass(frozen=True)
class Recorded:
    """What the records hold, as the test wrote it."""

    deployment_id: str
    t0: float


def record_deployment(
    store: AlertStore,
    *,
    alerts: bool = True,
    stopped: bool = True,
    authorisation: Mapping[str, object] | None = None,
) -> Recorded:
    """A deployment of two runs (the second without a stop when not `stopped`), with four alerts when `alerts`:
    one confirmed and held (two cameras), one rejected, one undecided, one purged under retention; and an alert of
    another deployment, also purged, that no figure may count. authorisation: as `record_start` takes it."""
    catalogue = Catalogue(store.database)
    t0 = time.time()
    catalogue.create_watchlist(Watchlist(WATCHLIST, "West End wanted", "Operation Test", SUPERVISOR, 1, 2**33))
    catalogue.add_version(WATCHLIST, 1, (), 9, "d" * 64, int(t0) - 600, CALIBRATION)
    catalogue.record_people(
        [
            PersonRecord(WATCHLIST, person, CATEGORIES[person], attributes, OFFICER, int(t0) - 900)
            for person, attributes in ATTRIBUTES.items()
        ]
    )
    store.audit.record(
        OFFICER,
        AuditAction.WATCHLIST_CHANGE,
        f"watchlist:{WATCHLIST}",
        {"change": "frozen", "version": VERSION, "entries": 9, "people": 3, "categories": {"missing": 1, "wanted": 2}},
    )
    for number, counts in enumerate(RUN_COUNTS):
        record_start(store, authorisation)
        if stopped or number == 0:
            record_stop(store, counts)
    if alerts:
        _alerts(store, t0)
    return Recorded(DEPLOYMENT, t0)


def record_start(store: AlertStore, authorisation: Mapping[str, object] | None = None) -> None:
    """A run's start entry; `authorisation`: a `DeploymentConfig.authorisation()` over the built-in one."""
    store.audit.record(
        "cli:test",
        AuditAction.DEPLOYMENT_STARTED,
        f"deployment:{DEPLOYMENT}",
        {
            "place": "Oxford Circus, London W1",
            "signage_notice": SIGNAGE,
            "authorised_by": SUPERVISOR,
            "reason": "Wanted offenders seen in the area; necessary and proportionate",
            "starts_at": "2026-06-14T10:00:00+01:00",
            "ends_at": "2026-06-14T18:00:00+01:00",
            "watchlist_id": WATCHLIST,
            "watchlist_version": VERSION,
            "watchlist_digest": "d" * 64,
            "entries": 9,
            "threshold": THRESHOLD,
            "target_fpir": TARGET_FPIR,
            "model": MODELS,
            "cameras": list(CAMERAS),
            **(authorisation or {}),
        },
    )


def record_stop(store: AlertStore, counts: dict[str, tuple[int, int, int, int]]) -> None:
    per_camera = {
        camera: {"faces_seen": f, "tracklets_searched": s, "tracklets_deleted_no_match": d, "sightings": g}
        for camera, (f, s, d, g) in counts.items()
    }
    store.audit.record(
        "cli:test",
        AuditAction.DEPLOYMENT_STOPPED,
        f"deployment:{DEPLOYMENT}",
        {
            "seconds": 3600.0,
            "faces_seen": sum(c["faces_seen"] for c in per_camera.values()),
            "tracklets_searched": sum(c["tracklets_searched"] for c in per_camera.values()),
            "tracklets_deleted_no_match": sum(c["tracklets_deleted_no_match"] for c in per_camera.values()),
            "sightings": sum(c["sightings"] for c in per_camera.values()),
            "per_camera": per_camera,
        },
    )


def _alerts(store: AlertStore, t0: float) -> None:
    store.save(make_alert("confirmed-1", PEOPLE[0], CAMERAS[:2], created_at=t0))
    store.transition("confirmed-1", AlertState.ACKNOWLEDGED, OFFICER, "", at=t0 + 10)
    store.transition("confirmed-1", AlertState.CONFIRMED, OFFICER, "spoke to him; identity confirmed", at=t0 + 40)
    store.hold("confirmed-1", SUPERVISOR, "Operation Test evidence", at=t0 + 50)
    store.save(make_alert("rejected-1", PEOPLE[1], CAMERAS[1:2], created_at=t0 + 5))
    store.transition("rejected-1", AlertState.REJECTED, OFFICER, "not him: different build", at=t0 + 125)
    store.save(make_alert("undecided-1", PEOPLE[2], CAMERAS[2:], created_at=t0 + 8))
    store.save(make_alert("purged-1", PEOPLE[0], CAMERAS[:1], created_at=t0 - 1000))
    store.save(make_alert("other-1", PEOPLE[1], CAMERAS[:1], created_at=t0 - 1000, deployment_id="elsewhere"))
    store.purge(3600, now=t0 - 500 + 3600)


def record_failed_start(store: AlertStore, error: str) -> None:
    """A run refused as it started (its stop entry holds only the error), as `LiveRun` records one."""
    record_start(store)
    store.audit.record("cli:test", AuditAction.DEPLOYMENT_STOPPED, f"deployment:{DEPLOYMENT}", {"error": error})
