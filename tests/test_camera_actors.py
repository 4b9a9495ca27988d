"""CameraActor and CameraRegistry on a real local Ray cluster, and the `lfr cameras` commands against it.

The session's Ray cluster (tests/conftest.py), joined for the module. Sources are real H.264 files
and misbehaving peers on 127.0.0.1 (tests/camera_sources.py).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

from actors.camera_actor import CameraActor
from actors.camera_registry import REGISTRY_NAME, CameraRegistry
from cluster.audit.actions import AuditAction
from cluster.audit.opening import open_audit_log
from cluster.cameras.health import CameraState
from cluster.cameras.status import CameraStatus
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from loadtest.counter_video import read_counter, write_counter_video
from tests.camera_sources import camera_config, closed_port, silent_server
from tests.waiting import scaled, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def registry(ray_session):
    registry = CameraRegistry.options(name=REGISTRY_NAME).remote()
    yield registry
    ray.get(registry.stop_all.remote(), timeout=CALL_TIMEOUT_S)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_counter_video(tmp_path_factory.mktemp("video") / "counter.mp4", seconds=4, fps=25)


@pytest.fixture
def cleanup(registry):
    """Remove every camera a test started through the registry, whatever happened in the test."""
    yield
    ray.get(registry.stop_all.remote(), timeout=CALL_TIMEOUT_S)


def statuses(registry) -> dict[str, CameraStatus]:
    return {status.camera_id: status for status in ray.get(registry.list.remote(), timeout=CALL_TIMEOUT_S)}


def wait_for_statuses(registry, predicate, timeout_s: float) -> dict[str, CameraStatus]:
    """The cameras' statuses once `predicate` holds; fails after `timeout_s`, stretched by the machine's load."""
    budget_s = scaled(timeout_s)
    deadline = time.monotonic() + budget_s
    while True:
        current = statuses(registry)
        if predicate(current):
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {budget_s:.0f} s; cameras: {current}")
        time.sleep(0.2)


@pytest.fixture(scope="module", autouse=True)
def operator_database(tmp_path_factory) -> Path:
    """Where `lfr cameras add/remove` record who changed the cameras (a temporary SQLite file)."""
    global OPERATOR_CONFIG
    path = tmp_path_factory.mktemp("operator") / "lfr.sqlite3"
    OPERATOR_CONFIG = LfrConfig(database=DatabaseConfig(url=str(path)))
    return path


OPERATOR_CONFIG = LfrConfig()


def lfr(*argv: str, capsys) -> tuple[int, str, str]:
    """Run an `lfr cameras` command in this process (connected to the module's Ray session)."""
    args = build_parser().parse_args(list(argv))
    code = args.handler(args, OPERATOR_CONFIG)
    out, err = capsys.readouterr()
    return code, out, err


def pull(actor, count: int, timeout_s: float = 10.0) -> list:
    frames, deadline = [], time.monotonic() + scaled(timeout_s)
    while len(frames) < count and time.monotonic() < deadline:
        frames += ray.get(actor.next_frames.remote(count - len(frames), 1.0), timeout=CALL_TIMEOUT_S)
    assert len(frames) >= count, f"only {len(frames)} of {count} frames within {timeout_s} s"
    return frames


def test_camera_actor_hands_out_typed_frames_and_health(registry, video):
    actor = CameraActor.remote(camera_config(video, id="solo", loop=True, sample_fps=5))
    try:
        frames = pull(actor, 6)
        assert [read_counter(f.pixels) for f in frames] == [0, 5, 10, 15, 20, 25]
        assert [f.seq for f in frames] == list(range(6)) and {f.camera_id for f in frames} == {"solo"}
        health = ray.get(actor.health.remote(), timeout=CALL_TIMEOUT_S)
        assert health.state == CameraState.STREAMING and health.frames_sampled >= 6
        process = ray.get(actor.process.remote(), timeout=CALL_TIMEOUT_S)
        assert process.pid != os.getpid() and 0 < process.rss_bytes < 250 * 2**20
    finally:
        ray.kill(actor)


def test_bad_sources_show_their_reason_and_never_block_their_actor(registry, video, tmp_path, cleanup, capsys):
    random_bytes = tmp_path / "random.mp4"
    random_bytes.write_bytes(os.urandom(200_000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[:100_000])
    port = closed_port()
    budget = {"max_failures": 3, "window_s": 60, "failed_retry_s": 60}
    with silent_server() as silent_port:
        cameras = [
            camera_config(f"rtsp://127.0.0.1:{port}/cam0", id="wrong_url", restart_budget=budget),
            camera_config(random_bytes, id="random_bytes", restart_budget=budget),
            camera_config(truncated, id="truncated", restart_budget=budget),
            camera_config(f"rtsp://127.0.0.1:{silent_port}/cam0", id="silent", timeouts={"open_s": 1, "read_s": 1}),
            camera_config(video, id="good", loop=True),
        ]
        ray.get(registry.reload.remote(cameras), timeout=CALL_TIMEOUT_S)
        current = wait_for_statuses(
            registry,
            lambda s: (
                all(s[c].health and s[c].health.state == CameraState.FAILED for c in ("wrong_url", "truncated"))
                and s["silent"].health.failures >= 1
            ),
            20,
        )
        assert "connection refused" in current["wrong_url"].health.last_error
        assert current["random_bytes"].health.state == CameraState.FAILED
        assert "not a playable video" in current["random_bytes"].health.last_error
        assert "not a playable video" in current["truncated"].health.last_error
        assert "(open timeout)" in current["silent"].health.last_error
        assert current["silent"].health.state in (CameraState.BACKING_OFF, CameraState.CONNECTING)
        assert current["good"].health.state == CameraState.STREAMING

        silent = ray.get(registry.actor.remote("silent"), timeout=CALL_TIMEOUT_S)
        waiting = silent.next_frames.remote(1, 5.0)
        started = time.monotonic()
        assert ray.get(silent.health.remote(), timeout=CALL_TIMEOUT_S).camera_id == "silent"
        assert time.monotonic() - started < 1.0, "health answers while a consumer waits and the reader is blocked"
        assert ray.get(waiting, timeout=CALL_TIMEOUT_S) == []

        code, out, _ = lfr("cameras", "list", capsys=capsys)
        assert code == 0
        rows = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert "failed" in rows["wrong_url"] and "connection refused" in rows["wrong_url"]
        assert "not a playable video" in rows["truncated"] and "streaming" in rows["good"]
        code, out, _ = lfr("cameras", "list", "--json", capsys=capsys)
        listed = {c["camera_id"]: c for c in json.loads(out)["cameras"]}
        assert listed["random_bytes"]["health"]["state"] == "failed"
        assert "(open timeout)" in listed["silent"]["health"]["last_error"]


SLOW_CONSUMER_DEADLINE_S = 30.0
"""Long enough for a few hundred 720p frames even when other work shares the two cores."""
WARM_FRAMES = 100
"""Frames decoded before the memory is watched: the decoder's buffers settle over the first ones."""
SLOW_CONSUMER_FRAMES = 200
"""Frames decoded past the warm-up, twice: memory is compared between the middle and the end, where a leak of
even one in ten 720p frames (2.7 MB each) would show and the allocator's own warm-up (up to 45 MiB seen on a
busy machine) is over."""
SLOW_CONSUMER_GROWTH_MIB = 40


def test_slow_consumer_memory_stays_bounded_and_drops_are_counted(registry, tmp_path):
    video = write_counter_video(tmp_path / "hd.mp4", seconds=2, fps=25, width=1280, height=720)
    config = camera_config(video, id="busy", loop=True, realtime=False, sample_fps=25, queue_size=8)
    actor = CameraActor.remote(config)
    try:
        delivered = pull(actor, 1)
        wait_for(
            lambda: ray.get(actor.health.remote(), timeout=CALL_TIMEOUT_S).frames_sampled >= WARM_FRAMES,
            10,
            f"{WARM_FRAMES} frames decoded",
        )
        sampled_before = ray.get(actor.health.remote(), timeout=CALL_TIMEOUT_S).frames_sampled
        rss_at: dict[str, int] = {}
        deadline = time.monotonic() + scaled(SLOW_CONSUMER_DEADLINE_S)
        health = ray.get(actor.health.remote(), timeout=CALL_TIMEOUT_S)
        while health.frames_sampled - sampled_before < 2 * SLOW_CONSUMER_FRAMES and time.monotonic() < deadline:
            delivered += ray.get(actor.next_frames.remote(1, 1.0), timeout=CALL_TIMEOUT_S)
            health = ray.get(actor.health.remote(), timeout=CALL_TIMEOUT_S)
            assert health.queue_length <= 8
            if "middle" not in rss_at and health.frames_sampled - sampled_before >= SLOW_CONSUMER_FRAMES:
                rss_at["middle"] = ray.get(actor.process.remote(), timeout=CALL_TIMEOUT_S).rss_bytes
            time.sleep(0.1)
        rss_at["end"] = ray.get(actor.process.remote(), timeout=CALL_TIMEOUT_S).rss_bytes
    finally:
        ray.kill(actor)
    assert health.frames_sampled - sampled_before >= 2 * SLOW_CONSUMER_FRAMES, "hundreds of 720p frames went through"
    assert health.frames_dropped >= health.frames_sampled - len(delivered) - 8
    assert (rss_at["end"] - rss_at["middle"]) / 2**20 < SLOW_CONSUMER_GROWTH_MIB, (
        f"RSS grew from {rss_at['middle'] / 2**20:.0f} to {rss_at['end'] / 2**20:.0f} MiB"
        f" over the last {SLOW_CONSUMER_FRAMES} frames"
    )
    seqs = [f.seq for f in delivered]
    gaps = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
    assert seqs == sorted(seqs) and max(gaps) > 1, "the oldest frames were dropped: seqs jump"


def test_cameras_come_and_go_at_run_time_without_touching_the_others(registry, video, cleanup, capsys):
    ray.get(registry.reload.remote([camera_config(video, id=i, loop=True) for i in ("a", "b")]), timeout=30)
    a = ray.get(registry.actor.remote("a"), timeout=CALL_TIMEOUT_S)
    first_seq = pull(a, 1)[0].seq
    before = wait_for_statuses(registry, lambda s: all(x.process for x in s.values()), 10)
    a_actor_id = before["a"].process.actor_id

    ray.get(registry.add.remote(camera_config(video, id="c", loop=True)), timeout=CALL_TIMEOUT_S)
    ray.get(registry.remove.remote("b"), timeout=CALL_TIMEOUT_S)
    code, out, err = lfr(
        "cameras", "add", "d", str(video), "--loop", "--fps", "2", "--signage", "LFR in use", capsys=capsys
    )
    assert (code, out) == (0, "added camera d (file, 2 fps)\n"), err
    code, out, _ = lfr("cameras", "remove", "c", capsys=capsys)
    assert (code, out) == (0, "removed camera c\n")
    assert set(statuses(registry)) == {"a", "d"}
    changes = [
        (entry.action, entry.subject, entry.details["change"])
        for entry in open_audit_log(OPERATOR_CONFIG.database, OPERATOR_CONFIG.audit).latest(2)
    ]
    assert changes == [
        (AuditAction.CONFIG_CHANGE, "camera:d", "added"),
        (AuditAction.CONFIG_CHANGE, "camera:c", "removed"),
    ], "each camera change at run time is audited"

    result = ray.get(
        registry.reload.remote(
            [camera_config(video, id="a", loop=True), camera_config(video, id="b", loop=True, sample_fps=2)]
        ),
        timeout=CALL_TIMEOUT_S,
    )
    assert (result.added, result.removed, result.restarted, result.unchanged) == (("b",), (), (), ("a",))
    assert pull(a, 1)[0].seq > first_seq, "a kept streaming through the adds, removes and reload"
    assert statuses(registry)["a"].process.actor_id == a_actor_id
    result = ray.get(registry.reload.remote([camera_config(video, id="a", loop=True, sample_fps=3)]), timeout=30)
    assert (result.added, result.removed, result.restarted) == ((), ("b",), ("a",))
    after = wait_for_statuses(registry, lambda s: all(x.process for x in s.values()), 10)
    assert set(after) == {"a", "d"}, "d came from the CLI: a reload of the file leaves it alone"
    assert not after["d"].managed_by_config and after["a"].managed_by_config
    assert after["a"].process.actor_id != a_actor_id, "a changed, so a was restarted"
    assert after["d"].health.reconnects == 0


def test_other_cameras_keep_their_actor_and_sequence_while_one_is_replaced(registry, video, cleanup):
    ray.get(registry.reload.remote([camera_config(video, id=i, loop=True) for i in ("keep", "swap")]), timeout=30)
    keep = ray.get(registry.actor.remote("keep"), timeout=CALL_TIMEOUT_S)
    seq_before = pull(keep, 2)[-1].seq
    id_before = wait_for_statuses(registry, lambda s: s["keep"].process, 10)["keep"].process.actor_id
    ray.get(registry.reload.remote([camera_config(video, id="keep", loop=True)]), timeout=CALL_TIMEOUT_S)
    ray.get(registry.add.remote(camera_config(video, id="new", loop=True)), timeout=CALL_TIMEOUT_S)
    ray.get(registry.remove.remote("new"), timeout=CALL_TIMEOUT_S)
    seq_after = pull(keep, 1)[0].seq
    after = statuses(registry)
    assert set(after) == {"keep"}
    assert after["keep"].process.actor_id == id_before
    assert seq_after > seq_before, "the kept camera's frame sequence went on, never restarted"
    assert after["keep"].health.failures == 0 and after["keep"].health.reconnects == 0


@pytest.mark.parametrize(
    ("argv", "code", "expected_error"),
    [
        (("cameras", "remove", "nobody"), 1, "lfr: no camera 'nobody' runs"),
        (("cameras", "add", "Bad Id", "rtsp://127.0.0.1:1/x", "--signage", "LFR"), 2, "id: String should match"),
        (
            ("cameras", "add", "x", "rtsp://127.0.0.1:1/x", "--signage", "LFR", "--loop"),
            2,
            "only file sources can loop",
        ),
        (("cameras", "add", "x", "/a.mp4", "--signage", "LFR", "--location", "Soho"), 2, "location.lat"),
    ],
)
def test_cli_refuses_bad_requests_with_a_reason(registry, cleanup, capsys, argv, code, expected_error):
    result, _, err = lfr(*argv, capsys=capsys)
    assert result == code and expected_error in err


def test_cli_refuses_a_duplicate_id(registry, video, cleanup, capsys):
    assert lfr("cameras", "add", "dup", str(video), "--signage", "LFR", capsys=capsys)[0] == 0
    code, _, err = lfr("cameras", "add", "dup", str(video), "--signage", "LFR", capsys=capsys)
    assert code == 1 and "camera 'dup' already runs; remove it first" in err


def test_cli_without_a_running_cluster_says_how_to_start_one(tmp_path):
    """Run with LFR_HOME in a scratch folder: the command's default records database is `lfr.sqlite3` there."""
    port = closed_port()
    result = subprocess.run(
        [sys.executable, "-m", "cluster.cli.main", "cameras", "list", "--address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "LFR_HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert f"nothing answers at 127.0.0.1:{port}" in result.stderr and "lfr cameras run" in result.stderr
