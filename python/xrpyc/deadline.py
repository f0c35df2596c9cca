"""One deadline for every stage of reaching a device, which an interrupt can also end.

Socket timeouts alone cannot bound a connection attempt: rpyc's stream reads
retry after a timeout, a peer can trickle bytes, and name lookups ignore them.
So the attempt keeps its sockets and shuts them down when time runs out or the
user interrupts, which wakes whatever thread is blocked on them.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """The user interrupted the attempt."""


class Attempt:
    """A connection attempt with `timeout` seconds for all its stages; `stage` names the current one."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.stage = "connection"
        self.expired = False
        self.cancelled = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self._timer = threading.Timer(timeout, self._end, args=("expired",))
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut `sock` down if the attempt ends before finish()."""
        with self._lock:
            self._sockets.append(sock)
            over = self.expired or self.cancelled
        if over:
            _shut(sock)
        return sock

    def cancel(self) -> None:
        """End the attempt now (from another thread: the interrupt)."""
        self._end("cancelled")

    def finish(self) -> None:
        """The attempt is over (succeeded or failed): its sockets are left alone from now on."""
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def check(self) -> None:
        """Raise Cancelled, or TimeoutError naming the stage, if the attempt has ended."""
        if self.cancelled:
            raise Cancelled()
        if self.expired or self.remaining() <= 0:
            raise TimeoutError(self.timed_out())

    def timed_out(self) -> str:
        return f"no answer within {self.timeout:g} s, during the {self.stage}"

    def run(self, stage: str, call: Callable[[], T]) -> T:
        """call() in a helper thread, for calls that cannot be woken (getaddrinfo): its result, or
        TimeoutError / Cancelled when the attempt ends first (the thread is left to finish alone)."""
        self.stage = stage
        outcome: list[Any] = []
        done = threading.Event()

        def target() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as error:  # handed to the waiting thread
                outcome.append((False, error))
            done.set()
            self._woken.set()

        threading.Thread(target=target, daemon=True).start()
        while not done.is_set():
            self.check()
            self._woken.wait(min(0.05, self.remaining() or 0.05))
            self._woken.clear()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _end(self, how: str) -> None:
        with self._lock:
            if how == "expired":
                self.expired = True
            else:
                self.cancelled = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)
        self._woken.set()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
