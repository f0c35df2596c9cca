"""Real device servers for the tests: separate processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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


def stop(process: subprocess.Popen, timeout: float = 5) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit within `timeout`."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
DEBIAN_RPYC_CLASSIC = Path("/usr/bin/rpyc_classic")  # Debian 12's python3-rpyc: rpyc 5.3.0


def start_announcing(
    command: list[str], timeout: float = 120, stderr: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a server that prints `READY <url> ...` once it listens; returns it and that URL.

    Other lines before it are skipped; a server that exits or stays silent past `timeout` is stopped.
    The pipe is read with os.read, not readline: a file object would buffer lines that select()
    then no longer reports.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline and selector.select(deadline - time.monotonic()):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.startswith(b"READY "):
                    return process, line.split()[1].decode()
    stop(process)
    raise RuntimeError(f"{command[0]} did not get ready")


def start_ready_server(
    command: list[str], host: str = "127.0.0.1", timeout: float = 120, stderr: int | None = None
) -> tuple[subprocess.Popen, int]:
    """Start an rpyc server that prints `READY rpyc://HOST:PORT`; returns it and its port."""
    process, url = start_announcing(command, timeout, stderr)
    if not url.startswith(f"rpyc://{host}:"):
        stop(process)
        raise RuntimeError(f"{command[0]} listens on {url}, not on {host}")
    return process, int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def device_process(*options: str, stderr: int | None = None) -> Iterator[tuple[int, subprocess.Popen]]:
    """An `xrpyc-device` with `options` on a free loopback port (no MJPEG stream unless asked); yields its port and
    process."""
    command = [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "0", *options]
    process, port = start_ready_server(command, stderr=stderr)
    try:
        yield port, process
    finally:
        stop(process)


@contextlib.contextmanager
def full_listener() -> Iterator[int]:
    """A port that never accepts, with its queue full: SYNs go unanswered (a TCP connect there hangs)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", server.getsockname()[1]))
            fillers.append(filler)
        try:
            yield server.getsockname()[1]
        finally:
            for filler in fillers:
                filler.close()


@contextlib.contextmanager
def xrpyc_device(port: int = 0, *options: str) -> Iterator[int]:
    """Our `xrpyc-device` (on a free port unless given; no MJPEG stream unless `options` ask)."""
    process, actual = start_ready_server(
        [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", str(port), "--mjpeg-port", "0", *options]
    )
    try:
        yield actual
    finally:
        stop(process)


def start_classic(program: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([str(program), "--host", "127.0.0.1", "--port", str(port), "-q"])
    wait_for_port(port, process)
    return process


@contextlib.contextmanager
def stock_rpyc_classic(program: Path = BIN / "rpyc_classic") -> Iterator[int]:
    """rpyc's own `rpyc_classic` server, as on a board with nothing of ours installed."""
    port = free_port()
    process = start_classic(program, port)
    try:
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def tcp_service(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP service on 127.0.0.1 that is not rpyc: `answer` handles each connection, held open until the end."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                accepted.append(conn)
                with contextlib.suppress(OSError):
                    answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in accepted:
            conn.close()
