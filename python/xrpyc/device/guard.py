"""Who may use an xrpyc-device: TLS, token authentication, connection slots, idle timeouts.

A connection passes two stages. The handshake (TLS, then the token exchange,
or with no token at all the peer's first bytes) must end within
HANDSHAKE_TIMEOUT; only then does it take one of the --max-connections
serving slots. So silent or slow peers never hold a slot, and a peer that keeps
failing the token exchange is turned away for longer and longer. Then the
connection goes to the worker process of its session (workers.py), which
serves it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable

from rpyc.utils.authenticators import AuthenticationError
from rpyc.utils.server import ThreadedServer

from ..handshake import HandshakeError, busy, challenge, deny, welcome
from .workers import Workers

log = logging.getLogger("xrpyc-device")
HANDSHAKE_TIMEOUT = 5.0  # s a new connection gets to finish TLS and the token exchange, or to speak
MAX_HANDSHAKES = 64  # connections in their handshake at once (each is a thread)
FREE_FAILURES = 5  # wrong tokens a peer may send before it has to wait (typos)
MAX_PENALTY = 60.0  # s, the longest a peer is turned away after wrong tokens
FAILURE_MEMORY = 600.0  # s after the last wrong token from a peer, its count starts over
WATCH_INTERVAL = 0.5  # s between checks for serving connections whose peer has gone


class Penalties:
    """Wrong tokens by peer address: after FREE_FAILURES, each costs twice the wait of the one before."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def failed(self, host: str) -> int:
        with self._lock:
            count, last = self._failures.get(host, (0, 0.0))
            now = time.monotonic()
            count = 1 if now - last > FAILURE_MEMORY else count + 1
            self._failures[host] = (count, now)
            if len(self._failures) > 4096:  # many peers: forget the oldest
                del self._failures[min(self._failures, key=lambda peer: self._failures[peer][1])]
            return count

    def wait(self, host: str) -> float:
        """Seconds `host` must still wait before it may try a token again (0: it may now)."""
        with self._lock:
            count, last = self._failures.get(host, (0, 0.0))
        if count < FREE_FAILURES:
            return 0.0
        penalty = min(2.0 ** (count - FREE_FAILURES), MAX_PENALTY)
        return max(0.0, last + penalty - time.monotonic())


class Guard:
    """An rpyc authenticator: TLS first (if configured), then the token challenge.

    Without a token, a peer must still say something within HANDSHAKE_TIMEOUT
    (rpyc clients speak at once). `admit` is asked for a serving slot once the
    peer has proven itself, before it is told so; False turns it away as busy.
    Returns the socket to serve (TLS-wrapped or not) and the peer's session
    (None without a token, or from a kernel that sends none).
    """

    def __init__(self, token: str | None, tls: ssl.SSLContext | None) -> None:
        self._token = token
        self._tls = tls
        self.penalties = Penalties()

    def __call__(
        self, sock: socket.socket, admit: Callable[[socket.socket], bool]
    ) -> tuple[socket.socket, str | None]:
        host, port = sock.getpeername()[:2]
        peer = f"{host}:{port}"
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        wait = self.penalties.wait(host) if self._token is not None else 0.0
        if wait > 0:
            _turn_away(sock, f"too many wrong tokens from {host}: try again in {wait:.0f} s")
            raise AuthenticationError("penalised")
        session = None
        try:
            if self._tls is not None:
                sock.settimeout(HANDSHAKE_TIMEOUT)
                sock = self._tls.wrap_socket(sock, server_side=True)
            if self._token is not None:
                try:
                    proven = challenge(sock, self._token, deadline)
                except HandshakeError as error:  # not a guess: no failure to count
                    log.info("refused %s: %s", peer, error)
                    deny(sock)
                    raise AuthenticationError(str(error)) from None
                if proven is None:
                    failures = self.penalties.failed(host)
                    log.warning("refused %s: wrong token (%d in a row)", peer, failures)  # never the token itself
                    deny(sock)
                    raise AuthenticationError("wrong token")
                kernel_nonce, session = proven
                if not admit(sock):
                    raise AuthenticationError("busy")
                welcome(sock, self._token, kernel_nonce)
            elif not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                log.info("closed %s: silent for %.0f s", peer, HANDSHAKE_TIMEOUT)
                raise AuthenticationError("silent")
            elif not admit(sock):
                raise AuthenticationError("busy")
        except (OSError, ssl.SSLError) as error:
            log.warning("refused %s: %s", peer, error)
            raise AuthenticationError(str(error)) from None
        sock.settimeout(None)
        return sock, session


def _turn_away(sock: socket.socket, reason: str) -> None:
    try:
        busy(sock, reason)
    except OSError:
        pass


class DeviceServer(ThreadedServer):
    """rpyc's threaded server with bounded handshakes, a cap on serving connections, and workers to serve them.

    This process (the dispatcher) only accepts, authenticates and counts
    connections; each kernel's are served by a worker process of its own
    (workers.py), so that a kernel cannot reach another's namespace. A
    connection whose peer has gone gives its slot back at once, even while a
    cell of its kernel is still blocked in its worker (time.sleep, a socket
    read): its kernel has let go of it.
    """

    def __init__(self, *args: Any, guard: Guard, max_connections: int, workers: Workers, **kwargs: Any) -> None:
        super().__init__(*args, authenticator=guard, **kwargs)
        self.max_connections = max_connections
        self.workers = workers
        self._lock = threading.Lock()
        self._handshakes = 0
        # slot id -> the dispatcher's socket of a connection a worker serves. A plain
        # socket is a copy of the worker's (the same connection), watched for the peer
        # leaving; a TLS one is also used by its relay thread (workers.py).
        self._serving: dict[int, socket.socket] = {}
        self._next_slot = 0
        threading.Thread(target=self._watch, name="xrpyc-slots", daemon=True).start()

    def _authenticate_and_serve_client(self, sock: socket.socket) -> None:
        handed = False
        try:
            # Kernels exchange small messages back and forth: with Nagle's algorithm on this end, a reply
            # can wait for the kernel's delayed ACK (40 ms). A kernel with a token counts on it (session._connect).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            handed = self._admit_and_hand_over(sock)
        finally:
            if not handed:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.clients.discard(sock)

    def _admit_and_hand_over(self, sock: socket.socket) -> bool:
        """True once a worker serves `sock` (then the slot's socket is the dispatcher's copy)."""
        with self._lock:
            crowded = self._handshakes >= MAX_HANDSHAKES
            self._handshakes += not crowded
        if crowded:
            _turn_away(sock, f"{MAX_HANDSHAKES} connections are being set up at once; try again in a few seconds")
            return False
        slot: list[int] = []
        try:
            if not self._free_slots():
                self._refuse_full(sock)
                return False
            try:
                served, session = self.authenticator(sock, lambda peer: self._take_slot(peer, slot))
            except AuthenticationError:
                return False
        finally:
            with self._lock:
                self._handshakes -= 1
        try:
            self.workers.hand(served, session, slot[0])
        except OSError as error:
            log.error("could not hand a connection to a worker: %s", error)
            self.release(slot[0])
            served.close()
        return True

    def _free_slots(self) -> int:
        with self._lock:
            free = self.max_connections - len(self._serving)
        if free > 0:
            return free
        # Full: a kernel reconnecting after an abandoned cell may come before the
        # watchdog has seen its old connection go. Look now.
        self._sweep()
        with self._lock:
            return self.max_connections - len(self._serving)

    def _take_slot(self, sock: socket.socket, slot: list[int]) -> bool:
        """A serving slot for `sock` (its id appended to `slot`), or False with the peer told why not."""
        if len(self._serving) >= self.max_connections:
            self._sweep()
        with self._lock:
            full = len(self._serving) >= self.max_connections
            if not full:
                self._next_slot += 1
                self._serving[self._next_slot] = sock
                slot.append(self._next_slot)
        if full:
            self._refuse_full(sock)
        return not full

    def release(self, slot: int) -> None:
        """Free `slot` and end its connection (the peer, or its worker, has gone)."""
        with self._lock:
            sock = self._serving.pop(slot, None)
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        if not isinstance(sock, ssl.SSLSocket):  # a TLS socket is its relay's to close
            sock.close()

    def _refuse_full(self, sock: socket.socket) -> None:
        log.warning("refused %s: %d connections already", sock.getpeername()[:2], self.max_connections)
        _turn_away(
            sock,
            f"the device already serves {self.max_connections} connections (each kernel uses two): shut down "
            "kernels you no longer use, or restart xrpyc-device with a higher --max-connections",
        )

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            self._sweep()

    def _sweep(self) -> None:
        """Free the slots of connections whose peer has gone (or that their worker ended)."""
        gone = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)
        with self._lock:
            serving = list(self._serving.items())
        poller = select.poll()
        fds: dict[int, int] = {}
        for slot, sock in serving:
            try:
                fd = sock.fileno()
            except OSError:
                continue
            if fd >= 0:
                fds[fd] = slot
                poller.register(fd, gone)
        for fd, events in poller.poll(0):
            if events & gone:
                log.info("a connection has ended; its slot is free")
                self.release(fds[fd])
