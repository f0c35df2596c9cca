"""Live video in a notebook output: a stream shown as one JPEG replaced in place, at the source's rate.

Each stream has two daemon threads:

- the *reader* reads every frame. A JPEG stream (MJPEG over HTTP, MaixPy3's legacy RTSP: see
  xrpyc.videosources) is read with the standard library and its JPEG files are kept as they are. Any other
  URL (rtsp://: H.264, H.265, RFC 2435 JPEG) is opened with PyAV: JPEG packets are complete JPEG files
  too; other codecs are decoded packet by packet, since reference frames cannot be skipped. Only the
  newest picture is kept, in a one-slot holder: nothing ever queues behind a slow notebook. When asked,
  the reader also records every frame to a file as it came (xrpyc.videorecord).
- the *display* thread takes the newest picture at most `fps` times a second, only then turns a decoded
  frame into a JPEG, and publishes it: one `display_data` with a display id, then `update_display_data`,
  plus a one-line text readout (its own display id) refreshed about once a second, and a last line saying
  why it ended.

A JPEG is never decoded: one wider than max_width is sent as it is, with a smaller display size in its
metadata (the browser scales it), and one without Huffman tables (some MJPEG cameras) gets the standard
tables inserted. So PyAV, numpy, simplejpeg and Pillow are imported only for a stream that must be decoded
(or recorded): a kernel that passes JPEGs through never loads them (PyAV alone takes ~100 ms and ~20 MiB).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .videosources import JpegSource, jpeg_source

if TYPE_CHECKING:
    from av.packet import Packet
    from av.video.frame import VideoFrame

    from .videorecord import Recorder

# Low-delay demuxing (see DESIGN.md): probing stops at once: the first packets tell the codec, and
# RTSP's SDP the picture size.
LOW_DELAY_OPTIONS = {"flags": "low_delay", "probesize": "32", "analyzeduration": "0"}
# RTP over the RTSP connection: no UDP ports to open, no loss, and one socket for the read timeout to watch.
# No input buffering either; not for MJPEG over HTTP, where it drops the frame read while probing (a
# device that shows one picture with display.show() would never show it).
RTSP_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer"}

READOUT_PERIOD = 1.0  # s between readout updates
LATENCY_WINDOW = 1024  # shown frames whose added latency gives the p95
# Consecutive packets that are not a JPEG, or that the decoder rejects, before the video is given up (one
# second of a 30 fps stream): a damaged packet now and then is skipped, a stream of garbage ends the video.
MAX_BAD_PACKETS = 30
RECORD_CLOSE_WAIT = 1.0  # s the last readout waits for the reader to close a recording, to show its size

# JPEG markers that start a frame header (SOFn; C4, C8 and CC are other segments), the Huffman table
# segment, and the start of scan, after which no header follows.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_DHT, _SOS = 0xC4, 0xDA
# The standard Huffman tables (ITU T.81 Annex K.3: DC and AC, luminance and chrominance), as libjpeg and
# FFmpeg write them: a DHT segment's body, for JPEGs that rely on them without carrying them.
_STANDARD_HUFFMAN_TABLES = bytes.fromhex(
    "00" "00010501010101010100000000000000" "000102030405060708090a0b"
    "10" "0002010303020403050504040000017d"
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a"
    "3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a9293949596"
    "9798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2"
    "f3f4f5f6f7f8f9fa"
    "01" "00030101010101010101010000000000" "000102030405060708090a0b"
    "11" "00020102040403040705040400010277"
    "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a26272829"
    "2a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a929394"
    "95969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9ea"
    "f2f3f4f5f6f7f8f9fa"
)


class Publisher(Protocol):
    """Sends display messages to the notebook; thread-safe (given by the kernel)."""

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None: ...

    def update_display_data(self, data: dict, metadata: dict, transient: dict) -> None: ...


@dataclass(frozen=True)
class VideoOptions:
    fps: float = 30.0  # display rate cap (frames/s): a 30 fps source is shown frame by frame
    max_width: int = 640  # wider frames are shown scaled down (keep aspect)
    quality: int = 80  # JPEG quality when re-encoding
    timeout: float = 5.0  # open/read timeout for the stream (s)

    def __post_init__(self) -> None:
        if not (self.fps > 0 and self.max_width >= 2 and 1 <= self.quality <= 100 and self.timeout > 0):
            raise ValueError(f"invalid video options: {self}")


DEFAULT_OPTIONS = VideoOptions()


class _Ended(Exception):
    """Ends the video; the message says why, for users."""


@dataclass
class _Picture:
    """The newest picture offered by the reader."""

    ready: float  # time.monotonic() when it was offered (decoded, or read for a JPEG)
    pts: float | None  # presentation time in the stream (s)
    width: int
    height: int
    frame: VideoFrame | None = None  # decoded, to encode
    jpeg: bytes | None = None  # a complete JPEG file
    seq: int = 0  # 1, 2, ... in the order pictures were offered
    gap: float = 0.0  # s since the previous picture was offered


class VideoStream:
    """Shows one stream (URL) live in a notebook output, from background threads."""

    def __init__(
        self,
        url: str,
        publisher: Publisher,
        options: VideoOptions = DEFAULT_OPTIONS,
        on_end: Callable[[str], None] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        """`on_end(message)` is called once, from the display thread, when the video ends by itself (the
        stream ended or failed; not after stop()), after the readout shows the same one-line message.
        `recorder` gets every frame read, and is closed when the reader ends."""
        self.url = url
        self.options = options
        self.recorder = recorder
        self._publisher = publisher
        self._on_end = on_end
        self._shown_url = public_url(url)
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        # Shared between the reader, the display thread and `stats`, under _cond:
        self._latest: _Picture | None = None
        self._end: str | None = None  # why the video ends, once it does
        self._stopped = False  # it ends because stop() was called
        self._codec = ""
        self._encoder_name = "passthrough"
        self._counts = {"received": 0, "decoded": 0, "shown": 0}
        self._latency_total = 0.0  # s, over all shown frames
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)  # s, of the last shown frames
        # fps shown, fps received, mean added latency (s), over the last readout period; None before one ended
        self._rates: tuple[float, float, float] | None = None
        self._shown_picture: _Picture | None = None
        self._last_error: str | None = None
        self._bad_packets = 0  # reader only
        self._source: JpegSource | None = None  # the reader's, for stop() to close
        self._converter: _Converter | None = None  # display thread only; made when a frame needs encoding

    # -- public ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the threads and returns at once; the first picture is published when it arrives."""
        if self._threads:
            raise RuntimeError("a VideoStream starts only once")
        self._threads = [
            threading.Thread(target=self._read, name="xrpyc-video-reader", daemon=True),
            threading.Thread(target=self._display, name="xrpyc-video-display", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops the video, leaving its last picture and a "stopped" readout; idempotent; returns within
        `timeout`.

        The display thread ends at once and the reader after its current read, which for a live stream is
        at most a frame interval. A JPEG source's read is cut short; a PyAV read from a server that went
        silent cannot be: PyAV 18 gives
        no way to trigger its interrupt callback on demand, and closing the container from this thread
        would free it under the reader's feet. Such a read ends by PyAV's read timeout (options.timeout),
        after which the reader closes the container itself; meanwhile it publishes nothing.
        """
        with self._cond:
            if self._end is None:
                self._end, self._stopped = "stopped", True
            self._stopping.set()
            self._cond.notify_all()
            source = self._source
        if source is not None:
            source.close()  # ends a read() blocked in the reader
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():  # stop() may be called from on_end
                thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        """True while one of the stream's threads is alive."""
        return any(thread.is_alive() for thread in self._threads)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since start, rates over the last readout period, and the last shown picture."""
        with self._cond:
            fps_shown, fps_received, _ = self._rates or (None, None, None)
            picture = self._shown_picture
            latencies = sorted(self._latencies)
            shown = self._counts["shown"]
            return {
                "url": self._shown_url,
                "codec": self._codec,
                "encoder": self._encoder_name,
                "frames_received": self._counts["received"],
                "frames_decoded": self._counts["decoded"],
                "frames_shown": shown,
                "fps_shown": fps_shown,
                "fps_received": fps_received,
                "latency_ms": round(1000 * self._latency_total / shown, 2) if shown else None,
                "latency_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None,
                "width": picture.width if picture else None,
                "height": picture.height if picture else None,
                "pts": picture.pts if picture else None,
                "last_error": self._last_error,
                "ended": self._end,
            }

    # -- reader thread -----------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            message = self._read_stream()
        except _Ended as ended:
            message = str(ended)
        except Exception as error:  # a bug must end the video visibly, not leave it frozen
            message = f"video failed: {type(error).__name__}: {error}"
        finally:
            if self.recorder is not None:
                self.recorder.close()
        with self._cond:
            if self._end is None:
                self._end = message
            self._cond.notify_all()

    def _read_stream(self) -> str:
        """Reads until the stream ends or stop(); returns why it ended, or raises _Ended."""
        timeout = self.options.timeout
        try:
            source = jpeg_source(self.url, timeout)
        except TimeoutError:
            raise _Ended(f"no answer within {timeout:g} s") from None
        except OSError as error:
            raise _Ended(f"cannot open: {error.strerror or error}") from None
        except ValueError as error:
            raise _Ended(str(error)) from None
        if source is None:
            return self._read_with_pyav()
        with self._cond:
            self._source, self._codec = source, "mjpeg"
        try:
            return self._read_jpegs(source)
        finally:
            source.close()

    def _read_jpegs(self, source: JpegSource) -> str:
        received = 0
        try:
            while not self._stopping.is_set():
                data = source.read()
                if data is None:
                    break
                received += 1
                with self._cond:
                    self._counts["received"] += 1
                if self.recorder is not None:
                    self.recorder.add_jpeg(data)
                self._pass_jpeg(data, getattr(source, "timestamp", None))
        except TimeoutError as error:
            raise _Ended(f"no answer within {self.options.timeout:g} s" if not received else str(error)) from None
        except OSError as error:
            message = error.strerror or str(error)
            raise _Ended(f"connection lost ({message})" if received else f"cannot open: {message}") from None
        except ValueError as error:
            raise _Ended(str(error)) from None
        return "stopped" if self._stopping.is_set() else "the stream ended"

    def _read_with_pyav(self) -> str:
        try:
            import av
        except ImportError:
            raise _Ended("showing video needs PyAV: pip install av") from None
        if self._stopping.is_set():
            return "stopped"
        container = self._open(av)
        try:
            if self._stopping.is_set():  # stop() while opening
                return "stopped"
            stream = self._video_stream(container)
            for packet in container.demux(stream):
                if self._stopping.is_set():
                    return "stopped"
                if packet.size:  # demux() ends with empty packets, meant to flush decoders
                    with self._cond:
                        self._counts["received"] += 1
                    if self._codec == "mjpeg":
                        self._pass_jpeg(bytes(packet), _seconds(packet))
                    else:
                        self._decode(packet)
                    if self.recorder is not None:  # after decoding: the recorder retimes the packet
                        self.recorder.add_packet(packet, stream)
            return "the stream ended"
        except av.ExitError:  # PyAV's read timeout, through FFmpeg's interrupt callback
            raise _Ended(f"no data for {self.options.timeout:g} s") from None
        except av.FFmpegError as error:
            raise _Ended(f"connection lost ({error.strerror})") from None
        finally:
            container.close()

    def _open(self, av: Any) -> Any:
        """The opened container; every wait in it bounded by options.timeout."""
        timeout = self.options.timeout
        scheme = urllib.parse.urlsplit(self.url).scheme.lower()
        options = dict(LOW_DELAY_OPTIONS)
        if scheme in ("rtsp", "rtsps"):
            options.update(RTSP_OPTIONS)
        started = time.monotonic()
        try:
            return av.open(self.url, options=options, timeout=(timeout, timeout))
        except av.FFmpegError as error:
            # The interrupt callback ends a silent open with ExitError, but RTSP reports it as bad data.
            if isinstance(error, av.ExitError) or time.monotonic() - started >= timeout:
                raise _Ended(f"no answer within {timeout:g} s") from None
            raise _Ended(f"cannot open: {error.strerror}") from None

    def _video_stream(self, container: Any) -> Any:
        """The container's first video stream, its decoder set up for low delay unless JPEG passes through."""
        if not container.streams.video:
            raise _Ended("no video stream at this URL")
        stream = container.streams.video[0]
        decoder = stream.codec_context
        if decoder is None:
            raise _Ended(f"unsupported video codec ({stream.codec.name})")
        with self._cond:
            self._codec = decoder.name
        if decoder.name != "mjpeg":
            from av.codec.context import Flags

            _jpeg_encoder()  # imports it while the first keyframe is awaited, or says now that none is installed
            decoder.thread_type = "SLICE"  # AUTO adds frame threading: a frame of delay per thread
            decoder.flags |= Flags.low_delay
        return stream

    def _pass_jpeg(self, data: bytes, pts: float | None) -> None:
        info = jpeg_info(data)
        if info is None:
            self._bad_packet("the stream sends data that is not JPEG")
            return
        width, height, has_huffman_tables = info
        if not has_huffman_tables:
            # Valid MJPEG (the standard tables are implied), but browsers cannot show it.
            data = with_standard_huffman_tables(data)
        self._offer(_Picture(time.monotonic(), pts, width, height, jpeg=data))

    def _decode(self, packet: Packet) -> None:
        import av

        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            self._bad_packet(f"cannot decode {self._codec}: {error.strerror}")
            return
        for frame in frames:
            with self._cond:
                self._counts["decoded"] += 1
            self._offer(_Picture(time.monotonic(), frame.time, frame.width, frame.height, frame=frame))

    def _bad_packet(self, message: str) -> None:
        self._bad_packets += 1
        with self._cond:
            self._last_error = message
        if self._bad_packets >= MAX_BAD_PACKETS:
            raise _Ended(message)

    def _offer(self, picture: _Picture) -> None:
        """Makes `picture` the newest, replacing (dropping) any picture not shown yet."""
        self._bad_packets = 0
        with self._cond:
            if self._latest is not None:
                picture.seq, picture.gap = self._latest.seq + 1, picture.ready - self._latest.ready
            else:
                picture.seq = 1
            self._latest = picture
            self._cond.notify_all()

    # -- display thread ----------------------------------------------------------------------------------

    def _display(self) -> None:
        view = _View(self._publisher, self._shown_url)
        failure = None
        try:
            self._show_until_end(view)
        except _Ended as ended:
            failure = str(ended)
        except Exception as error:  # a failing encoder or publisher: stop reading, say why below
            failure = f"video failed: {type(error).__name__}: {error}"
        if failure is not None:
            with self._cond:
                self._end = self._end or failure
            self._stopping.set()
        with self._cond:
            message, stopped = self._end, self._stopped
            if not stopped:
                self._last_error = message
        line = f"{self._shown_url} · {message}" if stopped else f"{self._shown_url} · video ended: {message}"
        if self.recorder is not None:
            self._threads[0].join(RECORD_CLOSE_WAIT)  # the reader closes the file
            line += f" · {self.recorder.status()}"
        # Stopped before anything was shown: the kernel asked for it, no need for an output of its own.
        if view.readout_id or not stopped:
            view.show_readout(line)
        if not stopped and self._on_end is not None:
            self._on_end(line)

    def _show_until_end(self, view: _View) -> None:
        cap = _RateCap(self.options.fps)
        shown_seq = 0
        readout_due = math.inf  # the readout starts with the first image
        window = _Window(time.monotonic(), self._counts, self._latency_total)
        while True:
            picture = self._next_picture(shown_seq, cap, readout_due)
            if picture is None and self._has_ended():
                return
            now = time.monotonic()
            if picture is not None:
                shown_seq = picture.seq
                cap.admit(now)
                self._show(view, picture)
                if view.readout_id is None and view.image_id is not None:
                    # The first image: its readout goes right below it, rates start from here.
                    window = _Window(now, self._counts, self._latency_total)
                    view.show_readout(self._readout_line())
                    readout_due = now + READOUT_PERIOD
            if now >= readout_due:
                window = self._close_window(window, now)
                view.show_readout(self._readout_line())
                readout_due = now + READOUT_PERIOD

    def _next_picture(self, shown_seq: int, cap: _RateCap, readout_due: float) -> _Picture | None:
        """Waits for a picture newer than `shown_seq` that the rate cap lets through (then returns it), the
        time for a readout, or the end (then returns None)."""
        with self._cond:
            while self._end is None:
                now = time.monotonic()
                latest = self._latest
                show_at = cap.show_time(latest) if latest is not None and latest.seq > shown_seq else math.inf
                if now >= show_at:
                    return latest
                if now >= readout_due:
                    return None
                self._cond.wait(min(show_at - now, readout_due - now, READOUT_PERIOD))
            return None

    def _has_ended(self) -> bool:
        with self._cond:
            return self._end is not None

    def _show(self, view: _View, picture: _Picture) -> None:
        if picture.jpeg is not None:
            # The browser scales a wide JPEG down to the display size: no decoder needed here.
            jpeg = picture.jpeg
            width, height = fit_width(picture.width, picture.height, self.options.max_width)
        else:
            jpeg, width, height = self._encode(picture)
        view.show_image(jpeg, width, height)
        latency = time.monotonic() - picture.ready
        with self._cond:
            self._counts["shown"] += 1
            self._latency_total += latency
            self._latencies.append(latency)
            # Kept for stats and the readout: the size it was shown at, no pixels.
            self._shown_picture = dataclasses.replace(picture, width=width, height=height, frame=None, jpeg=None)

    def _encode(self, picture: _Picture) -> tuple[bytes, int, int]:
        """A decoded frame as a JPEG to show, and its size."""
        if self._converter is None:
            self._converter = _Converter(self.options.max_width, self.options.quality)
            with self._cond:
                self._encoder_name = self._converter.name
        assert picture.frame is not None
        return self._converter.encode(picture.frame)

    def _close_window(self, window: _Window, now: float) -> _Window:
        """Rates over the readout period that ends now; starts the next period."""
        with self._cond:
            counts, total = self._counts, self._latency_total
            elapsed = max(now - window.start, 1e-6)
            shown = counts["shown"] - window.shown
            self._rates = (
                shown / elapsed,
                (counts["received"] - window.received) / elapsed,
                (total - window.latency_total) / shown if shown else 0.0,
            )
            return _Window(now, counts, total)

    def _readout_line(self) -> str:
        """E.g. "rtsp://host/h264 · h264 640x480 · 15.0 fps shown · 30.0 fps received · +1 ms"."""
        with self._cond:
            picture, rates, codec = self._shown_picture, self._rates, self._codec
        parts = [self._shown_url]
        if picture is not None:
            parts.append(f"{codec} {picture.width}x{picture.height}")
        if rates is not None:
            fps_shown, fps_received, latency = rates
            parts += [f"{fps_shown:.1f} fps shown", f"{fps_received:.1f} fps received", f"+{1000 * latency:.0f} ms"]
        if self.recorder is not None:
            parts.append(self.recorder.status())
        return " · ".join(parts)


class _View:
    """The stream's two outputs in the notebook: the image and the readout line below it."""

    def __init__(self, publisher: Publisher, url: str) -> None:
        self._publisher = publisher
        self._url = url
        self.image_id: str | None = None
        self.readout_id: str | None = None

    def show_image(self, jpeg: bytes, width: int, height: int) -> None:
        data = {"image/jpeg": base64.b64encode(jpeg).decode("ascii"), "text/plain": self._url}
        # The size lets the notebook reserve the space before the image loads: no jumping.
        metadata = {"image/jpeg": {"width": width, "height": height}}
        if self.image_id is None:
            self.image_id = uuid.uuid4().hex
            self._publisher.display_data(data, metadata, {"display_id": self.image_id})
        else:
            self._publisher.update_display_data(data, metadata, {"display_id": self.image_id})

    def show_readout(self, line: str) -> None:
        data = {"text/plain": line}
        if self.readout_id is None:
            self.readout_id = uuid.uuid4().hex
            self._publisher.display_data(data, {}, {"display_id": self.readout_id})
        else:
            self._publisher.update_display_data(data, {}, {"display_id": self.readout_id})


class _Window:
    """Counters at the start of a readout period."""

    def __init__(self, start: float, counts: dict[str, int], latency_total: float) -> None:
        self.start = start
        self.received, self.shown = counts["received"], counts["shown"]
        self.latency_total = latency_total


class _RateCap:
    """Lets at most `fps` frames a second through, on average, without holding frames back.

    Frames are due on a grid of 1/fps. One may arrive up to half an interval early, so that a source running
    at the cap's own rate, jittering around the grid, is shown frame by frame. The grid only moves on (one
    interval per frame shown, or to a late frame), so the long-run rate never exceeds fps.

    A frame that arrived before that is not held until the grid allows it, which would add its wait to the
    latency of every frame after it; it is dropped in favour of the next frame, expected within its arrival
    gap. Only if none comes within 1.5 gaps (the end of a burst from a source that sends only changes, like
    MaixPy3) is it shown after all.
    """

    def __init__(self, fps: float) -> None:
        self._interval = 1.0 / fps
        self._due = -math.inf

    def show_time(self, picture: _Picture) -> float:
        """When `picture` may be shown, if no newer one replaces it first."""
        earliest = self._due - self._interval / 2
        if picture.ready >= earliest:
            return picture.ready
        return max(earliest, picture.ready + 1.5 * picture.gap)

    def admit(self, now: float) -> None:
        """A frame is shown now."""
        self._due = max(self._due, now) + self._interval


class _Converter:
    """Decoded frames to JPEG files at most max_width wide.

    JFIF means full-range BT.601 YCbCr, while H.264 is usually limited range: one swscale pass converts
    (and scales). simplejpeg then compresses the 4:2:0 planes directly; Pillow, the fallback when
    simplejpeg is missing, needs RGB. Per 640x480 frame (bench/bench_video.py): 0.85 ms for swscale and
    simplejpeg from the planes, 1.05 ms from RGB, 1.6 ms for RGB and Pillow (2.5 ms via to_image()).
    """

    def __init__(self, max_width: int, quality: int) -> None:
        from av.video.reformatter import VideoReformatter

        self.name, self._pixel_format, self._encode = _jpeg_encoder()
        self._max_width = max_width
        self._quality = quality
        self._reformatter = VideoReformatter()  # kept: setting up swscale for every frame costs ~1 ms

    def encode(self, frame: VideoFrame) -> tuple[bytes, int, int]:
        width, height = fit_width(frame.width, frame.height, self._max_width)
        # interpolation is swscale's default, BILINEAR; dst_colorspace: JFIF's matrix, for BT.709 streams
        converted = self._reformatter.reformat(
            frame, width, height, self._pixel_format, dst_colorspace="ITU601", dst_color_range="JPEG"
        )
        return self._encode(converted, self._quality), width, height


def _jpeg_encoder() -> tuple[str, str, Callable[[Any, int], bytes]]:
    """(name, pixel format it takes, encode function) of the fastest JPEG encoder installed."""
    try:
        import simplejpeg  # noqa: F401
    except ImportError:
        pass
    else:
        return "simplejpeg", "yuv420p", _encode_simplejpeg
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise _Ended("showing this stream needs a JPEG encoder: pip install simplejpeg") from None
    return "pillow", "rgb24", _encode_pillow


def _encode_simplejpeg(frame: VideoFrame, quality: int) -> bytes:
    import numpy as np
    import simplejpeg

    # Views of the frame's planes, without their row padding; no copy.
    planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes]
    return simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality)


def _encode_pillow(frame: VideoFrame, quality: int) -> bytes:
    from PIL import Image

    plane = frame.planes[0]
    # frombuffer with the row stride: no copy (VideoFrame.to_image() copies row by row, ~2 ms).
    image = Image.frombuffer("RGB", (plane.width, plane.height), plane, "raw", "RGB", plane.line_size, 1)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _seconds(packet: Packet) -> float | None:
    return float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None


def fit_width(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The size a frame is shown at: scaled down to max_width if wider, aspect kept, even (for 4:2:0)."""
    if width <= max_width:
        return width, height
    new_width = max_width - max_width % 2
    return new_width, max(2, round(height * new_width / width / 2) * 2)


def jpeg_info(data: bytes) -> tuple[int, int, bool] | None:
    """(width, height, has Huffman tables) from a JPEG file's headers; None if it is not a JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    size, huffman, i = None, False, 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == _SOS:
            break
        if marker == _DHT:
            huffman = True
        elif marker in _SOF_MARKERS and i + 9 <= len(data):
            size = (int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big"))
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return (*size, huffman) if size and all(size) else None


def with_standard_huffman_tables(jpeg: bytes) -> bytes:
    """The JPEG with the standard Huffman tables inserted before its start of scan (it must have none)."""
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF and jpeg[i + 1] != _SOS:
        i += 1 if jpeg[i + 1] == 0xFF else 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    segment = b"\xff\xc4" + (2 + len(_STANDARD_HUFFMAN_TABLES)).to_bytes(2, "big") + _STANDARD_HUFFMAN_TABLES
    return jpeg[:i] + segment + jpeg[i:]


def public_url(url: str) -> str:
    """The URL as shown in the notebook: without its password (camera URLs often carry one)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
