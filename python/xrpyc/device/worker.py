"""One worker process of an `xrpyc-device`: serves the connections of one kernel (or of all token-less peers).

rpyc classic gives each peer all of Python, so whatever shares a process with
a kernel's namespace can reach it (the agents registry, gc, frames). The
dispatcher (server.py, guard.py) therefore hands every kernel's connections to
a process of their own, forked by the zygote (zygote.py). Here each connection
is served by a thread running rpyc's SlaveService; a kernel's cell runs in
the process's main thread (`MainThread`), where a signal can interrupt it.

The control socket to the dispatcher carries, towards the worker, one byte per
message: b"C" with a connection's file descriptor, b"G" (go: exit now); and
towards the dispatcher, length-prefixed messages (`pack`): frames that
display.show() stored, for the dispatcher's MJPEG server, and the wish to
exit with the number of connections received so far, which the dispatcher
grants only if it has handed over no other connection meanwhile.

Lifetime: the worker lives while a peer of one of its connections is there
(a thread blocked in a cell whose kernel has gone does not count). Once none
is, it exits at once if no kernel's agent is left (the kernel said goodbye),
else after the grace period, for a kernel that lost its link to come back to
its namespace. Exiting ends every thread, blocked or not: nothing of a
departed kernel keeps running.

Interrupts: a KeyboardInterrupt raised asynchronously in a thread fires only
between bytecodes, so a cell blocked in time.sleep or a socket read went on
blocking. A signal interrupts the system call, but Python runs signal handlers
(and PEP 475 gives up retrying the call) only in the main thread. So the
control socket is read by a thread, and the main thread runs cells: the agent
(remote/agent.py) hands a cell to `MainThread.call` when it finds it in the registry
module, and interrupts it with SIGINT (signal.pthread_kill). SIGINT is ignored
here except while a cell runs (the agent installs its handler for the cell),
so a late one hits nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import select
import signal
import socket
import struct
import threading
import time
from typing import Any, Callable, NoReturn

from ..remote import registry
from . import mjpeg

log = logging.getLogger("xrpyc-device")

CONNECTION = b"C"
GO = b"G"
FRAME = b"F"
EXIT = b"X"
HEADER = struct.Struct("!cI")  # kind, length of what follows
COUNT = struct.Struct("!Q")
WATCH_INTERVAL = 0.5  # s between checks for connections whose peer has gone
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_GONE = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)


def pack(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def prctl(option: int, value: int) -> None:
    """Linux prctl(); nothing elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value)


def forbid_tracing() -> None:
    """No other process of this user may ptrace this one or read its memory (/proc/PID/mem): Linux."""
    prctl(_PR_SET_DUMPABLE, 0)


class MainThread:
    """Runs one function at a time in the process's main thread, for other threads (`call`).

    The agent runs cells here, so that a signal reaches them (see the module's
    docstring); it finds this object as `main_thread` in the agents registry
    module (remote/registry.py). Several kernels share the
    token-less worker: while one's cell runs here, `call` declines, and the
    others' cells run in their connection's thread, as on a stock server.
    """

    def __init__(self) -> None:
        self.ident = threading.main_thread().ident
        self._lock = threading.Lock()
        self._busy = False
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()

    def call(self, function: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, function()) run in the main thread, waited for; (False, None) at once when it is busy.

        What function() raises is raised here.
        """
        with self._lock:
            if self._busy:
                return (False, None)
            self._busy = True
        job = _Job(function)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return (True, job.result)

    def serve(self) -> NoReturn:
        """The main thread's life: run the jobs, one by one."""
        while True:
            job = self._jobs.get()
            try:
                job.result = job.function()
            except BaseException as error:  # the caller's to see; the main thread goes on
                job.error = error
            with self._lock:
                self._busy = False
            job.done.set()


class _Job:
    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class Worker:
    def __init__(self, control: socket.socket, idle_timeout: float, grace: float) -> None:
        self._control = control
        self._idle_timeout = idle_timeout
        self._grace = grace
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._received = 0

    def run(self) -> NoReturn:
        main_thread = MainThread()
        registry.shared().main_thread = main_thread  # agent.run gives it the cells
        threading.Thread(target=self._forward_frames, name="xrpyc-frames", daemon=True).start()
        threading.Thread(target=self._watch, name="xrpyc-lifetime", daemon=True).start()
        threading.Thread(target=self._receive, name="xrpyc-control", daemon=True).start()
        main_thread.serve()

    def _receive(self) -> NoReturn:
        """Connections from the dispatcher, until it lets us go or has gone."""
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._control, 1, 4)
            except OSError:
                message, fds = b"", []
            if message == CONNECTION and len(fds) == 1:
                self._start(socket.socket(fileno=fds[0]))
                continue
            for fd in fds:
                os.close(fd)
            if message in (b"", GO):  # the dispatcher has gone, or lets us go
                os._exit(0)

    def _start(self, sock: socket.socket) -> None:
        thread = threading.Thread(target=self._serve, args=(sock,), name="xrpyc-connection", daemon=True)
        with self._lock:
            self._received += 1
            self._connections[sock] = thread
        thread.start()

    def _serve(self, sock: socket.socket) -> None:
        from rpyc.core.channel import Channel
        from rpyc.core.stream import SocketStream
        from rpyc.utils.classic import SlaveService

        try:
            conn = SlaveService._connect(Channel(SocketStream(sock)), {"logger": log})
            last = time.monotonic()
            while not conn.closed:
                try:
                    if conn.serve(1.0):
                        last = time.monotonic()
                    elif time.monotonic() - last > self._idle_timeout:
                        log.info("closing a connection idle for %.0f s", self._idle_timeout)
                        break
                except EOFError:
                    break
            conn.close()
        except Exception as error:  # a broken peer: end this connection, not the worker
            log.info("a connection failed: %s", error)
        finally:
            # shutdown(), not only close(): the dispatcher holds the same socket, and the peer must see the end.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self._lock:
                self._connections.pop(sock, None)

    def _live(self) -> int:
        """How many connections still have a peer."""
        with self._lock:
            sockets = list(self._connections)
        poller = select.poll()
        for sock in sockets:
            with contextlib.suppress(OSError, ValueError):
                poller.register(sock, _GONE)
        gone = sum(1 for _, events in poller.poll(0) if events & _GONE)
        return len(sockets) - gone

    def _watch(self) -> None:
        idle_since: float | None = None
        asked = -1
        while True:
            time.sleep(WATCH_INTERVAL)
            if self._live():
                idle_since = None
                continue
            now = time.monotonic()
            idle_since = idle_since or now
            goodbye = not registry.shared().agents
            with self._lock:
                received = self._received
            if (goodbye or now - idle_since >= self._grace) and received != asked:
                asked = received
                self._send(pack(EXIT, COUNT.pack(received)))

    def _forward_frames(self) -> None:
        """display.show()'s frames to the dispatcher's MJPEG server.

        A slow dispatcher makes this thread skip frames; it never blocks show().
        """
        last = 0
        while True:
            frame = mjpeg.default_holder.wait_newer(last, timeout=60.0)
            if frame is not None:
                last = frame.number
                self._send(pack(FRAME, frame.jpeg))

    def _send(self, message: bytes) -> None:
        with self._send_lock:
            try:
                self._control.sendall(message)
            except OSError:
                os._exit(0)  # the dispatcher has gone


def main(control: socket.socket, settings: dict[str, Any]) -> NoReturn:
    """The worker's life, in a process just forked from the zygote."""
    try:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the zygote gone (the device stopped): so are we
        forbid_tracing()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it; cells' subprocesses need it
        # Between cells (and in the zygote, the terminal's Ctrl-C): the agent's handler only while a cell runs.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        mjpeg.serving_port = settings["mjpeg_port"]  # agent.live_view() reads it: the dispatcher's view
        Worker(control, settings["idle_timeout"], settings["grace"]).run()
    finally:
        os._exit(1)
