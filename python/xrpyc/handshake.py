"""The few lines an xrpyc-device and a kernel exchange before rpyc starts.

A device that requires a token challenges each connection, and a device at
its connection limit says so, with one text line. Both sides then prove they
know the token, each with an HMAC of a nonce the other chose: the token itself
never crosses the network (TLS or not), a device cannot learn it by asking,
and a kernel knows it reached the device it holds a token for, not a process
that merely listens on its port. Stock rpyc servers and MaixPy3 boards send
nothing: the kernel then speaks rpyc at once.

Every read has a deadline (an absolute time.monotonic() value): a peer that
trickles one byte at a time cannot hold the other side for longer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import socket
import time

AUTH = b"XRPYC-AUTH2 "
OK = b"XRPYC-OK "
DENIED = b"XRPYC-DENIED\n"
BUSY = b"XRPYC-BUSY "
MAX_LINE = 256
# A kernel's key (uuid4 hex): the device serves all connections with one key in one worker process.
SESSION = re.compile(rb"[0-9a-f]{1,64}")
# Ends a device's challenge when it takes a session after the proof. Part of the
# challenge the proof covers, so kernels that know nothing of sessions still
# prove themselves (and share one worker); kernels do not send a session to
# devices that do not ask for one (they would take it for part of the nonce).
SESSIONS = b" sessions"


class HandshakeError(Exception):
    """The device refused this kernel, or failed to prove it holds the token; the message is for users."""


def _digest(token: str, role: bytes, nonce: bytes) -> bytes:
    # The role keeps a proof made by one side from being replayed as the other's.
    return hmac.new(token.encode("utf-8"), role + b":" + nonce, hashlib.sha256).hexdigest().encode("ascii")


def _nonce() -> bytes:
    return secrets.token_hex(16).encode("ascii")


def readline(sock: socket.socket, deadline: float) -> bytes:
    """One line (at most MAX_LINE bytes), or what came before the peer closed or the deadline passed."""
    line = b""
    while not line.endswith(b"\n") and len(line) < MAX_LINE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the peer did not finish its line in time")
        sock.settimeout(remaining)
        chunk = sock.recv(1)  # byte by byte: what follows the line belongs to rpyc
        if not chunk:
            break
        line += chunk
    return line


def challenge(sock: socket.socket, token: str, deadline: float) -> tuple[bytes, str | None] | None:
    """Device side: (the peer's nonce, its session) when it proves it knows `token` (compared in constant time).

    None when the proof is wrong. The session is the kernel's key, which routes
    the connection to that kernel's worker (None: the peer sent none, an older
    kernel). The device then proves itself with `welcome`, or turns the peer
    away (`deny`, `busy`). HandshakeError when the peer sent no proof at all (an
    rpyc client without a token) or a malformed session.
    """
    offer = _nonce() + SESSIONS
    sock.sendall(AUTH + offer + b"\n")
    proof, kernel_nonce, session, *_ = [*readline(sock, deadline).strip().split(b" "), b"", b""]
    if len(proof) != 64 or not kernel_nonce:
        raise HandshakeError("the peer sent no token proof")
    if not hmac.compare_digest(proof, _digest(token, b"kernel", offer)):
        return None
    if session and not SESSION.fullmatch(session):
        raise HandshakeError("the peer sent a malformed session key")
    return kernel_nonce[:64], session.decode("ascii") if session else None


def welcome(sock: socket.socket, token: str, kernel_nonce: bytes) -> None:
    """Device side: accept a peer that proved itself, proving in turn that this device holds the token."""
    sock.sendall(OK + _digest(token, b"device", kernel_nonce) + b"\n")


def deny(sock: socket.socket) -> None:
    """Device side: tell a peer its proof was wrong."""
    sock.sendall(DENIED)


def busy(sock: socket.socket, reason: str) -> None:
    """Device side: turn a connection away, saying why (one line, ASCII)."""
    sock.sendall(BUSY + reason.encode("ascii", "replace") + b"\n")


def answer(sock: socket.socket, token: str, deadline: float, challenge_by: float, session: str = "") -> None:
    """Kernel side: prove we know `token` and check that the device does too, or raise HandshakeError.

    `session` (the kernel's key, hex) tells the device which of its workers serves
    this connection: all connections with one key share one namespace registry.

    socket.timeout when the device sends no challenge by `challenge_by`, or does not finish by `deadline`.
    """
    line = readline(sock, challenge_by)
    refused = explain(line)
    if refused and not line.startswith(AUTH):
        raise HandshakeError(refused)
    if not line.startswith(AUTH):
        raise HandshakeError(f"the device sent {line[:40]!r} instead of a token challenge: it is not an xrpyc-device")
    nonce = _nonce()
    offer = line[len(AUTH) :].strip()
    proof = _digest(token, b"kernel", offer)
    session = session if offer.endswith(SESSIONS) else ""
    sock.sendall(b" ".join(part for part in (proof, nonce, session.encode("ascii")) if part) + b"\n")
    reply = readline(sock, deadline)
    if reply.startswith(DENIED) or reply.startswith(BUSY):
        raise HandshakeError(explain(reply) or "the device refused the token")
    if not (reply.startswith(OK) and hmac.compare_digest(reply[len(OK) :].strip(), _digest(token, b"device", nonce))):
        raise HandshakeError(
            "the device accepted this kernel's token but could not prove it holds the same token: "
            "it is not the device the token is for"
        )


def explain(first_bytes: bytes) -> str | None:
    """What a device meant by the first bytes it sent to a kernel."""
    if first_bytes.startswith(AUTH):
        return (
            "the device requires a token: $connect(host, token=...), XRPYC_TOKEN, XRPYC_TOKEN_FILE (a file "
            "holding it), or the devices file in Jupyter's config dir (see README: Security model)"
        )
    if first_bytes.startswith(DENIED):
        return "the device refused the token (a wrong token, or one for another device)"
    if first_bytes.startswith(BUSY):
        reason = first_bytes[len(BUSY) :].decode("ascii", "replace").strip()
        return f"the device is busy: {reason}"
    return None
