"""How many 1080p cameras one GPU holds: decoding, the detector's batch and compile options, and a camera ramp.

    python -m loadtest.gpu_density [--cameras 8 16 24 32 48 64 80] [--sample-fps 5] [--step-s 20]
        [--batches 4 8 16 32 64] [--compile inductor] [--out density.json]
    python -m loadtest.gpu_density --smoke      # CPU, tiny frames and counts, seconds: checks the script works

Three parts, one process tree, on one GPU:

1. Decoding: a synthesised crowd's 1080p H.264 decoded for a few seconds with FFmpeg's software
   decoder and with NVDEC (`h264_cuvid`) where this PyAV build offers it and a GPU answers; frames/s
   per decoder and the cameras at the stream's full rate (every frame of H.264 is decoded, even
   when only 5 a second are sampled) that this decode rate holds.
2. The detector alone on 1080p crowd frames: ms/frame at each batch size, eager and, with
   `--compile`, under torch.compile (inductor brings CUDA graphs), and whether the compiled
   detector finds the same faces (`loadtest.detector_agreement`: IoU >= 0.9, landmarks within 2 px).
3. The ramp: N simulated cameras, each sending its sampled frames (decoded beforehand, so that the
   ramp measures the face service, not this host's decoding) at `--sample-fps` through the real
   face service (Ray Serve, one replica on the GPU, the configured batching), each with at most
   `--in-flight` requests open (a frame that finds them all taken is dropped and counted, as the
   forwarders do); frame-to-result p50/p99 per step. The answer is the largest N with p99 under
   `--bound-s` and at most 1% dropped.

Everything is printed and written to `--out` as JSON. `--smoke` runs all three on the CPU with
two 320x180 cameras and steps of a few seconds, so the script is known to work before a GPU is lent.
"""

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import ray
import torch
from av.video.codeccontext import VideoCodecContext
from ray import serve

from actors.camera_registry import NAMESPACE
from actors.face_service import APP_NAME
from actors.live_pipeline import deploy_face_service
from cluster.application.ray_system_config import SYSTEM_CONFIG
from cluster.cameras.decoding import rgb_pixels
from cluster.cameras.frames import CameraFrame
from cluster.crowd.spec import CrowdSpec
from cluster.crowd.synthesis import make_crowd
from cluster.live.config import FaceServiceConfig
from cluster.live.face_service import FrameRequest, FrameResult
from cluster.logging_setup import configure_logging
from cluster.vision.config import DetectorConfig, FaceModelsConfig
from cluster.vision.detector import MTCNNDetector
from loadtest.detector_agreement import PERFECT, Agreement, compare
from loadtest.machine import describe_machine

NVDEC_CODECS = {"h264": "h264_cuvid", "hevc": "hevc_cuvid"}
MAX_DROPPED_SHARE = 0.01
REQUEST_TIMEOUT_BOUNDS = 10
"""A request unanswered after this many latency bounds counts as failed (so a stalled service ends the step)."""


@dataclass(frozen=True)
class DecodeRate:
    decoder: str
    frames_per_s: float | None
    cameras_at_full_rate: float | None
    note: str


@dataclass(frozen=True)
class DetectorPoint:
    batch: int
    compiled: str | None
    ms_per_frame: float


@dataclass(frozen=True)
class FacesAgreement:
    backend: str
    frames: int
    same_faces: bool
    worst_iou: float
    worst_landmark_px: float
    unmatched: int


@dataclass(frozen=True)
class RampStep:
    cameras: int
    offered_fps: float
    results_per_s: float
    latency_p50_s: float
    latency_p99_s: float
    sent: int
    dropped: int
    failed: int
    largest_batch: int

    @property
    def dropped_share(self) -> float:
        """Frames dropped (all request slots of their camera taken) of all the cameras offered in the step."""
        return self.dropped / max(1, self.sent + self.dropped)

    def holds(self, bound_s: float) -> bool:
        """p99 under the bound, at most MAX_DROPPED_SHARE dropped, nothing failed."""
        return self.latency_p99_s < bound_s and self.dropped_share <= MAX_DROPPED_SHARE and self.failed == 0


@dataclass(frozen=True)
class Settings:
    width: int
    height: int
    fps: int
    seconds: float
    files: int
    sample_fps: float
    cameras: tuple[int, ...]
    step_s: float
    warmup_s: float
    batches: tuple[int, ...]
    service_batch: int
    wait_ms: float
    in_flight: int
    bound_s: float
    compile: str | None
    device: str
    decode_s: float


def _decode_with(path: Path, decoder: str | None, seconds: float) -> float:
    """Frames/s decoding `path` (looping) for about `seconds` with the named decoder (None: FFmpeg's own)."""
    frames, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            context: VideoCodecContext
            if decoder is None:
                stream.thread_type = "AUTO"
                context = stream.codec_context
            else:
                created = av.CodecContext.create(decoder, "r")
                if not isinstance(created, VideoCodecContext):
                    raise ValueError(f"{decoder} is not a video decoder")
                context = created
                context.extradata = stream.codec_context.extradata
            for packet in container.demux(stream):
                frames += len(context.decode(packet))
                if time.perf_counter() - started >= seconds:
                    break
    return frames / (time.perf_counter() - started)


def measure_decoding(path: Path, fps: int, seconds: float) -> list[DecodeRate]:
    """Software decoding, then NVDEC when this build has it and it opens; a failure is reported, not raised."""
    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context.name
    software = _decode_with(path, None, seconds)
    rates = [DecodeRate(f"{codec} (software, FFmpeg threads)", software, software / fps, "")]
    nvdec = NVDEC_CODECS.get(codec)
    if nvdec is None or nvdec not in av.codecs_available:
        rates.append(DecodeRate(nvdec or f"{codec} (no NVDEC decoder)", None, None, "not in this PyAV build"))
        return rates
    try:
        rate = _decode_with(path, nvdec, seconds)
    except (av.FFmpegError, ValueError, RuntimeError) as exc:
        rates.append(DecodeRate(nvdec, None, None, f"unavailable here: {type(exc).__name__}: {exc}"))
    else:
        note = "" if rate > 0 else "opened but gave no frames"
        rates.append(DecodeRate(nvdec, rate or None, (rate / fps) or None, note))
    return rates


def sampled_frames(files: list[Path], sample_fps: float) -> list[list[np.ndarray]]:
    """Each file's frames at `sample_fps`, as RGB, decoded once."""
    out = []
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            step = max(1, round(float(stream.average_rate or 25) / sample_fps))
            out.append([rgb_pixels(frame) for i, frame in enumerate(container.decode(stream)) if i % step == 0])
    return out


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _ms_per_frame(detector: MTCNNDetector, frames: list[np.ndarray], batch: int, device: str) -> float:
    chunks = [frames[i : i + batch] for i in range(0, len(frames) - batch + 1, batch)] or [frames[:batch]]
    detector.detect(chunks[0])
    _sync(device)
    started = time.perf_counter()
    done = 0
    for chunk in chunks:
        detector.detect(chunk)
        done += len(chunk)
    _sync(device)
    return (time.perf_counter() - started) * 1000 / done


def sweep_detector(
    frames: list[np.ndarray], batches: tuple[int, ...], backend: str | None, device: str
) -> tuple[list[DetectorPoint], FacesAgreement | None]:
    """ms/frame per batch size, eager and (with `backend`) compiled; the compiled detector's faces against eager's."""
    eager = MTCNNDetector(device=device)
    points = [DetectorPoint(b, None, _ms_per_frame(eager, frames, b, device)) for b in batches]
    if backend is None:
        return points, None
    compiled = MTCNNDetector(device=device, compile_backend=backend)
    points += [DetectorPoint(b, backend, _ms_per_frame(compiled, frames, b, device)) for b in batches]
    agreement: Agreement = PERFECT
    batch = max(batches)
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        for ours, reference in zip(compiled.detect(chunk), eager.detect(chunk), strict=True):
            agreement = agreement.merge(compare(ours, reference))
    return points, FacesAgreement(
        backend=backend,
        frames=len(frames),
        same_faces=agreement.ok,
        worst_iou=agreement.worst_iou,
        worst_landmark_px=agreement.worst_landmark_px,
        unmatched=agreement.unmatched_reference + agreement.unmatched_ours,
    )


class SimulatedCameras:
    """N cameras sending sampled frames at a steady rate through a face-service handle, as forwarders would."""

    def __init__(self, handle: serve.handle.DeploymentHandle, footage: list[list[np.ndarray]], settings: Settings):
        self.handle = handle
        self.footage = footage
        self.settings = settings
        self.latencies: list[tuple[float, float]] = []
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self.largest_batch = 0

    async def camera(self, index: int, cameras: int, until: float) -> None:
        frames = self.footage[index % len(self.footage)]
        period = 1.0 / self.settings.sample_fps
        start = time.monotonic() + period * index / cameras
        open_requests: set[asyncio.Task] = set()
        seq = 0
        while (due := start + seq * period) < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            pixels = frames[(seq + 7 * index) % len(frames)]
            if len(open_requests) >= self.settings.in_flight:
                self.dropped += 1
            else:
                self.sent += 1
                frame = CameraFrame(f"cam{index}", seq, seq * period, time.time(), pixels)
                task = asyncio.create_task(self.request(frame))
                open_requests.add(task)
                task.add_done_callback(open_requests.discard)
            seq += 1
        if open_requests:
            await asyncio.wait(open_requests)

    async def request(self, frame: CameraFrame) -> None:
        try:
            result: FrameResult = await asyncio.wait_for(
                self.handle.remote(FrameRequest(frame)), REQUEST_TIMEOUT_BOUNDS * self.settings.bound_s
            )
        except Exception:
            self.failed += 1
            return
        self.largest_batch = max(self.largest_batch, result.batch_size)
        self.latencies.append((time.time(), time.time() - frame.captured_at))

    async def step(self, cameras: int) -> RampStep:
        self.latencies, self.sent, self.dropped, self.failed, self.largest_batch = [], 0, 0, 0, 0
        until = time.monotonic() + self.settings.warmup_s + self.settings.step_s
        measured_from = time.time() + self.settings.warmup_s
        await asyncio.gather(*(self.camera(i, cameras, until) for i in range(cameras)))
        window = [latency for at, latency in self.latencies if at >= measured_from]
        if not window:
            raise RuntimeError(f"no result came back with {cameras} cameras; is the face service running?")
        return RampStep(
            cameras=cameras,
            offered_fps=cameras * self.settings.sample_fps,
            results_per_s=len(window) / self.settings.step_s,
            latency_p50_s=float(np.percentile(window, 50)),
            latency_p99_s=float(np.percentile(window, 99)),
            sent=self.sent,
            dropped=self.dropped,
            failed=self.failed,
            largest_batch=self.largest_batch,
        )


def ramp(footage: list[list[np.ndarray]], settings: Settings) -> list[RampStep]:
    """Deploy the face service on this node's GPU (or CPU) and step the cameras up until a step breaks the bound."""
    compiled = settings.compile if settings.compile in ("inductor", "cudagraphs") else None
    models = FaceModelsConfig(device=settings.device, second_stage=None, detector=DetectorConfig(compile=compiled))
    service = FaceServiceConfig.model_validate(
        {
            "batching": {"max_batch_size": settings.service_batch, "batch_wait_timeout_s": settings.wait_ms / 1000},
            "max_ongoing_requests": max(64, 4 * settings.service_batch),
        }
    )
    handle, _ = deploy_face_service(models, service)
    cameras = SimulatedCameras(handle, footage, settings)
    steps: list[RampStep] = []
    for count in settings.cameras:
        step = asyncio.run(cameras.step(count))
        steps.append(step)
        print(
            f"  {count:4d} cameras: {step.results_per_s:7.1f} frames/s of {step.offered_fps:.0f},"
            f" p50 {step.latency_p50_s * 1000:6.0f} ms, p99 {step.latency_p99_s * 1000:6.0f} ms,"
            f" dropped {step.dropped} ({step.dropped_share:.1%}), failed {step.failed},"
            f" largest batch {step.largest_batch}",
            flush=True,
        )
        if not step.holds(settings.bound_s):
            break
    serve.delete(APP_NAME)
    return steps


def settings_from(args: argparse.Namespace) -> Settings:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        return Settings(
            width=320,
            height=180,
            fps=10,
            seconds=2.0,
            files=2,
            sample_fps=2.0,
            cameras=(1, 2),
            step_s=2.0,
            warmup_s=1.0,
            batches=(1, 2),
            service_batch=2,
            wait_ms=20.0,
            in_flight=2,
            bound_s=args.bound_s,
            compile="eager",
            device=device,
            decode_s=0.5,
        )
    if device != "cuda":
        raise SystemExit("no GPU visible to torch: run with --smoke on a CPU, or on a machine with a GPU")
    if args.compile == "eager":
        raise SystemExit("--compile eager only traces (for --smoke); on a GPU use inductor or cudagraphs")
    return Settings(
        width=1920,
        height=1080,
        fps=25,
        seconds=args.seconds,
        files=args.files,
        sample_fps=args.sample_fps,
        cameras=tuple(args.cameras),
        step_s=args.step_s,
        warmup_s=args.warmup_s,
        batches=tuple(args.batches),
        service_batch=args.service_batch,
        wait_ms=args.wait_ms,
        in_flight=args.in_flight,
        bound_s=args.bound_s,
        compile=args.compile,
        device=device,
        decode_s=args.decode_s,
    )


def run(settings: Settings, out: Path | None) -> dict:
    print(describe_machine(), flush=True)
    report: dict = {"settings": asdict(settings)}
    with tempfile.TemporaryDirectory() as folder:
        spec = CrowdSpec(
            cameras=settings.files,
            seconds=settings.seconds,
            fps=settings.fps,
            width=settings.width,
            height=settings.height,
            seed=5,
        )
        make_crowd(spec, Path(folder))
        files = [Path(folder) / f"cam{i}.mp4" for i in range(settings.files)]
        decoding = measure_decoding(files[0], settings.fps, settings.decode_s)
        report["decoding"] = [asdict(rate) for rate in decoding]
        for rate in decoding:
            shown = "-" if rate.frames_per_s is None else f"{rate.frames_per_s:.0f} frames/s"
            cameras = "" if rate.cameras_at_full_rate is None else f" = {rate.cameras_at_full_rate:.1f} cameras"
            print(f"decode {rate.decoder}: {shown}{cameras} {rate.note}".rstrip(), flush=True)
        footage = sampled_frames(files, settings.sample_fps)
    frames = [frame for camera in footage for frame in camera]
    points, agreement = sweep_detector(frames, settings.batches, settings.compile, settings.device)
    report["detector"] = [asdict(point) for point in points]
    report["agreement"] = None if agreement is None else asdict(agreement)
    for point in points:
        print(f"detector batch {point.batch:3d} {point.compiled or 'eager':10s}: {point.ms_per_frame:7.2f} ms/frame")
    if agreement is not None:
        print(
            f"compiled ({agreement.backend}) vs eager on {agreement.frames} frames:"
            f" same faces {agreement.same_faces},"
            f" worst IoU {agreement.worst_iou:.4f}, worst landmark {agreement.worst_landmark_px:.2f} px"
        )
    ray.init(namespace=NAMESPACE, include_dashboard=False, log_to_driver=False, _system_config=dict(SYSTEM_CONFIG))
    try:
        print(
            f"ramp: {settings.sample_fps:g} fps per camera, batch {settings.service_batch}, p99 bound"
            f" {settings.bound_s:g} s",
            flush=True,
        )
        steps = ramp(footage, settings)
    finally:
        ray.shutdown()
    held = [step.cameras for step in steps if step.holds(settings.bound_s)]
    report["ramp"] = [asdict(step) for step in steps]
    report["cameras_held"] = max(held) if held else 0
    print(f"largest camera count with p99 < {settings.bound_s:g} s and <= 1% dropped: {report['cameras_held']}")
    if out is not None:
        out.write_text(json.dumps(report, indent=2))
        print(f"report: {out}")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run that checks the script works")
    parser.add_argument("--cameras", type=int, nargs="+", default=[8, 16, 24, 32, 40, 48, 56, 64, 72, 80])
    parser.add_argument("--sample-fps", type=float, default=5.0)
    parser.add_argument("--step-s", type=float, default=15.0, help="measured seconds per ramp step")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--files", type=int, default=4, help="distinct synthesised camera files")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each synthesised file")
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--service-batch", type=int, default=32, help="the face service's max batch in the ramp")
    parser.add_argument("--wait-ms", type=float, default=20.0)
    parser.add_argument("--in-flight", type=int, default=3, help="requests one camera may have open")
    parser.add_argument("--bound-s", type=float, default=1.0)
    parser.add_argument("--compile", choices=["inductor", "cudagraphs", "eager"], default=None)
    parser.add_argument("--decode-s", type=float, default=5.0, help="seconds of decoding per decoder")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    configure_logging("warning")
    return run(settings_from(args), args.out)


if __name__ == "__main__":
    main()
