"""Interrupts: Jupyter's SIGINT stops the code on the device, and the session lives on."""

from __future__ import annotations

import signal
import statistics
import threading
import time
from typing import Any

import psutil
import pytest
from kernel_client import RunningKernel, kernel


def interrupt_after_start(running: RunningKernel, code: str, marker: str = "started") -> tuple[dict, float, str]:
    """Run `code` (which prints `marker` once it is under way), interrupt it.

    Returns (execute_reply content, seconds from the interrupt to the reply, stdout).
    """
    kc = running.kc
    msg_id = kc.execute(code)
    out: list[str] = []
    deadline = time.monotonic() + 30
    while marker not in "".join(out):
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
    sent = time.monotonic()
    running.km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    latency = time.monotonic() - sent
    assert reply["parent_header"]["msg_id"] == msg_id
    while True:  # the rest of the cell's output, up to idle
        msg = kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], latency, "".join(out)


def assert_interrupted(content: dict[str, Any]) -> None:
    assert content["status"] == "error"
    assert content["ename"] == "KeyboardInterrupt"


def device_threads(running: RunningKernel) -> psutil.Process:
    """The device process that runs this kernel's cells (after a cell: the interrupt channel is open)."""
    return psutil.Process(int(running.run("import os\nos.getpid()").result))


def test_busy_loop_is_interrupted_and_namespace_survives(stock_device: int) -> None:
    with kernel(stock_device) as running:
        running.run("kept = 'still here'")
        content, latency, _ = interrupt_after_start(running, "print('started')\nwhile True:\n    pass")
        assert_interrupted(content)
        assert latency < 1.0
        # Only the user's frame in the traceback.
        assert any("In[" in line for line in content["traceback"])
        assert running.run("kept").result == "'still here'"


def test_printing_loop_keeps_its_output(stock_device: int) -> None:
    with kernel(stock_device) as running:
        code = "import itertools\nfor i in itertools.count():\n    print('started', i)"
        content, _, out = interrupt_after_start(running, code)
        assert_interrupted(content)
        lines = out.splitlines()
        assert lines[: len(lines) - 1] == [f"started {i}" for i in range(len(lines) - 1)]  # in order, none lost
        assert running.run("i > 0").result == "True"


def test_blocking_sleep_on_a_stock_server_is_interrupted_at_once(stock_device: int) -> None:
    """The agent's time.sleep, in cells' threads, ends when interrupted (no signal reaches such a thread)."""
    with kernel(stock_device) as running:
        running.run("kept = 42")
        process = device_threads(running)
        threads = process.num_threads()
        code = "import time\nprint('started', flush=True)\ntime.sleep(100)"
        content, latency, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        assert "blocked" not in content["evalue"]  # not the last resort
        assert latency < 2.0
        assert process.num_threads() <= threads  # (other tests' threads may end meanwhile on this shared server)
        assert running.run("kept + 1").result == "43"
        # Elsewhere (threads the cell starts, odd arguments) it is the original time.sleep.
        check = (
            "import threading\nt = threading.Thread(target=time.sleep, args=(0.01,))\nt.start(); t.join()\n"
            "errors = []\nfor bad in (-1, 'x', float('nan')):\n"
            "    try:\n        time.sleep(bad)\n    except (ValueError, TypeError) as e:\n"
            "        errors.append(type(e).__name__)\nerrors"
        )
        assert running.run(check).result == "['ValueError', 'TypeError', 'ValueError']"


def test_blocking_socket_read_on_a_stock_server_is_let_go_and_the_session_goes_on(stock_device: int) -> None:
    with kernel(stock_device) as running:
        running.run("kept = 42")
        code = "import socket\na, b = socket.socketpair()\nprint('started')\na.recv(1)"
        content, latency, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        assert "blocked" in content["evalue"]  # the last resort: the kernel let go of the connection
        assert latency < 3.0
        # The next cell reconnects to the same namespace, while the old thread still waits.
        result = running.run("kept + 1")
        assert result.result == "43" and result.stream("stderr") == ""
        # Unblock the old thread: it then ends with the pending KeyboardInterrupt.
        assert running.run("b.send(b'x')").result == "1"


# Cells blocked in a system call on an xrpyc-device: each prints "started" first.
BLOCKING = {
    "sleep": ("import time", "print('started')\ntime.sleep(100)"),
    "recv": ("import socket\na, b = socket.socketpair()", "print('started')\na.recv(1)"),
    "select": (
        "import select, socket\na, b = socket.socketpair()",
        "print('started')\nselect.select([a], [], [], 100)",
    ),
}


@pytest.mark.parametrize("call", BLOCKING)
def test_a_blocked_call_on_an_xrpyc_device_stops_at_once_and_nothing_of_it_is_left(device: int, call: str) -> None:
    setup, code = BLOCKING[call]
    with kernel(device) as running:
        running.run(f"kept = 42\n{setup}")
        process = device_threads(running)
        threads = process.num_threads()
        content, latency, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        assert "blocked" not in content["evalue"]  # not the last resort
        assert latency < 2.0
        assert process.num_threads() == threads  # the cell ended on the device: no thread of it is left
        assert running.run("kept + 1").result == "43"
        assert running.run("import os\nos.getpid()").result == str(process.pid)


def test_a_sigint_nobody_asked_for_interrupts_nothing(device: int) -> None:
    """A terminal's Ctrl-C reaching the worker, between cells or during one, is not an interrupt."""
    with kernel(device) as running:
        process = device_threads(running)
        process.send_signal(signal.SIGINT)
        timer = threading.Timer(0.3, process.send_signal, (signal.SIGINT,))
        timer.start()
        result = running.run("import time\ntime.sleep(0.6)\nprint('slept')")
        timer.join()
        assert result.status == "ok" and result.stream() == "slept\n"
        assert running.run("os.getpid()").result == str(process.pid)


def test_input_on_an_xrpyc_device_is_interrupted_and_nothing_of_it_is_left(device: int) -> None:
    with kernel(device) as running:
        running.run("kept = 42")
        process = device_threads(running)
        threads = process.num_threads()
        msg_id = running.kc.execute("input('wait> ')", allow_stdin=True)
        running.kc.get_stdin_msg(timeout=30)
        running.km.interrupt_kernel()
        reply = running.kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert_interrupted(reply["content"])
        running.run("pass")  # the iopub messages of the interrupted cell are drained by the next one
        assert process.num_threads() == threads
        assert running.run("kept + 1").result == "43"


def test_output_around_interrupts_in_the_main_thread_arrives_whole(device: int) -> None:
    """An interrupt while the cell sends its output waits for the batch to be out: the link survives."""
    with kernel(device) as running:
        code = "import itertools\nfor i in itertools.count():\n    print('started', i, 'x' * 2000)"
        for _ in range(5):
            content, _, out = interrupt_after_start(running, code)
            assert_interrupted(content)
            lines = [line.split()[1] for line in out.splitlines()]
            assert lines == [str(i) for i in range(len(lines))]
        assert running.run("i > 0").result == "True"


def test_a_second_kernel_on_a_busy_shared_worker_still_stops_a_sleep_at_once(device: int) -> None:
    """Token-less kernels share a worker: while one's cell holds its main thread, another's run in threads."""
    with kernel(device) as first, kernel(device) as second:
        first.run("import time")
        holder = threading.Thread(target=first.run, args=("time.sleep(5)",), kwargs={"timeout": 60})
        holder.start()
        try:
            time.sleep(0.5)
            second.run("kept = 42")
            content, latency, _ = interrupt_after_start(second, "import time\nprint('started')\ntime.sleep(100)")
            assert_interrupted(content)
            assert "blocked" not in content["evalue"] and latency < 2.0
            assert second.run("kept + 1").result == "43"
        finally:
            holder.join(60)


def test_local_exec_is_interrupted(stock_device: int) -> None:
    with kernel(stock_device) as running:
        code = "$exec(\"print('started', flush=True)\\nwhile True: pass\")"
        content, _, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        assert running.run("$exec('print(1)')").stream() == "1\n"


def test_a_hundred_interrupts(stock_device: int) -> None:
    latencies = []
    with kernel(stock_device) as running:
        running.run("count = 0")
        for _ in range(100):
            content, latency, _ = interrupt_after_start(running, "count += 1\nprint('started')\nwhile True: pass")
            assert_interrupted(content)
            latencies.append(latency)
        assert running.run("count").result == "100"
    print(f"interrupt latency over 100: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
