"""Cross-camera fusion on real embeddings: topology, the fusion rule, duplicates and restore.

Each sighting's embedding is a real tracklet's: the quality-weighted pool (`Tracklet`) of three
lfw10 photos of a person; its similarity is to the person's watchlist photo (photo 1).
"""

import math
from dataclasses import replace

import pytest
from pydantic import ValidationError

from cluster.alerts.model import AlertState
from cluster.fusion.confidence import CameraEvidence, alert_confidence
from cluster.fusion.config import FusionConfig
from cluster.fusion.fuser import Fuser, FusionKind
from cluster.fusion.topology import CameraTopology
from cluster.vision.face import Face
from tests.street_sightings import (
    THRESHOLD,
    WATCHLIST,
    camera,
    make_fuser,
    sighting,
    street_cameras,
)


@pytest.fixture(scope="module")
def faces(street_walk_faces) -> dict[str, list[Face]]:
    return street_walk_faces


@pytest.fixture(scope="module")
def topology() -> CameraTopology:
    return CameraTopology.from_config(street_cameras())


# source, target, shortest walking seconds
TRAVEL = [
    ("st_1", "st_1", 0.0),
    ("st_1", "st_2", 180.0),
    ("st_2", "st_1", 180.0),
    ("st_2", "st_3", 210.0),
    ("st_3", "st_2", 250.0),
    ("st_1", "st_3", 390.0),
    ("st_3", "st_1", 430.0),
    ("st_1", "isolated", math.inf),
]


@pytest.mark.parametrize(("source", "target", "seconds"), TRAVEL)
def test_topology_gives_shortest_walking_time(topology, source, target, seconds):
    assert topology.min_travel_s(source, target) == seconds


def test_topology_refuses_unknown_cameras(topology):
    with pytest.raises(ValueError, match="unknown camera 'st_9'"):
        topology.min_travel_s("st_1", "st_9")
    with pytest.raises(ValueError, match="unknown camera 'st_9'"):
        CameraTopology.from_config([camera("st_1", ("st_9", 60.0))])


def test_one_person_crossing_three_cameras_is_one_alert(faces, topology):
    fuser = make_fuser(topology)
    walk = [
        sighting(faces, "Colin_Powell", "st_1", 0.0, photos=(1, 2, 3)),
        sighting(faces, "Colin_Powell", "st_2", 200.0, photos=(4, 5, 6)),
        sighting(faces, "Colin_Powell", "st_3", 430.0, photos=(2, 4, 6)),
    ]
    outcomes = [fuser.add(s) for s in walk]
    assert [o.kind for o in outcomes] == [FusionKind.NEW_ALERT, FusionKind.MERGED, FusionKind.MERGED]
    alert = outcomes[-1].alert
    assert {o.alert.alert_id for o in outcomes} == {alert.alert_id}
    assert alert.cameras == ("st_1", "st_2", "st_3")
    assert [s.sighting_id for s in alert.sightings] == [s.sighting_id for s in walk]
    confidences = [o.alert.confidence for o in outcomes]
    assert confidences == sorted(confidences) and confidences[0] < confidences[-1] < 1.0
    assert (alert.deployment_id, alert.threshold, alert.model, alert.state) == (
        "west_end",
        THRESHOLD,
        "dlib-resnet-v1",
        AlertState.NEW,
    )
    assert (alert.person_id, alert.watchlist_id) == ("p_Colin_Powell", WATCHLIST)


def test_two_watchlist_people_at_once_are_two_alerts(faces, topology):
    fuser = make_fuser(topology)
    sightings = [
        sighting(faces, "Colin_Powell", "st_1", 0.0),
        sighting(faces, "Jacques_Chirac", "st_1", 1.0),
        sighting(faces, "Jacques_Chirac", "st_2", 190.0, photos=(4, 5, 6)),
        sighting(faces, "Colin_Powell", "st_2", 200.0, photos=(4, 5, 6)),
    ]
    outcomes = [fuser.add(s) for s in sightings]
    assert [o.kind for o in outcomes] == [
        FusionKind.NEW_ALERT,
        FusionKind.NEW_ALERT,
        FusionKind.MERGED,
        FusionKind.MERGED,
    ]
    alerts = {o.alert.alert_id: o.alert for o in outcomes}
    assert len(alerts) == 2 and fuser.open_alerts == 2
    for alert in (outcomes[2].alert, outcomes[3].alert):
        assert alert.cameras == ("st_1", "st_2")
        assert {s.person_id for s in alert.sightings} == {alert.person_id}


# name, second camera, seconds from the end of the first sighting (at st_1) to the start of the second, fused?
GAPS = [
    ("walking pace", "st_2", 200.0, True),
    ("running pace, at the limit", "st_2", 90.0, True),
    ("faster than running", "st_2", 60.0, False),
    ("via st_2 to st_3, walking", "st_3", 400.0, True),
    ("via st_2 to st_3, too fast", "st_3", 150.0, False),
    ("slow, within the longest gap", "st_2", 850.0, True),
    ("past the longest gap", "st_2", 1000.0, False),
    ("at the same time on two cameras", "st_2", -2.0, False),
    ("camera nobody can walk to", "isolated", 600.0, False),
    ("same camera, track split", "st_1", -2.0, True),
    ("same camera, back within the window", "st_1", 250.0, True),
    ("same camera, back after the window", "st_1", 400.0, False),
]


@pytest.mark.parametrize(("second_camera", "gap", "fused"), [row[1:] for row in GAPS], ids=[row[0] for row in GAPS])
def test_a_sighting_fuses_only_when_the_topology_allows_the_gap(faces, topology, second_camera, gap, fused):
    fuser = make_fuser(topology, max_gap_s=900.0, same_camera_window_s=300.0, min_travel_fraction=0.5)
    first = fuser.add(sighting(faces, "Colin_Powell", "st_1", 0.0, seconds=4.0))
    second = fuser.add(sighting(faces, "Colin_Powell", second_camera, 4.0 + gap, photos=(4, 5, 6)))
    assert second.kind is (FusionKind.MERGED if fused else FusionKind.NEW_ALERT)
    assert (second.alert.alert_id == first.alert.alert_id) is fused


def test_a_look_alike_matched_to_the_same_person_is_not_fused(faces, topology):
    """Blair wrongly matched as Powell: same person_id, but his embedding is not Powell's."""
    fuser = make_fuser(topology)
    powell = sighting(faces, "Colin_Powell", "st_1", 0.0)
    impostor = sighting(faces, "Tony_Blair", "st_2", 200.0, matched_as="Colin_Powell")
    assert float(powell.embedding @ impostor.embedding) < FusionConfig().fusion_threshold
    assert fuser.add(powell).kind is FusionKind.NEW_ALERT
    assert fuser.add(impostor).kind is FusionKind.NEW_ALERT
    assert fuser.open_alerts == 2


def test_a_resent_sighting_is_a_duplicate(faces, topology):
    fuser = make_fuser(topology)
    first = sighting(faces, "Colin_Powell", "st_1", 0.0)
    created = fuser.add(first)
    again = fuser.add(first)
    assert again.kind is FusionKind.DUPLICATE and again.alert is created.alert
    assert len(fuser.alert(created.alert.alert_id).sightings) == 1 and fuser.held_alerts == 1


def test_restore_then_add_does_not_duplicate_alerts(faces, topology):
    before = make_fuser(topology)
    sightings = [
        sighting(faces, "Colin_Powell", "st_1", 0.0),
        sighting(faces, "Jacques_Chirac", "st_1", 2.0),
        sighting(faces, "Colin_Powell", "st_2", 200.0, photos=(4, 5, 6)),
    ]
    stored = {o.alert.alert_id: o.alert for o in (before.add(s) for s in sightings)}
    after = make_fuser(topology)
    assert after.restore(stored.values()) == 2
    assert [after.add(s).kind for s in sightings] == [FusionKind.DUPLICATE] * 3
    onward = after.add(sighting(faces, "Colin_Powell", "st_3", 440.0, photos=(2, 4, 6)))
    powell_alert = next(a for a in stored.values() if a.person_id == "p_Colin_Powell")
    assert onward.kind is FusionKind.MERGED and onward.alert.alert_id == powell_alert.alert_id
    assert onward.alert.cameras == ("st_1", "st_2", "st_3") and after.held_alerts == 2
    with pytest.raises(ValueError, match="fresh Fuser"):
        after.restore(stored.values())
    other = Fuser(topology, deployment_id="elsewhere", threshold=THRESHOLD, model="dlib-resnet-v1")
    with pytest.raises(ValueError, match="belongs to deployment 'west_end'"):
        other.restore(stored.values())


def test_an_adjudicated_alert_takes_no_more_sightings(faces, topology):
    fuser = make_fuser(topology)
    first = sighting(faces, "Colin_Powell", "st_1", 0.0)
    alert = fuser.add(first).alert
    assert fuser.update_alert(replace(alert, state=AlertState.REJECTED))
    later = fuser.add(sighting(faces, "Colin_Powell", "st_2", 200.0, photos=(4, 5, 6)))
    assert later.kind is FusionKind.NEW_ALERT and later.alert.alert_id != alert.alert_id
    assert fuser.add(first).kind is FusionKind.DUPLICATE, "an adjudicated alert's sightings are still known"
    assert fuser.alert(alert.alert_id).state is AlertState.REJECTED


def test_alerts_close_after_the_open_window(faces, topology):
    fuser = make_fuser(topology, open_window_s=1000.0)
    old = fuser.add(sighting(faces, "Colin_Powell", "st_1", 0.0)).alert
    fuser.add(sighting(faces, "Jacques_Chirac", "st_1", 900.0))
    assert fuser.held_alerts == 2
    late = fuser.add(sighting(faces, "Colin_Powell", "st_1", 1100.0))
    assert late.kind is FusionKind.NEW_ALERT
    assert fuser.alert(old.alert_id) is None and fuser.held_alerts == 2


# name, (frames, best similarity) per camera, expected confidence
CONFIDENCE = [
    ("no camera", [], 0.0),
    ("one camera, ten frames, mid margin", [(10, 0.96)], 0.6 * (1 - math.exp(-2)) * 0.75),
    ("two such cameras", [(10, 0.96)] * 2, 1 - (1 - 0.6 * (1 - math.exp(-2)) * 0.75) ** 2),
    ("one camera at the threshold, one frame", [(1, THRESHOLD)], 0.6 * (1 - math.exp(-0.2)) * 0.5),
]


@pytest.mark.parametrize(("cameras", "expected"), [row[1:] for row in CONFIDENCE], ids=[row[0] for row in CONFIDENCE])
def test_confidence_formula(cameras, expected):
    evidence = [CameraEvidence(frames, similarity) for frames, similarity in cameras]
    assert alert_confidence(evidence, THRESHOLD) == pytest.approx(expected)


def test_confidence_grows_with_cameras_and_frames_and_stays_below_one():
    one = CameraEvidence(5, 0.95)
    figures = [alert_confidence([one] * n, THRESHOLD) for n in range(1, 8)]
    assert figures == sorted(figures) and len(set(figures)) == len(figures) and figures[-1] < 1.0
    by_frames = [alert_confidence([CameraEvidence(f, 0.95)], THRESHOLD) for f in (1, 5, 20, 1000)]
    assert by_frames == sorted(by_frames) and by_frames[-1] <= 0.6


def test_fusion_config_refuses_a_window_shorter_than_its_gaps():
    with pytest.raises(ValidationError, match="open_window_s"):
        FusionConfig(open_window_s=600.0, max_gap_s=900.0)
