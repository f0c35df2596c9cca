"""Connections to devices: reach an rpyc classic server, install the agent, run cells.

rpyc is imported on first connect, not at kernel start, so the first
kernel_info reply does not wait for it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_PORT = 18812
DEFAULT_TIMEOUT = 5.0
AGENT_FILENAME = "<xrpyc-agent>"

Chunks = tuple  # ((stream name, text), ...), as sent by the agent


class DeviceError(Exception):
    """A device could not be reached or stopped answering; the message is for users."""


class DeviceRefused(DeviceError):
    """Nothing listens at the address (connection refused)."""


class RemoteError(Exception):
    """A cell raised on the device."""

    def __init__(self, ename: str, evalue: str, traceback: list[str]) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.traceback = ename, evalue, traceback


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
        return self.host in ("localhost", "::1") or self.host.startswith("127.")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def default_address() -> Address:
    """Where cells run without $connect: $XRPYC_DEVICE, else the local default device."""
    return Address.parse(os.environ.get("XRPYC_DEVICE") or f"127.0.0.1:{DEFAULT_PORT}")


def _disable_nagle(conn: Any, stream: Any) -> None:
    """TCP_NODELAY on both ends of the connection.

    Without it, Nagle's algorithm meets delayed ACKs and some rpyc exchanges
    stall for 40 ms each (measured: installing the agent took 50 ms instead of
    6). Stock servers do not set it, so the device's end is set from here,
    through the classic service's own connection object, first of all: each
    exchange before it may stall.
    """
    option = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        conn.root._conn._channel.stream.sock.setsockopt(*option)
    except AttributeError:
        pass  # an rpyc server laid out differently: slower, still correct
    stream.sock.setsockopt(*option)


def _agent_source() -> str:
    with open(os.path.join(os.path.dirname(__file__), "agent.py"), encoding="utf-8") as source:
        return source.read()


class Device:
    """A live connection to one device, with this kernel's agent on it."""

    def __init__(self, address: Address, conn: Any, agent: Any) -> None:
        self.address = address
        self._conn = conn
        self._run = agent.run  # looked up once: each cell is then one round trip
        self._agent = agent

    @classmethod
    def connect(cls, address: Address, on_output: Callable[[Chunks], None], timeout: float = DEFAULT_TIMEOUT) -> Device:
        import rpyc
        from rpyc.core.stream import SocketStream

        try:
            stream = SocketStream.connect(address.host, address.port, timeout=timeout, keepalive=True)
        except socket.gaierror:
            raise DeviceError(f"cannot resolve host name {address.host!r}") from None
        except ConnectionRefusedError:
            raise DeviceRefused(
                f"nothing listens on {address} (connection refused): is the device's rpyc server running?"
            ) from None
        except socket.timeout:
            raise DeviceError(f"no answer from {address} within {timeout:g} s") from None
        except OSError as error:
            raise DeviceError(f"cannot connect to {address}: {error.strerror or error}") from None

        conn = rpyc.classic.connect_stream(stream)
        # A silent non-rpyc service would make the first request wait forever.
        conn._config["sync_request_timeout"] = timeout
        try:
            _disable_nagle(conn, stream)
            namespace = conn.builtins.dict()
            conn.builtins.exec(conn.builtins.compile(_agent_source(), AGENT_FILENAME, "exec"), namespace)
            agent = namespace["Agent"](on_output)
        except (EOFError, ConnectionError, TimeoutError, rpyc.core.protocol.PingError) as error:
            conn.close()
            raise DeviceError(
                f"{address} accepted the connection but did not answer as an rpyc classic server "
                f"({type(error).__name__}). Either it is another kind of service, or its rpyc major version "
                f"differs from this kernel's rpyc {rpyc.__version__} (rpyc 5.x and 6.x cannot talk to each other)."
            ) from None
        except Exception:
            conn.close()
            raise
        # Cells may run for hours: wait for them as long as they take.
        conn._config["sync_request_timeout"] = None
        return cls(address, conn, agent)

    def run(self, code: str, filename: str) -> tuple:
        """Run a cell; returns the trailing expression's MIME bundle ((mime, data), ...).

        Raises RemoteError for an exception on the device, DeviceError when
        the connection is lost.
        """
        try:
            result = self._run(code, filename)
        except EOFError:
            raise DeviceError(f"the connection to {self.address} was lost") from None
        if result[0] == "error":
            _, ename, evalue, traceback = result
            raise RemoteError(ename, evalue, list(traceback))
        return result[1]

    def complete(self, code: str, cursor_pos: int) -> tuple:
        """(matches, cursor_start) from the device's namespace."""
        return self._agent.complete(code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> str | None:
        return self._agent.inspect(code, cursor_pos, detail_level)

    def info(self) -> tuple:
        """((label, value), ...) describing the device."""
        return self._agent.device_info()

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass  # already gone: closing is best effort
