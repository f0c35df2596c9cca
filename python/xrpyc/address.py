"""Where a device is: `host[:port]` as users write it, and where cells go without $connect."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .loopback import is_loopback

DEFAULT_PORT = 18812


@dataclass(frozen=True)
class Address:
    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, target: str, port: int | None = None) -> Address:
        """`host`, `host:port`, `[ipv6]:port` or `ipv6`, with an optional separate port."""
        host, parsed_port = target.strip(), None
        if host.startswith("["):
            host, _, rest = host[1:].partition("]")
            if rest.startswith(":"):
                parsed_port = rest[1:]
        elif host.count(":") == 1:
            host, parsed_port = host.split(":")
        if not host:
            raise ValueError(f"no host name in {target!r}")
        if parsed_port is not None and port is not None:
            raise ValueError(f"port given twice: in {target!r} and as {port!r}")
        chosen = port if port is not None else parsed_port if parsed_port is not None else DEFAULT_PORT
        try:
            number = int(chosen)
        except (TypeError, ValueError):
            raise ValueError(f"port must be a number, not {chosen!r}") from None
        if not 0 < number < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {number}")
        return cls(host, number)

    @property
    def is_loopback(self) -> bool:
        """The rule xrpyc-device's server applies to its --host too (loopback.is_loopback)."""
        return is_loopback(self.host)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def default_address() -> Address:
    """Where cells run without $connect: $XRPYC_DEVICE, else the local default device."""
    return Address.parse(os.environ.get("XRPYC_DEVICE") or f"127.0.0.1:{DEFAULT_PORT}")
