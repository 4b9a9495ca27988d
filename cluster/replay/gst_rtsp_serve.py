"""Serve video files as looping, real-time RTSP cameras: the GStreamer side of cluster/replay/rtsp_server.py.

Runs under Debian's /usr/bin/python3, because python3-gi is built for that interpreter only; it
imports nothing but the standard library and gi. Each camera is one *source* pipeline and one
thin RTSP *media* per client:

- the source plays the file at real time (an appsink synced to the clock) as one H.264 stream
  and loops it with non-flushing segment seeks, so running time and frame timing continue
  seamlessly across the loop. H.264 MP4 files are passed through (demuxed, never decoded);
  anything else is decoded and re-encoded to H.264 constrained baseline with openh264enc, a
  keyframe a second. It starts with its camera's first client and then runs, watched or not;
- each client's media is an appsrc fed by the source, its timestamps carried over into the
  media's running time through the clock both share, then rtph264pay. So every client of a
  camera sees the same frames at the same moment, decoded and encoded once.

A client that joins gets the live position from the next keyframe (within a second; at once
when re-encoding, which forces one). Prints `READY <port>` on stdout once clients can connect;
exits cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXIT_RUNTIME_ERROR = 1
EXIT_MISSING_GSTREAMER = 3
PACKAGES_HINT = (
    "install the Debian packages listed in loadtest/debian-packages.txt "
    "(grep -v '^#' loadtest/debian-packages.txt | xargs apt-get install -y --no-install-recommends)"
)

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstPbutils", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GLib, Gst, GstPbutils, GstRtspServer, GstVideo
except (ImportError, ValueError) as missing:
    sys.stderr.write(f"gst_rtsp_serve: GStreamer for {sys.executable} is missing ({missing}): {PACKAGES_HINT}\n")
    sys.exit(EXIT_MISSING_GSTREAMER)

REQUIRED_ELEMENTS = {
    "appsrc": "gstreamer1.0-plugins-base",
    "appsink": "gstreamer1.0-plugins-base",
    "decodebin": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "videorate": "gstreamer1.0-plugins-base",
    "avdec_h264": "gstreamer1.0-libav",
    "qtdemux": "gstreamer1.0-plugins-good",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad",
    "openh264enc": "gstreamer1.0-plugins-bad",
}
DISCOVER_TIMEOUT_NS = 10 * Gst.SECOND
PREROLL_TIMEOUT_NS = 10 * Gst.SECOND
DEFAULT_FPS = 25.0
# Bits per pixel per frame for re-encoding: ~2.3 Mbit/s at 1280x720, 25 fps, enough for faces.
BITS_PER_PIXEL = 0.1
MIN_BITRATE = 500_000
SESSION_CLEANUP_SECONDS = 2
CLIENT_THREADS_PER_CAMERA = 4
# Frames a client's appsrc may hold before it drops the oldest, should its pipeline stall.
MEDIA_QUEUE_FRAMES = 5
# The source's h264parse puts SPS/PPS before every keyframe; rtph264pay would repeat them before
# every IDR *slice*, which splits a multi-slice keyframe in two for the client's depacketizer.
MEDIA_DESCRIPTION = (
    f"( appsrc name=src is-live=true format=time max-buffers={MEDIA_QUEUE_FRAMES} leaky-type=downstream"
    " ! rtph264pay name=pay0 pt=96 config-interval=0 )"
)
ALL_BYTES = 2**64 - 1
SHARED_COPY = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS | Gst.BufferCopyFlags.META
SHARED_COPY |= Gst.BufferCopyFlags.MEMORY


class ServeError(Exception):
    """A camera that cannot be served; its message says which file and why."""


@dataclass(frozen=True)
class MountSpec:
    """One RTSP mount point and the file it replays."""

    path: str
    video: Path

    @classmethod
    def parse(cls, text: str) -> MountSpec:
        mount, separator, video = text.partition("=")
        if not separator or not mount.startswith("/") or len(mount) < 2 or not video:
            raise argparse.ArgumentTypeError(f"expected --mount /name=/path/to/video, got {text!r}")
        path = Path(video)
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"video file {video!r} of mount {mount} does not exist")
        return cls(path=mount, video=path.resolve())


@dataclass(frozen=True)
class VideoFacts:
    """What the discoverer found in a file: enough to choose pass-through and size the encoder."""

    is_h264_mp4: bool
    width: int
    height: int
    fps: float


def discover(video: Path) -> VideoFacts:
    discoverer = GstPbutils.Discoverer.new(DISCOVER_TIMEOUT_NS)
    try:
        info = discoverer.discover_uri(Gst.filename_to_uri(str(video)))
    except GLib.Error as error:
        raise ServeError(f"cannot read video file {video}: {error.message}") from error
    streams = info.get_video_streams()
    if not streams:
        raise ServeError(f"{video} has no video stream")
    stream = streams[0]
    container = info.get_stream_info().get_caps().get_structure(0).get_name()
    codec = stream.get_caps().get_structure(0).get_name()
    denominator = stream.get_framerate_denom()
    fps = stream.get_framerate_num() / denominator if denominator else 0.0
    return VideoFacts(
        is_h264_mp4=container == "video/quicktime" and codec == "video/x-h264",
        width=stream.get_width(),
        height=stream.get_height(),
        fps=fps if fps > 0 else DEFAULT_FPS,
    )


def quote(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Camera:
    """One file played at real time in a loop as one H.264 stream, fanned out to every client's appsrc."""

    def __init__(self, mount: MountSpec, reencode: bool, fps_cap: float | None) -> None:
        self.mount = mount
        facts = discover(mount.video)
        self.passthrough = facts.is_h264_mp4 and not reencode and fps_cap is None
        fps = min(facts.fps, fps_cap) if fps_cap else facts.fps
        bitrate = max(MIN_BITRATE, int(facts.width * facts.height * fps * BITS_PER_PIXEL))
        self.pipeline = Gst.parse_launch(self._source_description(fps, bitrate, fps_cap))
        self.pipeline.use_clock(Gst.SystemClock.obtain())
        self.sink = self.pipeline.get_by_name("sink")
        self.sink.connect("new-sample", self._on_new_sample)
        self.caps: Gst.Caps | None = None
        self._lock = threading.Lock()
        self._started = False
        # appsrc -> whether it still waits for a keyframe before its first frame.
        self._targets: dict[Gst.Element, bool] = {}

    def _source_description(self, fps: float, bitrate: int, fps_cap: float | None) -> str:
        source = f"filesrc location={quote(self.mount.video)}"
        h264 = "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"
        sink = "appsink name=sink sync=true emit-signals=true"
        if self.passthrough:
            return f"{source} ! qtdemux name=demux demux.video_0 ! {h264} ! {sink}"
        rate = f"videorate drop-only=true max-rate={max(1, round(fps_cap))} ! " if fps_cap else ""
        encoder = (
            f"openh264enc gop-size={max(1, round(fps))} bitrate={bitrate} rate-control=bitrate "
            "complexity=low usage-type=camera ! video/x-h264,profile=constrained-baseline"
        )
        return f"{source} ! decodebin ! videoconvert ! {rate}video/x-raw,format=I420 ! {encoder} ! {h264} ! {sink}"

    def preroll(self) -> None:
        """Pause on the first frame, then arm the looping segment seek from the start."""
        self._change_state(Gst.State.PAUSED)
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT
        if not self.pipeline.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1):
            raise ServeError(f"{self.mount.video} cannot be seeked, so it cannot be looped")
        self._wait_async_done()
        self.caps = self.sink.get_static_pad("sink").get_current_caps()

    def _change_state(self, state: Gst.State) -> None:
        if self.pipeline.set_state(state) == Gst.StateChangeReturn.FAILURE:
            raise ServeError(f"{self.mount.video} cannot be played: {self._pending_error()}")
        self._wait_async_done()

    def _wait_async_done(self) -> None:
        kinds = Gst.MessageType.ASYNC_DONE | Gst.MessageType.ERROR
        message = self.pipeline.get_bus().timed_pop_filtered(PREROLL_TIMEOUT_NS, kinds)
        if message is None:
            raise ServeError(f"{self.mount.video} did not preroll within {PREROLL_TIMEOUT_NS // Gst.SECOND} s")
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            raise ServeError(f"{self.mount.video} cannot be played: {error.message} ({debug})")

    def _pending_error(self) -> str:
        message = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        return message.parse_error()[0].message if message else "state change failed"

    def watch_bus(self, on_fatal: Callable[[MountSpec, str], None]) -> None:
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::segment-done", self._on_segment_done)
        bus.connect("message::error", lambda _bus, message: on_fatal(self.mount, message.parse_error()[0].message))

    def _on_segment_done(self, _bus, _message) -> None:
        """Loop: a non-flushing segment seek back to the start keeps running time continuous."""
        self.pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)

    def attach(self, appsrc: Gst.Element) -> None:
        """Feed a new client's appsrc from the next keyframe on; when re-encoding, ask for one now."""
        appsrc.set_property("caps", self.caps)
        appsrc.connect("need-data", self._on_need_data)
        with self._lock:
            self._targets[appsrc] = True
            started = self._started
        if started and not self.passthrough:
            force_keyframe = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0)
            self.sink.send_event(force_keyframe)

    def detach(self, appsrc: Gst.Element) -> None:
        with self._lock:
            self._targets.pop(appsrc, None)

    def _on_need_data(self, _appsrc: Gst.Element, _length: int) -> None:
        """Start playing when the first client's media runs, so that its first frame is the file's keyframe.

        From then on the camera runs whether watched or not, and later clients join it live.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
        self.pipeline.set_state(Gst.State.PLAYING)

    def _on_new_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buffer = sample.get_buffer()
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            for appsrc in [src for src, waiting in self._targets.items() if keyframe or not waiting]:
                if self._forward(sample, buffer, appsrc):
                    self._targets[appsrc] = False
        return Gst.FlowReturn.OK

    def _forward(self, sample: Gst.Sample, buffer: Gst.Buffer, appsrc: Gst.Element) -> bool:
        """Push a shallow copy re-stamped from the source's running time to the media's, via the shared clock.

        Running time comes from the PTS, which always lies inside the looping segment (a B-frame
        stream's first DTS lies before it); the DTS keeps its distance from the PTS.
        """
        if appsrc.get_clock() is None or buffer.pts == Gst.CLOCK_TIME_NONE:
            return False
        running = sample.get_segment().to_running_time(Gst.Format.TIME, buffer.pts)
        if running == Gst.CLOCK_TIME_NONE:
            return False
        media_pts = running + self.pipeline.get_base_time() - appsrc.get_base_time()
        reorder = buffer.pts - buffer.dts if buffer.dts != Gst.CLOCK_TIME_NONE else 0
        if media_pts - reorder < 0:
            return False
        copy = buffer.copy_region(SHARED_COPY, 0, ALL_BYTES)
        copy.pts = media_pts
        copy.dts = media_pts - reorder
        return appsrc.emit("push-buffer", copy) == Gst.FlowReturn.OK


class ReplayServer:
    """The RTSP server: one looping camera per mount, one thin payloading media per client."""

    def __init__(self, host: str, port: int, cameras: list[Camera]) -> None:
        self.cameras = cameras
        self.loop = GLib.MainLoop()
        self.exit_code = 0
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(host)
        self.server.set_service(str(port))
        # A DESCRIBE blocks its client thread until the camera's next keyframe: give each camera its
        # own threads, or the cameras' first clients queue behind one another (gst-rtsp-server uses one).
        self.server.get_thread_pool().set_max_threads(CLIENT_THREADS_PER_CAMERA * len(cameras))
        mounts = self.server.get_mount_points()
        for camera in cameras:
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(MEDIA_DESCRIPTION)
            # Clients share the camera (one decode and encode, the same frames at the same time) but not
            # the media: gst-rtsp-server 1.22 answers 503 to a client that connects to a shared media
            # while its last client is leaving.
            factory.set_shared(False)
            factory.connect("media-configure", self._on_media_configure, camera)
            mounts.add_factory(camera.mount.path, factory)

    @staticmethod
    def _on_media_configure(_factory, media, camera: Camera) -> None:
        media.set_clock(Gst.SystemClock.obtain())
        appsrc = media.get_element().get_by_name("src")
        camera.attach(appsrc)
        media.connect("unprepared", lambda _media: camera.detach(appsrc))

    def run(self, watch_parent: bool) -> int:
        for camera in self.cameras:
            camera.watch_bus(self._on_fatal)
        if self.server.attach(None) == 0:
            raise ServeError(f"cannot listen on {self.server.get_address()}:{self.server.get_service()} (port in use?)")
        pool = self.server.get_session_pool()
        GLib.timeout_add_seconds(SESSION_CLEANUP_SECONDS, lambda: pool.cleanup() >= 0)
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, self._quit)
        if watch_parent:
            GLib.io_add_watch(
                sys.stdin.fileno(),
                GLib.PRIORITY_DEFAULT,
                GLib.IOCondition.IN | GLib.IOCondition.HUP,
                self._on_parent_input,
            )
        sys.stdout.write(f"READY {self.server.get_bound_port()}\n")
        sys.stdout.flush()
        self.loop.run()
        self.server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)
        for camera in self.cameras:
            camera.stop()
        return self.exit_code

    def _quit(self) -> bool:
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def _on_parent_input(self, fd: int, _condition) -> bool:
        """The controller holds our stdin open; end-of-file means it is gone, so go too."""
        if os.read(fd, 4096):
            return GLib.SOURCE_CONTINUE
        return self._quit()

    def _on_fatal(self, mount: MountSpec, reason: str) -> None:
        sys.stderr.write(f"gst_rtsp_serve: camera {mount.path} ({mount.video}) failed: {reason}\n")
        self.exit_code = EXIT_RUNTIME_ERROR
        self.loop.quit()


def check_elements() -> None:
    missing = [
        f"{name} ({package})" for name, package in REQUIRED_ELEMENTS.items() if not Gst.ElementFactory.find(name)
    ]
    if missing:
        sys.stderr.write(f"gst_rtsp_serve: GStreamer elements missing: {', '.join(missing)}: {PACKAGES_HINT}\n")
        sys.exit(EXIT_MISSING_GSTREAMER)


def loopback_host(text: str) -> str:
    """Replays are for load and chaos tests on this machine: listen on loopback only."""
    try:
        loopback = ipaddress.ip_address(text).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(f"--host must be a loopback address such as 127.0.0.1, got {text!r}")
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=loopback_host, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554, help="0 picks a free port; READY says which")
    parser.add_argument("--mount", type=MountSpec.parse, action="append", required=True, metavar="/NAME=VIDEO")
    parser.add_argument("--fps-cap", type=float, help="drop frames above this rate (forces re-encoding)")
    parser.add_argument("--reencode", action="store_true", help="re-encode H.264 MP4 files too")
    parser.add_argument("--watch-parent", action="store_true", help="exit when stdin reaches end-of-file")
    args = parser.parse_args(argv)
    if args.fps_cap is not None and args.fps_cap <= 0:
        parser.error(f"--fps-cap must be positive, got {args.fps_cap}")
    paths = [mount.path for mount in args.mount]
    if len(set(paths)) != len(paths):
        parser.error(f"mount paths must be unique, got {paths}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    Gst.init(None)
    check_elements()
    try:
        cameras = [Camera(mount, args.reencode, args.fps_cap) for mount in args.mount]
        for camera in cameras:
            camera.preroll()
        return ReplayServer(args.host, args.port, cameras).run(args.watch_parent)
    except ServeError as error:
        sys.stderr.write(f"gst_rtsp_serve: {error}\n")
        return EXIT_RUNTIME_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
