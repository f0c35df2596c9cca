"""Talking to devices that run rpyc 5.x (Debian 12's python3-rpyc, older MaixPy3 boards).

rpyc 6.0 changed only how each message starts (upstream commit 43027f9,
"fixed race condition with AsyncResult.wait"; the changelog does not say so):

    rpyc <= 5.3: brine.dump((msg, seq, args))             -> 0x12 0x50+msg <seq><args>
    rpyc >= 6.0: brine.I1.pack(msg) + brine.dump((seq, args)) -> msg  0x11     <seq><args>

Everything after those two bytes (brine, handler numbers, boxing, vinegar,
channel framing, compression) is the same from rpyc 4.1 to 6.0.2, so a channel
that rewrites the two bytes each way lets this kernel's rpyc 6 drive a 5.x
classic server. Neither version has a handshake: the generation shows only in
how a server answers the first request (see `is_rpyc5_peer`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .channel import BoundedChannel

_TUP2, _TUP3, _IMM0 = 0x11, 0x12, 0x50  # brine's TAG_TUP2, TAG_TUP3 and small-int base


class Rpyc5Channel(BoundedChannel):
    """A channel whose peer speaks rpyc 5.x framing."""

    def send(self, data: bytes) -> None:
        if data[1] != _TUP2 or not 1 <= data[0] <= 3:
            raise ValueError(f"unexpected rpyc 6 message header {data[:2]!r}")
        super().send(bytes((_TUP3, _IMM0 + data[0])) + data[2:])

    def recv(self) -> bytes:
        data = super().recv()
        if data[0] != _TUP3 or not _IMM0 + 1 <= data[1] <= _IMM0 + 3:
            raise ValueError(f"the peer did not send an rpyc 5 message: {data[:2]!r}")
        return bytes((data[1] - _IMM0, _TUP2)) + data[2:]


def is_rpyc5_peer(error: BaseException) -> bool:
    """True for what an rpyc 6 connection raises when its first request reaches a 5.x peer.

    The 5.x peer cannot parse the request and closes, sending a 5.x-framed
    HANDLE_CLOSE whose first byte, 0x12 = 18, rpyc 6 reads as a message type.
    """
    return isinstance(error, ValueError) and str(error) == "invalid message type: 18"


class Generations:
    """The devices found to speak rpyc 5.x, remembered in this user's cache for the next kernels.

    Each kernel is a new process: without this, each would spend a request
    that fails (a connection the device drops) finding out again. What is
    read back is only a hint: `open_connection` (link.py) tries the other framing
    once when a remembered device answers otherwise, and forgets it.
    """

    LIMIT = 256  # addresses kept (the newest); a longer or unreadable file is ignored
    MAX_BYTES = 64 * 1024

    def __init__(self, path: Path) -> None:
        self._path = path
        self._addresses: list[str] | None = None  # read on first use

    @classmethod
    def in_user_cache(cls) -> Generations:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(Path(cache) / "xrpyc" / "rpyc5-devices")

    def __contains__(self, address: object) -> bool:
        return str(address) in self._read()

    def add(self, address: object) -> None:
        addresses = [a for a in self._read() if a != str(address)] + [str(address)]
        self._write(addresses[-self.LIMIT :])

    def discard(self, address: object) -> None:
        if address in self:
            self._write([a for a in self._read() if a != str(address)])

    def _read(self) -> list[str]:
        if self._addresses is None:
            try:
                with open(self._path, "rb") as file:
                    data = file.read(self.MAX_BYTES + 1)
                lines = data.decode("ascii").split() if len(data) <= self.MAX_BYTES else []
            except (OSError, UnicodeDecodeError):
                lines = []
            self._addresses = lines[-self.LIMIT :]
        return self._addresses

    def _write(self, addresses: list[str]) -> None:
        self._addresses = addresses
        try:  # a cache: a read-only home only costs the next kernels the request that finds out
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_name(f".{self._path.name}.{os.getpid()}")
            temporary.write_text("".join(f"{a}\n" for a in addresses), encoding="ascii")
            os.replace(temporary, self._path)
        except (OSError, UnicodeEncodeError):
            pass
