"""The live pipeline on real Ray and Serve: real H.264 crowds replayed by CameraActors, the real face models.

The session's Ray cluster (tests/conftest.py) and one Serve instance for the module (no HTTP
proxy: handles only). Each test starts its own cameras and forwarders and stops them, whatever
happens in it.
"""

import io
import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest
import ray
from ray import serve

from actors.face_service import APP_NAME, DEPLOYMENT_NAME, app_from_config
from actors.live_pipeline import LivePipeline
from actors.matching_sinks import SecondStageLink
from cluster.cameras.frames import CameraFrame
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.live.config import FaceServiceConfig
from cluster.live.face_service import FrameGroup, FrameRequest
from cluster.live.forwarding import StreamStats
from cluster.vision.config import FaceModelsConfig
from loadtest.passerby_sinks import PasserBySinks
from tests.camera_sources import camera_config
from tests.waiting import scaled, wait_for

pytestmark = pytest.mark.slow

MODELS = FaceModelsConfig(device="cpu")
WAIT_S = 60.0
"""On an idle machine; every wait stretches it by the machine's load (tests/waiting.py)."""
WARM_RESULTS = 5
"""Results each camera has had before latencies count towards a bound."""
OVERLOAD_OBSERVATION_S = 6.0
"""How long the overloaded pipeline is watched for drops, latency and memory growth."""
_registry_names = (f"test_registry_{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def cluster(ray_session):
    serve.start(proxy_location="Disabled")
    yield
    serve.shutdown()


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Path:
    """Three 640x360 cameras, 4 s at 10 fps, with real faces walking by."""
    out = tmp_path_factory.mktemp("crowd")
    make_crowd(CrowdSpec(cameras=3, seconds=4, fps=10, width=640, height=360, seed=1), out)
    return out


def cameras_of(crowd: Path, count: int = 3, **fields) -> list:
    return [
        camera_config(crowd / f"cam{i}.mp4", id=f"cam{i}", loop=True, sample_fps=10.0, **fields) for i in range(count)
    ]


def service_config(**fields) -> FaceServiceConfig:
    defaults = {"threads_per_replica": 2, "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.05}}
    return FaceServiceConfig.model_validate({**defaults, **fields})


def wait_until(pipeline: LivePipeline, predicate, timeout_s: float = WAIT_S) -> list[StreamStats]:
    """The pipeline's stats once `predicate` holds; fails after `timeout_s`, stretched by the machine's load."""
    budget_s = scaled(timeout_s)
    deadline = time.monotonic() + budget_s
    while True:
        stats = pipeline.stats()
        if predicate(stats):
            return stats
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {budget_s:.0f} s; stats: {stats}")
        time.sleep(0.25)


def running(cluster, crowd_cameras, service, **kwargs) -> LivePipeline:
    return LivePipeline.start(crowd_cameras, MODELS, service, registry_name=next(_registry_names), **kwargs)


def test_three_cameras_share_batches_and_find_faces(cluster, crowd):
    """Latency is read once every camera has had a few results (a fresh replica's first batches, torch
    allocating and tuning its kernels, take seconds). Its size is a benchmark's business
    (`loadtest.bench_pipeline_live`) and its bound the overload test's: here it must be measured per camera."""
    pipeline = running(cluster, cameras_of(crowd), service_config())
    try:
        wait_until(pipeline, lambda s: all(c.results_ok >= WARM_RESULTS for c in s))
        warm_at = time.time()
        stats = wait_until(
            pipeline, lambda s: all(c.results_ok >= 15 for c in s) and max(c.max_batch_size for c in s) > 1
        )
        warm = pipeline.stats(since=warm_at)
    finally:
        final = pipeline.stop()
    assert [c.camera_id for c in stats] == ["cam0", "cam1", "cam2"]
    assert max(c.max_batch_size for c in final) > 1, "frames of the three cameras were never batched together"
    assert sum(c.faces for c in final) > 0, "no face found in a crowd of real faces"
    assert all(c.results_error == 0 for c in final)
    for camera in warm:
        assert camera.latency_p50_s is not None and camera.latency_p99_s is not None, camera
        assert 0 < camera.latency_p50_s <= camera.latency_p99_s, camera
    for camera in final:
        timings = camera.mean_timings
        assert timings is not None and timings.detect_s > 0 and timings.embed_s > 0 and timings.decode_s > 0
        assert timings.total_s >= timings.detect_s


def test_corrupt_frames_and_resolution_change_do_not_break_the_batch(cluster, crowd, tmp_path):
    """A camera whose resolution changes mid-stream and a frame too small to use: the others' frames still succeed."""
    changing = tmp_path / "changing.h264"
    changing.write_bytes(_h264_clip(640, 360, 20) + _h264_clip(320, 240, 20))
    cameras = [*cameras_of(crowd, 2), camera_config(changing, id="changing", loop=True, sample_fps=10.0, max_width=320)]
    pipeline = running(cluster, cameras, service_config())
    try:
        tiny = FrameRequest(_tiny_frame())
        refused = pipeline.service.remote(tiny).result(timeout_s=WAIT_S)
        group = FrameGroup(tuple(FrameRequest(_tiny_frame(seq)) for seq in range(11)))
        grouped = pipeline.service.frames.remote(group).result(timeout_s=WAIT_S)
        stats = wait_until(pipeline, lambda s: all(c.results_ok >= 10 for c in s))
    finally:
        pipeline.stop()
    assert refused.error is not None and "too small" in refused.error
    assert refused.camera_id == "broken"
    assert [r.seq for r in grouped] == list(range(11)), "more frames than a batch: one result each, in order"
    assert all(r.error is not None and "too small" in r.error for r in grouped)
    assert all(c.results_error == 0 for c in stats)


def _h264_clip(width: int, height: int, frames: int) -> bytes:
    """A raw H.264 (Annex B) clip; two of different sizes, concatenated, make a stream whose resolution changes."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 12) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def _tiny_frame(seq: int = 0) -> CameraFrame:
    return CameraFrame(
        camera_id="broken", seq=seq, pts=0.0, captured_at=time.time(), pixels=np.zeros((8, 8, 3), np.uint8)
    )


def _replica_actor():
    """The face replica's actor (Serve names it SERVE_REPLICA::<app>#<deployment>#<id> in namespace serve)."""
    replicas = [
        entry
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["name"].startswith("SERVE_REPLICA::") and DEPLOYMENT_NAME in entry["name"]
    ]
    assert len(replicas) == 1, f"expected one face replica, found {replicas}"
    return ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])


def test_each_camera_gets_its_tracklets_embedded_by_the_second_model(cluster, crowd):
    """Each forwarder's match stage sends its ready tracklets' patches to the face service's second model, off its
    event loop, and decides every one of them; when the cameras stop nothing of them is held."""
    sinks = PasserBySinks(SecondStageLink(MODELS.second_stage, APP_NAME))
    pipeline = running(cluster, cameras_of(crowd), service_config(), sink_factory=sinks)
    try:
        wait_for(
            lambda: sum(s.tracker.tracklets_deleted_no_match for s in pipeline.current_sink_summaries()) >= 3,
            WAIT_S,
            "3 tracklets decided",
            interval_s=0.5,
        )
    finally:
        final = pipeline.stop()
    summaries = pipeline.sink_summaries
    assert all(c.results_error == 0 and c.failed_requests == 0 for c in final)
    assert sum(s.second_stage_failures for s in summaries) == 0
    assert sum(s.tracker.tracklets_unscored + s.tracker.decisions_expired for s in summaries) == 0
    for summary in summaries:
        held = summary.holdings
        assert (held.patches, held.faces, held.crops, held.embeddings) == (0, 0, 0, 0), summary
        assert summary.awaiting_search == 0


def test_killed_replica_fails_fast_and_processing_resumes(cluster, crowd):
    pipeline = running(cluster, cameras_of(crowd), service_config())
    try:
        before = wait_until(pipeline, lambda s: all(c.results_ok >= 5 for c in s))
        ray.kill(_replica_actor(), no_restart=False)
        killed_at = time.monotonic()
        failed = wait_until(pipeline, lambda s: sum(c.failed_requests for c in s) > 0, timeout_s=30)
        failed_after = time.monotonic() - killed_at
        resumed = wait_until(
            pipeline, lambda s: all(c.results_ok >= b.results_ok + 10 for c, b in zip(s, before)), timeout_s=WAIT_S
        )
    finally:
        final = pipeline.stop()
    assert failed_after < 15, f"in-flight requests took {failed_after:.1f} s to fail"
    assert all(c.frames_in > b.frames_in for c, b in zip(failed, before)), "cameras stopped while the replica was down"
    assert sum(c.failed_requests for c in final) >= 1
    assert all(c.results_ok >= 15 for c in resumed)
    assert all(
        c.frames_sent == c.results_ok + c.results_error + c.results_stale + c.failed_requests + c.in_flight
        for c in final
    )


def test_overload_drops_frames_and_bounds_latency(cluster, crowd, tmp_path):
    """Four cameras at 960x540 and 15 fps ask for more than two cores can do: frames drop, latency stays bounded."""
    big = tmp_path / "big"
    make_crowd(CrowdSpec(cameras=4, seconds=3, fps=15, width=960, height=540, seed=2), big)
    cameras = [
        camera_config(big / f"cam{i}.mp4", id=f"big{i}", loop=True, sample_fps=15.0, max_width=960) for i in range(4)
    ]
    service = service_config(latency_bound_s=3.0, forwarding={"max_in_flight": 2, "max_frame_age_s": 1.0})
    pipeline = running(cluster, cameras, service)
    try:
        wait_until(pipeline, lambda s: all(c.results_ok >= 3 for c in s))
        first = _replica_memory(pipeline)
        observed_until = time.monotonic() + OVERLOAD_OBSERVATION_S
        stats = wait_until(pipeline, lambda s: time.monotonic() >= observed_until and sum(c.dropped for c in s) > 20)
        last = _replica_memory(pipeline)
    finally:
        pipeline.stop()
    assert sum(c.dropped for c in stats) > 20, f"no frames dropped under overload: {stats}"
    worst_p99 = max(c.latency_p99_s for c in stats)
    assert worst_p99 < service.latency_bound_s, f"p99 latency {worst_p99:.2f} s over the bound"
    assert last < first * 1.25 + 50e6, f"replica memory grew from {first / 1e6:.0f} MB to {last / 1e6:.0f} MB"


def _replica_memory(pipeline: LivePipeline) -> int:
    return pipeline.service.options(method_name="resident_bytes").remote().result(timeout_s=WAIT_S)


def test_autoscaling_adds_a_replica_under_load(cluster, crowd):
    """Autoscaling from the config: three busy cameras and a target of one request per replica bring up a second."""
    service = service_config(
        threads_per_replica=1,
        autoscaling={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 0.5},
    )
    pipeline = running(cluster, cameras_of(crowd), service)
    try:
        deadline = time.monotonic() + scaled(WAIT_S)
        while (running_replicas := _running_replicas()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        stats = pipeline.stats()
    finally:
        pipeline.stop()
    assert running_replicas == 2, "the face service never scaled up to its max_replicas under load"
    assert all(c.results_ok > 0 for c in stats)


def _running_replicas() -> int:
    deployment = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME]
    return deployment.replica_states.get("RUNNING", 0)


def test_more_cameras_than_the_cluster_can_schedule_is_a_clear_error(cluster, crowd):
    """Regression: a ninth camera on 2 logical CPUs stayed pending for ever and its stream never started."""
    cameras = [camera_config(crowd / "cam0.mp4", id=f"many{i}", loop=True) for i in range(16)]
    with pytest.raises(RuntimeError, match="16 cameras reserve 4 logical CPUs .* would never be scheduled"):
        LivePipeline.start(cameras, MODELS, service_config())


def test_a_declared_face_service_is_used_as_it_runs_and_left_running(cluster, crowd, tmp_path):
    """The chart's RayService declares the face service; the live run must attach, never deploy over it or delete it."""
    config_path = tmp_path / "lfr.yaml"
    config_path.write_text("face_models: {device: cpu}\nface_service: {threads_per_replica: 2}\n")
    serve.run(app_from_config({"config": str(config_path)}), name=APP_NAME, route_prefix=None)
    deployed_at = serve.status().applications[APP_NAME].last_deployed_time_s
    pipeline = running(cluster, cameras_of(crowd, count=1), service_config(declared=True, declared_wait_s=60))
    try:
        wait_until(pipeline, lambda s: all(c.results_ok >= WARM_RESULTS for c in s))
    finally:
        final = pipeline.stop()
    try:
        assert pipeline.plan.num_replicas == 1
        assert sum(c.faces for c in final) > 0
        application = serve.status().applications[APP_NAME]
        assert application.last_deployed_time_s == deployed_at, "the live run deployed over the declared service"
        assert application.status == "RUNNING", "the live run's stop removed the platform's face service"
    finally:
        serve.delete(APP_NAME)


def test_a_declared_face_service_that_never_runs_is_named_with_what_to_do(cluster, crowd):
    with pytest.raises(RuntimeError, match="face_service.declared is set.*absent.*RayService"):
        running(cluster, cameras_of(crowd, count=1), service_config(declared=True, declared_wait_s=1))
