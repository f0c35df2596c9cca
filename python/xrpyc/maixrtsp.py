"""A client for the live view of MaixPy3 boards that run its legacy video server, maix.utils.rtsps.

MaixPy3 0.3.4 to 0.4.3 ship `maix/utils/rtsps.py`, a home-made RTSP: no
DESCRIBE, no SDP (so PyAV cannot open it), one request per TCP read, and
answers without a closing blank line ("RTSP/1.0 200 OK", "CSeq: n",
"Session: 000001"). After SETUP (with `Transport: RTP/UDP;client_port=N`) and
PLAY, each frame leaves as ONE RTP packet (12-byte header, payload type 26)
whose payload is a whole JPEG file, by UDP to the client's port. rtsps cuts
packets into 128 KiB chunks, but a UDP datagram holds at most 65,507 bytes:
sendto() fails for anything larger and rtsps drops that frame silently, so
every frame that arrives is exactly one datagram, and one that is not a whole
JPEG is dropped, never patched together.

Its quirks shape this client (measured against 0.3.4's own code):
- It serves one viewer at a time; a second one's SETUP waits unanswered until
  the first leaves, so SETUP has a deadline and says why it may have failed.
- It sends until TEARDOWN: a viewer gone without it is streamed to forever,
  so close() always sends one.
- Its 16-bit RTP sequence overflows after 65,536 frames (half an hour at its
  40 fps) and the sender stops for good: a stream silent for half of `timeout`
  gets a new session once before read() gives up.

The board is not trusted: datagrams from other hosts than the board, or that
are not one well-formed RTP/JPEG packet, are ignored; nothing it sends is
buffered beyond one datagram or one 4 KiB answer.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
import time
from urllib.parse import urlsplit

SCHEME = "maix-rtsp"
DEFAULT_PORT = 18811  # rtsps.start()'s default
DEFAULT_SOURCE = "/dev/display"
RTP_HEADER = 12
JPEG_PAYLOAD_TYPE = 26
DATAGRAM = 65536  # the largest UDP payload, whatever the address family
ANSWER_LIMIT = 4096  # rtsps' answers are ~45 bytes
RECEIVE_BUFFER = 1 << 20  # a few frames of slack while the reader is busy
# What rtsps accepts as a source (its regex takes `rtsp://(\S+)`): printable ASCII, no spaces.
SOURCE_PATTERN = re.compile(r"/[\x21-\x7e]{0,255}")
ANSWER_PATTERN = re.compile(rb"RTSP/1\.0 200 OK\r\nCSeq: (\d{1,9})\r\nSession: (\d{1,16})\r\n")


class LegacyRtspSource:
    """Complete JPEG frames from a `maix-rtsp://host:port/dev/display` view, newest first."""

    def __init__(self, url: str, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.url = url
        self.timeout = float(timeout)
        self._host, self._port, self._source = parse_url(url)
        self._lock = threading.Lock()  # one RTSP exchange at a time
        self._reader_done = threading.Condition(self._lock)
        self._reading = False
        self._closed = False
        self._tcp: socket.socket | None = None
        self._udp: socket.socket | None = None
        self._board = ""  # the board's address, from the RTSP connection
        self._session = ""
        self._cseq = 0
        self._last_seq: int | None = None
        self._wake_read, self._wake_write = socket.socketpair()
        # Figures for a readout: frames returned, and datagrams dropped (bad, stale or foreign).
        self.frames = 0
        self.dropped = 0
        try:
            self._start_session()
        except BaseException:
            self._release()
            raise

    def read(self) -> bytes | None:
        """The next JPEG (the newest when several wait), None once closed or the board's server is gone.

        TimeoutError after `timeout` seconds without a frame, a new session
        having been tried halfway.
        """
        with self._lock:
            if self._closed:
                return None
            self._reading = True
        try:
            return self._read()
        finally:
            with self._lock:
                self._reading = False
                self._reader_done.notify_all()

    def close(self) -> None:
        """TEARDOWN and release the UDP port; wakes a blocked read(). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self._wake_write.send(b"x")
            # The reader uses the sockets until it sees the wake-up: let it go first.
            self._reader_done.wait_for(lambda: not self._reading, timeout=self.timeout)
            self._end_session()
            self._release()

    def __enter__(self) -> LegacyRtspSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading

    def _read(self) -> bytes | None:
        start = time.monotonic()
        restarted = False
        while True:
            now = time.monotonic()
            if not restarted and now - start >= self.timeout / 2:
                # Silence while the board answers: rtsps' sender has stopped (its sequence
                # overflowed, or it lost our session): a new session restarts it.
                restarted = True
                with self._lock:
                    if self._closed:
                        return None
                    if not self._restart_session():
                        return None
                continue
            if now - start >= self.timeout:
                raise TimeoutError(f"{self.url}: no frame for {self.timeout:g} s (a new session did not help)")
            limit = (self.timeout / 2 if not restarted else self.timeout) - (now - start)
            assert self._udp is not None and self._tcp is not None
            udp, tcp = self._udp, self._tcp
            ready, _, _ = select.select([udp, tcp, self._wake_read], [], [], max(0.0, limit))
            if self._wake_read in ready:
                return None
            if tcp in ready and not self._tcp_alive(tcp):
                return None
            if udp in ready:
                frame = self._newest_frame(udp)
                if frame is not None:
                    self.frames += 1
                    return frame

    def _tcp_alive(self, tcp: socket.socket) -> bool:
        """rtsps only answers requests: data now is junk (dropped), EOF means its server is gone."""
        try:
            return bool(tcp.recv(ANSWER_LIMIT))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _newest_frame(self, udp: socket.socket) -> bytes | None:
        """Every datagram waiting, checked; the newest good frame among them."""
        newest = None
        while True:
            try:
                packet, sender = udp.recvfrom(DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return newest
            frame = self._frame(packet, sender)
            if frame is None:
                self.dropped += 1
            else:
                if newest is not None:
                    self.dropped += 1
                newest = frame

    def _frame(self, packet: bytes, sender: tuple) -> bytes | None:
        """The JPEG in `packet`, or None when it is foreign, malformed, truncated or older than the last."""
        if sender[0] != self._board or len(packet) < RTP_HEADER + 4:
            return None
        # Version 2, no padding, extension or CSRC (rtsps never sets them); payload type 26.
        if packet[0] != 0x80 or packet[1] & 0x7F != JPEG_PAYLOAD_TYPE:
            return None
        payload = packet[RTP_HEADER:]
        if not (payload.startswith(b"\xff\xd8") and payload.endswith(b"\xff\xd9")):
            return None  # not a whole JPEG: truncated on the way, or not one
        seq = packet[2] << 8 | packet[3]
        if self._last_seq is not None and not 0 < (seq - self._last_seq) & 0xFFFF < 0x8000:
            return None  # a late duplicate or reordered datagram: never go back in time
        self._last_seq = seq
        return payload

    # -- the RTSP dialogue (callers hold the lock, or run in __init__)

    def _start_session(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            tcp = socket.create_connection((self._host, self._port), timeout=self.timeout)
        except socket.timeout:
            raise TimeoutError(f"{self.url}: no connection within {self.timeout:g} s") from None
        self._tcp = tcp
        peer, local = tcp.getpeername(), tcp.getsockname()
        self._board = peer[0]
        udp = socket.socket(tcp.family, socket.SOCK_DGRAM)
        self._udp = udp
        with contextlib.suppress(OSError):
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        # Only on the address the board reaches us at: nothing else may send frames.
        udp.bind((local[0], 0))
        udp.setblocking(False)
        self._last_seq = None
        self._session = self._request(
            "SETUP", f"Transport: RTP/UDP;client_port={udp.getsockname()[1]}", deadline, setup=True
        )
        self._request("PLAY", f"Session: {self._session}", deadline)
        tcp.setblocking(False)

    def _request(self, method: str, header: str, deadline: float, setup: bool = False) -> str:
        """Send one request, return the Session of rtsps' answer; raises with a user message."""
        assert self._tcp is not None
        tcp = self._tcp
        self._cseq += 1
        tcp.settimeout(max(0.01, deadline - time.monotonic()))
        tcp.sendall(f"{method} rtsp://{self._source} RTSP/1.0\r\nCSeq: {self._cseq}\r\n{header}\r\n".encode())
        answer = b""
        while True:
            match = ANSWER_PATTERN.match(answer)
            if match:
                if int(match.group(1)) != self._cseq:
                    raise ValueError(f"{self.url}: the answer to {method} is for another request")
                return match.group(2).decode()
            if len(answer) > 200 or (answer and not _could_become_answer(answer)):
                raise ValueError(f"{self.url} does not answer as MaixPy3's legacy video server (maix.utils.rtsps)")
            tcp.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = tcp.recv(ANSWER_LIMIT)
            except socket.timeout:
                busy = " rtsps serves one viewer at a time: is another one connected?" if setup else ""
                raise TimeoutError(f"{self.url}: no answer to {method} within {self.timeout:g} s.{busy}") from None
            if not chunk:
                raise ConnectionError(f"{self.url} closed the connection after {method}")
            answer += chunk

    def _restart_session(self) -> bool:
        """A new session after a stall; False when the board's server is gone."""
        self._end_session()
        self._close_sockets()
        try:
            self._start_session()
        except (ConnectionRefusedError, ConnectionError):
            return False
        return True

    def _end_session(self) -> None:
        """TEARDOWN, best effort: without it rtsps streams to our old port forever."""
        if self._tcp is None or not self._session:
            return
        with contextlib.suppress(OSError, ValueError):
            self._request("TEARDOWN", f"Session: {self._session}", time.monotonic() + min(self.timeout, 2.0))
        self._session = ""

    def _close_sockets(self) -> None:
        for sock in (self._tcp, self._udp):
            if sock is not None:
                sock.close()
        self._tcp = self._udp = None

    def _release(self) -> None:
        self._close_sockets()
        self._wake_read.close()
        self._wake_write.close()


def _could_become_answer(data: bytes) -> bool:
    """False as soon as `data` cannot be the start of an rtsps answer (an HTTP server, say)."""
    prefix = b"RTSP/1.0 200 OK\r\nCSeq: "
    return data.startswith(prefix[: len(data)]) if len(data) < len(prefix) else data.startswith(prefix)


def parse_url(url: str) -> tuple[str, int, str]:
    """(host, port, source) of a `maix-rtsp://host[:port]/source` URL; ValueError with a user message."""
    if not isinstance(url, str):
        raise ValueError("the URL must be a string")
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname:
        raise ValueError(f"not a {SCHEME}://host:port/source URL: {url!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    source = parts.path or DEFAULT_SOURCE
    if not SOURCE_PATTERN.fullmatch(source) or parts.query or parts.fragment:
        raise ValueError(f"bad source in {url!r}: a path such as {DEFAULT_SOURCE}, printable and without spaces")
    return parts.hostname, port, source
