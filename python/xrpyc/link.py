"""The link to a device: TCP, TLS, the token exchange, and an rpyc classic connection in 5.x or 6.x framing.

Everything here works within one Attempt (deadline.py): a deadline shared by
every stage, which another thread may cancel. rpyc, TLS and the handshake are
imported on first connect, not at kernel start, so that the first kernel_info
reply does not wait for them (session.preload imports them in the background).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from typing import Any, Callable

from .address import Address
from .channel import OversizedFrame
from .deadline import Attempt
from .errors import DeviceError, DeviceRefused
from .security import Credentials

DEFAULT_TIMEOUT = 5.0
LINK_TIMEOUT = 10  # s to notice a dead link
CHALLENGE_WAIT = 1.0  # s an xrpyc-device takes at most to ask for a token
RPYC_HANDSHAKE = "rpyc handshake"  # the stage of an attempt after the TCP connection, named in timeout messages
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@functools.lru_cache(maxsize=1)
def _rpyc5_devices() -> Any:
    """Devices that speak rpyc 5.x: later connections (the interrupt channel, reconnects, the next kernels)
    go straight to the right framing."""
    from .rpyc5 import Generations

    return Generations.in_user_cache()


def open_connection(address: Address, attempt: Attempt, credentials: Credentials, session: str) -> Any:
    """A classic rpyc connection to `address` (rpyc 6.x or 5.x) within the attempt, or DeviceError saying why not.

    `session` (the kernel's key) goes to a device that asks for a token: it serves
    all connections with one key in one worker process of their own. Cancelled
    when the attempt is interrupted.
    """
    from rpyc.utils.factory import connect_channel

    from .channel import BoundedChannel
    from .rpyc5 import Rpyc5Channel, is_rpyc5_peer

    tried: set[bool] = set()
    while True:
        rpyc5 = address in _rpyc5_devices()
        tried.add(rpyc5)
        stream = _open_socket(address, attempt, credentials, session)
        channel = Rpyc5Channel(stream) if rpyc5 else BoundedChannel(stream)
        attempt.stage = RPYC_HANDSHAKE
        try:
            # The attempt's deadline covers the first request (GETROOT), which a
            # silent or chatty non-rpyc service would otherwise leave waiting.
            return connect_channel(channel, _kernel_service(), config={"sync_request_timeout": attempt.remaining()})
        except Exception as error:
            stream.close()
            attempt.check()
            if not rpyc5 and is_rpyc5_peer(error):
                _rpyc5_devices().add(address)
                continue
            if rpyc5 and False not in tried:  # remembered as rpyc 5.x, and it answers otherwise now
                _rpyc5_devices().discard(address)
                continue
            refusal = None if credentials.token else _refusal(address, attempt, credentials)
            raise (DeviceError(f"{address}: {refusal}") if refusal else not_rpyc(address, error)) from None


def open_in_background(address: Address, credentials: Credentials, session: str) -> Callable[[], Any]:
    """Open another connection to the device in a thread; the function returned waits for it (or its error)."""
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        attempt = Attempt(DEFAULT_TIMEOUT)
        try:
            outcome.append(open_connection(address, attempt, credentials, session))
        except BaseException as error:
            outcome.append(error)
        finally:
            attempt.finish()
            done.set()

    def result() -> Any:
        done.wait()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    threading.Thread(target=run, name="xrpyc-open", daemon=True).start()
    return result


def close_when_open(opening: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        opening().close()


def _kernel_service() -> type:
    """The rpyc service the kernel exposes to devices: nothing of its process.

    A stock rpyc 6 classic server fetches `builtins` and `importlib.util`
    from its peer as soon as a connection opens (ModuleNamespace); it gets
    None. rpyc.classic.connect would hand it the kernel's whole Python.
    """
    from rpyc.core.service import ClassicClient

    class KernelService(ClassicClient):
        __slots__ = ()

        def exposed_getmodule(self, name: str) -> None:
            return None

    return KernelService


def _open_socket(address: Address, attempt: Attempt, credentials: Credentials, session: str) -> Any:
    """A connected stream, with TLS and the token exchange done when the credentials ask."""
    from rpyc.core.stream import SocketStream

    from .channel import TLSStream

    sock = _connect(address, attempt, credentials)
    if credentials.token:
        _prove_token(sock, address, credentials.token, attempt, session)
    sock.settimeout(None)
    _bound_link_failures(sock)
    return TLSStream(sock) if credentials.tls else SocketStream(sock)


def _resolve(address: Address, attempt: Attempt) -> list[tuple]:
    try:
        # In a helper thread: getaddrinfo cannot be woken, and a silent name server keeps it 10 s and more.
        return attempt.run(
            "name lookup",
            lambda: socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM),
        )
    except (socket.gaierror, UnicodeError):  # UnicodeError: not a valid name at all ("192.168..1")
        raise DeviceError(f"cannot resolve host name {address.host!r}") from None
    except TimeoutError:
        raise DeviceError(f"{address}: {attempt.timed_out()}") from None


def _connect(address: Address, attempt: Attempt, credentials: Credentials) -> socket.socket:
    infos = _resolve(address, attempt)
    attempt.stage = "TCP connect"
    failure: OSError = OSError("no address")
    for family, kind, proto, _, sockaddr in infos:
        sock = attempt.watch(socket.socket(family, kind, proto))
        try:
            sock.settimeout(attempt.remaining())
            sock.connect(sockaddr)
            # xrpyc-device sets TCP_NODELAY on its end as it accepts: both ends go without Nagle's
            # algorithm from the first byte. A stock server's end: see session._nagle_on_device_end.
            sock.setsockopt(*NODELAY)
            break
        except OSError as error:
            sock.close()
            attempt.check()
            failure = error
    else:
        if isinstance(failure, ConnectionRefusedError):
            raise DeviceRefused(
                f"nothing listens on {address} (connection refused): is the device's rpyc server running?"
            )
        if isinstance(failure, socket.timeout):
            raise DeviceError(f"{address}: {attempt.timed_out()}")
        raise DeviceError(f"cannot connect to {address}: {failure.strerror or failure}")
    if not credentials.tls:
        return sock
    import ssl

    attempt.stage = "TLS handshake"
    try:
        sock.settimeout(attempt.remaining())
        return attempt.watch(credentials.client_context().wrap_socket(sock, server_hostname=address.host))
    except ssl.SSLCertVerificationError as error:
        sock.close()
        raise DeviceError(f"{address}: the device's certificate is not trusted ({error.verify_message})") from None
    except (ssl.SSLError, OSError) as error:
        sock.close()
        attempt.check()
        raise DeviceError(f"{address}: TLS failed ({error}); does the device serve TLS (--certfile)?") from None


def _prove_token(sock: socket.socket, address: Address, token: str, attempt: Attempt, session: str) -> None:
    from .handshake import HandshakeError, answer

    # A device that wants a token asks at once. One that sends nothing is
    # not the device this token is for (a stock server, or something else
    # listening there): it would get the cells without proving anything.
    attempt.stage = "token exchange"
    try:
        answer(sock, token, attempt.deadline, min(attempt.deadline, time.monotonic() + CHALLENGE_WAIT), session)
    except socket.timeout:
        sock.close()
        attempt.check()
        raise DeviceError(
            f"{address} did not ask for the token this kernel has for it: it is not an xrpyc-device with "
            f'that token (a stock rpyc server or a MaixPy3 board takes none: $connect("{address}", token=""))'
        ) from None
    except HandshakeError as error:
        sock.close()
        attempt.check()  # the attempt ended it (its deadline shuts the socket: an empty challenge)
        raise DeviceError(f"{address}: {error}") from None
    except OSError as error:
        sock.close()
        attempt.check()
        raise DeviceError(f"{address}: the connection closed during the token exchange ({error})") from None


def _refusal(address: Address, attempt: Attempt, credentials: Credentials) -> str | None:
    """Why an xrpyc-device turned us away, if it did (it says so in its first bytes)."""
    from .handshake import explain, readline

    try:
        sock = _connect(address, attempt, credentials)
    except DeviceError:
        return None
    try:
        return explain(readline(sock, min(attempt.deadline, time.monotonic() + CHALLENGE_WAIT)))
    except OSError:
        return None
    finally:
        sock.close()


def not_rpyc(address: Address, error: BaseException | str) -> DeviceError:
    import rpyc

    if isinstance(error, str):
        reason = error
    elif isinstance(error, (TimeoutError, OversizedFrame)):
        reason = str(error) or "no answer"
    else:
        reason = f"{type(error).__name__}: {error}"
    return DeviceError(
        f"{address} accepted the connection but does not answer as an rpyc classic server ({reason}). "
        f"Is another service on that port? This kernel speaks rpyc 5.x and {rpyc.__version__}; "
        "rpyc 4.0 and older are not supported."
    )


def _bound_link_failures(sock: socket.socket) -> None:
    """Notice a dead link (Wi-Fi gone, board unplugged) within LINK_TIMEOUT.

    Keepalive probes cover an idle link; TCP_USER_TIMEOUT covers data that
    is never acknowledged (a cell sent into the void), which TCP would
    otherwise retransmit for a quarter of an hour.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):  # Linux
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, LINK_TIMEOUT // 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, LINK_TIMEOUT // 6)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, LINK_TIMEOUT * 1000)
