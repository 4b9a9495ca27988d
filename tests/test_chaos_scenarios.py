"""The chaos scenarios' own judgement, without a deployment: the registry, duplicates, trends, the report table.

The scenarios against a running deployment are tests/test_chaos.py.
"""

from dataclasses import replace

import numpy as np
import pytest

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.chaos.scenarios import (
    SCENARIOS,
    ChaosOutcome,
    SoakSamples,
    SystemProbe,
    duplicated_alerts,
    fitted_growth,
    outcomes_table,
    repeatedly_sighted,
    scenario,
)
from cluster.fusion.config import FusionConfig
from cluster.fusion.topology import CameraTopology

T0 = 1_700_000_000.0


TOPOLOGY = CameraTopology(("cam0", "cam1"), {("cam0", "cam1"): 20.0, ("cam1", "cam0"): 20.0})


def sighting(sighting_id: str, person: str, first_seen: float, direction: int = 0) -> Sighting:
    embedding = np.zeros(128, dtype=np.float32)
    embedding[direction] = 1.0
    camera = sighting_id.split(":")[0]
    return Sighting(sighting_id, camera, person, "wl", 0.95, first_seen, first_seen + 2.0, 5, embedding)


def alert(alert_id: str, *sightings: Sighting, state: AlertState = AlertState.NEW) -> Alert:
    person = sightings[0].person_id
    raised = sightings[0].last_seen + 1.0
    return Alert(alert_id, "demo", person, "wl", state, sightings, 0.9, raised, raised, 0.9, "dlib")


def probe(results: dict[str, int]) -> SystemProbe:
    return SystemProbe(
        at=T0,
        results=results,
        failed_requests=0,
        cameras=len(results),
        cameras_streaming=len(results),
        search_failures=0,
        awaiting_search=0,
        decided=0,
        dead_letters=0,
        coordinator_answers=True,
    )


def test_every_scenario_of_the_issue_is_registered_by_name():
    assert set(SCENARIOS) == {
        "camera-actor",
        "face-replica",
        "coordinator",
        "milvus-restart",
        "rtsp-drop",
        "disk-full",
        "worker-node",
        "soak",
    }
    assert all(scenario(name).name == name and scenario(name).summary for name in SCENARIOS)


def test_an_unknown_scenario_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown chaos scenario 'kill-all'; choose from: camera-actor, "):
        scenario("kill-all")


def test_a_second_alert_fusion_would_have_merged_into_the_first_is_a_duplicate():
    first = alert("a1", sighting("cam0:1", "p1", T0))
    again = alert("a2", sighting("cam0:7", "p1", T0 + 60))
    much_later = alert("a3", sighting("cam0:9", "p1", T0 + 5000))
    other = alert("b1", sighting("cam0:2", "p2", T0 + 10))
    assert duplicated_alerts([first, again, much_later, other], TOPOLOGY, FusionConfig()) == ("a2",)


def test_alerts_fusion_keeps_apart_on_purpose_are_no_duplicates():
    """A walk faster than the cameras allow, or a face unlike the alert's, raises a second alert by design."""
    first = alert("a1", sighting("cam0:1", "p1", T0))
    too_fast = alert("a2", sighting("cam1:1", "p1", T0 + 3.0))
    unlike = alert("a3", sighting("cam0:5", "p1", T0 + 60, direction=1))
    assert duplicated_alerts([first, too_fast, unlike], TOPOLOGY, FusionConfig()) == ()


def test_after_a_fault_only_new_alerts_that_repeat_one_stored_before_are_duplicates():
    before = alert("a1", sighting("cam0:1", "p1", T0))
    split_before = alert("a2", sighting("cam0:2", "p1", T0 + 10))
    raised_since = alert("a3", sighting("cam0:7", "p1", T0 + 60))
    alerts = [before, split_before, raised_since]
    assert duplicated_alerts(alerts, TOPOLOGY, FusionConfig(), existing=frozenset({"a1", "a2"})) == ("a3",)


def test_fusion_is_judged_on_the_earlier_alert_as_it_stood_when_the_later_was_raised():
    """Capture order is not arrival order: a tracklet captured early may be decided late, when the earlier alert
    has gathered other evidence and no longer looks like it; fusion then keeps them apart, and so does the check."""
    earlier = alert("a1", sighting("cam0:1", "p1", T0), sighting("cam0:3", "p1", T0 + 30, direction=1))
    decided_late = replace(alert("a2", sighting("cam0:2", "p1", T0 + 20)), created_at=T0 + 60)
    assert duplicated_alerts([earlier, decided_late], TOPOLOGY, FusionConfig()) == ()


def test_a_sighting_captured_before_the_later_alert_but_stored_after_it_is_not_held_against_it():
    """Regression (chaos, Milvus restart): one tracklet waited for the gallery and reached the Coordinator after
    another camera's sighting had raised a second alert; judged by capture time, the check called fusion's split a
    duplicate. The store's times (from the audit log) say what the Coordinator held."""
    first = sighting("cam0:1", "p1", T0)
    decided_late = sighting("cam0:3", "p1", T0 + 350)
    earlier = alert("a1", first, decided_late)
    later = replace(alert("a2", sighting("cam0:2", "p1", T0 + 400)), created_at=T0 + 405)
    stored_after = {"cam0:1": T0 + 3, "cam0:3": T0 + 410, "cam0:2": T0 + 405}
    assert duplicated_alerts([earlier, later], TOPOLOGY, FusionConfig(), stored_at=stored_after) == ()
    stored_before = {**stored_after, "cam0:3": T0 + 355}
    assert duplicated_alerts([earlier, later], TOPOLOGY, FusionConfig(), stored_at=stored_before) == ("a2",)
    assert duplicated_alerts([earlier, later], TOPOLOGY, FusionConfig()) == ("a2",), "no times: capture order"


def test_a_sighting_stored_in_two_alerts_is_a_duplicate():
    shared = sighting("cam0:1", "p1", T0)
    alerts = [alert("a1", shared), alert("a2", shared, state=AlertState.REJECTED)]
    assert duplicated_alerts(alerts, TOPOLOGY, FusionConfig()) == ("a2",)


def test_the_next_alert_after_an_officer_decided_one_is_no_duplicate():
    decided = alert("a1", sighting("cam0:1", "p1", T0), state=AlertState.CONFIRMED)
    alerts = [decided, alert("a2", sighting("cam0:3", "p1", T0 + 30))]
    assert duplicated_alerts(alerts, TOPOLOGY, FusionConfig()) == ()


def test_only_people_sighted_more_than_once_are_expected_after_a_fault():
    """A person alerted on a single sighting may have been a borderline match; demanding them again after a fault
    would call a lucky match lost."""
    alerts = [
        alert("a1", sighting("cam0:1", "steady", T0), sighting("cam1:2", "steady", T0 + 30.0)),
        alert("a2", sighting("cam0:3", "lucky", T0)),
        alert("a3", sighting("cam0:4", "later", T0)),
        alert("a4", sighting("cam0:5", "later", T0 + 600.0)),
    ]
    assert repeatedly_sighted(alerts) == {"steady"}, "two alerts of one sighting each are not one alert of two"
    assert repeatedly_sighted(alerts, times=1) == {"steady", "lucky", "later"}


def test_results_count_for_the_camera_that_gained_fewest_and_a_vanished_camera_gained_none():
    before = probe({"cam0": 10, "cam1": 10})
    assert probe({"cam0": 30, "cam1": 14}).least_results_since(before) == 4
    assert probe({"cam0": 30}).least_results_since(before) == -10


def test_memory_growth_is_the_fitted_trend_not_one_spike():
    flat_with_spike = [(t, 100.0 + (50.0 if t == 5 else 0.0)) for t in range(11)]
    assert abs(fitted_growth(flat_with_spike)) < 10
    assert fitted_growth([(t, 100.0 + 3.0 * t) for t in range(11)]) == pytest.approx(30.0)
    assert fitted_growth([(0.0, 1.0)]) == 0.0


def test_soak_figures_compare_the_first_and_last_thirds_of_latency():
    samples = SoakSamples()
    for t in range(0, 91, 5):
        samples.add(float(t), {"camera": 1000 + t}, 0.1 if t < 60 else 0.4)
    figures = samples.figures()
    assert (figures.seconds, figures.samples) == (90.0, 19)
    assert figures.latency_start_s == pytest.approx(0.1) and figures.latency_end_s == pytest.approx(0.4)
    assert figures.memory_start_bytes == {"camera": 1000}
    assert figures.memory_growth_bytes["camera"] == pytest.approx(90.0)


def test_the_table_shows_each_outcome_and_what_it_lost():
    outcome = ChaosOutcome(
        scenario="coordinator",
        injected="killed Coordinator 01",
        fault_seen_s=0.0,
        recovery_s=4.25,
        alerts_before=2,
        alerts_after=3,
        alerts_lost=(),
        sightings_lost=1,
        duplicates=("a9",),
        people_missed=(),
        audit_verifies=True,
        non_match_traces=0,
    )
    assert not outcome.nothing_lost and outcome.recovered
    assert "| coordinator | 0.0 | 4.2 | 2/3 | 1 | 1 | 0 | verifies |" in outcomes_table([outcome])
