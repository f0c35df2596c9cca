"""Devices that die, restart, vanish or are not rpyc at all: clear errors, and the kernel lives on."""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest
from kernel_client import kernel
from servers import BIN, DEBIAN_RPYC_CLASSIC, free_port, start_classic, stock_rpyc_classic, stop, tcp_service


def test_device_killed_mid_cell_then_back() -> None:
    port = free_port()
    device = start_classic(BIN / "rpyc_classic", port)
    try:
        with kernel(port) as running:
            running.run("before = 1")
            msg_id = running.kc.execute("import time\nprint('running', flush=True)\ntime.sleep(30)")
            while True:
                msg = running.kc.get_iopub_msg(timeout=10)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                    break
            killed = time.monotonic()
            os.kill(device.pid, signal.SIGKILL)
            device.wait()
            reply = running.kc.get_shell_msg(timeout=10)["content"]
            assert time.monotonic() - killed < 2
            assert reply["status"] == "error" and "lost" in reply["evalue"]
            # Not back yet: a clear error, and the kernel is fine.
            down = running.run("1")
            assert down.status == "error" and "connection refused" in down.error["evalue"]
            device = start_classic(BIN / "rpyc_classic", port)
            back = running.run("print('back')\n'before' in globals()")
            assert back.status == "ok" and back.result == "False"
            assert "namespace there is new" in back.stream("stderr")
            assert running.run("1 + 1").stream("stderr") == ""  # said once
    finally:
        stop(device)


def test_device_restarted_while_idle_is_reconnected_transparently() -> None:
    port = free_port()
    device = start_classic(BIN / "rpyc_classic", port)
    try:
        with kernel(port) as running:
            running.run("x = 1")
            stop(device)
            device = start_classic(BIN / "rpyc_classic", port)
            result = running.run("x = 2\nx")
            assert result.status == "ok" and result.result == "2"
            assert "restarted" in result.stream("stderr")
    finally:
        stop(device)


def answer_like_a_web_server(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.close()


BEHAVIOURS = {"silent": lambda conn: None, "http": answer_like_a_web_server}


@pytest.mark.parametrize("behaviour", ["silent", "http"])
def test_a_service_that_is_not_rpyc(stock_device: int, behaviour: str) -> None:
    with tcp_service(BEHAVIOURS[behaviour]) as port, kernel(stock_device) as running:
        started = time.monotonic()
        result = running.run(f'$connect("127.0.0.1:{port}", timeout=1)')
        assert time.monotonic() - started < 4
        assert result.status == "error" and result.error["ename"] == "DeviceError"
        assert "does not answer as an rpyc classic server" in result.error["evalue"]
        assert running.run("1 + 1").result == "2"  # still on the device it had


@pytest.mark.skipif(not DEBIAN_RPYC_CLASSIC.exists(), reason="Debian's python3-rpyc is not installed")
def test_rpyc5_device_from_debian() -> None:
    with stock_rpyc_classic(DEBIAN_RPYC_CLASSIC) as port, kernel(port) as running:
        info = running.run("$device()").stream()
        assert re.search(r"^rpyc +5\.", info, re.MULTILINE), info
        result = running.run("import rpyc, sys\nprint('on', rpyc.__version__)\nsys.version_info[:2]")
        assert result.stream().startswith("on 5.") and result.result.startswith("(3, ")
        assert running.run("1/0").error["ename"] == "ZeroDivisionError"
        running.run("kept = 7")
        from test_interrupt import assert_interrupted, interrupt_after_start

        content, _, _ = interrupt_after_start(running, "print('started')\nwhile True: pass")
        assert_interrupted(content)
        assert running.run("kept").result == "7"


def test_both_generations_from_one_kernel(device: int) -> None:
    if not DEBIAN_RPYC_CLASSIC.exists():
        pytest.skip("Debian's python3-rpyc is not installed")
    with stock_rpyc_classic(DEBIAN_RPYC_CLASSIC) as old, kernel(device) as running:
        for port, major in ((old, "5"), (device, "6"), (old, "5")):
            result = running.run(f'$connect("127.0.0.1:{port}")\nimport rpyc\nrpyc.__version__[0]')
            assert result.result == repr(major)
