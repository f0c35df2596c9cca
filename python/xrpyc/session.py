"""A session with a device: this kernel's agent installed over a link (link.py), cells run, interrupts.

rpyc is imported on first connect, not at kernel start, so the first
kernel_info reply does not wait for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, Callable

from .address import Address
from .channel import OversizedFrame
from .deadline import Attempt, Cancelled
from .devicemessages import AskInput, Chunks, Installed, cell_result
from .errors import CellError, DeviceError
from .link import (
    DEFAULT_TIMEOUT,
    NODELAY,
    RPYC_HANDSHAKE,
    close_when_open,
    not_rpyc,
    open_connection,
    open_in_background,
)
from .remote.loader import install as install_remote_modules
from .remote.registry import NAME as REGISTRY_MODULE
from .security import Credentials, lookup

INTERRUPT_GRACE = 1.0  # s a device gets to stop after an interrupt
# Seconds the device works on a completion (answering with what is ready then) and
# on an inspection; the kernel waits REPLY_MARGIN more for the answer, then drops it.
COMPLETE_BUDGET = 0.2
INSPECT_BUDGET = 1.0
HELP_BUDGET = 5.0  # for `name?` in a cell: the user waits for it
REPLY_MARGIN = 0.1
SERVE_SLICE = 0.01  # s between the checks for widget messages from the browser while a cell runs
INSTALLING = "installing the agent"  # the stage after RPYC_HANDSHAKE, named in timeout messages
MAX_FRAME = 256 * 1024 * 1024  # bytes of one message from a device once connected (1 MiB while connecting)
BLOCKED = (
    f"the device did not stop within {INTERRUPT_GRACE:g} s: the cell is blocked in a call an interrupt cannot "
    "end there (a socket read or select on a stock rpyc server, a C library's wait, ...). It stops at its next "
    "Python instruction. The kernel let go of it; the next cell reconnects, with your variables."
)

# The device-side modules (python/xrpyc/remote), each after those it imports: the device's Python
# executes them in this order as the modules of a private package (remote/loader.py).
REMOTE_MODULES = ("richrepr", "facts", "registry", "introspect", "magics", "comms", "widgets", "files", "agent")
REMOTE_PACKAGE = "_xrpyc_remote_"  # + the start of agent_digest(): see agent_package()


def _nagle_on_device_end(conn: Any) -> None:
    """TCP_NODELAY on the device's end of a connection to a device that may be a stock server.

    Without it, Nagle's algorithm meets delayed ACKs and some rpyc exchanges
    stall for 40 ms each (measured: installing the agent took 50 ms instead of
    6). Stock servers do not set it, so it is set from here, through the
    classic service's own connection object: several round trips, taken with
    Nagle's algorithm back on at the kernel's end, where it keeps a stock
    server's replies from stalling until the device's end is set too
    (measured: 130 ms for this call with it off, 45 ms for each step of the
    agent's installation). Only when the device lacks the agent's compiled
    code (_install): otherwise agent.connect sets the device's end itself.
    """
    sock = conn._channel.stream.sock
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    try:
        conn.root._conn._channel.stream.sock.setsockopt(*NODELAY)
    except (AttributeError, OSError):
        # An rpyc server laid out differently, or a worker's end that is a Unix socket (an xrpyc-device relays
        # TLS connections; the dispatcher set TCP_NODELAY on the TCP socket): slower, or nothing to do.
        pass
    sock.setsockopt(*NODELAY)


# Evaluated by the device (any Python from 3.6, rpyc 5.x or 6.x): the connect() of the package this
# xrpyc's modules became in the device process (for an earlier kernel, or in xrpyc-device's zygote);
# None when this process has not installed them yet, or not completely.
_INSTALLED = (
    "(lambda package: package.agent.connect if getattr(package, 'digest', None) == {digest!r} else None)("
    "__import__('sys').modules.get({package!r}))"
)
# Evaluated by the device: remote/loader.py's install(), defined in a namespace of its own.
_LOADER = "(lambda namespace: (exec({source!r}, namespace), namespace['install'])[1])({{}})"


@functools.lru_cache(maxsize=1)
def agent_digest() -> str:
    """Names this xrpyc's device-side modules on a device: what their package there holds."""
    import hashlib

    digest = hashlib.sha256(_loader_source().encode("utf-8"))
    for name, source in _remote_sources():
        digest.update(f"\0{name}\0{source}".encode())
    return digest.hexdigest()


def agent_package() -> str:
    """The name of the private package this xrpyc's device-side modules make on a device: one no device's
    own package has, and another per xrpyc version."""
    return REMOTE_PACKAGE + agent_digest()[:12]


def _install(conn: Any, key: str, on_output: Callable[[Chunks], None], on_input: AskInput | None) -> Installed:
    """Install the agent on a new connection and attach to kernel `key`'s: agent.connect()'s answer, decoded.

    Two round trips when the device process has the modules installed already (a
    second kernel, a reconnect, any kernel of an xrpyc-device of this version);
    else the device compiles them once, from their sources sent in one call (by
    value: a tuple of strings), and keeps them as a package.
    """
    connect = conn.eval(_INSTALLED.format(package=agent_package(), digest=agent_digest()))
    if connect is None:
        _nagle_on_device_end(conn)
        install = conn.eval(_LOADER.format(source=_loader_source()))
        connect = install(agent_package(), agent_digest(), _remote_sources())
    return Installed.decode(connect(key, on_output, on_input))


def keep_agent_compiled() -> None:
    """Install the device-side modules in this process as a device's first kernel does (_install).

    For xrpyc-device's zygote (device/zygote.py): its workers start with the
    package of their own xrpyc's modules, so a kernel of the same version skips
    the compile (20-30 ms on a PC); it also imports what those modules import.
    """
    install_remote_modules(agent_package(), agent_digest(), _remote_sources())


@functools.lru_cache(maxsize=1)
def _remote_sources() -> tuple[tuple[str, str], ...]:
    """The REMOTE_MODULES as (name, source text), ...: all go to the device in one call, not one per
    module (each is a network round trip, milliseconds on a board's Wi-Fi)."""
    return tuple((name, _read_remote(f"{name}.py")) for name in REMOTE_MODULES)


@functools.lru_cache(maxsize=1)
def _loader_source() -> str:
    return _read_remote("loader.py")


def _read_remote(filename: str) -> str:
    with open(os.path.join(os.path.dirname(__file__), "remote", filename), encoding="utf-8") as source:
        return source.read()


def preload() -> None:
    """Import what connecting imports, and read the agent's sources (the kernel's warm-up, kernel.py)."""
    import rpyc.core.service
    import rpyc.core.stream
    import rpyc.utils.factory  # noqa: F401

    from . import channel, handshake, rpyc5  # noqa: F401

    agent_digest()


# What the agent may call a view: MJPEG over HTTP, or MaixPy3's legacy RTSP (maixrtsp.py).
VIEW_SCHEMES = frozenset(("http", "maix-rtsp"))
# A source path as the device may name it: no spaces, quotes or URL syntax beyond the path.
VIEW_PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")


def live_view_url(host: str, view: Any) -> str | None:
    """The URL of a live view the agent described as (kind, port, path); None for anything else.

    The description comes from the device: only exact plain values pass
    (type() rather than isinstance(), which an rpyc proxy can fake).
    """
    if type(view) is not tuple or len(view) != 3:
        return None
    kind, port, path = view
    if type(kind) is not str or kind not in VIEW_SCHEMES or type(port) is not int or not 0 < port < 65536:
        return None
    if type(path) is not str or not VIEW_PATH.fullmatch(path):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{kind}://{host}:{port}{path}"


class Device:
    """A live connection to one device, with this kernel's agent on it."""

    def __init__(
        self,
        address: Address,
        conn: Any,
        installed: Installed,
        key: str,
        credentials: Credentials,
        control: Callable[[], Any] | None = None,
    ) -> None:
        """`installed`: agent.connect()'s answer, decoded (with netrefs to the device's objects); `control`, the
        interrupt channel's connection as it is being opened (link.open_in_background), else it is opened here."""
        self.address = address
        self.credentials = credentials
        self.key = key
        self.helpers, self._agent, self._run = installed.helpers, installed.agent, installed.run
        self.resumed = installed.resumed
        self.python = installed.python  # kernel_info's language_info.version
        # Asynchronous, so that a device that answers late cannot freeze the editor.
        from rpyc import async_

        self._complete = async_(installed.complete)
        self._inspect = async_(installed.inspect)
        self._conn = conn
        # The device's live view (MaixPy3's display.show), if it serves one.
        self.video_url = live_view_url(address.host, installed.view)
        self._abandoned = False
        self._closed = False
        # Set while no cell runs; interrupt() waits on it.
        self.idle = threading.Event()
        self.idle.set()
        # The second channel for interrupts, opened in the background: while a
        # cell keeps the device's GIL busy, every exchange there is slow, so an
        # interrupt should cost one call on a connection that is already open.
        self._control: Any = None
        self._interrupt_remote: Callable[[], int] | None = None
        self._control_ready = threading.Event()
        self._comm_lock = threading.Lock()
        self._deliver_comm: Callable[..., Any] | None = None
        threading.Thread(target=self._open_control, args=(control,), daemon=True).start()

    @classmethod
    def connect(
        cls,
        address: Address,
        key: str,
        on_output: Callable[[Chunks], None],
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
        on_input: AskInput | None = None,
        attempt: Attempt | None = None,
    ) -> Device:
        """Connect and attach to kernel `key`'s agent on the device (created if new).

        Every stage shares one deadline, `timeout` seconds (or `attempt`'s,
        which another thread may cancel: then KeyboardInterrupt). Credentials
        default to what XRPYC_TOKEN and the devices file say (security.py).
        """
        if credentials is None:
            try:
                credentials = lookup(address)
            except ValueError as error:
                raise DeviceError(str(error)) from None
        attempt = attempt or Attempt(timeout)
        try:
            conn = open_connection(address, attempt, credentials, key)
            # The interrupt channel's handshakes meanwhile: one exchange less to wait for on a slow board.
            control = open_in_background(address, credentials, key)
            try:
                attempt.stage = INSTALLING
                installed = _install(conn, key, on_output, on_input)
                attempt.check()
            except BaseException as error:  # KeyboardInterrupt too: never leave a half-made connection
                conn.close()
                threading.Thread(target=close_when_open, args=(control,), daemon=True).start()
                attempt.check()
                if isinstance(error, (EOFError, ConnectionError, TimeoutError)):
                    raise not_rpyc(address, error) from None
                raise
        except Cancelled:
            raise KeyboardInterrupt from None
        except TimeoutError:
            if attempt.stage in (RPYC_HANDSHAKE, INSTALLING):
                raise not_rpyc(address, attempt.timed_out()) from None
            raise DeviceError(f"{address}: {attempt.timed_out()}") from None
        finally:
            attempt.finish()
        # Larger answers than during the set-up may come now (images, file chunks), and
        # cells may run for hours: wait for them as long as they take.
        conn._channel.limit = MAX_FRAME
        conn._config["sync_request_timeout"] = None
        return cls(address, conn, installed, key, credentials, control)

    def run(self, code: str, filename: str, between: Callable[[], None] | None = None) -> tuple:
        """Run a cell; returns the trailing expression's MIME bundle ((mime, data), ...).

        `between` is called every SERVE_SLICE seconds while the cell runs (comms.py: the
        browser's widget messages reach the running cell).

        Raises CellError for an exception on the device (KeyboardInterrupt
        included), DeviceError when the connection is lost.
        """
        # The interrupt channel must be open before a cell can keep the
        # device's GIL busy, which makes opening it crawl (seconds on a slow board).
        self._control_ready.wait(DEFAULT_TIMEOUT)
        self.idle.clear()
        try:
            result = self._run_serving(code, filename, between)
        except EOFError as error:
            if isinstance(error, OversizedFrame):
                raise DeviceError(f"{self.address} sent more than the kernel takes in one message: {error}") from None
            if self._abandoned:
                raise CellError("KeyboardInterrupt", BLOCKED, ["KeyboardInterrupt: " + BLOCKED]) from None
            raise DeviceError(f"the connection to {self.address} was lost while the cell ran") from None
        finally:
            self.idle.set()
        return cell_result(result)

    def _run_serving(self, code: str, filename: str, between: Callable[[], None] | None) -> tuple:
        if between is None:
            return self._run(code, filename)
        from rpyc import async_

        result = async_(self._run)(code, filename)
        while not result.ready:  # `ready` serves what came in meanwhile (the cell's output)
            self._conn.serve(SERVE_SLICE)
            between()
        return result.value

    def comm_channel(self, on_message: Callable[[tuple], None]) -> Callable[..., Any] | None:
        """The device agent's comms.deliver on the interrupt channel, whose thread on the device serves it
        while a cell runs; `on_message` gets the comm messages of the device's other threads (remote/comms.py),
        in a thread that serves that channel here. Set up on first use; None without the channel."""
        with self._comm_lock:
            if self._deliver_comm is None:
                self._control_ready.wait(DEFAULT_TIMEOUT)
                control = self._control
                if control is None or control.closed:
                    return None
                from rpyc import BgServingThread

                comms = control.eval(f"__import__('sys').modules['{REGISTRY_MODULE}'].agents[{self.key!r}].comms")
                comms.link(on_message)
                self._deliver_comm = comms.deliver
                BgServingThread(control)
            return self._deliver_comm

    def _open_control(self, opening: Callable[[], Any] | None = None) -> None:
        try:
            control = (opening or open_in_background(self.address, self.credentials, self.key))()
            self._interrupt_remote = control.eval(
                f"__import__('sys').modules['{REGISTRY_MODULE}'].agents[{self.key!r}].interrupt"
            )
            control._config["sync_request_timeout"] = INTERRUPT_GRACE
            self._control = control
            if self._closed:  # closed while this thread was connecting
                control.close()
        except Exception as error:
            print(f"xrpyc: no interrupt channel to {self.address}: {error}", file=sys.stderr)
        finally:
            self._control_ready.set()

    def interrupt(self, grace: float = INTERRUPT_GRACE) -> None:
        """Stop the running cell (call from another thread than the one in run()).

        The second connection has the agent raise KeyboardInterrupt in the
        cell (agent._Cell: a signal on an xrpyc-device). If the cell has not
        ended `grace` seconds later, it is blocked in a call the interrupt
        cannot end: the connection is given up so that run() returns, and the
        next cell reconnects to the same namespace.
        """
        self._control_ready.wait(grace)
        if self._control is not None and self._control.closed:  # the device's idle timeout
            self._control_ready.clear()
            self._open_control()
        try:
            if self._interrupt_remote is None:
                raise DeviceError("no interrupt channel")
            self._interrupt_remote()
        except Exception as error:
            print(f"xrpyc: could not interrupt the device at {self.address}: {error}", file=sys.stderr)
        if not self.idle.wait(grace):
            self._abandoned = True
            self.shut_down_link()

    def shut_down_link(self) -> None:
        """Wake every thread that waits on the cell connection: shutdown(), not close(), which leaves
        a thread in poll() asleep. The device's end fails too, and drops this connection's objects."""
        with contextlib.suppress(OSError):
            self._conn._channel.stream.sock.shutdown(socket.SHUT_RDWR)

    def close_link(self) -> None:
        """Close the cell connection only (the next cell or command reconnects: closed is True);
        close() would also say goodbye on the interrupt channel, which waits for a stuck device."""
        self._conn.close()

    @contextlib.contextmanager
    def uncompressed(self) -> Iterator[None]:
        """rpyc's zlib compression off, both ways, for a transfer's duration (transfer.py: it caps
        loopback at ~35 MB/s, and a board's CPU compresses slower than its network sends)."""
        channels = [self._conn._channel]
        with contextlib.suppress(Exception):
            channels.append(self._conn.root._conn._channel)  # the device's end, as in _nagle_on_device_end
        before = [channel.compress for channel in channels]
        for channel in channels:
            channel.compress = False
        try:
            yield
        finally:
            for channel, compress in zip(channels, before):
                with contextlib.suppress(Exception):  # a connection lost meanwhile
                    channel.compress = compress

    @property
    def closed(self) -> bool:
        return self._abandoned or self._conn.closed

    def alive(self) -> bool:
        """False when the device closed the connection while we were idle.

        A zero-timeout check, no round trip: an idle connection has nothing to
        read unless the other end went away (or sent something, served here).
        """
        try:
            while self._conn.poll():
                pass
        except (EOFError, OSError):
            return False
        return not self._conn.closed

    def complete(self, code: str, cursor_pos: int) -> tuple | None:
        """(cursor_start, cursor_end, ((text, type, signature), ...)) from the device (introspect.py).

        None when the device did not answer in time.
        """
        return self._within(COMPLETE_BUDGET, self._complete, code, cursor_pos, COMPLETE_BUDGET)

    def inspect(self, code: str, cursor_pos: int, detail_level: int, budget: float = INSPECT_BUDGET) -> tuple:
        """((mime, text), ...) describing the object at the cursor; () when nothing is known or in time."""
        return self._within(budget, self._inspect, code, cursor_pos, detail_level, budget) or ()

    def help(self, name: str, detail_level: int) -> tuple:
        """`name?` (detail 0) or `name??` (1) in a cell: inspect() with the time a user waits for a cell."""
        return self.inspect(name, len(name), detail_level, HELP_BUDGET)

    def _within(self, budget: float, call: Callable[..., Any], *args: Any) -> Any:
        """call(*args)'s answer if it comes within budget + REPLY_MARGIN seconds, else None.

        A late answer is dropped when it arrives (rpyc hands it to the expired
        AsyncResult), whichever request is waiting then: it cannot be taken
        for the reply to a cell.
        """
        from rpyc import AsyncResultTimeout

        result = call(*args)
        result.set_expiry(budget + REPLY_MARGIN)
        try:
            return result.value
        except AsyncResultTimeout:
            return None

    def is_complete(self, code: str) -> str:
        """is_complete as the device's Python parses it (its version may differ from the kernel's)."""
        return self._agent.is_complete(code)

    def info(self) -> tuple:
        """((label, value), ...) describing the device."""
        facts = tuple(self._agent.device_info())
        return (*facts, ("live view", self.video_url)) if self.video_url else facts

    def close(self, forget: bool = False) -> None:
        """Close the connection; `forget` also drops the namespace on the device."""
        self._closed = True
        with contextlib.suppress(Exception):  # already gone: closing is best effort
            if forget:
                # After an abandoned cell only the control connection is left to say goodbye on:
                # without it, the namespace (and on an xrpyc-device, its worker) would outlive the kernel.
                conn = self._control if self._abandoned and self._control is not None else self._conn
                conn.eval(f"__import__('sys').modules['{REGISTRY_MODULE}'].agents.pop({self.key!r}, None)")
        for conn in (self._conn, self._control):
            with contextlib.suppress(Exception):
                if conn is not None:
                    conn.close()
