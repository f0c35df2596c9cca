"""The device's MJPEG-over-HTTP server, camera sources and display.show(), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import io
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from PIL import Image
from xrpyc.device import camera, display, mjpeg, streaming

BOUNDARY_LINE = b"--boundarydonotcross\r\n"


class MjpegClient:
    """A raw-socket MJPEG reader that checks every byte against MaixPy3's wire format."""

    def __init__(self, port: int, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.file = self.sock.makefile("rb")
        self.status = self.file.readline()
        self.headers: list[tuple[str, str]] = []
        while (line := self.file.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(": ")
            self.headers.append((name, value))
        # MaixPy3 sends each part's boundary line right after the response headers
        # (the first part) or after the CRLF that ends the previous JPEG.
        self.first = True

    def read_frame(self) -> tuple[list[tuple[str, str]], bytes]:
        if not self.first:
            assert self.file.read(2) == b"\r\n"
        self.first = False
        assert self.file.readline() == BOUNDARY_LINE
        headers = []
        while (line := self.file.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(": ")
            headers.append((name, value))
        assert [name for name, _ in headers] == ["X-Timestamp", "Content-Length", "Content-Type"]
        values = dict(headers)
        float(values["X-Timestamp"])
        assert values["Content-Type"] == "image/jpeg"
        jpeg = self.file.read(int(values["Content-Length"]))
        assert len(jpeg) == int(values["Content-Length"])
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"  # SOI ... EOI
        return headers, jpeg

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def mjpeg_server(holder: mjpeg.FrameHolder | None = None) -> Iterator[tuple[mjpeg.MjpegServer, int]]:
    server = mjpeg.MjpegServer(holder if holder is not None else mjpeg.FrameHolder())
    _, port = server.start("127.0.0.1", 0)
    try:
        yield server, port
    finally:
        server.stop()


@contextlib.contextmanager
def pattern_stream(fps: float = 30) -> Iterator[int]:
    """An MJPEG server on a free port fed by the test pattern; yields the port."""
    holder = mjpeg.FrameHolder()
    feeder = camera.Camera(camera.TestPattern(), holder, fps=fps)
    with mjpeg_server(holder) as (_, port):
        feeder.start()
        try:
            yield port
        finally:
            feeder.stop()


def numbered_jpegs(count: int, size: int = 400) -> list[bytes]:
    """`count` distinct large JPEGs: one noise picture, numbered in a COM segment."""
    noise = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=95)
    base = buffer.getvalue()
    frames = []
    for index in range(count):
        comment = b"frame %d" % index
        frames.append(base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:])
    return frames


def test_wire_format_is_maixpy3s() -> None:
    with pattern_stream() as port:
        client = MjpegClient(port)
        try:
            assert client.status == b"HTTP/1.0 200 OK\r\n"
            names = [name for name, _ in client.headers]
            assert names == ["Server", "Date", *(name for name, _ in mjpeg.RESPONSE_HEADERS)]
            headers = dict(client.headers)
            assert headers["Content-Type"] == "multipart/x-mixed-replace;boundary=--boundarydonotcross"
            assert headers["Connection"] == "close"
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert headers["Server"].startswith("BaseHTTP/0.6 Python/")  # http.server's, as MaixPy3 sends
            sent = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
            assert abs(sent - time.time()) < 5
            assert headers["Date"] == email.utils.formatdate(sent, usegmt=True)
            frames = [client.read_frame()[1] for _ in range(4)]
        finally:
            client.close()
    assert len(set(frames)) == 4  # the clock moves: every frame differs
    image = Image.open(io.BytesIO(frames[-1]))
    assert (image.format, image.size) == ("JPEG", (640, 480))


def test_two_clients_at_once() -> None:
    with pattern_stream() as port:
        clients = [MjpegClient(port), MjpegClient(port)]
        try:
            results: list[list[bytes]] = [[], []]

            def read(index: int) -> None:
                results[index] = [clients[index].read_frame()[1] for _ in range(5)]

            threads = [threading.Thread(target=read, args=(index,)) for index in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
        finally:
            for client in clients:
                client.close()
    assert [len(set(frames)) for frames in results] == [5, 5]


def test_slow_client_gets_the_newest_frame_and_slows_nobody() -> None:
    frames = numbered_jpegs(100)
    number = {jpeg: index for index, jpeg in enumerate(frames)}
    holder = mjpeg.FrameHolder()
    holder.store(frames[0])
    with mjpeg_server(holder) as (_, port):
        slow, fast = MjpegClient(port, receive_buffer=65536), MjpegClient(port)
        try:
            assert number[slow.read_frame()[1]] == number[fast.read_frame()[1]] == 0
            fast_seen: list[int] = []

            def read_fast() -> None:
                while not fast_seen or fast_seen[-1] != 99:
                    fast_seen.append(number[fast.read_frame()[1]])

            fast_reader = threading.Thread(target=read_fast)
            fast_reader.start()
            store_time = 0.0
            for jpeg in frames[1:]:
                started = time.perf_counter()
                holder.store(jpeg)
                store_time += time.perf_counter() - started
                time.sleep(0.005)
            fast_reader.join(10)
            # The slow client reads only now: what it gets ends with the newest frame,
            # after at most what the socket buffers held, not the 99 frames it missed.
            slow_seen = []
            while not slow_seen or slow_seen[-1] != 99:
                slow_seen.append(number[slow.read_frame()[1]])
        finally:
            slow.close()
            fast.close()
    assert store_time < 0.2, "store() waited for clients"
    assert fast_seen[-1] == 99 and slow_seen[-1] == 99
    assert len(slow_seen) < 50, slow_seen
    assert len(fast_seen) > len(slow_seen)
    assert slow_seen == sorted(slow_seen) and fast_seen == sorted(fast_seen)


def test_display_show_appears_in_the_stream() -> None:
    with mjpeg_server(mjpeg.default_holder) as (_, port):
        client = MjpegClient(port)
        try:
            display.show(Image.new("RGB", (64, 48), (255, 0, 0)))
            for _ in range(10):  # a frame left by an earlier test may come first
                image = Image.open(io.BytesIO(client.read_frame()[1]))
                if image.size == (64, 48):
                    break
            r, g, b = image.convert("RGB").getpixel((32, 24))
            assert image.size == (64, 48) and r > 200 and g < 50 and b < 50
        finally:
            client.close()


def test_display_show_takes_what_maixpy3_show_takes() -> None:
    holder = mjpeg.default_holder
    jpeg = display.to_jpeg(Image.new("L", (8, 8), 128))
    display.show(jpeg)
    assert holder.latest().jpeg == jpeg  # JPEG bytes pass through as they are
    png = io.BytesIO()
    Image.new("RGBA", (10, 6), (0, 0, 255, 128)).save(png, "PNG")
    display.show(png.getvalue())
    assert Image.open(io.BytesIO(holder.latest().jpeg)).size == (10, 6)

    class MaixLikeImage:  # the duck type of maix.image.Image: raw pixels, PIL's modes
        width, height, mode = 4, 2, "RGB"

        def tobytes(self) -> bytes:
            return bytes([0, 255, 0]) * 8

    display.show(MaixLikeImage())
    assert Image.open(io.BytesIO(holder.latest().jpeg)).convert("RGB").getpixel((1, 1))[1] > 200
    display.show()  # MaixPy3: no argument shows the display's canvas, 240x240 by default
    assert Image.open(io.BytesIO(holder.latest().jpeg)).size == (display.width(), display.height()) == (240, 240)
    before = holder.latest()
    display.show(Image.new("RGB", (4, 4)), remote_show=False)
    assert holder.latest() is before
    with pytest.raises(TypeError):
        display.show("not an image")
    with pytest.raises(ValueError):
        display.show(b"not an image file")


def test_display_show_takes_numpy_arrays() -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.zeros((30, 40, 3), dtype=numpy.uint8)
    array[..., 2] = 255
    display.show(array)
    image = Image.open(io.BytesIO(mjpeg.default_holder.latest().jpeg))
    assert image.size == (40, 30) and image.convert("RGB").getpixel((20, 15))[2] > 200
    display.show(numpy.full((5, 7), 300, dtype=numpy.int64))  # clipped to 255
    assert Image.open(io.BytesIO(mjpeg.default_holder.latest().jpeg)).getpixel((3, 2)) > 250
    with pytest.raises(TypeError):
        display.show(numpy.zeros((5, 5)))


def test_stop_frees_the_port_and_threads() -> None:
    before = set(threading.enumerate())
    holder = mjpeg.FrameHolder()
    frames = numbered_jpegs(20)
    server = mjpeg.MjpegServer(holder)
    thread, port = server.start("127.0.0.1", 0)
    # One client that reads, one that never does: its handler blocks in a full socket.
    reader, stalled = MjpegClient(port), MjpegClient(port, receive_buffer=4096)
    for jpeg in frames:
        holder.store(jpeg)
        reader.read_frame()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert not thread.is_alive()
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    reader.close()
    stalled.close()
    again = mjpeg.MjpegServer(holder)
    assert again.start("127.0.0.1", port)[1] == port
    again.stop()


def test_pyav_plays_the_stream() -> None:
    """The kernel's video path: PyAV's mpjpeg demuxer over HTTP."""
    av = pytest.importorskip("av")
    with pattern_stream() as port, av.open(f"http://127.0.0.1:{port}/", format="mpjpeg", timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mjpeg"
        decoded = []
        for packet in container.demux(stream):
            decoded += stream.codec_context.decode(packet)
            if len(decoded) >= 5:
                break
    assert {(frame.width, frame.height) for frame in decoded} == {(640, 480)}


def make_video(path: str, codec: str, frames: int = 6, size: tuple[int, int] = (160, 120)) -> None:
    av = pytest.importorskip("av")
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", size, (index * 40 % 256, 80, 160))
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode(None))


def test_video_file_is_decoded_to_jpeg_and_looped(tmp_path) -> None:
    path = str(tmp_path / "clip.mp4")
    make_video(path, "mpeg4", frames=6)
    source = camera.open_source(path)
    try:
        assert not source.live and source.loop
        jpegs = [source.read() for _ in range(15)]  # more than the file holds
    finally:
        source.close()
    assert source.fps == 25
    assert all(Image.open(io.BytesIO(jpeg)).size == (160, 120) for jpeg in jpegs)


def test_mjpeg_file_passes_through(tmp_path) -> None:
    av = pytest.importorskip("av")
    path = str(tmp_path / "clip.avi")
    make_video(path, "mjpeg", frames=3)
    with av.open(path) as container:
        packets = [bytes(packet) for packet in container.demux(video=0) if packet.size]
    source = camera.AVSource(path, loop=False)
    read = [source.read() for _ in range(4)]
    assert read == [*packets, None]


def test_url_source_passes_jpeg_through() -> None:
    """A camera on an MJPEG URL (here: another of our servers) relays its JPEGs untouched."""
    pytest.importorskip("av")
    with pattern_stream() as upstream_port:
        relay_holder = mjpeg.FrameHolder()
        relay = camera.Camera(camera.open_source(f"http://127.0.0.1:{upstream_port}/"), relay_holder)
        with mjpeg_server(relay_holder) as (_, relay_port):
            relay.start()
            upstream, downstream = MjpegClient(upstream_port), MjpegClient(relay_port)
            try:
                upstream_frames = {upstream.read_frame()[1] for _ in range(15)}
                relayed = [downstream.read_frame()[1] for _ in range(3)]
            finally:
                relay.stop()
                upstream.close()
                downstream.close()
    assert relay.source.live
    assert set(relayed) & upstream_frames


def test_camera_keeps_the_rate() -> None:
    holder = mjpeg.FrameHolder()
    feeder = camera.Camera(camera.TestPattern(160, 120), holder, fps=20)
    feeder.start()
    time.sleep(1.0)
    feeder.stop()
    count = holder.latest().number
    assert 15 <= count <= 22, count


def test_open_source_rejects_what_does_not_exist() -> None:
    assert isinstance(camera.open_source("test"), camera.TestPattern)
    with pytest.raises(FileNotFoundError):
        camera.open_source("/dev/video-none")


def test_device_options_start_stream_and_camera() -> None:
    """What `xrpyc-device --mjpeg-port auto --camera test` starts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    streaming.add_arguments(parser)
    args = parser.parse_args(["--mjpeg-port", "auto", "--camera", "test", "--camera-size", "320x240"])
    running = streaming.start(args)
    try:
        port = int(running.url.rstrip("/").rsplit(":", 1)[1])
        client = MjpegClient(port)
        try:
            # The first frame can be one an earlier test left in the default holder.
            sizes = [Image.open(io.BytesIO(client.read_frame()[1])).size for _ in range(2)]
            assert sizes[-1] == (320, 240)
        finally:
            client.close()
    finally:
        running.stop()
    assert parser.parse_args([]).mjpeg_port == 18811 and parser.parse_args([]).camera is None
    assert streaming.start(parser.parse_args(["--mjpeg-port", "0"])).url is None


def test_url_source_reconnects_when_the_stream_comes_back() -> None:
    pytest.importorskip("av")
    upstream_holder, relay_holder = mjpeg.FrameHolder(), mjpeg.FrameHolder()
    frames = numbered_jpegs(2, size=64)  # over 2 KB: FFmpeg's format probe reads that much
    upstream = mjpeg.MjpegServer(upstream_holder)
    _, port = upstream.start("127.0.0.1", 0)
    relay = camera.Camera(camera.open_source(f"http://127.0.0.1:{port}/"), relay_holder)
    relay.start()
    try:
        upstream_holder.store(frames[0])
        relay_holder.wait_newer(0, timeout=5)
        assert relay_holder.latest().jpeg == frames[0]
        upstream.stop()  # the stream ends: the camera retries until it is back
        _, again = upstream.start("127.0.0.1", port)
        assert again == port
        upstream_holder.store(frames[1])
        deadline = time.monotonic() + 10
        while relay_holder.latest().jpeg != frames[1] and time.monotonic() < deadline:
            relay_holder.wait_newer(relay_holder.latest().number, timeout=1)
        assert relay_holder.latest().jpeg == frames[1]
    finally:
        upstream.stop()  # first: it ends the relay's blocking read, which relay.stop() cannot
        relay.stop()


def test_only_get_is_served() -> None:
    with mjpeg_server() as (_, port), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        assert sock.makefile("rb").readline() == b"HTTP/1.0 501 Not Implemented\r\n"
