"""Video sources that deliver complete JPEG files, read with the standard library alone.

A JPEG stream needs no decoder: each JPEG goes to the notebook as it came. Such a source is chosen by URL
scheme (`jpeg_source`): `http://` and `https://` are MJPEG over HTTP (`MjpegHttpSource`, here), and
`maix-rtsp://` is MaixPy3's legacy home-made RTSP (`xrpyc.maixrtsp.LegacyRtspSource`). Any other URL is
for PyAV (xrpyc.video), which is imported only then.

Timeouts (one value, `timeout`):
- the TCP connection must be made within min(timeout, CONNECT_TIMEOUT): a board that is off or unreachable
  is reported at once, even by the live view, whose timeout is a day;
- once connected, silence is waited for up to `timeout`, before the response headers as between frames:
  MaixPy3 0.3.4 sends its HTTP headers only with the first frame, and a device that sends a frame only when
  its picture changes is silent while it shows nothing. A connection that dies meanwhile is noticed by TCP
  keepalive (about KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT s), not by the timeout.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import urllib.parse
from typing import BinaryIO, Protocol

CONNECT_TIMEOUT = 10.0  # s, at most, to make the TCP connection
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3  # s, s, probes: a dead peer is seen in ~25 s
MAX_PART = 16 * 2**20  # bytes: a larger part is not a video frame; the stream ends with a message
MAX_LINE = 8192  # bytes of one header line, or of one boundary line
MAX_PART_HEADERS = 64  # header lines of one part
MAX_PREAMBLE = 65536  # bytes skipped before a part's boundary line


class JpegSource(Protocol):
    """A stream of complete JPEG files (what MjpegHttpSource and maixrtsp.LegacyRtspSource implement).

    Errors are OSError, TimeoutError or ValueError with a one-line message for users. A source may also
    have a `timestamp` attribute: the sender's time (s since the epoch) of the frame read last, or None;
    xrpyc.video shows it as the frame's stream time.
    """

    def __init__(self, url: str, timeout: float) -> None:
        """Connects (at most `timeout` s)."""

    def read(self) -> bytes | None:
        """The next complete JPEG file, waiting at most `timeout` s of silence (then TimeoutError); None when
        the stream ended or close() was called."""

    def close(self) -> None:
        """Idempotent; unblocks a read() in another thread, which then returns None."""


def jpeg_source(url: str, timeout: float) -> JpegSource | None:
    """The JPEG source for `url`, connected; None if the URL is for PyAV (rtsp:// and anything else)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return MjpegHttpSource(url, timeout)
    if scheme == "maix-rtsp":
        try:
            from .maixrtsp import LegacyRtspSource
        except ImportError:
            raise ValueError("maix-rtsp:// (MaixPy3's legacy RTSP) is not supported by this xrpyc") from None
        return LegacyRtspSource(url, timeout)
    return None


class MjpegHttpSource:
    """MJPEG over HTTP: a multipart/x-mixed-replace response whose parts are JPEG files.

    Parts are read by their Content-Length, or, without one, up to the next boundary line. Boundary lines
    are accepted as RFC 2046 writes them (`--` + boundary) and as MaixPy3 does: its header says
    `boundary=--boundarydonotcross` and its parts start with `--boundarydonotcross`.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        if any(ord(char) < 0x21 or ord(char) == 0x7F for char in target):
            raise ValueError(f"spaces or control characters in the URL's path: {url!r}")
        self.timestamp: float | None = None
        self._timeout = timeout
        self._closed = threading.Event()
        self._started = False
        self._delimiters: frozenset[bytes] = frozenset()
        self._read_delimiter: str | None = None  # the delimiter after the last part, when already read
        port = parts.port or (443 if scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=min(timeout, CONNECT_TIMEOUT))
        if scheme == "https":
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        sock.settimeout(timeout)
        _keep_alive(sock)
        self._sock = sock
        self._stream: BinaryIO = sock.makefile("rb")
        # HTTP/1.0: a server may not answer it with chunked encoding; the stream ends when the connection does.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        request = [f"GET {target} HTTP/1.0", f"Host: {host}:{port}"]
        if parts.username is not None:  # cameras often want basic authentication
            userinfo = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            request.append("Authorization: Basic " + base64.b64encode(userinfo.encode()).decode())
        sock.sendall("\r\n".join([*request, "", ""]).encode("latin-1"))

    def read(self) -> bytes | None:
        if self._closed.is_set():
            return None
        try:
            if not self._started:
                self._start()
                self._started = True
            return self._next_part()
        except TimeoutError:
            if self._closed.is_set():
                return None
            raise TimeoutError(f"no data for {self._timeout:g} s") from None
        except (OSError, ValueError):
            if self._closed.is_set():  # close() from another thread: its socket went away under the read
                return None
            raise

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a read() blocked in another thread
        self._sock.close()

    # -- parsing ---------------------------------------------------------------------------------------

    def _start(self) -> None:
        status = self._stream.readline(MAX_LINE).split(None, 2)
        if len(status) < 2 or not status[0].startswith(b"HTTP/"):
            raise OSError("bad HTTP answer: no HTTP status line")
        if status[1] != b"200":
            reason = status[2].strip().decode("latin-1", "replace") if len(status) > 2 else ""
            raise OSError(f"the server answered {status[1].decode('latin-1', 'replace')} {reason}".rstrip())
        content_type = self._headers().get(b"content-type", b"").decode("latin-1")
        kind, _, params = content_type.partition(";")
        if kind.strip().lower() != "multipart/x-mixed-replace":
            raise ValueError(f"not an MJPEG stream (Content-Type: {content_type or 'none'})")
        boundary = _parameter(params, "boundary")
        if boundary:
            delimiters = {b"--" + boundary}
            if boundary.startswith(b"--"):  # MaixPy3's quirk: the parts start with the boundary itself
                delimiters.add(boundary)
            self._delimiters = frozenset(delimiters)

    def _headers(self) -> dict[bytes, bytes]:
        """The response's header lines up to the blank one, by lower-case name (bounded like a part's)."""
        headers: dict[bytes, bytes] = {}
        for _ in range(MAX_PART_HEADERS):
            line = self._stream.readline(MAX_LINE)
            if not line.strip():
                if not line:
                    raise OSError("the server closed the connection before its headers ended")
                return headers
            if not line.endswith(b"\n"):
                raise ValueError("a header line is too long")
            name, colon, value = line.partition(b":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        raise ValueError(f"more than {MAX_PART_HEADERS} header lines")

    def _delimiter(self, line: bytes) -> str | None:
        """ "part" for a boundary line, "end" for the closing one, else None."""
        line = line.rstrip()
        if line.endswith(b"--") and len(line) > 2 and self._delimiter(line[:-2]):
            return "end"
        if line in self._delimiters if self._delimiters else line.startswith(b"--"):
            return "part"
        return None

    def _next_part(self) -> bytes | None:
        response = self._stream
        delimiter, self._read_delimiter = self._read_delimiter, None
        if delimiter == "end":
            return None
        if delimiter is None:
            skipped = 0
            while True:
                line = response.readline(MAX_LINE)
                if not line:
                    return None
                delimiter = self._delimiter(line)
                if delimiter == "end":
                    return None
                if delimiter:
                    break
                skipped += len(line)
                if skipped > MAX_PREAMBLE:
                    raise ValueError("not an MJPEG stream: no part boundary found")
        length = self._part_headers()
        if length == -1:
            return None
        if length is None:
            return self._read_to_boundary()
        if length > MAX_PART:
            raise ValueError(f"a part of {length} bytes, over {MAX_PART >> 20} MiB: not a video frame")
        data = response.read(length)
        return data if len(data) == length else None

    def _part_headers(self) -> int | None:
        """Reads the part's headers; returns its Content-Length, if given (-1: the stream ended)."""
        response = self._stream
        length, timestamp = None, None
        for _ in range(MAX_PART_HEADERS):
            line = response.readline(MAX_LINE)
            if not line:
                return -1
            if not line.endswith(b"\n"):
                raise ValueError("a part's header line is too long")
            name, colon, value = line.partition(b":")
            if not line.strip():
                self.timestamp = timestamp
                return length
            if not colon:
                continue
            name = name.strip().lower()
            try:
                if name == b"content-length":
                    length = int(value)
                    if length < 0:
                        raise ValueError
                elif name == b"x-timestamp":  # MaixPy3's: time.time() when the frame was sent
                    timestamp = float(value)
            except ValueError:
                raise ValueError(f"a part's {name.decode('latin-1')} header is not a number") from None
        raise ValueError(f"a part with more than {MAX_PART_HEADERS} header lines")

    def _read_to_boundary(self) -> bytes | None:
        """A part without Content-Length: its bytes up to the next boundary line."""
        response = self._stream
        chunks: list[bytes] = []
        size = 0
        while True:
            line = response.readline(MAX_PART + 1 - size)
            if not line:
                return None
            delimiter = self._delimiter(line) if not chunks or chunks[-1].endswith(b"\n") else None
            if delimiter:
                self._read_delimiter = delimiter
                break
            chunks.append(line)
            size += len(line)
            if size > MAX_PART:
                raise ValueError(f"a part over {MAX_PART >> 20} MiB: not a video frame")
        data = b"".join(chunks)
        return data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data


def _parameter(params: str, name: str) -> bytes | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"').encode("latin-1")
    return None


def _keep_alive(sock: socket.socket) -> None:
    """TCP keepalive: a peer that vanished (board unplugged) ends a silent read in ~25 s, not at the timeout."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
