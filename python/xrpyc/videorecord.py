"""Recording a live stream to a file on the kernel's machine, without re-encoding (PyAV remux).

Packets read by PyAV (H.264, H.265, RFC 2435 JPEG) are written as they came, from the first keyframe on;
JPEG files from a JPEG source become an MJPEG video track, timed by when each arrived. The container is
chosen by the file's extension. The file is created when recording is asked for (refusing an existing
one unless overwriting is asked), filled by the video's reader thread, and closed (trailer written) when
the reader ends: stop, interrupt, end of stream, kernel shutdown. PyAV is imported only by a recording.
"""

from __future__ import annotations

import contextlib
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

# Extension → FFmpeg muxer. Players open MJPEG in all of them (browsers only H.264/H.265 in MP4).
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
JPEG_TIME_BASE = Fraction(1, 1000)  # JPEG frames are timed by their arrival, in ms


class Recorder:
    """One file being recorded; used by the reader thread, read (`status`) by the display thread."""

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Creates the file now; ValueError or OSError with a message for users if it cannot be."""
        self.path = Path(path)
        self.name = self.path.name
        self._format = CONTAINERS.get(self.path.suffix.lower())
        if self._format is None:
            raise ValueError(f"record: {self.name!r} must end with one of {', '.join(CONTAINERS)}")
        try:
            self._file = open(self.path, "wb" if overwrite else "xb")  # closed in close()
        except FileExistsError:
            raise FileExistsError(f"{self.path} exists: pass overwrite=True to replace it") from None
        self._output: Any = None
        self._stream: Any = None
        self._first: int | None = None  # first timestamp written, in the input's time base
        self._last_dts = -1
        self._started: float | None = None  # time.monotonic() of the first JPEG
        self.frames = 0
        self.seconds = 0.0
        self.error: str | None = None
        self.closed = False

    def add_packet(self, packet: Any, stream: Any) -> None:
        """A PyAV packet of `stream` (the input's), written as it is."""
        if self.error or self.closed:
            return
        try:
            if self._output is None:
                if not packet.is_keyframe:  # a file must start with a picture players can decode
                    return
                self._open()
                self._stream = self._output.add_stream_from_template(stream)
            timestamp = packet.dts if packet.dts is not None else packet.pts
            if timestamp is None:
                return
            if self._first is None:
                self._first = timestamp
            dts = max(timestamp - self._first, self._last_dts + 1)  # strictly increasing, as muxers want
            pts = dts if packet.pts is None else max(packet.pts - self._first, dts)
            self._write(packet, pts, dts, float((dts) * packet.time_base))
        except Exception as error:  # a recording that fails must not end the video
            self._fail(error)

    def add_jpeg(self, jpeg: bytes) -> None:
        """A complete JPEG file, timed by now."""
        if self.error or self.closed:
            return
        import av

        from .video import jpeg_info

        try:
            now = time.monotonic()
            if self._output is None:
                info = jpeg_info(jpeg)
                if info is None:
                    return
                self._open()
                self._stream = self._output.add_stream("mjpeg")
                self._stream.width, self._stream.height = info[0], info[1]
                self._stream.pix_fmt = "yuvj420p"
                self._stream.time_base = JPEG_TIME_BASE
                self._started = now
            assert self._started is not None
            dts = max(round((now - self._started) / JPEG_TIME_BASE), self._last_dts + 1)
            packet = av.Packet(jpeg)
            packet.time_base = JPEG_TIME_BASE
            self._write(packet, dts, dts, float(dts * JPEG_TIME_BASE))
        except Exception as error:
            self._fail(error)

    def status(self) -> str:
        """E.g. "recording run1.mp4: 1.2 MiB, 12.3 s"; after close(), "recorded …"."""
        if self.error:
            return f"recording {self.name} failed: {self.error}"
        with contextlib.suppress(OSError):
            size = self.path.stat().st_size / 2**20
            return f"{'recorded' if self.closed else 'recording'} {self.name}: {size:.1f} MiB, {self.seconds:.1f} s"
        return f"recording {self.name}"

    def close(self) -> None:
        """Writes the trailer and closes the file; a file that got no frame is removed. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._output is not None:
                self._output.close()
        except Exception as error:
            self.error = self.error or f"{type(error).__name__}: {error}"
        finally:
            self._file.close()
        if self._output is None and not self.error:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.error = "no frame came"

    def _open(self) -> None:
        import av

        self._output = av.open(self._file, "w", format=self._format)

    def _write(self, packet: Any, pts: int, dts: int, seconds: float) -> None:
        packet.stream = self._stream
        packet.pts, packet.dts = pts, dts
        self._output.mux(packet)
        self._last_dts = dts
        self.frames += 1
        self.seconds = seconds

    def _fail(self, error: Exception) -> None:
        self.error = f"{type(error).__name__}: {error}"
