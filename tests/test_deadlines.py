"""`$connect(..., timeout=T)` ends within T + 0.3 s whichever stage hangs, and its message names the stage and T.

Each stage is made to hang by a real peer on 127.0.0.1: a resolver that never answers (the kernel in
a mount namespace of its own, whose /etc/resolv.conf names a silent UDP port), a listener whose
queue is full, one that accepts and says nothing, one that trickles bytes, an rpyc server that
hangs while the agent is installed. The time is the kernel's own (its busy status to its reply),
so a slow test machine does not count against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_client import RunningKernel, kernel
from servers import free_port, full_listener, stop, tcp_service, wait_for_port

T = 2.0
MARGIN = 0.3  # what the attempt may take beyond its timeout


def connect_timed(running: RunningKernel, target: str, **options: object) -> tuple[float, str]:
    """(seconds the kernel spent on `$connect(target, timeout=T, ...)`, its error message)."""
    arguments = "".join(f", {name}={value!r}" for name, value in options.items())
    return kernel_time(running, running.kc.execute(f"$connect({target!r}, timeout={T}{arguments})"))


def kernel_time(running: RunningKernel, msg_id: str) -> tuple[float, str]:
    """(seconds from the kernel's busy status to its reply for `msg_id`, the error message it sent)."""
    busy = error = None
    while True:
        msg = running.kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy":
            busy = msg["header"]["date"]
        elif msg["msg_type"] == "error":
            error = msg["content"]["evalue"]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = running.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id and busy is not None
    assert error is not None, "the cell did not fail"
    return (reply["header"]["date"] - busy).total_seconds(), error


def assert_times_out(running: RunningKernel, target: str, stage: str, **options: object) -> None:
    elapsed, message = connect_timed(running, target, **options)
    assert f"no answer within {T:g} s, during the {stage}" in message, message
    assert elapsed <= T + MARGIN, (elapsed, message)
    assert running.run("'still here'").result == "'still here'"


@pytest.fixture(scope="module")
def running(stock_device: int) -> Iterator[RunningKernel]:
    with kernel(stock_device) as started:
        yield started


def trickle(conn: socket.socket) -> None:
    """A peer that answers byte by byte, slower than any deadline."""
    while True:
        conn.sendall(b"\x00")
        time.sleep(0.2)


def test_tcp_connect(running: RunningKernel) -> None:
    with full_listener() as port:
        assert_times_out(running, f"127.0.0.1:{port}", "TCP connect")


def test_silent_listener(running: RunningKernel) -> None:
    with tcp_service(lambda conn: None) as port:
        assert_times_out(running, f"127.0.0.1:{port}", "rpyc handshake", token="")


def test_trickling_handshake(running: RunningKernel) -> None:
    with tcp_service(trickle) as port:
        assert_times_out(running, f"127.0.0.1:{port}", "rpyc handshake", token="")


def test_silent_tls_handshake(running: RunningKernel) -> None:
    with tcp_service(lambda conn: None) as port:
        assert_times_out(running, f"127.0.0.1:{port}", "TLS handshake", token="", tls=True)


def test_token_exchange_shorter_than_the_challenge_wait(running: RunningKernel) -> None:
    # A device asks for its token at once; T below CHALLENGE_WAIT leaves the deadline in charge.
    global T
    saved, T = T, 0.5
    try:
        with tcp_service(lambda conn: None) as port:
            assert_times_out(running, f"127.0.0.1:{port}", "token exchange", token="secret")
    finally:
        T = saved


HANGING_INSTALL = textwrap.dedent(
    """
    import builtins, sys, time
    from rpyc.core.service import SlaveService
    from rpyc.utils.server import ThreadedServer

    real_compile = builtins.compile

    def compile(source, *args, **kwargs):  # a board that stalls while the agent is compiled
        if isinstance(source, str) and "xrpyc" in source:
            time.sleep(600)
        return real_compile(source, *args, **kwargs)

    builtins.compile = compile
    ThreadedServer(SlaveService, hostname="127.0.0.1", port=int(sys.argv[1])).start()
    """
)


def test_device_stalls_while_the_agent_is_installed(running: RunningKernel, tmp_path: Path) -> None:
    script = tmp_path / "stalling_device.py"
    script.write_text(HANGING_INSTALL)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        wait_for_port(port, process)
        assert_times_out(running, f"127.0.0.1:{port}", "installing the agent", token="")
    finally:
        stop(process)


# -- a name server that never answers ------------------------------------------------------------

SILENT_RESOLVER = "127.0.0.77"  # on loopback: nothing leaves the machine


@contextlib.contextmanager
def silent_resolver() -> Iterator[None]:
    """A UDP port 53 that takes queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SILENT_RESOLVER, 53))
    try:
        yield
    finally:
        sock.close()


@contextlib.contextmanager
def kernel_with_resolv_conf(
    resolv_conf: Path, device_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningKernel]:
    """The xrpyc kernel in a mount namespace of its own, where /etc/resolv.conf is `resolv_conf`.

    Same network as the test (its ZMQ ports, the device): only name lookups differ.
    """
    spec_dir = tmp_path / "kernels" / "xrpyc-silent-dns"
    spec_dir.mkdir(parents=True)
    mount = f'mount --bind {resolv_conf} /etc/resolv.conf && exec "$0" "$@"'
    argv = ["unshare", "--mount", "sh", "-c", mount, sys.executable, "-m", "xrpyc", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "xrpyc, silent DNS", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("JUPYTER_PATH")])))
    with kernel(device_port, kernel_name="xrpyc-silent-dns") as started:
        yield started


def test_name_lookup_that_hangs(stock_device: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a mount namespace")
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(f"nameserver {SILENT_RESOLVER}\noptions timeout:30 attempts:1\n")
    with silent_resolver(), kernel_with_resolv_conf(resolv_conf, stock_device, tmp_path, monkeypatch) as running:
        # glibc's own lookup would take 30 s here (the resolver's timeout); the attempt gives up at T.
        assert_times_out(running, "board.example:18812", "name lookup")
        # A second lookup while the first one's helper thread still waits on the resolver.
        assert_times_out(running, "other-board.example", "name lookup")


@pytest.mark.parametrize("timeout", [0.5, T])
def test_peer_that_hangs_up_then_stays_silent(running: RunningKernel, timeout: float) -> None:
    """The handshake fails at once; asking the peer why (an xrpyc-device says so) stays within the deadline."""
    connections = []

    def hang_up_first(conn: socket.socket) -> None:
        connections.append(conn)
        if len(connections) == 1:
            conn.close()

    with tcp_service(hang_up_first) as port:
        msg_id = running.kc.execute(f'$connect("127.0.0.1:{port}", timeout={timeout}, token="")')
        elapsed, message = kernel_time(running, msg_id)
    assert "does not answer as an rpyc classic server" in message, message
    assert elapsed <= timeout + MARGIN, (elapsed, message)
