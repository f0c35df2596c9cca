"""The few lines an xrpyc-device and a kernel exchange before rpyc starts.

A device that requires a token challenges each connection, and a device at
its connection limit says so, with one text line; the kernel answers with an
HMAC of the nonce, so the token itself never crosses the network (TLS or not).
Stock rpyc servers and MaixPy3 boards send nothing: the kernel then speaks
rpyc at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket

AUTH = b"XRPYC-AUTH1 "
OK = b"XRPYC-OK\n"
DENIED = b"XRPYC-DENIED\n"
BUSY = b"XRPYC-BUSY "
MAX_LINE = 256


class HandshakeError(Exception):
    """The device refused this kernel; the message is for users."""


def _digest(token: str, nonce: bytes) -> bytes:
    return hmac.new(token.encode("utf-8"), nonce, hashlib.sha256).hexdigest().encode("ascii")


def _readline(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n") and len(line) < MAX_LINE:
        chunk = sock.recv(1)  # byte by byte: what follows the line belongs to rpyc
        if not chunk:
            break
        line += chunk
    return line


def challenge(sock: socket.socket, token: str) -> bool:
    """Device side: True when the peer proves it knows `token` (compared in constant time)."""
    nonce = secrets.token_hex(16).encode("ascii")
    sock.sendall(AUTH + nonce + b"\n")
    answer = _readline(sock).strip()
    accepted = hmac.compare_digest(answer, _digest(token, nonce))
    sock.sendall(OK if accepted else DENIED)
    return accepted


def busy(sock: socket.socket, limit: int) -> None:
    """Device side: turn a connection away, saying why."""
    sock.sendall(BUSY + f"the device already serves {limit} connections\n".encode("ascii"))


def answer(sock: socket.socket, token: str) -> None:
    """Kernel side: prove we know `token`, or raise HandshakeError."""
    line = _readline(sock)
    refused = explain(line)
    if refused and not line.startswith(AUTH):
        raise HandshakeError(refused)
    if not line.startswith(AUTH):
        raise HandshakeError(
            "the device did not ask for a token: it is not an xrpyc-device with --token "
            "(a stock rpyc server or a MaixPy3 board takes none; connect without one)"
        )
    sock.sendall(_digest(token, line[len(AUTH) :].strip()) + b"\n")
    if _readline(sock) != OK:
        raise HandshakeError("the device refused the token (a wrong token, or one for another device)")


def explain(first_bytes: bytes) -> str | None:
    """What a device meant by the first bytes it sent to a kernel that sent no token."""
    if first_bytes.startswith(AUTH):
        return (
            "the device requires a token: $connect(host, token=...), XRPYC_TOKEN, XRPYC_TOKEN_FILE (a file "
            "holding it), or the devices file in Jupyter's config dir (see README: Security)"
        )
    if first_bytes.startswith(BUSY):
        reason = first_bytes[len(BUSY) :].decode("ascii", "replace").strip()
        return f"the device is busy: {reason}"
    return None
