"""Camera ingest: decoding throughput in CameraActors against a bare PyAV loop, memory, reconnection.

    python -m loadtest.bench_cameras [--cameras 1 2 4 8] [--seconds 6] [--repeat 2] [--cache DIR]

1. N cameras of 1080p H.264 at 25 fps, sampled to 5 fps, each looping a local file as fast as
   it decodes. Aggregate decoded frames/s in one bare process (a thread per camera: open,
   decode with threads, sample by timestamp, convert the kept frames to RGB) and in N
   CameraActors doing the same, twice: with the sampled frames left to each camera's
   drop-oldest queue (the bare loop's work exactly), and with a consumer pulling every sampled
   frame out of Ray, as the face service will. Efficiency = actors / bare; target >= 0.85 at
   1-2 cameras. Runs alternate and the best of `--repeat` counts, so that a busy machine skews
   both sides alike.
2. Resident memory per camera actor after the largest run; target <= 250 MiB. Shared memory
   (Ray's object store pages holding handed-out frames) is reported apart.
3. Time from an RTSP server (cluster/replay/rtsp_server.py) coming back after a crash to the
   camera's first new frame, with the default camera config; target <= 3 s.

The 1080p video is generated once into the cache folder (a scrolling texture under a frame
counter; see loadtest/counter_video.py).
"""

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import av
import ray

from actors.camera_actor import CameraActor
from cluster.application.ray_system_config import SYSTEM_CONFIG
from cluster.cameras.config import CameraConfig
from cluster.cameras.health import CameraState
from cluster.cameras.sampler import FpsSampler
from cluster.logging_setup import configure_logging
from cluster.replay.rtsp_server import RtspReplayServer
from loadtest.counter_video import write_counter_video
from loadtest.machine import describe_machine

SOURCE_FPS = 25
SAMPLE_FPS = 5
EFFICIENCY_TARGET = 0.85
RSS_TARGET_MIB = 250
RECONNECT_TARGET_S = 3.0
BIT_RATE = 6_000_000
"""A typical 1080p IP-camera stream (H.264 High profile, no B-frames)."""
SIGNAGE = "Live facial recognition in use (benchmark)"


def bench_video(cache: Path, seconds: int) -> Path:
    path = cache / f"counter_1080p_{SOURCE_FPS}fps_{BIT_RATE // 1_000_000}mbps_{seconds}s.mp4"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        write_counter_video(
            partial, seconds=seconds, fps=SOURCE_FPS, width=1920, height=1080, preset="faster", bit_rate=BIT_RATE
        )
        partial.rename(path)
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    return path


def bare_loop(path: Path, decoded: list[int], index: int, stopping: threading.Event) -> None:
    """The camera's work with nothing around it: decode, sample by timestamp, convert kept frames."""
    sampler = FpsSampler(SAMPLE_FPS)
    while not stopping.is_set():
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            sampler.reset()
            for frame in container.decode(stream):
                decoded[index] += 1
                if sampler.accept(frame.time):
                    frame.to_ndarray(format="rgb24")
                if stopping.is_set():
                    break


def measure_bare(path: Path, cameras: int, warmup_s: float, seconds: float) -> float:
    decoded = [0] * cameras
    stopping = threading.Event()
    threads = [threading.Thread(target=bare_loop, args=(path, decoded, i, stopping)) for i in range(cameras)]
    for thread in threads:
        thread.start()
    time.sleep(warmup_s)
    before, started = sum(decoded), time.perf_counter()
    time.sleep(seconds)
    rate = (sum(decoded) - before) / (time.perf_counter() - started)
    stopping.set()
    for thread in threads:
        thread.join()
    return rate


def pull_forever(actor, stopping: threading.Event, pulled: list[int], index: int) -> None:
    while not stopping.is_set():
        pulled[index] += len(ray.get(actor.next_frames.remote(8, 0.5)))


def measure_actors(
    path: Path, cameras: int, warmup_s: float, seconds: float, consume: bool
) -> tuple[float, float, list]:
    """Aggregate decoded frames/s, delivered frames/s, and each actor's process figures.

    With `consume`, a thread per camera pulls every sampled frame out of Ray; without, the
    frames are dropped from each camera's queue (the decode side alone).
    """
    actors = [
        CameraActor.remote(
            CameraConfig(
                id=f"bench_{i}",
                source=str(path),
                loop=True,
                realtime=False,
                sample_fps=SAMPLE_FPS,
                signage_notice=SIGNAGE,
            )
        )
        for i in range(cameras)
    ]
    stopping, pulled = threading.Event(), [0] * cameras
    consumers = [
        threading.Thread(target=pull_forever, args=(a, stopping, pulled, i)) for i, a in enumerate(actors) if consume
    ]
    for consumer in consumers:
        consumer.start()
    time.sleep(warmup_s)

    def decoded() -> int:
        return sum(h.frames_decoded for h in ray.get([a.health.remote() for a in actors]))

    before, pulled_before, started = decoded(), sum(pulled), time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - started
    rate, delivered = (decoded() - before) / elapsed, (sum(pulled) - pulled_before) / elapsed
    processes = ray.get([a.process.remote() for a in actors])
    stopping.set()
    for consumer in consumers:
        consumer.join()
    for actor in actors:
        ray.kill(actor)
    return rate, delivered, processes


def measure_reconnects(path: Path, outages_s: list[float]) -> list[float]:
    """Seconds from the server's return to the camera's first new frame, per outage, with default settings."""
    times = []
    with RtspReplayServer([path]) as server:
        actor = CameraActor.remote(CameraConfig(id="bench_rtsp", source=server.urls[0], signage_notice=SIGNAGE))
        ray.get(actor.next_frames.remote(1, 30.0))
        for outage in outages_s:
            server.kill()
            time.sleep(outage)
            ray.get(actor.next_frames.remote(1000, 0.0))
            state = ray.get(actor.health.remote()).state
            server.start()
            back = time.time()
            frames = ray.get(actor.next_frames.remote(1, 30.0))
            if not frames:
                raise RuntimeError(f"no frame within 30 s of the server's return (camera was {state})")
            times.append(frames[0].captured_at - back)
            if state == CameraState.FAILED:
                print(f"  note: the camera had reached 'failed' during the {outage} s outage")
        ray.kill(actor)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=6.0, help="measurement window per run")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per figure, alternating bare and actors; the best counts"
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--video-seconds", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lfr-cluster" / "bench")
    parser.add_argument("--outages", type=float, nargs="*", default=[1.0, 3.0, 6.0, 10.0])
    args = parser.parse_args()
    configure_logging("error")
    print(describe_machine())
    print("load average at start (1, 5, 15 min): " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    video = bench_video(args.cache, args.video_seconds)
    ray.init(include_dashboard=False, log_to_driver=False, _system_config=dict(SYSTEM_CONFIG))

    print(f"\n1920x1080 H.264 {SOURCE_FPS} fps, sampled to {SAMPLE_FPS} fps, decoded as fast as possible (looping)")
    print(f"{'':>7}  {'bare':>9}  {'actors, frames dropped':>22}  {'actors, frames pulled out of Ray':>34}")
    columns = ("fps", "fps", "efficiency", "fps", "delivered", "efficiency")
    print(f"{'cameras':>7}  " + "  ".join(f"{name:>{9 if i in (0, 4) else 10}}" for i, name in enumerate(columns)))
    processes: list = []
    for count in args.cameras:
        bare_runs, dropped_runs, pulled_runs = [], [], []
        for _ in range(args.repeat):
            bare_runs.append(measure_bare(video, count, args.warmup, args.seconds))
            dropped_runs.append(measure_actors(video, count, args.warmup, args.seconds, consume=False)[0])
            pulled, delivered, processes = measure_actors(video, count, args.warmup, args.seconds, consume=True)
            pulled_runs.append((pulled, delivered))
        bare, decode_only = max(bare_runs), max(dropped_runs)
        pulled, delivered = max(pulled_runs)
        verdict = "" if count > 2 else ("  meets" if pulled / bare >= EFFICIENCY_TARGET else "  MISSES") + " target"
        print(
            f"{count:>7}  {bare:>9.1f}  {decode_only:>10.1f}  {decode_only / bare:>10.2f}"
            f"  {pulled:>10.1f}  {delivered:>9.1f}  {pulled / bare:>10.2f}{verdict}"
        )

    rss = [p.rss_bytes / 2**20 for p in processes]
    shared = [p.shared_bytes / 2**20 for p in processes]
    verdict = "meets" if max(rss) <= RSS_TARGET_MIB else "MISSES"
    print(
        f"\nRSS per camera actor after the {len(processes)}-camera run: max {max(rss):.0f} MiB, mean"
        f" {statistics.mean(rss):.0f} MiB ({verdict} the {RSS_TARGET_MIB} MiB target);"
        f" plus {statistics.mean(shared):.0f} MiB of mapped object-store memory on average"
    )

    if not args.outages:
        ray.shutdown()
        return
    times = measure_reconnects(video, args.outages)
    verdict = "meets" if max(times) <= RECONNECT_TARGET_S else "MISSES"
    listed = ", ".join(f"{t:.2f} s after {o:g} s down" for t, o in zip(times, args.outages, strict=True))
    print(f"\nRTSP server back -> first new frame (default backoff, 1080p): {listed}")
    print(f"max {max(times):.2f} s: {verdict} the {RECONNECT_TARGET_S:g} s target")
    ray.shutdown()


if __name__ == "__main__":
    main()
