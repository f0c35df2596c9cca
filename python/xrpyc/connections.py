"""The kernel's connections to devices: where cells go, connecting when they need it, and what that says.

The unnamed connection is the default device (XRPYC_DEVICE, or a private
xrpyc-device started for this kernel when nothing listens there) until an
unnamed $connect names another; the named ones are in boards.py. One lock
covers connecting and letting go, whoever does it: a cell, a $ command, or
connect_ahead() in the background at the kernel's start.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Callable, Protocol

from .address import Address, default_address
from .boards import DEFAULT, Boards
from .deadline import Attempt
from .devicemessages import Chunks
from .errors import DeviceError, DeviceRefused
from .link import DEFAULT_TIMEOUT
from .loopback import listener_uids, owner_name
from .security import Credentials, lookup
from .session import Device

if TYPE_CHECKING:
    from .localdevice import PrivateDevice


class DeviceCalls(Protocol):
    """What a device may call in the kernel while connected (shell.py decides where it goes)."""

    device: Device | None  # set once connected; calls during the connection are dropped

    def output(self, chunks: Chunks) -> None: ...

    def input(self, prompt: str, password: bool) -> tuple: ...


class Connections:
    """One kernel's connections: the unnamed one, the named ones (boards), the private device."""

    def __init__(self, write: Callable[[str, str], None], calls: Callable[[Address], DeviceCalls]) -> None:
        """`write(stream name, text)` says what connecting has to say; `calls(address)` receives a new
        connection's calls from its device."""
        self.write = write
        self._calls = calls
        self.device: Device | None = None
        self.private_device: PrivateDevice | None = None
        # Where cells go: the default device until $connect names one.
        self.address: Address = default_address()
        self.explicit = False
        self.credentials: Credentials | None = None  # from $connect; else looked up (security.py)
        # Names this kernel's namespace on devices, across reconnects.
        self.key = os.urandom(16).hex()
        # Devices that hold a namespace of this kernel: reconnecting to one
        # that lost it (it restarted) is worth a notice.
        self._known: set[Address] = set()
        # The connection attempt in progress, which an interrupt ends.
        self._connecting: Attempt | None = None
        # Held by whoever connects or lets go: a cell, $connect, or connect_ahead() in the background.
        self._connection_lock = threading.RLock()
        # What connecting had to say, for the cell that uses the device (connect_ahead() has no cell).
        self._notices: list[tuple[str, str]] = []
        # How connect_ahead() failed, and when: the answer of a cell that was waiting for it.
        self._early_failure: tuple[BaseException, float] | None = None
        # Named connections beside the unnamed one ($connect(..., name=), $use).
        self.boards = Boards(self)

    def _notice(self, name: str, text: str) -> None:
        """Something connecting says: published by the cell that uses the device (ensure_device)."""
        self._notices.append((name, text))

    def connect(
        self, address: Address, timeout: float = DEFAULT_TIMEOUT, credentials: Credentials | None = None
    ) -> Device:
        """Connect to `address` for the next cells ($connect), with a fresh namespace there."""
        if self._connecting is not None:
            self._connecting.cancel()  # connect_ahead() to the default device: not wanted now
        with self._connection_lock:
            self._early_failure = None
            key = os.urandom(16).hex()  # a new namespace, even on the device we had
            device = self.open_device(address, key, timeout, credentials)
            self.disconnect()
            self.device, self.address, self.explicit, self.key = device, address, True, key
            # Kept for reconnects: a token given to $connect is in memory only.
            self.credentials = device.credentials
            self._known.add(address)
        self.say_connected(device)
        return device

    def say_connected(self, device: Device, name: str = "") -> None:
        """The line a $connect answers: what the device is, and its name if it has one."""
        info = dict(device.info())
        trust = " (trusted: its HTML and scripts run in this browser)" if device.credentials.trusted else ""
        named = f" as {name!r}" if name else ""
        self.write("stdout", f"Connected to {device.address}{named}{trust}: {info['machine']}, {info['python']}, "
                             f"rpyc {info['rpyc']}\n")  # fmt: skip

    def disconnect(self) -> None:
        """Close the connection and drop this kernel's namespace on the device."""
        with self._connection_lock:
            if self.device is not None:
                self.device.close(forget=True)
                self._known.discard(self.device.address)
                self.device = None
            self.address, self.explicit, self.credentials = default_address(), False, None

    def connect_ahead(self) -> None:
        """Connect to the default device before the first cell asks (the kernel's start, kernel.py).

        Only to a device that is there: a private device is started by the
        first cell that needs one, since a first `$connect` elsewhere would
        leave it unused. What connecting says waits for the first cell; so
        does a failure, if that cell was already waiting for this attempt
        (otherwise the cell tries again, and reports its own attempt).
        """
        with self._connection_lock:
            if self.device is not None or self.explicit:
                return
            try:
                self.device = self._connect_current(start_private=False)
            except DeviceRefused:
                pass  # nothing there yet: the first cell decides what to do
            except BaseException as error:  # KeyboardInterrupt too: an interrupted first cell
                self._early_failure = (error, time.monotonic())

    def ensure_device(self) -> Device:
        """The device plain cells run on ($use): connects on first use, and again after a loss."""
        return self.device_named(self.boards.current)

    def device_named(self, name: str) -> Device:
        """The connection `name`'s device (DEFAULT: the unnamed one), connected if it was not."""
        if name == DEFAULT:
            return self.default_device()
        device, notice = self.boards.ensure(self.boards.board(name, "$use"))
        self.write("stderr", notice)
        return device

    def default_device(self) -> Device:
        """The unnamed connection's device: connects on first use, and again after a loss."""
        asked = time.monotonic()
        with self._connection_lock:  # a connection being made ahead is waited for
            early, self._early_failure = self._early_failure, None
            if early is not None and early[1] >= asked:
                raise early[0]  # the attempt this cell waited for failed: that is its answer
            try:
                if self.device is not None and not self.device.alive():
                    self.drop_default()  # it went away while we were idle: reconnect quietly
                if self.device is None:
                    self.device = self._connect_current()
            finally:
                notices, self._notices = self._notices, []
                for name, text in notices:
                    self.write(name, text)
            return self.device

    def drop_default(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None

    def drop(self, device: Device) -> None:
        """Let go of `device`'s connection, lost or abandoned, whichever it is (the unnamed one or a board's);
        the namespace stays on the device for the reconnect."""
        if device is self.device:
            self.drop_default()
        for board in self.boards.named.values():
            if board.device is device:
                Boards.drop(board)

    def _connect_current(self, start_private: bool = True) -> Device:
        first = not self._known
        try:
            credentials = self.credentials or lookup(self.address)
        except ValueError as error:
            raise DeviceError(str(error)) from None
        stranger = None if self.explicit or credentials.token else _stranger_listening(self.address)
        try:
            if stranger is not None:
                if os.environ.get("XRPYC_DEVICE"):
                    raise DeviceError(
                        f"{self.address} is served by another user ({stranger}): your cells do not go there. "
                        "If it is yours to use, give its token (XRPYC_TOKEN) or $connect to it explicitly."
                    )
                raise DeviceRefused(f"{self.address} is served by another user ({stranger})")
            device = self.open_device(self.address, self.key, credentials=credentials)
        except DeviceRefused:
            # A private device stands in only for a local default device that
            # never ran; one that went away is waited for, not replaced.
            if not start_private or self.explicit or not self.address.is_loopback or self.address in self._known:
                raise
            device = self._connect_private_device(stranger)
        else:
            if first and not self.explicit and not os.environ.get("XRPYC_DEVICE"):
                self._notice("stdout", f"xrpyc: cells run on the local default device at {self.address}.\n")
        if device.address in self._known and not device.resumed:
            self._notice(
                "stderr",
                f"xrpyc: reconnected to {device.address}. The device restarted: this kernel's namespace there "
                "is new, and variables from before are gone.\n",
            )
        self._known.add(device.address)
        return device

    def _connect_private_device(self, stranger: str | None = None) -> Device:
        if self.private_device is None or not self.private_device.running:
            restarted = self.private_device is not None
            from .localdevice import PrivateDevice  # ctypes, subprocess: not on the first cell's path

            self.private_device = PrivateDevice.start()
            where = f"a private xrpyc-device at {self.private_device.address}, started for this kernel"
            if restarted:
                self._notice("stderr", f"xrpyc: the private xrpyc-device had stopped (its namespace is gone); "
                                       f"cells now run on {where}.\n")  # fmt: skip
            else:
                why = f"served by another user, {stranger}" if stranger else "nothing listens there"
                self._notice("stdout", f"xrpyc: cells run on {where} ({self.address}: {why}).\n")
        return self.open_device(self.private_device.address, self.key, credentials=self.private_device.credentials)

    def open_device(
        self,
        address: Address,
        key: str,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
        attempt: Attempt | None = None,
    ) -> Device:
        """Connect to `address` for namespace `key`; within `attempt` when given (an $on cell's
        device, in its own thread), else within the kernel's one connection attempt."""
        calls = self._calls(address)
        own = attempt is None  # the kernel's one attempt, which an interrupt cancels
        if own:
            attempt = self._connecting = Attempt(timeout)
        try:
            calls.device = Device.connect(address, key, calls.output, timeout, credentials, calls.input, attempt)
        finally:
            if own:
                self._connecting = None
        return calls.device

    def introspection_device(self) -> Device:
        """The device for Tab and Shift-Tab: the connected one; connecting is left to cells.

        Reaching a board that went away takes up to the connect timeout (5 s), too long for a
        keystroke. Only the local default device is connected to here: it answers at once.
        """
        if self.boards.current != DEFAULT:
            device = self.boards.named[self.boards.current].device
            if device is not None and not device.closed and device.alive():
                return device
            raise DeviceError("not connected; the next cell reconnects")
        if self.device is not None and self.device.alive():
            return self.device
        if self.explicit or not self.address.is_loopback:
            raise DeviceError("not connected; the next cell reconnects")
        return self.ensure_device()

    def current_device(self) -> Device | None:
        """The device plain cells run on if it is connected ($use); None without connecting."""
        return self.device if self.boards.current == DEFAULT else self.boards.named[self.boards.current].device

    def cancel_attempt(self) -> bool:
        """Cancel the connection attempt in progress (it raises KeyboardInterrupt); False when there is none."""
        attempt = self._connecting
        if attempt is None:
            return False
        attempt.cancel()
        return True

    def close(self) -> None:
        """At the kernel's shutdown: every connection closed, this kernel's namespaces dropped, the private
        device stopped."""
        self.cancel_attempt()  # a connection still being made ahead
        with self._connection_lock:
            self.disconnect()  # also drops this kernel's namespace on the device
            self.boards.close_all()
            if self.private_device is not None:
                self.private_device.stop()
                self.private_device = None


def _stranger_listening(address: Address) -> str | None:
    """The name of another user whose process listens on loopback `address`, if one does.

    Root counts as no stranger: it can reach into every process of the host anyway.
    """
    if not address.is_loopback:
        return None
    others = (listener_uids(address.host, address.port) or set()) - {os.getuid(), 0}
    return ", ".join(sorted(owner_name(uid) for uid in others)) or None
