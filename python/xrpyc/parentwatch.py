"""The kernel exits when the Jupyter server that started it dies, as ipykernel's ParentPollerUnix does.

A server that is killed (SIGKILL, the OOM killer, a crash) cannot shut its kernels down. jupyter_client
hands every kernel it launches its own PID in JPY_PARENT_PID; once our parent is no longer that
process (we were handed to init or to a subreaper), nobody can reach this kernel any more: stop what
it started and exit. Polling getppid() is immune to PID reuse (a parent's PID that comes back names
another process, but we are no longer its child) and costs one system call a second.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

POLL_INTERVAL = 1.0  # seconds, as ipykernel


def watch_parent(on_orphaned: Callable[[], None], interval: float = POLL_INTERVAL) -> threading.Thread | None:
    """Start a daemon thread that calls `on_orphaned`, then ends the process, once the parent is gone.

    Nothing is watched without JPY_PARENT_PID (a kernel started by hand), or when it names PID 1
    (init never exits). When our parent is not the process JPY_PARENT_PID names (a wrapper started
    us), its death is seen as being handed to PID 1, as ipykernel does.
    """
    try:
        named = int(os.environ.get("JPY_PARENT_PID", ""))
    except ValueError:
        return None
    if named <= 1:
        return None
    parent = named if os.getppid() == named else None
    thread = threading.Thread(
        target=_watch, args=(parent, on_orphaned, interval), name="xrpyc-parent-watch", daemon=True
    )
    thread.start()
    return thread


def _orphaned(parent: int | None) -> bool:
    return os.getppid() != parent if parent is not None else os.getppid() == 1


def _watch(parent: int | None, on_orphaned: Callable[[], None], interval: float) -> None:
    while not _orphaned(parent):
        time.sleep(interval)
    try:
        on_orphaned()
        sys.stderr.write("xrpyc: the Jupyter server that started this kernel is gone; the kernel exits.\n")
        sys.stderr.flush()
    except Exception:
        pass  # exiting matters more than saying why (stderr may have gone with the server)
    finally:
        # Not sys.exit(): the main thread may be inside a cell, and C++ holds xeus' sockets.
        os._exit(1)
