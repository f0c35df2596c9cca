"""The dispatcher's side of the workers: which worker serves a connection, frames back, a TLS relay.

Every authenticated connection goes to the worker of its session (the kernel
key sent in the token exchange), started on its first connection; peers that
send no session (no token on the device, stock rpyc clients, TLS client
certificates only) all share one worker: one trust domain. The session key
routes; it is a secret of its kernel's and never logged.

A plain TCP connection's file descriptor itself goes to the worker (the
dispatcher keeps its copy to watch for the peer leaving, see guard.py). TLS
state cannot move between processes, so for TLS a relay thread here copies
bytes between the TLS socket and one end of a socket pair whose other end
goes to the worker.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
from typing import Callable

from . import mjpeg
from .worker import CONNECTION, COUNT, EXIT, FRAME, GO, HEADER
from .zygote import Zygote

log = logging.getLogger("xrpyc-device")

MAX_MESSAGE = 32 << 20  # bytes: a larger frame from a worker is taken for a broken worker
RELAY_CHUNK = 256 * 1024


class _Worker:
    def __init__(self, session: str | None, control: socket.socket) -> None:
        self.session = session
        self.control = control
        self.handed = 0  # connections sent to it
        self.slots: set[int] = set()


class Workers:
    """Hands connections to their session's worker; `on_gone(slot)` when the worker of a slot has ended."""

    def __init__(self, zygote: Zygote, settings: Callable[[], dict], on_gone: Callable[[int], None]) -> None:
        self._zygote = zygote
        self._settings = settings
        self._on_gone = on_gone
        self._lock = threading.Lock()
        self._by_session: dict[str | None, _Worker] = {}

    def hand(self, sock: socket.socket, session: str | None, slot: int) -> None:
        """Give `sock` (authenticated, holding serving slot `slot`) to its session's worker; OSError if that fails."""
        if isinstance(sock, ssl.SSLSocket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the relay writes what it gets at once
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            threading.Thread(target=_relay, args=(sock, ours), name="xrpyc-tls-relay", daemon=True).start()
        else:
            theirs = sock
        try:
            with self._lock:
                worker = self._by_session.get(session)
                if worker is None:
                    worker = _Worker(session, self._zygote.spawn(self._settings()))
                    self._by_session[session] = worker
                    threading.Thread(target=self._read, args=(worker,), name="xrpyc-worker", daemon=True).start()
                worker.handed += 1
                worker.slots.add(slot)
                # MSG_DONTWAIT: a worker that stops reading must not stall the dispatcher.
                socket.send_fds(worker.control, [CONNECTION], [theirs.fileno()], socket.MSG_DONTWAIT)
        finally:
            if theirs is not sock:
                theirs.close()

    def _read(self, worker: _Worker) -> None:
        """Frames and exit wishes from `worker`, until it ends; then its connections end too."""
        try:
            while True:
                kind, length = HEADER.unpack(_receive(worker.control, HEADER.size))
                if length > MAX_MESSAGE:
                    log.warning("a worker sent a %d-byte message: stopping it", length)
                    break
                payload = _receive(worker.control, length)
                if kind == FRAME:
                    mjpeg.default_holder.store(payload)
                elif kind == EXIT and length == COUNT.size:
                    (received,) = COUNT.unpack(payload)
                    with self._lock:
                        # Only if no connection is on its way to it: else that one would be lost.
                        if received == worker.handed and self._by_session.get(worker.session) is worker:
                            del self._by_session[worker.session]
                            worker.control.send(GO, socket.MSG_DONTWAIT)
        except (OSError, EOFError):
            pass
        finally:
            with self._lock:
                if self._by_session.get(worker.session) is worker:
                    del self._by_session[worker.session]
                slots = list(worker.slots)
            worker.control.close()
            for slot in slots:
                self._on_gone(slot)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _relay(tls: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy bytes both ways between a TLS peer and a worker until either side ends.

    One thread and non-blocking sockets: OpenSSL does not allow reading and
    writing one connection from two threads at once. TLS input is read until
    OpenSSL wants more from the network: it may hold bytes already taken from
    the socket, which select() cannot see. Otherwise each direction holds what
    one read gave (the other side's pace sets ours).
    """
    tls.setblocking(False)
    plain.setblocking(False)
    to_worker = to_peer = b""
    try:
        while True:
            readers = ([] if to_worker else [tls]) + ([] if to_peer else [plain])
            writers = ([plain] if to_worker else []) + ([tls] if to_peer else [])
            readable, writable, _ = select.select(readers, writers, [])
            if tls in readable:
                to_worker = _drain(tls)
            if plain in readable:
                to_peer = plain.recv(RELAY_CHUNK)
                if not to_peer:
                    return
            if plain in writable:
                to_worker = to_worker[plain.send(to_worker) :]
            if tls in writable:
                with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    to_peer = to_peer[tls.send(to_peer) :]
    except (OSError, ValueError, EOFError):
        pass
    finally:
        for sock in (plain, tls):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()  # the dispatcher's slot only shuts a TLS socket down (guard.py): this thread may be using it


def _drain(tls: ssl.SSLSocket) -> bytes:
    """All that a non-blocking TLS socket has to give now; EOFError when the peer has closed."""
    chunks = []
    try:
        while True:
            chunk = tls.recv(RELAY_CHUNK)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    return b"".join(chunks)
