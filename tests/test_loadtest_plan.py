"""`lfr loadtest`'s pure parts: the ramp plan, the saturation rule, percentiles, replayed cameras, process roles."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from cluster.alerts.model import Alert, AlertState, Sighting
from cluster.crowd.truth import Appearance, CameraTruth, CrowdTruth, FaceFrame, Neighbour, PersonTruth
from cluster.loadtesting.accuracy import alert_latencies, score
from cluster.loadtesting.cameras import camera_configs, replay_cameras
from cluster.loadtesting.measurements import CDF_POINTS, Percentiles
from cluster.loadtesting.ramp import RampPlan, ramp_values
from cluster.loadtesting.resources import DRIVER, role_of, sample_processes, usage_by_role
from cluster.loadtesting.saturation import SaturationRule
from cluster.vision.face import EMBEDDING_SIZE
from tests.loadtest_reports import step


@pytest.mark.parametrize(
    ("words", "values"),
    [
        (["1", "2", "4", "8"], [1, 2, 4, 8]),
        (["1-8x2"], [1, 2, 4, 8]),
        (["1-10x2"], [1, 2, 4, 8]),
        (["2-8+2"], [2, 4, 6, 8]),
        (["1,2", "3-5+1"], [1, 2, 3, 4, 5]),
        (["2.5-10x2"], [2.5, 5, 10]),
    ],
)
def test_ramp_values_expand_ranges(words, values):
    assert ramp_values(words) == values


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["two"], "neither a number nor a range"),
        (["8-1x2"], "0 < START <= STOP"),
        (["1-8x1"], "factor must be above 1"),
        (["1-8+0"], "step above 0"),
        ([""], "empty ramp"),
        (["1-1000+1"], "more than 64 steps"),
    ],
)
def test_bad_ramp_values_say_what_to_write(words, message):
    with pytest.raises(ValueError, match=message):
        ramp_values(words)


def test_a_plan_ramps_cameras_or_rate_and_only_adds_load():
    plan = RampPlan.of([1, 2, 4], [5.0], step_seconds=10, warmup_seconds=2)
    assert [(s.cameras, s.sample_fps) for s in plan.steps] == [(1, 5.0), (2, 5.0), (4, 5.0)]
    assert plan.max_cameras == 4 and plan.steps[2].offered_fps == 20.0
    by_rate = RampPlan.of([2], [2.0, 4.0, 8.0], step_seconds=10, warmup_seconds=0)
    assert [s.offered_fps for s in by_rate.steps] == [4.0, 8.0, 16.0]
    with pytest.raises(ValueError, match="not both"):
        RampPlan.of([1, 2], [5.0, 10.0], 10, 2)
    with pytest.raises(ValidationError, match="only adds load"):
        RampPlan.of([4, 2], [5.0], 10, 2)
    with pytest.raises(ValidationError, match="list each load once"):
        RampPlan.of([2, 2], [5.0], 10, 2)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        RampPlan.of([0, 1], [5.0], 10, 2)
    with pytest.raises(ValidationError, match="step_seconds"):
        RampPlan.of([1], [5.0], 0, 2)


def test_saturation_by_drops_or_by_throughput_that_stops_rising():
    rule = SaturationRule(max_drop_rate=0.05, min_gain=0.25)
    one, two = step(0, 1, frames_per_s=5.0), step(1, 2, frames_per_s=9.6)
    assert rule.reason(None, one) is None
    assert rule.reason(one, two) is None, "doubling the load nearly doubled the throughput"
    flat = step(1, 2, frames_per_s=6.0)
    reason = rule.reason(one, flat)
    assert reason is not None and "frames/s rose by 1.00" in reason
    dropping = step(1, 2, frames_per_s=9.6, dropped=6)
    assert two.drops.offered == 100 and dropping.drops.rate == pytest.approx(0.06)
    assert "drop rate 6.0% is above 5.0%" in rule.reason(one, dropping)
    assert rule.reason(None, dropping) is not None, "the first step can saturate too"
    assert rule.reason(one, step(1, 2, frames_per_s=9.6, dropped=5)) is None, "at the bound is not above it"


def test_percentiles_are_of_the_samples_with_their_count():
    values = np.random.default_rng(3).exponential(0.2, 1000)
    figures = Percentiles.of(list(values))
    assert figures.samples == 1000
    assert (figures.p50, figures.p95, figures.p99) == pytest.approx(tuple(np.percentile(values, [50, 95, 99])))
    assert len(figures.quantiles) == CDF_POINTS
    assert figures.quantiles[0] == values.min() and figures.quantiles[-1] == values.max()
    assert list(figures.quantiles) == sorted(figures.quantiles)
    assert Percentiles.of([0.5]).p99 == 0.5
    empty = Percentiles.of([])
    assert (empty.samples, empty.p50, empty.p99, empty.quantiles) == (0, None, None, ())


def _truth(tmp_path: Path) -> CrowdTruth:
    def camera(index: int, neighbours: tuple[Neighbour, ...]) -> CameraTruth:
        return CameraTruth(f"cam{index}", f"cam{index}.mp4", 10, 100, 640, 360, 0, neighbours)

    cameras = (
        camera(0, (Neighbour("cam1", 5.0),)),
        camera(1, (Neighbour("cam0", 5.0), Neighbour("cam2", 6.0))),
        camera(2, (Neighbour("cam1", 6.0),)),
    )
    return CrowdTruth(spec=None, background="generated", cameras=cameras, people=(), appearances=())  # type: ignore[arg-type]


def test_more_cameras_than_the_crowd_has_replay_it_as_further_streets(tmp_path):
    cameras = replay_cameras(_truth(tmp_path), tmp_path, 5)
    assert [c.id for c in cameras] == ["cam0", "cam1", "cam2", "cam0_copy1", "cam1_copy1"]
    assert [c.crowd_camera for c in cameras] == ["cam0", "cam1", "cam2", "cam0", "cam1"]
    assert cameras[3].video == tmp_path / "cam0.mp4" and cameras[3].copy == 1
    assert [n.camera_id for n in cameras[4].neighbours] == ["cam0_copy1"], "cam2_copy1 does not run: no neighbour"
    urls = [f"rtsp://127.0.0.1:9/cam{i}" for i in range(5)]
    fused = camera_configs(cameras, urls, 5.0, "LFR in use", neighbours=True)
    running = camera_configs(cameras[:2], urls[:2], 5.0, "LFR in use", neighbours=False)
    assert fused[1].neighbours and not running[1].neighbours
    assert running[0].source == urls[0] and running[0].sample_fps == 5.0
    with pytest.raises(ValueError, match="at least one camera"):
        replay_cameras(_truth(tmp_path), tmp_path, 0)


@pytest.mark.parametrize(
    ("command", "role"),
    [
        (["ray::CameraActor.run"], "camera actors"),
        (["ray::StreamForwarder.pump"], "forwarders + matching"),
        (["ray::ServeReplica:faces:FaceService"], "face service replicas"),
        (["ray::Coordinator"], "coordinator"),
        (["/usr/bin/python3", "-I", "/x/cluster/replay/gst_rtsp_serve.py"], "rtsp replay (load)"),
        (["/venv/bin/python", "-m", "milvus_lite"], "milvus"),
        (["/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet", "--x"], "ray system"),
        (["ray::ServeController"], "ray system"),
        (["/bin/sh"], "other"),
    ],
)
def test_process_roles_come_from_ray_s_process_titles(command, role):
    assert role_of(command) == role


BUSY = """
import sys, time
started = time.process_time()
while time.process_time() - started < 0.4:
    pass
print("done", flush=True)
sys.stdin.read()
"""


def test_cpu_and_memory_are_summed_per_role_over_the_driver_s_descendants():
    """A child titled as a camera actor burns 0.4 s of CPU between two samples: its role shows it, the driver too."""
    before = sample_processes()
    child = subprocess.Popen(
        [sys.executable, "-c", BUSY, "ray::CameraActor.run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "done\n"
        after = sample_processes()
        assert after[child.pid].role == "camera actors" and after[os.getpid()].role == DRIVER
        usage = {u.role: u for u in usage_by_role(before, after, seconds=1.0)}
    finally:
        child.stdin.close()
        child.wait(10)
        child.stdout.close()
    camera = usage["camera actors"]
    assert camera.processes == 1 and 0.35 <= camera.cpu_cores <= 1.0
    assert camera.resident_bytes >= camera.own_bytes > 0
    assert usage[DRIVER].processes == 1
    with pytest.raises(ValueError, match="above 0"):
        usage_by_role(before, after, 0)


def _sighting(camera: str, person: str, last_seen: float) -> Sighting:
    return Sighting(
        sighting_id=f"{camera}:{person}:{last_seen}",
        camera_id=camera,
        person_id=person,
        watchlist_id="wl",
        similarity=0.9,
        first_seen=last_seen - 2.0,
        last_seen=last_seen,
        frames=5,
        embedding=np.ones(EMBEDDING_SIZE, np.float32) / np.sqrt(EMBEDDING_SIZE),
    )


def _alert(created_at: float, *sightings: Sighting) -> Alert:
    return Alert(
        alert_id=f"a{created_at}",
        deployment_id="loadtest",
        person_id=sightings[0].person_id,
        watchlist_id="wl",
        state=AlertState.NEW,
        sightings=sightings,
        confidence=0.9,
        created_at=created_at,
        updated_at=created_at,
        threshold=0.5,
        model="m",
    )


def test_alerts_of_a_street_copy_score_as_the_crowd_cameras_they_replay(tmp_path):
    """An alert on cam0_copy1 is true when the person walked past cam0; the truth of cameras that did not run is out."""
    face = FaceFrame(
        frame=0, box=(0, 0, 10, 10), photo=0, turn=1, roll=0, motion_blur=0, defocus=0, brightness=0, contrast=1
    )
    truth = _truth(tmp_path)
    truth = replace(
        truth,
        people=(
            PersonTruth("ann", True, (), ()),
            PersonTruth("bob", True, (), ()),
            PersonTruth("cy", False, (), ()),
        ),
        appearances=(
            Appearance(0, "ann", "cam0", 0, (), (face,)),
            Appearance(1, "bob", "cam2", 0, (), (face,)),
        ),
    )
    cameras = replay_cameras(truth, tmp_path, 4)[::3]  # cam0 and cam0_copy1 ran; cam2 did not
    alerts = [
        _alert(100.0, _sighting("cam0_copy1", "ann", 99.5)),
        _alert(200.0, _sighting("cam0", "ann", 198.0), _sighting("cam0_copy1", "ann", 199.0)),
        _alert(300.0, _sighting("cam0", "cy", 299.0)),
    ]
    result = score(alerts, truth, cameras)
    assert (result.alerts, result.true_alerts, result.false_alerts) == (3, 2, 1)
    assert result.watchlist_people_seen == 1, "bob only walked past cam2, which did not run"
    assert (result.people_alerted, result.people_missed, result.streets) == (1, (), 2)
    stored_at = {
        "cam0_copy1:ann:99.5": 100.0,
        "cam0:ann:198.0": 200.0,
        "cam0_copy1:ann:199.0": 230.0,
        "cam0:cy:299.0": 300.0,
    }
    assert alert_latencies(alerts, stored_at) == pytest.approx([0.5, 2.0, 31.0, 1.0]), "grown alerts count too"
    assert alert_latencies(alerts, stored_at, since=150.0, until=250.0) == pytest.approx([2.0, 31.0])
    assert alert_latencies(alerts, {"cam0:cy:299.0": 300.0}) == pytest.approx([1.0]), "unknown times are left out"
