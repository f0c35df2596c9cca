"""The default device is connected to while the kernel starts (Connections.connect_ahead), and that never costs a cell.

The first cell finds the connection made; a cell that waits for an attempt that hangs can be interrupted; a first
`$connect` elsewhere does not wait for it; a failed attempt is the answer of the cell that waited for it (one
wait, not two), and an attempt that failed before any cell came is tried again by the first cell.
"""

from __future__ import annotations

import socket
import time

import psutil
from kernel_client import kernel
from servers import free_port, tcp_service, xrpyc_device
from xrpyc.link import DEFAULT_TIMEOUT

DEADLINE = 20.0  # s, for what must happen without a cell asking


def silent(conn: socket.socket) -> None:
    """A peer that accepts and never says a word."""


def connected_to(pid: int, port: int) -> bool:
    return any(
        c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
        for c in psutil.Process(pid).net_connections("tcp")
    )


def reply_of(running, msg_id: str) -> dict:
    reply = running.kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply


def test_the_device_is_connected_to_before_the_first_cell() -> None:
    with xrpyc_device() as port, kernel(port) as running:
        deadline = time.monotonic() + DEADLINE
        while not connected_to(running.pid, port):
            assert time.monotonic() < deadline, "no connection to the device without a cell"
            time.sleep(0.05)
        result = running.run("import os; os.getpid() != 0")
        assert result.status == "ok" and result.result == "True"
        assert result.stream("stderr") == ""


def test_a_first_cell_waiting_for_a_hanging_attempt_is_interrupted() -> None:
    with tcp_service(silent) as port, kernel(port) as running:
        msg_id = running.kc.execute("1 + 1")
        time.sleep(0.5)
        interrupted = time.monotonic()
        running.km.interrupt_kernel()
        reply = reply_of(running, msg_id)
        assert time.monotonic() - interrupted < DEFAULT_TIMEOUT - 1, "the interrupt did not end the wait"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        with xrpyc_device() as device:
            result = running.run(f'$connect("127.0.0.1:{device}")\n6 * 7')
            assert result.status == "ok" and result.result == "42"


def test_a_first_connect_elsewhere_does_not_wait_for_the_default_device() -> None:
    with tcp_service(silent) as port, xrpyc_device() as device, kernel(port) as running:
        started = time.monotonic()
        result = running.run(f'$connect("127.0.0.1:{device}")\n6 * 7')
        assert result.status == "ok" and result.result == "42", result.messages
        assert time.monotonic() - started < DEFAULT_TIMEOUT - 1, "$connect waited for the attempt ahead"
        assert running.run("6 * 7").result == "42"


def test_the_attempt_a_first_cell_waited_for_is_its_answer() -> None:
    with tcp_service(silent) as port, kernel(port) as running:
        started = time.monotonic()
        result = running.run("1 + 1")
        waited = time.monotonic() - started
        assert result.status == "error"
        assert f"no answer within {DEFAULT_TIMEOUT:g} s" in result.error["evalue"], result.error
        # One attempt (begun at the kernel's start), not that one and then another of the cell's own.
        assert waited < 2 * DEFAULT_TIMEOUT - 1, waited


def test_a_device_that_comes_after_the_start_is_connected_to_by_the_first_cell() -> None:
    port = free_port()
    with kernel(port) as running:
        time.sleep(1)  # the attempt at the start found nothing there
        with xrpyc_device(port):
            result = running.run("6 * 7")
            assert result.status == "ok" and result.result == "42", result.messages
