"""Interrupts: Jupyter's SIGINT stops the code on the device, and the session lives on."""

from __future__ import annotations

import statistics
import time
from typing import Any

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


def test_blocking_sleep_is_let_go_and_the_session_goes_on(stock_device: int) -> None:
    with kernel(stock_device) as running:
        running.run("kept = 42")
        code = "import time\nprint('started', flush=True)\ntime.sleep(30)"
        content, latency, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        assert "blocked" in content["evalue"]
        assert latency < 2.0
        # The next cell reconnects to the same namespace, while the old thread still sleeps.
        result = running.run("kept + 1")
        assert result.result == "43" and result.stream("stderr") == ""


def test_blocking_socket_read(stock_device: int) -> None:
    with kernel(stock_device) as running:
        code = "import socket\na, b = socket.socketpair()\nprint('started')\na.recv(1)"
        content, _, _ = interrupt_after_start(running, code)
        assert_interrupted(content)
        # Unblock the old thread: it then ends with the pending KeyboardInterrupt.
        assert running.run("b.send(b'x')").result == "1"


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
