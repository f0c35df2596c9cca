"""xrpyc.video against real servers: the fixtures' RTSP (H.264, RFC 2435 JPEG) and MJPEG-over-HTTP servers.

The servers run as subprocesses on 127.0.0.1 and are stopped by PID. Tests that need them are marked
`video` and skipped when the fixture programs or their Debian packages (../shared/fixtures/install-media-deps)
are missing; the pure-Python parts at the end always run.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from servers import FIXTURES, free_port, start_announcing, stop
from xrpyc.video import (
    VideoOptions,
    VideoStream,
    _Converter,
    _encode_pillow,
    _Ended,
    _Picture,
    _RateCap,
    fit_width,
    jpeg_info,
    public_url,
    with_standard_huffman_tables,
)
from xrpyc.videorecord import Recorder
from xrpyc.videosources import MjpegHttpSource

RTSP_SERVER = FIXTURES / "rtsp-test-server"
MJPEG_SERVER = FIXTURES / "mjpeg-http-test-server"
H265_SERVER = Path(__file__).with_name("h265-rtsp-server")  # ours: the fixture's has no H.265
GST_CHECK = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"


def _rtsp_missing() -> str | None:
    if not RTSP_SERVER.exists():
        return f"{RTSP_SERVER} not found"
    if subprocess.run(["/usr/bin/python3", "-c", GST_CHECK], capture_output=True).returncode != 0:
        return "GStreamer's RTSP server is not installed (../shared/fixtures/install-media-deps)"
    return None


def _mjpeg_missing() -> str | None:
    if not MJPEG_SERVER.exists():
        return f"{MJPEG_SERVER} not found"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (../shared/fixtures/install-media-deps)"
    return None


def _h265_missing() -> str | None:
    check = subprocess.run([str(H265_SERVER), "--check"], capture_output=True, text=True)
    return None if check.returncode == 0 else check.stdout.strip() or check.stderr.strip()


# -- servers ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _fixture_server(program: Path, missing: str | None, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """A fixture server on a free port: its process and URL (no trailing slash); skips when it cannot run."""
    if missing:
        pytest.skip(missing)
    process, url = start_announcing([str(program), "--port", "0", *args], timeout=30)
    try:
        yield process, url.rstrip("/")
    finally:
        stop(process)


def rtsp_server(*args: str) -> contextlib.AbstractContextManager[tuple[subprocess.Popen, str]]:
    return _fixture_server(RTSP_SERVER, _rtsp_missing(), *args)


def h265_server() -> contextlib.AbstractContextManager[tuple[subprocess.Popen, str]]:
    """A MaixCAM-like H.265 RTSP server (tests/h265-rtsp-server): path /live."""
    return _fixture_server(H265_SERVER, _h265_missing())


@contextlib.contextmanager
def mjpeg_server(*args: str) -> Iterator[str]:
    with _fixture_server(MJPEG_SERVER, _mjpeg_missing(), *args) as (_, url):
        yield url + "/"


@pytest.fixture(scope="module")
def rtsp() -> Iterator[str]:
    """Base URL of an RTSP server shared by the module's tests (paths /h264 and /mjpeg)."""
    pytest.importorskip("av")
    with rtsp_server() as (_, url):
        yield url


@pytest.fixture(scope="module", params=["maixpy3", "standard"])
def mjpeg(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Style and URL of an MJPEG-over-HTTP server in each boundary style."""
    with mjpeg_server("--style", request.param) as url:
        yield request.param, url


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@contextlib.contextmanager
def multipart_server(part: bytes, rate: float = 100.0) -> Iterator[str]:
    """An HTTP server streaming multipart/x-mixed-replace parts that are all `part`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            with contextlib.suppress(OSError):
                while not stopping.is_set():
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part)}\r\n\r\n"
                    self.wfile.write(head.encode() + part + b"\r\n")
                    time.sleep(1 / rate)

    stopping = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def raw_http_server(respond: Callable[[socket.socket, bytes], None]) -> Iterator[str]:
    """A server for one connection at a time that reads the request and hands the socket and it to `respond`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                with connection, contextlib.suppress(OSError):
                    respond(connection, connection.recv(65536))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()


def read_all(url: str, timeout: float = 5.0) -> list[bytes]:
    source = MjpegHttpSource(url, timeout)
    frames = []
    try:
        while (frame := source.read()) is not None:
            frames.append(frame)
    finally:
        source.close()
    return frames


# -- a publisher that records ---------------------------------------------------------------------------


@dataclass
class Message:
    time: float
    kind: str  # "display" or "update"
    data: dict
    metadata: dict
    display_id: str

    @property
    def jpeg(self) -> bytes:
        return base64.b64decode(self.data["image/jpeg"])


@dataclass
class FakePublisher:
    """Records every message with the time it arrived; thread-safe."""

    _messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._record("display", data, metadata, transient)

    def update_display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._record("update", data, metadata, transient)

    def _record(self, kind: str, data: dict, metadata: dict, transient: dict) -> None:
        with self._lock:
            self._messages.append(Message(time.monotonic(), kind, data, metadata, transient["display_id"]))

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def images(self) -> list[Message]:
        return [m for m in self.messages if "image/jpeg" in m.data]

    def readouts(self) -> list[Message]:
        return [m for m in self.messages if "image/jpeg" not in m.data]

    def wait_for(self, condition: Callable[[FakePublisher], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


class Ends:
    """on_end's calls."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.event = threading.Event()

    def __call__(self, message: str) -> None:
        self.messages.append(message)
        self.event.set()


def video_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("xrpyc-video")]


@contextlib.contextmanager
def playing(
    url: str, recorder: Recorder | None = None, **options: Any
) -> Iterator[tuple[VideoStream, FakePublisher, Ends]]:
    """A started VideoStream on `url`, stopped (and checked to leave no thread) afterwards."""
    publisher, ends = FakePublisher(), Ends()
    stream = VideoStream(url, publisher, VideoOptions(**options), on_end=ends, recorder=recorder)
    stream.start()
    try:
        yield stream, publisher, ends
    finally:
        stream.stop()
    assert not stream.running
    assert not video_threads()


def wait_for_images(publisher: FakePublisher, count: int, timeout: float = 10.0) -> list[Message]:
    assert publisher.wait_for(lambda p: len(p.images()) >= count, timeout), f"fewer than {count} images"
    return publisher.images()


def assert_one_live_image(
    images: list[Message], url: str, width: int, height: int, jpeg_size: tuple[int, int] | None = None
) -> None:
    """One display_data, then update_display_data under the same display id; the display size in metadata,
    the JPEG's own size (the display size unless given)."""
    assert images[0].kind == "display"
    assert {m.kind for m in images[1:]} == {"update"}
    assert len({m.display_id for m in images}) == 1
    for message in images:
        assert message.data["text/plain"] == url
        assert message.metadata == {"image/jpeg": {"width": width, "height": height}}
        assert jpeg_info(message.jpeg)[:2] == (jpeg_size or (width, height))
    # The picture moves: frames shown are different frames.
    assert len({m.data["image/jpeg"] for m in images}) >= 0.9 * len(images)


# -- streams that play ----------------------------------------------------------------------------------


@pytest.mark.video
def test_h264_over_rtsp_updates_one_display(rtsp: str) -> None:
    url = f"{rtsp}/h264"
    with playing(url, fps=15) as (stream, publisher, _):
        images = wait_for_images(publisher, 20)
        assert publisher.wait_for(lambda p: any("fps shown" in m.data["text/plain"] for m in p.readouts()), 3)
        stats = stream.stats
    assert_one_live_image(images, url, 640, 480)
    readouts = publisher.readouts()
    assert readouts[0].kind == "display" and {m.kind for m in readouts[1:]} == {"update"}
    assert len({m.display_id for m in readouts}) == 1 and readouts[0].display_id != images[0].display_id
    # The readout comes right after the first image, below it.
    assert publisher.messages[:2] == [images[0], readouts[0]]
    assert readouts[0].data["text/plain"].startswith(f"{url} · h264 640x480")
    assert readouts[-1].data["text/plain"] == f"{url} · stopped"
    # Every H.264 frame is decoded (the first packet is a keyframe: the server sends one on PLAY).
    assert stats["encoder"] in ("simplejpeg", "pillow")
    assert stats["frames_received"] - 1 <= stats["frames_decoded"] <= stats["frames_received"]
    assert stats["frames_shown"] >= len(images)
    assert stats["last_error"] is None


@pytest.mark.video
def test_rtsp_jpeg_passes_through_without_decoding(rtsp: str) -> None:
    url = f"{rtsp}/mjpeg"
    with playing(url, fps=15) as (stream, publisher, _):
        images = wait_for_images(publisher, 15)
        stats = stream.stats
    assert_one_live_image(images, url, 640, 480)
    assert stats["codec"] == "mjpeg" and stats["encoder"] == "passthrough"
    assert stats["frames_decoded"] == 0 and stats["frames_received"] >= len(images)


@pytest.mark.video
def test_mjpeg_over_http_in_both_boundary_styles(mjpeg: tuple[str, str]) -> None:
    style, url = mjpeg
    with playing(url, fps=15) as (stream, publisher, _):
        images = wait_for_images(publisher, 15)
        stats = stream.stats
    assert_one_live_image(images, url, 640, 480)
    assert stats["encoder"] == "passthrough" and stats["frames_decoded"] == 0 and stats["codec"] == "mjpeg"
    if style == "maixpy3":  # MaixPy3 stamps each part (X-Timestamp): the frame's stream time
        assert abs(time.time() - stats["pts"]) < 60
    else:
        assert stats["pts"] is None


@pytest.mark.video
def test_mjpeg_over_http_is_shown_at_the_sources_rate_by_default() -> None:
    seconds = 3.0
    with mjpeg_server() as url, playing(url) as (stream, publisher, _):
        start = wait_for_images(publisher, 1)[0].time
        time.sleep(seconds + 0.2)
        shown = [m for m in publisher.images() if start < m.time <= start + seconds]
        received = stream.stats["frames_received"]
    assert VideoOptions().fps == 30
    assert len(shown) >= 0.85 * 30 * seconds and received >= 0.9 * 30 * seconds


@pytest.mark.video
def test_wide_decoded_frames_are_scaled_down(rtsp: str) -> None:
    url = f"{rtsp}/h264"
    with playing(url, fps=15, max_width=320) as (stream, publisher, _):
        images = wait_for_images(publisher, 5)
        stats = stream.stats
    assert_one_live_image(images, url, 320, 240)
    assert stats["frames_decoded"] >= stats["frames_shown"] > 0
    assert stats["encoder"] != "passthrough"


@pytest.mark.video
def test_wide_jpegs_pass_through_with_a_smaller_display_size(rtsp: str) -> None:
    url = f"{rtsp}/mjpeg"
    with playing(url, fps=15, max_width=320) as (stream, publisher, _):
        images = wait_for_images(publisher, 5)
        stats = stream.stats
    # The browser scales: the JPEG is the source's, the display size the scaled one.
    assert_one_live_image(images, url, 320, 240, jpeg_size=(640, 480))
    assert stats["frames_decoded"] == 0 and stats["encoder"] == "passthrough"


@pytest.mark.video
@pytest.mark.parametrize(("path", "fps"), [("h264", 10), ("mjpeg", 10), ("h264", 30)])
def test_fps_cap_holds(rtsp: str, path: str, fps: float) -> None:
    seconds = 3.0
    with playing(f"{rtsp}/{path}", fps=fps) as (stream, publisher, _):
        start = wait_for_images(publisher, 1)[0].time
        time.sleep(seconds + 0.2)
        shown = [m for m in publisher.images() if start < m.time <= start + seconds]
        stats = stream.stats
    # The source sends 30 fps: a cap of 30 shows nearly all of them, a lower cap exactly its rate.
    assert 0.85 * fps * seconds <= len(shown) <= fps * seconds + 1
    assert stats["frames_received"] >= 0.9 * 30 * seconds


@pytest.mark.video
def test_h265_over_rtsp_is_decoded_and_shown(tmp_path: Path) -> None:
    pytest.importorskip("av")
    with h265_server() as (_, base):
        url = f"{base}/live"
        with playing(url, recorder=Recorder(tmp_path / "h265.mp4"), timeout=10) as (stream, publisher, _):
            images = wait_for_images(publisher, 20, timeout=20)
            stats = stream.stats
    assert_one_live_image(images, url, 640, 480)
    assert stats["codec"] == "hevc" and stats["encoder"] in ("simplejpeg", "pillow")
    assert stats["frames_decoded"] >= stats["frames_shown"] > 0 and stats["last_error"] is None
    assert_recording(tmp_path / "h265.mp4", "hevc", stats["frames_received"] - 30, (640, 480))


# -- recording ----------------------------------------------------------------------------------------------


def assert_recording(path: Path, codec: str, at_least: int, size: tuple[int, int]) -> None:
    """The file plays: every frame of its one video stream decodes, at the stream's size."""
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        (stream,) = container.streams.video
        assert stream.codec_context.name == codec
        frames = list(container.decode(stream))
    assert len(frames) >= at_least
    assert {(f.width, f.height) for f in frames} == {size}
    times = [f.time for f in frames]
    assert times == sorted(times) and times[-1] - times[0] >= (len(frames) - 1) / 60  # a real duration


@pytest.mark.video
@pytest.mark.parametrize("name", ["run.mkv", "run.mp4", "run.avi"])
def test_recording_a_jpeg_stream_keeps_its_jpegs(tmp_path: Path, name: str) -> None:
    pytest.importorskip("av")
    recorder = Recorder(tmp_path / name)
    with mjpeg_server() as url, playing(url, recorder=recorder) as (stream, publisher, _):
        wait_for_images(publisher, 30)
        assert publisher.wait_for(lambda p: f"recording {name}:" in p.readouts()[-1].data["text/plain"], 3)
    received = stream.stats["frames_received"]
    assert recorder.closed and recorder.error is None and recorder.frames == received
    assert publisher.readouts()[-1].data["text/plain"].startswith(f"{url} · stopped · recorded {name}: ")
    assert_recording(tmp_path / name, "mjpeg", received, (640, 480))


@pytest.mark.video
def test_recording_h264_without_reencoding(rtsp: str, tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "h264.mp4")
    with playing(f"{rtsp}/h264", recorder=recorder) as (stream, publisher, _):
        wait_for_images(publisher, 30)
    assert recorder.error is None and recorder.frames >= stream.stats["frames_received"] - 30
    assert_recording(tmp_path / "h264.mp4", "h264", recorder.frames, (640, 480))


@pytest.mark.video
def test_recording_ends_with_the_stream(tmp_path: Path) -> None:
    pytest.importorskip("av")
    recorder = Recorder(tmp_path / "cut.mkv")
    with mjpeg_server("--stop-after", "1.5") as url, playing(url, recorder=recorder, timeout=2) as (_, _, ends):
        assert ends.event.wait(6)
    assert recorder.closed and "recorded cut.mkv" in ends.messages[0]
    assert_recording(tmp_path / "cut.mkv", "mjpeg", 10, (640, 480))


def test_recorder_refuses_an_existing_file_unless_asked(tmp_path: Path) -> None:
    existing = tmp_path / "run.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="exists: pass overwrite=True to replace it"):
        Recorder(existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(ValueError, match=re.escape("must end with one of .mp4, .mov, .mkv, .avi")):
        Recorder(tmp_path / "run.gif")
    recorder = Recorder(existing, overwrite=True)
    recorder.close()  # no frame came: nothing is left behind
    assert not existing.exists() and recorder.status() == "recording run.mp4 failed: no frame came"


# -- streams that end -----------------------------------------------------------------------------------


@pytest.mark.video
@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_dead_url_ends_at_once_with_a_message(scheme: str) -> None:
    if scheme == "rtsp":
        pytest.importorskip("av")
    url = f"{scheme}://127.0.0.1:{free_port()}/h264"
    started = time.monotonic()
    with playing(url, timeout=2) as (_, publisher, ends):
        assert ends.event.wait(2), "no end within the timeout"
        assert time.monotonic() - started < 2
    assert ends.messages == [f"{url} · video ended: cannot open: Connection refused"]
    # No image; the readout alone, with the same line.
    assert [(m.kind, m.data) for m in publisher.messages] == [("display", {"text/plain": ends.messages[0]})]


@pytest.mark.video
def test_wrong_path_ends_with_the_servers_answer(rtsp: str) -> None:
    with playing(f"{rtsp}/nothing-here", timeout=2) as (stream, _, ends):
        assert ends.event.wait(3)
    assert "404 Not Found" in ends.messages[0]
    assert stream.stats["last_error"] == ends.messages[0].partition(" · video ended: ")[2]


@pytest.mark.video
@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_silent_server_ends_within_the_timeout(scheme: str) -> None:
    if scheme == "rtsp":
        pytest.importorskip("av")
    timeout = 1.0
    with silent_server() as port, playing(f"{scheme}://127.0.0.1:{port}/x", timeout=timeout) as (_, _, ends):
        started = time.monotonic()
        assert ends.event.wait(timeout + 2), "a silent server made the video hang"
        assert time.monotonic() - started >= timeout - 0.1
    assert ends.messages[0].endswith(f"video ended: no answer within {timeout:g} s")


@pytest.mark.video
def test_server_stopping_mid_stream_ends_the_video() -> None:
    with mjpeg_server("--stop-after", "2") as url, playing(url, timeout=2) as (_, publisher, ends):
        assert ends.event.wait(2 + 2 + 2), "the video did not end when the server died"
    assert len(publisher.images()) >= 10
    assert ends.messages[0].startswith(f"{url} · video ended: ")
    assert publisher.readouts()[-1].data["text/plain"] == ends.messages[0]
    assert publisher.messages[-1].kind == "update"  # the readout updated in place, no new output


@pytest.mark.video
def test_data_that_is_not_jpeg_ends_the_video() -> None:
    with multipart_server(b"\x89PNG\r\n\x1a\n" + bytes(1000)) as url, playing(url) as (stream, publisher, ends):
        assert ends.event.wait(5)
    assert ends.messages == [f"{url} · video ended: the stream sends data that is not JPEG"]
    assert not publisher.images()
    assert stream.stats["frames_received"] >= 30


@pytest.mark.video
def test_h264_without_a_jpeg_encoder_says_what_to_install(rtsp: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoder() -> None:
        raise _Ended("showing this stream needs a JPEG encoder: pip install simplejpeg")

    monkeypatch.setattr("xrpyc.video._jpeg_encoder", no_encoder)
    with playing(f"{rtsp}/h264") as (_, publisher, ends):
        assert ends.event.wait(5)
    assert ends.messages[0].endswith("video ended: showing this stream needs a JPEG encoder: pip install simplejpeg")
    assert not publisher.images()


# -- stop() ---------------------------------------------------------------------------------------------


@pytest.mark.video
def test_stop_while_running_returns_promptly_and_leaves_no_thread(rtsp: str) -> None:
    publisher, ends = FakePublisher(), Ends()
    stream = VideoStream(f"{rtsp}/h264", publisher, VideoOptions(fps=30), on_end=ends)
    stream.start()
    wait_for_images(publisher, 10)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 0.5
    assert not stream.running and not video_threads()
    count = len(publisher.messages)
    time.sleep(0.3)
    assert len(publisher.messages) == count, "published after stop()"
    assert publisher.messages[-1].data == {"text/plain": f"{rtsp}/h264 · stopped"}
    assert not ends.messages  # on_end is for videos that end by themselves
    stream.stop()  # idempotent
    assert len(publisher.messages) == count


@pytest.mark.video
def test_stop_is_bounded_when_the_server_stalls() -> None:
    pytest.importorskip("av")
    timeout = 1.0
    with rtsp_server() as (server, url):
        publisher = FakePublisher()
        stream = VideoStream(f"{url}/h264", publisher, VideoOptions(timeout=timeout))
        stream.start()
        wait_for_images(publisher, 5)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            time.sleep(0.2)  # the reader is now blocked in a read
            started = time.monotonic()
            stream.stop(timeout=0.5)
            assert time.monotonic() - started < 0.7
            # The reader's read ends by PyAV's read timeout, then it closes the container and leaves.
            deadline = time.monotonic() + 3 * timeout
            while stream.running and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not stream.running and not video_threads()
        finally:
            os.kill(server.pid, signal.SIGCONT)
    assert publisher.messages[-1].data == {"text/plain": f"{url}/h264 · stopped"}


@pytest.mark.video
def test_stop_from_on_end_does_not_deadlock() -> None:
    pytest.importorskip("av")
    publisher, ended = FakePublisher(), threading.Event()
    stream: VideoStream

    def on_end(_message: str) -> None:
        stream.stop()
        ended.set()

    stream = VideoStream(f"rtsp://127.0.0.1:{free_port()}/", publisher, on_end=on_end)
    stream.start()
    assert ended.wait(3)
    stream.stop()
    assert not stream.running


# -- the MJPEG-over-HTTP reader -------------------------------------------------------------------------------

HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=%s\r\n\r\n"


@pytest.mark.parametrize(
    ("boundary", "delimiter"),
    [(b"--boundarydonotcross", b"--boundarydonotcross"), (b"ffmpeg", b"--ffmpeg"), (b'"frame"', b"--frame")],
)
@pytest.mark.parametrize("with_length", [True, False])
def test_mjpeg_parts_by_length_or_by_boundary(boundary: bytes, delimiter: bytes, with_length: bool) -> None:
    # MaixPy3's quirk (the boundary already has its dashes), ffmpeg's, a quoted one; parts with and without
    # Content-Length, the data itself containing CRLFs and dashes.
    frames = [b"\xff\xd8one\r\n--not a boundary\r\n\xff\xd9", b"\xff\xd8two\xff\xd9"]

    def respond(connection: socket.socket, _request: bytes) -> None:
        out = [HEAD % boundary]
        for frame in frames:
            length = b"Content-Length: %d\r\n" % len(frame) if with_length else b""
            out.append(delimiter + b"\r\nContent-Type: image/jpeg\r\n" + length + b"\r\n" + frame + b"\r\n")
        connection.sendall(b"".join(out) + delimiter + b"--\r\n")

    with raw_http_server(respond) as url:
        assert read_all(url) == frames


def test_mjpeg_headers_sent_with_the_first_frame_are_waited_for() -> None:
    # MaixPy3 0.3.4 answers nothing until a first frame exists: silence after connecting is not a failure
    # until the (read) timeout.
    def respond(connection: socket.socket, _request: bytes) -> None:
        time.sleep(1.0)
        connection.sendall(HEAD % b"frame" + b"--frame\r\nContent-Length: 4\r\n\r\n\xff\xd8\xff\xd9\r\n")

    with raw_http_server(respond) as url:
        assert read_all(url, timeout=3.0) == [b"\xff\xd8\xff\xd9"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.0 404 Not Found\r\n\r\n", "the server answered 404 Not Found"),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", "not an MJPEG stream (Content-Type: text/html)"),
        (HEAD % b"frame" + b"--frame\r\nContent-Length: 99999999999\r\n\r\n", "over 16 MiB"),
        (HEAD % b"frame" + b"--frame\r\nContent-Length: lots\r\n\r\n", "content-length header is not a number"),
        (HEAD % b"frame" + b"--frame\r\n" + b"X: y\r\n" * 100, "more than 64 header lines"),
        (HEAD % b"frame" + b"x" * 70000 + b"\n", "no part boundary"),
        (b"garbage\r\n\r\n", "bad HTTP answer"),
    ],
)
def test_mjpeg_bad_answers_end_with_a_message(answer: bytes, error: str) -> None:
    with raw_http_server(lambda connection, _request: connection.sendall(answer)) as url:
        with pytest.raises((OSError, ValueError), match=re.escape(error)):
            read_all(url)


def test_mjpeg_part_without_length_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xrpyc.videosources.MAX_PART", 1000)

    def respond(connection: socket.socket, _request: bytes) -> None:
        connection.sendall(HEAD % b"frame" + b"--frame\r\n\r\n" + b"\xff\xd8" + b"y" * 5000)

    with raw_http_server(respond) as url, pytest.raises(ValueError, match="over 0 MiB: not a video frame"):
        read_all(url)


def test_mjpeg_close_unblocks_a_silent_read() -> None:
    with silent_server() as port:
        source = MjpegHttpSource(f"http://127.0.0.1:{port}/", timeout=60.0)
        result: list[bytes | None] = []
        reader = threading.Thread(target=lambda: result.append(source.read()))
        reader.start()
        time.sleep(0.3)
        started = time.monotonic()
        source.close()
        reader.join(5)
        assert not reader.is_alive() and time.monotonic() - started < 1.0
        assert result == [None]
        source.close()  # idempotent


def test_mjpeg_sends_basic_authentication() -> None:
    requests: list[bytes] = []

    def respond(connection: socket.socket, request: bytes) -> None:
        requests.append(request)
        connection.sendall(b"HTTP/1.0 401 Unauthorized\r\n\r\n")

    with raw_http_server(respond) as url, pytest.raises(OSError, match="answered 401"):
        read_all(url.replace("http://", "http://admin:p%40ss@"))
    assert b"\r\nAuthorization: Basic YWRtaW46cEBzcw==\r\n" in requests[0]  # admin:p@ss


# -- pure Python ------------------------------------------------------------------------------------------


def test_importing_the_module_loads_no_video_library() -> None:
    code = "import sys, xrpyc.video; print(sorted({'av', 'numpy', 'simplejpeg', 'PIL'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    pytest.importorskip("PIL.Image").new("RGB", (width, height), "teal").save(out, format="JPEG")
    return out.getvalue()


def test_jpeg_info_reads_size_and_huffman_tables() -> None:
    jpeg = _jpeg(123, 45)
    assert jpeg_info(jpeg) == (123, 45, True)
    assert jpeg_info(_without_huffman_tables(jpeg)) == (123, 45, False)
    assert jpeg_info(b"\x89PNG\r\n\x1a\n") is None
    assert jpeg_info(jpeg[:20]) is None  # cut before the frame header


def _without_huffman_tables(jpeg: bytes) -> bytes:
    """The JPEG with its DHT segments removed, as some MJPEG cameras send them."""
    out, i = bytearray(jpeg[:2]), 2
    while jpeg[i + 1] != 0xDA:
        end = i + 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if jpeg[i + 1] != 0xC4:
            out += jpeg[i:end]
        i = end
    return bytes(out + jpeg[i:])


@pytest.mark.parametrize("encoder", ["simplejpeg", "pillow"])
def test_converter_scales_and_turns_limited_range_into_jpeg_range(
    encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    av = pytest.importorskip("av")
    image = pytest.importorskip("PIL.Image")
    if encoder == "simplejpeg":
        pytest.importorskip("simplejpeg")
    else:
        monkeypatch.setattr("xrpyc.video._jpeg_encoder", lambda: ("pillow", "rgb24", _encode_pillow))
    frame = av.VideoFrame(64, 48, "yuv420p")
    frame.color_range = 1  # MPEG: limited range, as H.264 usually is
    for plane, value in zip(frame.planes, (235, 128, 128)):  # white
        plane.update(bytes([value]) * plane.buffer_size)
    converter = _Converter(max_width=32, quality=90)
    jpeg, width, height = converter.encode(frame)
    assert converter.name == encoder and (width, height) == (32, 24)
    decoded = image.open(io.BytesIO(jpeg))
    assert decoded.size == (32, 24)
    assert min(decoded.convert("RGB").getpixel((16, 12))) >= 250  # white, not the grey 235


def test_jpeg_without_huffman_tables_gets_the_standard_ones() -> None:
    image = pytest.importorskip("PIL.Image")
    original = _jpeg(64, 48)  # Pillow (libjpeg) writes the standard tables unless asked to optimize them
    fixed = with_standard_huffman_tables(_without_huffman_tables(original))
    assert jpeg_info(fixed) == (64, 48, True)
    assert image.open(io.BytesIO(fixed)).tobytes() == image.open(io.BytesIO(original)).tobytes()


@pytest.mark.video
def test_jpegs_without_huffman_tables_are_shown_with_them() -> None:
    with multipart_server(_without_huffman_tables(_jpeg(64, 48))) as url, playing(url) as (stream, publisher, _):
        images = wait_for_images(publisher, 3)
        stats = stream.stats
    assert jpeg_info(images[0].jpeg) == (64, 48, True)
    assert stats["frames_decoded"] == 0 and stats["encoder"] == "passthrough"


def test_fit_width_keeps_aspect_and_even_sizes() -> None:
    assert fit_width(640, 480, 640) == (640, 480)
    assert fit_width(1280, 720, 640) == (640, 360)
    assert fit_width(1920, 1080, 500) == (500, 282)
    assert fit_width(641, 481, 321) == (320, 240)


def test_public_url_hides_the_password() -> None:
    assert public_url("rtsp://admin:secret@10.0.0.2:554/live") == "rtsp://admin:***@10.0.0.2:554/live"
    assert public_url("rtsp://admin@10.0.0.2/live") == "rtsp://admin@10.0.0.2/live"
    assert public_url("http://127.0.0.1:18811/") == "http://127.0.0.1:18811/"


def _simulate_cap(fps: float, source_fps: float, seconds: float = 10.0, jitter: float = 0.004) -> list[float]:
    """Latencies of the frames a _RateCap lets through from a jittery source, each shown when allowed."""
    cap, latencies, pending = _RateCap(fps), [], None
    interval, previous = 1 / source_fps, 0.0
    arrivals = [k * interval + jitter * ((k * 7919) % 11 - 5) / 5 for k in range(int(seconds * source_fps))]
    for arrival in [*arrivals, arrivals[-1] + 1]:
        if pending is not None:  # the newest picture before this arrival: is it shown in time?
            at = cap.show_time(pending)
            if at < arrival:
                cap.admit(at)
                latencies.append(at - pending.ready)
        pending = _Picture(arrival, None, 640, 480, gap=arrival - previous)
        previous = arrival
    return latencies


@pytest.mark.parametrize(("fps", "source_fps"), [(30, 30), (15, 30), (10, 30), (20, 30), (30, 25), (30, 30.3)])
def test_rate_cap_holds_without_holding_frames_back(fps: float, source_fps: float) -> None:
    latencies = _simulate_cap(fps, source_fps)
    rate = len(latencies) / 10
    assert rate <= fps + 0.2
    assert rate >= min(fps, source_fps) * 0.95 - (1 if fps < source_fps else 0)
    # While the source runs, frames are shown as they arrive, or dropped; never held back. (The source's
    # last frame may wait: no newer one comes.)
    assert max(latencies[:-1]) < 1e-9


def test_rate_cap_shows_the_last_frame_of_a_burst() -> None:
    cap = _RateCap(10)
    cap.admit(0.0)
    burst_end = _Picture(0.01, None, 640, 480, gap=0.01)  # 10 ms after the frame shown: too early
    assert cap.show_time(burst_end) == pytest.approx(0.05)  # shown half an interval later, not dropped
