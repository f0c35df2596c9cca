"""MJPEG over HTTP, byte for byte as MaixPy3's `maix.mjpg` serves it (port 18811 on boards).

Wire format (MaixPy3 `maix/mjpg.py`, `request_headers()` and `serve_image()`, on
http.server): to a GET of any path, an HTTP/1.0 200 response with the headers
Server and Date (http.server's), then `RESPONSE_HEADERS`, among them

    Content-Type: multipart/x-mixed-replace;boundary=--boundarydonotcross

then, per frame,

    --boundarydonotcross\\r\\n
    X-Timestamp: 1700000000.123456\\r\\n
    Content-Length: 12345\\r\\n
    Content-Type: image/jpeg\\r\\n
    \\r\\n
    <JPEG bytes>\\r\\n

The part line is the header's boundary value itself (already starting with "--"),
not "--" + value as RFC 2046 would have it; readers written for MaixPy3 compare the
line with the bare value, so it is kept. The bytes are MaixPy3's; only their timing
differs: MaixPy3 writes the CRLF and the next boundary line when the *next* frame
comes, this server right after each JPEG, so readers that find the end of a part by
the next boundary (browsers) show a frame when it arrives rather than one frame late.
X-Timestamp is the time the frame was stored (MaixPy3: when it was sent), which says
more about latency.

Frames go through a one-slot `FrameHolder`: the newest JPEG replaces the previous
one, and each client is sent the newest frame whenever it differs from the last one
it was sent. A slow client therefore skips frames instead of queueing them, and
neither slows the producer nor the other clients.

The server is written on socketserver, not http.server: importing http.server (and
with it email, http.client...) would add 3 MB to every device's memory and 25 ms to
its start, to parse one request line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import sys
import threading
import time

log = logging.getLogger("xrpyc-device.mjpeg")

DEFAULT_PORT = 18811
BOUNDARY = "--boundarydonotcross"

# MaixPy3's response headers, in its order (maix/mjpg.py, request_headers()).
RESPONSE_HEADERS = (
    ("Cache-Control", "no-store, no-cache, must-revalidate, pre-check=0, post-check=0, max-age=0"),
    ("Connection", "close"),
    ("Content-Type", "multipart/x-mixed-replace;boundary=" + BOUNDARY),
    ("Expires", "Mon, 1 Jan 2030 00:00:00 GMT"),
    ("Pragma", "no-cache"),
    ("Access-Control-Allow-Origin", "*"),
)

_PART_END = b"\r\n" + BOUNDARY.encode("ascii") + b"\r\n"
# http.server's Server header, which MaixPy3 sends.
_SERVER = "BaseHTTP/0.6 Python/" + sys.version.split()[0]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MAX_LINE = 65537
_MAX_HEADERS = 100


class Frame:
    """One stored JPEG: its sequence number, bytes, and the time.time() it was stored."""

    __slots__ = ("jpeg", "number", "timestamp")

    def __init__(self, number: int, jpeg: bytes, timestamp: float) -> None:
        self.number = number
        self.jpeg = jpeg
        self.timestamp = timestamp


class FrameHolder:
    """A one-slot frame holder: the newest JPEG wins.

    Producers call `store()`; each consumer remembers the number of the last frame
    it got and waits in `wait_newer()` for a different one.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._frame: Frame | None = None
        self._count = 0
        # Bumped by wake(): waiters return early so their owners can check for shutdown.
        self._wakes = 0

    def store(self, jpeg: bytes | bytearray | memoryview) -> None:
        """Make `jpeg` (one complete JPEG file) the current frame."""
        # A copy: the caller may reuse a bytearray buffer for its next frame.
        data = bytes(jpeg)
        with self._changed:
            self._count += 1
            self._frame = Frame(self._count, data, time.time())
            self._changed.notify_all()

    def latest(self) -> Frame | None:
        """The current frame, or None."""
        with self._changed:
            return self._frame

    def wait_newer(self, last: int, timeout: float) -> Frame | None:
        """The current frame once its number differs from `last`; None after `timeout` seconds or `wake()`."""
        with self._changed:
            wakes = self._wakes
            self._changed.wait_for(
                lambda: self._wakes != wakes or (self._frame is not None and self._frame.number != last), timeout
            )
            if self._wakes != wakes or self._frame is None or self._frame.number == last:
                return None
            return self._frame

    def wake(self) -> None:
        """Make every current `wait_newer()` return None now."""
        with self._changed:
            self._wakes += 1
            self._changed.notify_all()


default_holder = FrameHolder()
# The port of the MJPEG server this process runs for default_holder (what
# display.show() feeds): the kernel's agent reads it to find the live view.
serving_port: int | None = None
"""The holder that `display.show()` and the `xrpyc-device` camera feed by default."""


class _TCPServer(socketserver.ThreadingTCPServer):
    """One thread per client; the `MjpegServer` that owns it ends them itself on stop()."""

    daemon_threads = True
    allow_reuse_address = True
    # stop() shuts client sockets down and joins their threads with a timeout;
    # server_close() would join them without one.
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: MjpegServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _StreamHandler)


class _StreamHandler(socketserver.StreamRequestHandler):
    """Streams the holder's frames to one client, for a GET of any path (as MaixPy3 does)."""

    server: _TCPServer

    def setup(self) -> None:
        super().setup()
        # Each frame is one write; without NODELAY its tail could wait for the
        # client's delayed ACK (tens of ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._register(self.connection)

    def finish(self) -> None:
        self.server.owner._unregister(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        owner = self.server.owner
        # A client that sends no request, or takes no bytes, for this long is gone
        # (or stalled): free its thread.
        self.connection.settimeout(owner.send_timeout)
        try:
            method = self._read_request()
            if method is None:
                return
            if method != "GET":
                self.wfile.write(b"HTTP/1.0 501 Not Implemented\r\nConnection: close\r\n\r\n")
                return
            log.debug("client %s: streaming", self.client_address)
            self.wfile.write(_response_head())
            last = 0  # frame numbers start at 1: a new client gets the current frame at once
            while not owner.stopping.is_set():
                # The timeout only bounds how late a stop is noticed; stop() also wakes us.
                frame = owner.holder.wait_newer(last, timeout=1.0)
                if frame is None:
                    continue
                last = frame.number
                head = (
                    f"X-Timestamp: {frame.timestamp}\r\nContent-Length: {len(frame.jpeg)}\r\n"
                    "Content-Type: image/jpeg\r\n\r\n"
                ).encode("ascii")
                # One write per frame: the 0.1 ms copy beats 3 syscalls per frame.
                self.wfile.write(b"".join((head, frame.jpeg, _PART_END)))
        except OSError as error:  # the client left, stalled past send_timeout, or stop() cut it
            log.debug("client %s: %s", self.client_address, error)

    def _read_request(self) -> str | None:
        """Read the request line and headers; the method, or None for no or a malformed request."""
        words = self.rfile.readline(_MAX_LINE).split()
        for _ in range(_MAX_HEADERS):
            # Read to the blank line: closing with unread request bytes makes the
            # kernel reset the connection, which can cost the client our response.
            if self.rfile.readline(_MAX_LINE) in (b"\r\n", b"\n", b""):
                break
        return words[0].decode("latin-1") if len(words) in (2, 3) else None


def _response_head() -> bytes:
    """The status line and headers as MaixPy3 sends them (through http.server), then the first part line."""
    now = time.gmtime()
    # As email.utils.formatdate(usegmt=True), which http.server uses; names not from
    # strftime, which would follow the locale.
    date = f"{_DAYS[now.tm_wday]}, {now.tm_mday:02d} {_MONTHS[now.tm_mon - 1]} {now.tm_year:04d} " + time.strftime(
        "%H:%M:%S GMT", now
    )
    lines = ["HTTP/1.0 200 OK", "Server: " + _SERVER, "Date: " + date]
    lines += [f"{name}: {value}" for name, value in RESPONSE_HEADERS]
    return "\r\n".join([*lines, "", BOUNDARY, ""]).encode("latin-1")


class MjpegServer:
    """An MJPEG-over-HTTP server streaming one `FrameHolder` to any number of clients."""

    def __init__(self, holder: FrameHolder | None = None, *, send_timeout: float = 10.0) -> None:
        self.holder = holder if holder is not None else default_holder
        self.send_timeout = send_timeout
        self.stopping = threading.Event()
        self._listener: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._clients_lock = threading.Lock()

    def start(self, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> tuple[threading.Thread, int]:
        """Listen on `host`:`port` (0: a free port) and serve in a daemon thread.

        Returns the thread and the port actually bound; raises OSError when it cannot bind.
        """
        if self._listener is not None:
            raise RuntimeError("MjpegServer already started")
        self.stopping.clear()
        self._listener = _TCPServer((host, port), self)
        actual_port = self._listener.server_address[1]
        self._thread = threading.Thread(
            target=self._listener.serve_forever, kwargs={"poll_interval": 0.2}, name="xrpyc-mjpeg", daemon=True
        )
        self._thread.start()
        if self.holder is default_holder:
            global serving_port
            serving_port = actual_port
        return self._thread, actual_port

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, disconnect every client, and wait (up to `timeout` s) for their threads."""
        listener, thread = self._listener, self._thread
        if listener is None or thread is None:
            return
        if self.holder is default_holder:
            global serving_port
            serving_port = None
        self.stopping.set()
        self.holder.wake()
        listener.shutdown()
        listener.server_close()
        thread.join(timeout)
        with self._clients_lock:
            clients = list(self._clients.items())
        for connection, _ in clients:
            # Unblocks a handler stuck writing to a client that does not read.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, client_thread in clients:
            client_thread.join(max(0.0, deadline - time.monotonic()))
        self._listener = self._thread = None

    def _register(self, connection: socket.socket) -> None:
        with self._clients_lock:
            self._clients[connection] = threading.current_thread()

    def _unregister(self, connection: socket.socket) -> None:
        with self._clients_lock:
            self._clients.pop(connection, None)
