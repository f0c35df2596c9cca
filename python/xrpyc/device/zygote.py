"""The process that forks an `xrpyc-device`'s workers: forked itself before the device starts any thread.

Forking a process that runs threads copies locks some other thread held
(logging's, the allocator's...) into a child where nobody will ever release
them. So the device forks this zygote first, while it is still one thread and
has read neither its token nor its TLS key (a worker runs whatever a kernel
sends: it must not find them in its memory), with rpyc and the device
modules already imported, so that a worker starts in about a millisecond and
shares their pages.

Why not multiprocessing's forkserver: it is an exec'd interpreter, so it
would be traceable by other processes of the user (PR_SET_DUMPABLE is not
inherited across exec) unless a preloaded module set it as an import side
effect; and its children are its own, behind a pickle protocol. This is the
same idea in sixty lines, with the dispatcher's settings inherited.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import threading
import time
from typing import NoReturn

from ..session import keep_agent_compiled
from . import worker

# Imported before the fork, shared by every worker (copy-on-write): rpyc, and what
# the kernels' device-side modules (python/xrpyc/remote) import on a device. Those
# modules themselves are installed here too (session.keep_agent_compiled).
PRELOAD = (
    "rpyc", "rpyc.utils.classic", "rpyc.core.channel", "rpyc.core.stream", "xrpyc.device.display",
    "ast", "getpass", "glob", "hashlib", "platform", "shutil",
)  # fmt: skip


class Zygote:
    """The dispatcher's handle on the zygote: `spawn()` a worker, `stop()` them all."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._lock = threading.Lock()

    @classmethod
    def start(cls) -> Zygote:
        """Fork the zygote; call while this process has a single thread."""
        import importlib

        for name in PRELOAD:
            importlib.import_module(name)
        keep_agent_compiled()
        # What exists now is shared with every worker: keep the collector from writing
        # to it (its bookkeeping would copy those pages into each worker).
        gc.freeze()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _serve(theirs, parent)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, settings: dict) -> socket.socket:
        """A new worker; returns our end of its control socket (see worker.py). OSError when the zygote has gone."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                socket.send_fds(self._sock, [json.dumps(settings).encode()], [theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def stop(self, timeout: float = 2.0) -> None:
        """End every worker, then the zygote (which kills and reaps them once our socket closes)."""
        self._sock.close()
        deadline = time.monotonic() + timeout
        try:
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)  # its workers die with it (PR_SET_PDEATHSIG)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.01)
        except ChildProcessError:
            pass


def _serve(sock: socket.socket, parent: int) -> NoReturn:
    try:
        worker.prctl(worker._PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the device died before prctl took effect
            os._exit(0)
        # Ctrl-C in a terminal reaches the whole process group: the device stops, then its workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        workers: set[int] = set()

        def reap(*_: object) -> None:
            with contextlib.suppress(ChildProcessError):
                while True:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        return
                    workers.discard(pid)

        # Reaped as they end (no zombies), and only live ones are in `workers`: a pid
        # to kill is never one the system has given to another process since.
        signal.signal(signal.SIGCHLD, reap)
        os.environ.pop("XRPYC_TOKEN", None)
        while True:
            message, fds, _, _ = socket.recv_fds(sock, 4096, 1)
            if not message:  # the device is stopping, or has gone
                break
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                sock.close()
                worker.main(socket.socket(fileno=fds[0]), json.loads(message))
            workers.add(pid)
            os.close(fds[0])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(workers):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)
    finally:
        os._exit(1)
