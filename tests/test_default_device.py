"""The local default device: used when it runs, started privately when it does not."""

from __future__ import annotations

import contextlib
import socket
import time

import psutil
import pytest
from kernel_client import kernel
from servers import free_port


def private_devices(kernel_pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(kernel_pid).children(recursive=True)
        if "xrpyc.device" in " ".join(child.cmdline())
    ]


def autostart_check(**env: str) -> None:
    with kernel(**env) as running:
        first = running.run("import os\nos.getpid()")
        assert first.status == "ok" and first.stream("stderr") == ""
        # Said plainly (not as an error), once.
        assert "cells run on a private xrpyc-device" in first.stream()
        # The device (a direct child of the kernel), its zygote and the worker that runs this kernel's cells.
        processes = private_devices(running.pid)
        (device,) = [process for process in processes if process.ppid() == running.pid]
        assert int(first.result) in {process.pid for process in processes} - {device.pid}
        second = running.run("'again'")
        assert second.stream() == second.stream("stderr") == ""
        assert second.result == "'again'"
    _, alive = psutil.wait_procs(processes, timeout=10)  # all stopped at kernel shutdown, and reaped
    assert alive == []


def test_autostart_when_nothing_listens_on_the_default_address() -> None:
    autostart_check(XRPYC_DEVICE=f"127.0.0.1:{free_port()}")


def test_autostart_on_the_real_default_port() -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 18812), timeout=0.5):
        pytest.skip("something listens on 127.0.0.1:18812 on this machine")
    autostart_check(XRPYC_DEVICE="")


def test_running_default_device_is_used(device: int) -> None:
    with kernel(device) as running:
        result = running.run("1 + 1")
        assert result.result == "2" and result.stream("stderr") == ""
        assert private_devices(running.pid) == []


def test_explicit_connect_never_autostarts(device: int) -> None:
    with kernel(device) as running:
        result = running.run(f'$connect("127.0.0.1:{free_port()}")')
        assert result.error["ename"] == "DeviceRefused"
        assert private_devices(running.pid) == []


def test_interrupt_signal_while_idle_is_harmless(device: int) -> None:
    with kernel(device) as running:
        running.run("kept = 'yes'")
        for _ in range(5):
            running.km.interrupt_kernel()
        # A signal is asynchronous: let the last one land before the next cell,
        # which it would otherwise (rightly) interrupt.
        time.sleep(0.3)
        assert running.run("kept").result == "'yes'"
