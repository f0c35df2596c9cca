"""Camera sources feeding a `FrameHolder` (and so the MJPEG stream) from a background thread.

Sources:
- `TestPattern`: a synthetic picture (colour bars, a moving ball, a clock with
  milliseconds), so consecutive frames differ and latency can be read off the screen;
- `AVSource`: anything FFmpeg opens through PyAV: a V4L2 device (`/dev/video0`), a
  video file (looped) or a URL. JPEG packets (MJPEG cameras, MJPEG-over-HTTP,
  RTSP JPEG) pass through untouched; other codecs are decoded and encoded to JPEG.
  PyAV is imported only when such a source opens: it is large.

`open_source()` makes one from a command-line spec; `Camera` runs one at a given rate.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from typing import Any, Protocol

from . import mjpeg

log = logging.getLogger("xrpyc-device.camera")

DEFAULT_FPS = 15.0
JPEG_QUALITY = 75  # MaixPy3's rgb2jpg default (ext_modules/_maix/_maix.c)
RETRY_SECONDS = 1.0


class Source(Protocol):
    """A source of JPEG frames."""

    live: bool
    """True when frames come at the source's own pace (a camera, a stream): it must be
    read continuously, and frames beyond the wanted rate are dropped. False when a
    frame is made on demand (test pattern, file): reading is paced instead."""

    fps: float | None
    """The source's own frame rate, if it has one."""

    def read(self) -> bytes | None:
        """The next frame as a JPEG file; None when the source has ended."""
        ...

    def close(self) -> None:
        """Release the device, file or connection; a later read() opens it again."""
        ...


def encode_jpeg(image: Any, quality: int = JPEG_QUALITY) -> bytes:
    """A PIL image as JPEG bytes (modes JPEG cannot hold are converted to RGB)."""
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


class TestPattern:
    """Colour bars, a bouncing ball, a frame counter and a clock (HH:MM:SS.mmm), drawn with Pillow."""

    __test__ = False  # not a pytest test class, whatever its name
    live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = DEFAULT_FPS) -> None:
        from PIL import Image, ImageDraw

        self.width, self.height, self.fps = width, height, fps
        self.count = 0
        self._clock_font = _font(max(12, height // 8))
        self._small_font = _font(max(10, height // 24))
        # Everything that does not move is drawn once.
        self._background = Image.new("RGB", (width, height), (24, 24, 32))
        draw = ImageDraw.Draw(self._background)
        bars = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192)]
        bar_height = height // 4
        for index, colour in enumerate(bars):
            left, right = index * width // len(bars), (index + 1) * width // len(bars)
            draw.rectangle((left, 0, right - 1, bar_height - 1), fill=colour)
        step = max(8, width // 16)
        for x in range(0, width, step):
            draw.line((x, bar_height, x, height), fill=(48, 48, 64))
        for y in range(bar_height, height, step):
            draw.line((0, y, width, y), fill=(48, 48, 64))
        self._ball_radius = max(4, height // 16)
        self._ball_top = bar_height

    def read(self) -> bytes:
        from PIL import ImageDraw

        now = time.time()
        self.count += 1
        image = self._background.copy()
        draw = ImageDraw.Draw(image)
        # The ball's position follows the clock, not the frame count: dropped frames show as jumps.
        radius = self._ball_radius
        x = _bounce(now / 2.0, radius, self.width - radius)
        y = _bounce(now / 2.9, self._ball_top + radius, self.height - radius)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 160, 0), outline=(255, 255, 255))
        clock = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        left, top, right, bottom = draw.textbbox((0, 0), clock, font=self._clock_font)
        x, y = (self.width - (right - left)) // 2 - left, self.height * 5 // 8 - (bottom - top) // 2 - top
        draw.rectangle((x + left - 8, y + top - 8, x + right + 8, y + bottom + 8), fill=(0, 0, 0))
        draw.text((x, y), clock, font=self._clock_font, fill=(255, 255, 255))
        caption = f"xrpyc test pattern  {self.width}x{self.height}  frame {self.count}"
        _, top, _, bottom = draw.textbbox((0, 0), caption, font=self._small_font)
        draw.text((8, self.height - 8 - bottom), caption, font=self._small_font, fill=(200, 200, 200))
        return encode_jpeg(image)

    def close(self) -> None:
        """Nothing to release."""


def _bounce(phase: float, low: float, high: float) -> int:
    """A triangle wave between low and high, one round trip per unit of phase."""
    fraction = phase % 1.0
    fraction = 2 * fraction if fraction < 0.5 else 2 - 2 * fraction
    return int(low + (high - low) * fraction)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 (Debian 12 has 9.4): no size; try a common system font
        try:
            return ImageFont.truetype("DejaVuSans.ttf", size)
        except OSError:  # no such font, or Pillow without FreeType: the small bitmap font
            return ImageFont.load_default()


class AVSource:
    """Frames from FFmpeg through PyAV: a V4L2 device, a video file or a URL.

    `loop`: start a file again at its end (the default for files). A live source
    (device, URL) that ends raises EOFError, so that the `Camera` opens it again.
    """

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        loop: bool | None = None,
    ) -> None:
        self.url = url
        self.format = format
        is_file = format is None and os.path.exists(url)
        self.loop = is_file if loop is None else loop
        self.live = not is_file
        self.fps: float | None = None
        self._container: Any = None
        self._packets: Any = None
        self._stream: Any = None
        self._passthrough = False

    def _open(self) -> None:
        import av

        if self.format == "v4l2":
            # MJPEG from the camera passes through without decoding; fall back to the
            # camera's default format where it has no MJPEG mode.
            attempts = [{"input_format": "mjpeg"}, {}]
        elif self.live:
            # Low latency (DESIGN.md, "Video facts"), but fflags=nobuffer only for RTSP: on
            # MJPEG over HTTP it drops the frame read while probing, and a stream that
            # shows one still picture (display.show) then shows nothing.
            low_delay = {"flags": "low_delay", "probesize": "32", "analyzeduration": "0"}
            if self.url.startswith("rtsp"):
                low_delay.update(fflags="nobuffer", rtsp_transport="tcp")
            attempts = [low_delay]
        else:
            attempts = [{}]
        for index, options in enumerate(attempts):
            try:
                container = av.open(self.url, format=self.format, options=options, timeout=(5.0, 5.0))
                break
            except av.FFmpegError:
                if index == len(attempts) - 1:
                    raise
        try:
            stream = container.streams.video[0]
        except IndexError:
            container.close()
            raise ValueError(f"{self.url} has no video stream") from None
        stream.thread_type = "SLICE"  # AUTO (frame threads) adds frames of delay
        self._container, self._stream = container, stream
        self._packets = container.demux(stream)
        self._passthrough = stream.codec_context.name == "mjpeg"
        if stream.average_rate:
            self.fps = float(stream.average_rate)

    def read(self) -> bytes | None:
        while True:
            if self._container is None:
                self._open()
            packet = next(self._packets, None)
            if packet is None:  # end of the file or stream
                self.close()
                if self.loop:
                    continue
                if self.live:
                    raise EOFError(f"{self.url} ended")
                return None
            if self._passthrough:
                if packet.size:  # size 0: the demuxer's final flush packet
                    return bytes(packet)
                continue
            # Several frames can come out of one packet (or the final flush): keep the newest.
            frames = self._stream.codec_context.decode(packet)
            if frames:
                return encode_jpeg(frames[-1].to_image())

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._packets = self._stream = None


def open_source(spec: str, *, width: int = 640, height: int = 480) -> Source:
    """A source from a spec: `test` (`width` x `height`), `/dev/videoN`, a file path or a URL."""
    if spec == "test":
        return TestPattern(width, height)
    if "://" in spec:
        return AVSource(spec)
    if not os.path.exists(spec):
        raise FileNotFoundError(f"no such file, device or URL: {spec}")
    return AVSource(spec, format="v4l2" if spec.startswith("/dev/video") else None)


class Camera:
    """Runs a source in a background thread, storing its frames in a holder at most `fps` times a second.

    `fps` None: the source's own rate (every frame of a live source; 15 for the test
    pattern; a file's frame rate).
    """

    def __init__(self, source: Source, holder: mjpeg.FrameHolder | None = None, fps: float | None = None) -> None:
        self.source = source
        self.holder = holder if holder is not None else mjpeg.default_holder
        self.fps = fps
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        """Start the feeding thread (a daemon) and return it."""
        if self._thread is not None:
            raise RuntimeError("Camera already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="xrpyc-camera", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 2.0) -> None:
        """Stop feeding; waits up to `timeout` s (a read blocked in a device or network may take longer)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _interval(self) -> float:
        fps = self.fps or self.source.fps or (None if self.source.live else DEFAULT_FPS)
        return 1.0 / fps if fps else 0.0

    def _run(self) -> None:
        source = self.source
        due = time.monotonic()
        try:
            while not self._stopping.is_set():
                if not source.live and self._stopping.wait(max(0.0, due - time.monotonic())):
                    break
                try:
                    jpeg = source.read()
                except Exception as error:  # unplugged camera, network down, bad file: retry
                    log.warning("camera %s: %s", getattr(source, "url", "source"), error)
                    source.close()
                    if self._stopping.wait(RETRY_SECONDS):
                        break
                    due = time.monotonic()
                    continue
                if jpeg is None:
                    log.info("camera source ended")
                    break
                interval = self._interval()  # a file's rate is known only once it is open
                now = time.monotonic()
                # A live frame a little early (jitter) still counts, or 30 fps cut to 15 would give 10.
                if source.live and now < due - interval / 4:
                    continue  # dropped: reading on keeps the device's own queue from lagging
                self.holder.store(jpeg)
                # The next slot one interval on; after a stall, from now on (no burst to catch up).
                due = max(due + interval, now)
        finally:
            source.close()
