"""rpyc's channel with a bound on what one message from a device may make the kernel hold.

rpyc reads a frame's length from its header and then waits for that many bytes
(up to 4 GiB), and inflates compressed frames without a limit: a peer that is
not what it claims could make the kernel wait or fill its memory. A frame over
the limit ends the connection (OversizedFrame is an EOFError, which rpyc takes
as the link closing).
"""

from __future__ import annotations

import zlib

from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream

SETUP_LIMIT = 1024 * 1024  # bytes: nothing a device sends while a kernel connects comes near this


class OversizedFrame(EOFError):
    """The peer sent (or announced) a message larger than the channel's limit."""


class BoundedChannel(Channel):
    """A channel that refuses frames larger than `limit` bytes, before or after decompression."""

    limit = SETUP_LIMIT

    def recv(self) -> bytes:
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.limit:
            raise OversizedFrame(f"it announced a message of {length:,} bytes; the limit is {self.limit:,}")
        data = self.stream.read(length + len(self.FLUSHER))[: -len(self.FLUSHER)]
        if compressed:
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, self.limit)
            if inflater.unconsumed_tail:
                raise OversizedFrame(f"it sent a compressed message of more than {self.limit:,} bytes")
        return data


class TLSStream(SocketStream):
    """rpyc's socket stream over TLS, ready to read also when OpenSSL holds bytes already decrypted.

    A device (an xrpyc-device relaying TLS to a worker, a TLS proxy in front of
    a stock server) may send the end of one rpyc message and the start of the
    next in one TLS record. Once rpyc has read the first, the rest waits inside
    OpenSSL, where a poll of the socket cannot see it: the kernel would wait
    for network bytes that never come.
    """

    __slots__ = ()

    def poll(self, timeout: float | None) -> bool:
        return self.sock.pending() > 0 or super().poll(timeout)
