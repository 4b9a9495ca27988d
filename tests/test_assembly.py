"""Assemblies: the authorisation a deployment at a protest or assembly needs, and its exclusion windows.

The validation and the window rule are plain logic. The matching test runs the real match stage
(`MatchingSink` with the real tracker on real lfw10 faces) into the real Coordinator
(`AlertCoordinator` over a SQLite records database): a watchlist face seen only inside an exclusion
window is never tracked, searched or alerted, while the same person just after the window is.
"""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from cluster.alerts.opening import open_alert_store
from cluster.alerts.store import AlertStore
from cluster.application.reports import DeploymentReports
from cluster.audit.actions import AuditAction
from cluster.audit.config import AuditConfig
from cluster.audit.log import AuditLog
from cluster.cameras.config import CameraConfig
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from cluster.deployment.assembly import REQUIRED
from cluster.deployment.config import DeploymentConfig
from cluster.deployment.window import Admission, DeploymentWindow, Exclusion
from cluster.fusion.config import FusionConfig
from cluster.fusion.coordination import AlertCoordinator
from cluster.fusion.dead_letters import DeadLetters
from cluster.fusion.fuser import Fuser
from cluster.fusion.topology import CameraTopology
from cluster.live.matching import MatchingSink
from cluster.matching.config import MatchingConfig
from cluster.oversight.html_report import render_html
from tests.deployment_records import SUPERVISOR, record_deployment
from tests.test_deployment import deployment_fields
from tests.test_tracking import CAMERA, T0, ArrayWatchlist, frame_result, frame_time, photos, placed, scene

__all__ = ["photos"]

DEPLOYMENT = "march_test"
ASSEMBLY_EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "deployments" / "assembly_demo.yaml"
AUTHORISATION = {
    "authorised_by_supervisor": "Chief Superintendent B. Example",
    "rank": "chief_superintendent",
    "necessity": "Two people wanted for violent offences are expected to attend.",
    "proportionality": "Two cameras at the dispersal point only; a remembrance service is excluded.",
}


def exclusion(start: str, end: str, reason: str = "Remembrance service") -> dict[str, str]:
    return {"starts_at": f"2025-06-14T{start}:00+01:00", "ends_at": f"2025-06-14T{end}:00+01:00", "reason": reason}


@pytest.mark.parametrize("missing", list(REQUIRED))
def test_an_assembly_without_each_part_of_its_authorisation_is_refused_naming_what_to_add(missing):
    partial = {key: value for key, value in AUTHORISATION.items() if key != missing}
    with pytest.raises(ValidationError) as refused:
        DeploymentConfig(**deployment_fields(assembly=partial))
    message = str(refused.value)
    assert "assembly" in message and f"add {missing}:" in message and REQUIRED[missing] in message


def test_a_blank_reason_or_a_flag_alone_is_refused():
    with pytest.raises(ValidationError, match=r"missing or blank: proportionality \(add proportionality"):
        DeploymentConfig(**deployment_fields(assembly={**AUTHORISATION, "proportionality": "   "}))
    with pytest.raises(ValidationError, match="supervisor-level authorisation"):
        DeploymentConfig(**deployment_fields(assembly=True))


def test_an_officer_below_superintendent_may_not_authorise_an_assembly():
    with pytest.raises(ValidationError, match="'Inspector' may not authorise.*superintendent or above"):
        DeploymentConfig(**deployment_fields(assembly={**AUTHORISATION, "rank": "Inspector"}))
    allowed = DeploymentConfig(**deployment_fields(assembly={**AUTHORISATION, "rank": "Chief Superintendent"}))
    assert allowed.at_assembly and allowed.assembly is not None and allowed.assembly.rank == "chief_superintendent"
    assert not DeploymentConfig(**deployment_fields()).at_assembly


@pytest.mark.parametrize(
    ("windows", "refusal"),
    [
        ([exclusion("11:30", "12:30")], r"exclusion_windows\[0\].*must lie inside the deployment's window"),
        ([exclusion("17:30", "18:30")], r"exclusion_windows\[0\].*must lie inside the deployment's window"),
        ([exclusion("13:00", "14:00"), exclusion("13:59", "15:00")], r"exclusion_windows\[1\] starts .* before"),
        ([exclusion("15:00", "16:00"), exclusion("13:00", "14:00")], r"exclusion_windows\[1\] starts .* before"),
        ([exclusion("14:00", "14:00")], "must be after starts_at"),
        ([exclusion("13:00", "14:00", reason=" ")], "must not be blank"),
    ],
)
def test_exclusion_windows_outside_the_deployment_overlapping_or_empty_are_refused(windows, refusal):
    with pytest.raises(ValidationError, match=refusal):
        DeploymentConfig(**deployment_fields(exclusion_windows=windows))


def test_exclusion_windows_that_touch_are_accepted_and_reach_the_window():
    deployment = DeploymentConfig(
        **deployment_fields(exclusion_windows=[exclusion("12:00", "13:00"), exclusion("13:00", "13:30", "Vigil")])
    )
    window = deployment.window
    assert [(e.ends_at - e.starts_at, e.reason) for e in window.exclusions] == [
        (3600.0, "Remembrance service"),
        (1800.0, "Vigil"),
    ]
    at = datetime.fromisoformat("2025-06-14T12:30:00+01:00")
    assert not deployment.is_active(at) and deployment.is_active(at + timedelta(hours=1))


def test_a_frame_inside_an_exclusion_window_is_refused_and_one_just_after_it_allowed():
    window = DeploymentWindow(1000.0, 2000.0, (Exclusion(1200.0, 1300.0, "Remembrance service"),))
    times = (1199.999, 1200.0, 1299.999, 1300.0, 999.0, 2000.0, float("nan"))
    assert [window.admission(t) for t in times] == [
        Admission.ALLOWED,
        Admission.EXCLUDED,
        Admission.EXCLUDED,
        Admission.ALLOWED,
        Admission.OUTSIDE,
        Admission.OUTSIDE,
        Admission.OUTSIDE,
    ]
    assert [window.allows(t) for t in times] == [True, False, False, True, False, False, False]


def test_a_window_refuses_exclusions_it_does_not_contain_or_that_overlap():
    with pytest.raises(ValueError, match="not inside the deployment window"):
        DeploymentWindow(1000.0, 2000.0, (Exclusion(1900.0, 2100.0, "late"),))
    with pytest.raises(ValueError, match="not overlap"):
        DeploymentWindow(1000.0, 2000.0, (Exclusion(1200.0, 1300.0, "a"), Exclusion(1250.0, 1400.0, "b")))
    with pytest.raises(ValueError, match="must end after it starts"):
        Exclusion(1300.0, 1300.0, "empty")
    window = DeploymentWindow(1000.0, 2000.0, (Exclusion(1200.0, 1300.0, "Remembrance service"),))
    assert DeploymentWindow.from_document(asdict(window)) == window


class CoordinatorOutletInProcess:
    """The sink's way to the Coordinator without Ray: each batch goes straight into `AlertCoordinator.add`."""

    def __init__(self, coordinator: AlertCoordinator) -> None:
        self.coordinator = coordinator
        self.raised: list = []

    def send(self, sightings: list) -> None:
        self.raised.extend(self.coordinator.add(sightings).raised)

    def flush(self) -> None:
        """`add` stored each batch before it returned: nothing is in the air."""


def powell_walks(photos, sink: MatchingSink, seqs: range) -> None:
    """Colin Powell (on the watchlist) walks across the camera, a different photo of him each frame."""
    powell = photos["Colin_Powell"]
    for seq in seqs:
        step = seq % 9
        placement = (powell[1 + step], 0.8, (30.0 + 20 * step, 20.0))
        sink.accept(frame_result(seq, [placed(placement[0].face, placement[1], placement[2])]), scene([placement]))


def test_a_watchlist_face_inside_an_exclusion_window_raises_no_alert_and_leaves_no_trace(photos, tmp_path):
    database = Database(tmp_path / "alerts.sqlite3")
    store = AlertStore(database, AuditLog(database))
    camera = CameraConfig(id=CAMERA, source="rtsp://127.0.0.1:8554/cam0", signage_notice="LFR in use")
    threshold = MatchingConfig().similarity_threshold
    fuser = Fuser(
        CameraTopology.from_config([camera]),
        FusionConfig(),
        deployment_id=DEPLOYMENT,
        threshold=threshold,
        model="dlib-resnet-v1",
    )
    coordinator = AlertCoordinator(fuser, store, DeadLetters(tmp_path / "spool"))
    outlet = CoordinatorOutletInProcess(coordinator)
    watchlist = ArrayWatchlist({"p_powell": photos["Colin_Powell"][0].face.embedding})
    service = Exclusion(frame_time(0), frame_time(9), "Remembrance service")
    window = DeploymentWindow(T0 - 3600, T0 + 3600, (service,))
    sink = MatchingSink(CAMERA, watchlist, threshold, outlet, window=window)
    audited_before = len(store.audit.entries(after_seq=0, limit=1000))

    powell_walks(photos, sink, range(0, 9))
    sink.tick(frame_time(30))
    during = sink.summary()
    assert during.frames_excluded == 9 and during.frames_outside_window == 0
    assert (during.tracker.frames, during.tracker.faces_seen, during.sightings) == (0, 0, 0), "never tracked"
    assert watchlist.searched == 0, "a face in an exclusion window must never be searched"
    assert (during.holdings.embeddings, during.holdings.crops) == (0, 0), "nothing of the face is kept"
    assert outlet.raised == [] and store.stats(DEPLOYMENT).alerts == 0
    assert len(store.audit.entries(after_seq=0, limit=1000)) == audited_before, "no alert entry of any kind"

    powell_walks(photos, sink, range(9, 15))
    sink.close()
    after = sink.summary()
    assert after.frames_excluded == 9 and after.tracker.frames == 6
    assert [alert.person_id for alert in outlet.raised] == ["p_powell"], "the same face just after the window alerts"
    assert store.stats(DEPLOYMENT).alerts == 1
    first_seen = min(sighting.first_seen for alert in outlet.raised for sighting in alert.sightings)
    assert first_seen >= service.ends_at, "the alert's evidence comes only from after the exclusion window"


def test_the_assembly_authorisation_and_exclusion_windows_reach_the_audit_log_and_the_deployment_report(tmp_path):
    """The start entry carries what `DeploymentConfig.authorisation()` gives (LiveRun records exactly that)."""
    config = DeploymentConfig(
        **deployment_fields(assembly=AUTHORISATION, exclusion_windows=[exclusion("14:00", "14:30")])
    )
    store = open_alert_store(DatabaseConfig(url=str(tmp_path / "records.sqlite3")), AuditConfig())
    recorded = record_deployment(store, alerts=False, authorisation=config.authorisation())
    (start, *_) = [e for e in store.audit.entries() if e.action is AuditAction.DEPLOYMENT_STARTED]
    assert start.details["assembly"] == AUTHORISATION
    assert start.details["exclusion_windows"] == [exclusion("14:00", "14:30")]

    report = DeploymentReports(store).make(recorded.deployment_id, officer=SUPERVISOR, channel="cli")
    assembly = report.authorisation.assembly
    assert assembly is not None and assembly.model_dump() == AUTHORISATION
    assert [(w.starts_at, w.reason) for w in report.authorisation.exclusion_windows] == [
        ("2025-06-14T14:00:00+01:00", "Remembrance service")
    ]
    page = render_html(report)
    assert AUTHORISATION["necessity"] in page and AUTHORISATION["proportionality"] in page
    assert "chief superintendent" in page and "14:30:00+01:00: Remembrance service" in page


def test_a_deployment_not_at_an_assembly_says_so_in_its_report(tmp_path):
    store = open_alert_store(DatabaseConfig(url=str(tmp_path / "records.sqlite3")), AuditConfig())
    recorded = record_deployment(store, alerts=False)
    report = DeploymentReports(store).make(recorded.deployment_id, officer=SUPERVISOR, channel="cli")
    assert report.authorisation.assembly is None and report.authorisation.exclusion_windows == []
    page = render_html(report)
    assert "<dt>At an assembly</dt><dd>no</dd>" in page and '<dd id="exclusion-windows">none</dd>' in page


def test_the_example_assembly_deployment_file_loads_with_its_authorisation_and_window():
    config = LfrConfig.model_validate(yaml.safe_load(ASSEMBLY_EXAMPLE.read_text()))
    deployment = config.deployment
    assert deployment is not None and deployment.at_assembly and deployment.assembly is not None
    assert deployment.assembly.rank == "chief_superintendent"
    assert set(deployment.cameras) == {camera.id for camera in config.cameras}
    (window,) = deployment.exclusion_windows
    service = datetime(2025, 11, 8, 13, 0, tzinfo=UTC)
    assert window.reason.startswith("Remembrance") and window.starts_at < service < window.ends_at
    assert deployment.is_active(service - timedelta(hours=1))
