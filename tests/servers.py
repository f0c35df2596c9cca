"""Real device servers for the tests: separate processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def xrpyc_device() -> Iterator[int]:
    """Our `xrpyc-device` on a free port (read from its READY line)."""
    process = subprocess.Popen(
        [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("READY rpyc://127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        stop(process)


@contextlib.contextmanager
def stock_rpyc_classic() -> Iterator[int]:
    """rpyc's own `rpyc_classic` server, as on a board with nothing of ours installed."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "rpyc_classic"), "--host", "127.0.0.1", "--port", str(port), "-q"])
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)
