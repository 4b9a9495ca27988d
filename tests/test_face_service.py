"""The face service's plain parts, without Ray: batch processing, forwarding window, meter, sink, config, CLI text."""

import argparse
import dataclasses
import time

import numpy as np
import pytest
from pydantic import ValidationError

from cluster.cameras.frames import CameraFrame
from cluster.cli import run_commands
from cluster.config import LfrConfig, load_config
from cluster.live.config import FaceServiceConfig, ForwardingConfig, plan_replicas
from cluster.live.face_service import (
    FaceBatchProcessor,
    FrameGroup,
    FrameRequest,
    FrameResult,
    FrameTimings,
)
from cluster.live.forwarding import ForwardingWindow, StreamMeter
from cluster.live.sinks import SummarySink
from cluster.vision.image_io import load_image
from tests.paths import LFW10


def camera_frame(pixels: np.ndarray, camera_id: str = "cam0", seq: int = 0, captured_at: float | None = None):
    return CameraFrame(
        camera_id, seq, pts=seq / 10, captured_at=time.time() if captured_at is None else captured_at, pixels=pixels
    )


def face_photo() -> np.ndarray:
    return load_image(sorted(LFW10.glob("*/*.jpg"))[0])


def result_of(frame: CameraFrame, faces: int = 0, error: str | None = None, batch_size: int = 1) -> FrameResult:
    return FrameResult(
        camera_id=frame.camera_id,
        seq=frame.seq,
        pts=frame.pts,
        captured_at=frame.captured_at,
        faces=(),
        error=error,
        batch_size=batch_size,
        timings=FrameTimings(0.001, 0.002, 0.01, 0.001, 0.005, 0.02),
    )


def test_a_bad_frame_gets_an_error_result_and_the_rest_of_the_batch_its_faces(face_pipeline):
    photo = face_photo()
    larger = np.pad(photo, ((40, 40), (100, 100), (0, 0)))
    requests = [
        FrameRequest(camera_frame(photo, "cam0", 3)),
        FrameRequest(camera_frame(np.zeros((8, 8, 3), np.uint8), "cam1", 7)),
        FrameRequest(camera_frame(larger, "cam2", 1)),
    ]
    results = FaceBatchProcessor(face_pipeline).process(requests)
    assert [(r.camera_id, r.seq) for r in results] == [("cam0", 3), ("cam1", 7), ("cam2", 1)]
    assert results[0].ok and len(results[0].faces) == 1
    assert results[2].ok and len(results[2].faces) == 1
    assert not results[1].ok and "too small" in results[1].error and "cam1 frame 7" in results[1].error
    assert results[1].faces == ()
    shifted = results[2].faces[0].box - results[0].faces[0].box
    assert np.allclose(shifted, [100, 40, 100, 40], atol=6), "boxes of the padded frame are not in its own pixels"
    assert results[0].faces[0].similarity(results[2].faces[0]) > 0.95
    for result in results:
        assert result.batch_size == 3
        assert result.timings.detect_s > 0 and result.timings.embed_s > 0
        assert result.timings.total_s >= result.timings.detect_s + result.timings.embed_s


def test_a_batch_of_only_bad_frames_runs_no_model(face_pipeline):
    results = FaceBatchProcessor(face_pipeline).process([FrameRequest(camera_frame(np.zeros((4, 40, 3), np.uint8)))])
    assert not results[0].ok and results[0].timings.detect_s == 0.0


def test_a_frame_past_its_drop_time_when_the_batch_starts_is_skipped_as_stale(face_pipeline):
    """At overload a frame can wait in the replica's queue past its age bound: its batch skips it unprocessed."""
    photo = face_photo()
    now = time.time()
    late = FrameRequest(camera_frame(photo, "cam0", 1), drop_after=now - 0.01)
    in_time = FrameRequest(camera_frame(photo, "cam1", 2), drop_after=now + 60)
    unbounded = FrameRequest(camera_frame(photo, "cam2", 3))
    results = FaceBatchProcessor(face_pipeline).process([late, in_time, unbounded])
    assert results[0].stale and not results[0].ok and results[0].error is None and results[0].faces == ()
    for result in results[1:]:
        assert result.ok and not result.stale and len(result.faces) == 1
    only_late = FaceBatchProcessor(face_pipeline).process([late])
    assert only_late[0].stale and only_late[0].timings.detect_s == 0.0, "a batch of stale frames ran the models"


def test_a_stale_result_is_a_stale_drop_not_a_result():
    window, meter = ForwardingWindow(forwarding(waiting_frames=3)), StreamMeter("cam0")
    now = time.time()
    for seq, age_s in ((0, 3.0), (1, 0.0), (2, 0.0)):
        window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now - age_s))
    sent = window.next_group(now, 2)
    assert [frame.seq for frame in sent] == [1, 2]
    for _ in sent:
        meter.frame_sent()
    meter.result(dataclasses.replace(result_of(sent[0]), stale=True), time.time())
    window.stale_at_service()
    meter.result(result_of(sent[1]), time.time())
    window.done()
    window.done()
    stats = meter.stats(window)
    assert stats.results_stale == 1 and stats.results_ok == 1 and stats.results_error == 0
    assert stats.dropped_stale == 2, "the frame dropped before sending and the one skipped at the service"
    assert stats.frames_sent == stats.results_ok + stats.results_error + stats.results_stale + stats.in_flight
    assert len(stats.latencies_s) == 1, "a skipped frame's wait is not a frame-to-result latency"


def test_queue_and_batch_wait_come_from_the_send_and_receive_times(face_pipeline):
    frame = camera_frame(face_photo())
    request = FrameRequest(frame, sent_at=time.time() - 0.5)
    received = request.sent_at + 0.2
    result = FaceBatchProcessor(face_pipeline).process([request], [received])[0]
    assert result.timings.queue_s == pytest.approx(0.2)
    assert result.timings.batch_wait_s == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValueError, match="one per request"):
        FaceBatchProcessor(face_pipeline).process([request], [])


def forwarding(**fields) -> ForwardingConfig:
    return ForwardingConfig(**{"max_in_flight": 2, "waiting_frames": 2, "max_frame_age_s": 1.0, **fields})


def test_window_drops_the_oldest_waiting_frame_when_full():
    window = ForwardingWindow(forwarding())
    now = time.time()
    for seq in range(5):
        window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now))
    assert window.dropped_full == 3
    assert [window.next_to_send(now).seq, window.next_to_send(now).seq] == [3, 4]


def test_window_keeps_at_most_max_in_flight_and_frees_slots():
    window = ForwardingWindow(forwarding(waiting_frames=8))
    now = time.time()
    for seq in range(4):
        window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now))
    assert window.next_to_send(now).seq == 0
    assert window.next_to_send(now).seq == 1
    assert window.next_to_send(now) is None and window.in_flight == 2
    window.done()
    assert window.next_to_send(now).seq == 2
    window.done()
    window.done()
    with pytest.raises(RuntimeError, match="no request in flight"):
        window.done()


def test_window_hands_out_the_frames_ready_together_as_one_request():
    """Regression (issue 16): each frame was its own request, and each request cost the forwarder and the
    replica milliseconds of Serve's work; the frames that find free slots together now go in one group."""
    window = ForwardingWindow(forwarding(max_in_flight=4, waiting_frames=8))
    now = time.time()
    for seq in range(7):
        window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now - (5 if seq == 0 else 0)))
    assert [f.seq for f in window.next_group(now, 3)] == [1, 2, 3], "oldest fresh frames first, the stale one dropped"
    assert [f.seq for f in window.next_group(now, 3)] == [4], "only as many as there are free request slots"
    assert window.next_group(now, 3) == [] and window.in_flight == 4 and window.dropped_stale == 1
    window.done()
    window.done()
    assert [f.seq for f in window.next_group(now, 3)] == [5, 6]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        window.next_group(now, 0)


def test_frame_groups_count_their_frames_and_refuse_to_be_empty():
    pixels = np.zeros((16, 16, 3), np.uint8)
    groups = [FrameGroup((FrameRequest(camera_frame(pixels, seq=s)),) * n) for s, n in ((0, 1), (1, 3))]
    assert [len(g) for g in groups] == [1, 3]
    with pytest.raises(ValueError, match="at least one frame request"):
        FrameGroup(())


def test_window_drops_frames_older_than_the_age_bound():
    window = ForwardingWindow(forwarding())
    now = time.time()
    window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=0, captured_at=now - 5))
    window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=1, captured_at=now))
    assert window.next_to_send(now).seq == 1
    assert window.dropped_stale == 1


def test_window_room_and_frames_dropped_in_the_camera():
    window = ForwardingWindow(forwarding())
    now = time.time()
    config = window.config
    assert window.room == config.max_in_flight + config.waiting_frames
    for seq in (0, 1, 5):
        window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now))
    assert window.dropped_at_camera == 3
    while window.next_to_send(now) is not None:
        pass
    assert window.room == config.max_in_flight + config.waiting_frames - window.in_flight
    window.offer(camera_frame(np.zeros((16, 16, 3), np.uint8), seq=0, captured_at=now))
    assert window.dropped_at_camera == 3, "a seq that goes back (camera restarted) is not a drop"


def test_meter_reports_latency_rates_and_failures():
    meter, window = StreamMeter("cam0"), ForwardingWindow(forwarding())
    now = time.time()
    for seq in range(100):
        meter.frame_in(now)
        meter.frame_sent()
        frame = camera_frame(np.zeros((16, 16, 3), np.uint8), seq=seq, captured_at=now - (seq + 1) / 1000)
        meter.result(result_of(frame, batch_size=4 if seq == 50 else 1), now)
    meter.failure("RayActorError: the replica died")
    stats = meter.stats(window, now)
    assert stats.results_ok == 100 and stats.failed_requests == 1
    assert stats.latency_p50_s == pytest.approx(0.0505, abs=1e-3)
    assert stats.latency_p99_s == pytest.approx(0.099, abs=2e-3)
    assert stats.fps_in == pytest.approx(100 / 5) and stats.fps_out == pytest.approx(100 / 5)
    assert stats.max_batch_size == 4
    assert stats.mean_timings.detect_s == pytest.approx(0.01)
    assert "replica died" in stats.last_failure
    assert meter.stats(window, now + 10).fps_in == 0.0


def test_summary_sink_counts_results_and_failures():
    sink = SummarySink("cam0")
    frame = camera_frame(np.zeros((16, 16, 3), np.uint8))
    for seq in (0, 1, 3, 2, 4):
        sink.accept(result_of(camera_frame(frame.pixels, seq=seq), error="bad" if seq == 0 else None), frame.pixels)
    summary = sink.summary()
    assert (summary.camera_id, summary.results, summary.errors, summary.faces) == ("cam0", 5, 1, 0)
    assert summary.last_seq == 4


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"batching": {"max_batch_size": 0}}, "max_batch_size"),
        ({"batching": {"max_batch_size": 128}, "max_ongoing_requests": 64}, "never fill a batch"),
        ({"forwarding": {"max_frame_age_s": 5.0}, "latency_bound_s": 3.0}, "below latency_bound_s"),
        ({"autoscaling": {"min_replicas": 3, "max_replicas": 2}}, "must not exceed max_replicas"),
        ({"replicas": 0}, "at least 1"),
        ({"batch_size": 8}, "Extra inputs"),
    ],
)
def test_service_config_refuses_bad_settings(fields, error):
    with pytest.raises(ValidationError, match=error):
        FaceServiceConfig.model_validate(fields)


def test_replicas_are_sized_to_the_cores_or_the_gpus():
    auto = FaceServiceConfig()
    assert plan_replicas(auto, gpus=0, cores=8) == plan_replicas(auto, 0, 8)
    cpu = plan_replicas(auto, gpus=0, cores=8)
    assert (cpu.num_replicas, cpu.torch_threads, cpu.num_cpus, cpu.device) == (4, 2, 2.0, "cpu")
    one = plan_replicas(FaceServiceConfig(replicas=1), gpus=0, cores=8)
    assert (one.num_replicas, one.torch_threads) == (1, 8)
    two = plan_replicas(FaceServiceConfig(replicas=2), gpus=0, cores=8)
    assert two.num_replicas * two.torch_threads == 8
    gpu = plan_replicas(auto, gpus=4, cores=16)
    assert (gpu.num_replicas, gpu.num_gpus, gpu.device) == (4, 1.0, "cuda")
    scaling = plan_replicas(FaceServiceConfig(autoscaling={"min_replicas": 1, "max_replicas": 4}), gpus=0, cores=8)
    assert scaling.torch_threads == 2, "autoscaled CPU replicas are sized so that max_replicas fit the cores"


def test_face_service_section_loads_from_yaml(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("face_service:\n  batching:\n    max_batch_size: 16\n")
    assert load_config(path).face_service.batching.max_batch_size == 16
    assert LfrConfig().face_service == FaceServiceConfig()


def test_run_refuses_a_configuration_without_cameras(capsys):
    code = run_commands.run_live(argparse.Namespace(address=None, duration=1.0), LfrConfig())
    assert code == 2 and "no cameras" in capsys.readouterr().err


def test_status_line_and_summary_name_every_figure():
    meter, window = StreamMeter("oxford_st_2"), ForwardingWindow(forwarding())
    meter.failure("RayActorError: died")
    stats = meter.stats(window)
    assert "oxford_st_2" in run_commands.status_line(stats) and "p99       -" in run_commands.status_line(stats)
    text = run_commands.summary([stats], 12.0)
    assert "ran 12.0 s with 1 camera" in text and "1 failed" in text and "last failure: RayActorError" in text


def test_cpu_replicas_leave_the_cameras_their_logical_cpus():
    """Regression: on 2 logical CPUs a 2-thread replica reserved both and the cameras were never scheduled;
    then, scheduled, they stalled its second torch thread (19 frames/s against 30 with one thread)."""
    plan = plan_replicas(FaceServiceConfig(), gpus=0, cores=2, free_cpus=2 - 3 * 0.25)
    assert plan.torch_threads == 1 and plan.num_replicas * plan.num_cpus == pytest.approx(1.25)
    big = plan_replicas(FaceServiceConfig(), gpus=0, cores=16, free_cpus=16 - 8 * 0.25)
    assert (big.num_replicas, big.torch_threads) == (4, 3)
    assert big.num_replicas * big.num_cpus <= 14
    pinned = plan_replicas(FaceServiceConfig(threads_per_replica=2), gpus=0, cores=2, free_cpus=1.25)
    assert pinned.num_replicas == 1 and pinned.torch_threads == 2 and pinned.num_cpus == pytest.approx(1.25)


def test_cpu_models_get_every_core_the_cameras_leave_in_single_threaded_replicas():
    """Regression (issue 16): on 2 cores with 3 cameras, auto ran one replica of one thread, so the models had
    one core and the cluster did half of what one bare process does; two single-threaded replicas use both."""
    plan = plan_replicas(FaceServiceConfig(), gpus=0, cores=2, free_cpus=2 - 3 * 0.25)
    assert (plan.num_replicas, plan.torch_threads) == (2, 1)
    assert plan.num_cpus == pytest.approx(0.625), "each reserves its share, so the cameras are still scheduled"
    lone = plan_replicas(FaceServiceConfig(), gpus=0, cores=2, free_cpus=2 - 6 * 0.25)
    assert (lone.num_replicas, lone.torch_threads) == (1, 1), "half a core left: one replica"


def test_planned_cameras_leave_logical_cpus_for_cameras_added_later():
    """Regression (issue 16): a load test started 2 cameras, the replicas reserved every logical CPU the 2 left,
    and its next step's 2 more camera actors waited for a CPU the whole step."""
    service = FaceServiceConfig(planned_cameras=4)
    assert service.cameras_to_plan_for(2) == 4 and service.cameras_to_plan_for(6) == 6
    assert FaceServiceConfig().cameras_to_plan_for(2) == 2
    plan = plan_replicas(service, gpus=0, cores=2, free_cpus=2 - service.cameras_to_plan_for(2) * 0.25)
    assert plan.num_replicas * plan.num_cpus + 4 * 0.25 <= 2, "four camera actors still fit beside the replicas"
    with pytest.raises(ValidationError, match="planned_cameras"):
        FaceServiceConfig(planned_cameras=0)


def test_meter_latency_can_cover_only_recent_results():
    meter, window = StreamMeter("cam0"), ForwardingWindow(forwarding())
    now = time.time()
    pixels = np.zeros((16, 16, 3), np.uint8)
    meter.result(result_of(camera_frame(pixels, seq=0, captured_at=now - 12)), now - 10)
    meter.result(result_of(camera_frame(pixels, seq=1, captured_at=now - 0.1)), now)
    assert meter.stats(window, now).latency_p99_s > 1.0
    recent = meter.stats(window, now, since=now - 1)
    assert recent.latency_p99_s == pytest.approx(0.1, abs=0.01)
    assert recent.latencies_s == pytest.approx((0.1,), abs=0.01), "the samples behind the percentiles come along"
