"""How fast an interrupt stops a cell blocked in a call, and what it leaves running on the device, as Markdown.

Run from the repository root, after `make all`:

    .venv/bin/python bench/bench_interrupt.py
    .venv/bin/python bench/bench_interrupt.py --tries 20 --calls sleep,recv --devices xrpyc-device

Each device is started on a free loopback port: an `xrpyc-device --token`
(the kernel's cells get a worker process of their own) and rpyc's stock
`rpyc_classic` (as on a board with nothing of ours installed). One kernel
(jupyter_client, ZMQ on 127.0.0.1) per device runs, --tries times per call,
a cell that prints a marker and then blocks in the call; once the marker has
arrived (or, for input(), the prompt) the kernel is interrupted, and the time
from the interrupt to the cell's execute_reply is taken. "given up" counts
the replies that said the kernel let go of a blocked cell (the last resort,
after session.INTERRUPT_GRACE). "threads left" is the device process's
thread count after the series minus before it (psutil): cells that are still
blocked on the device after the kernel gave them up.

Nothing is asserted; progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's device servers and kernel client

from kernel_client import RunningKernel, kernel  # noqa: E402
from servers import BIN, start_ready_server, stock_rpyc_classic, stop  # noqa: E402

TOKEN = "bench-interrupt-token"
# (set-up cell, blocking cell, clean-up cell); the blocking cell prints "started" first
# (input() shows its prompt instead). The clean-up wakes a cell the kernel gave up.
CALLS = {
    "sleep": ("import time", "print('started')\ntime.sleep(100)", "pass"),
    "recv": ("import socket\na, b = socket.socketpair()", "print('started')\na.recv(1)", "b.close(); a.close()"),
    "select": (
        "import select, socket\na, b = socket.socketpair()",
        "print('started')\nselect.select([a], [], [], 100)",
        "b.close(); a.close()",
    ),
    "input": ("pass", "input('wait> ')", "pass"),
}


def interrupt_latency(running: RunningKernel, code: str, prompt: bool) -> tuple[float, dict]:
    """Seconds from the interrupt to the reply of `code`, once it is under way; and the reply's content."""
    kc = running.kc
    msg_id = kc.execute(code, allow_stdin=prompt)
    if prompt:
        kc.get_stdin_msg(timeout=30)
    else:
        deadline = time.monotonic() + 30
        while True:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
    sent = time.perf_counter()
    running.km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    latency = time.perf_counter() - sent
    while True:  # up to idle, so that the next cell starts clean
        msg = kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
    return latency, reply["content"]


def device_pid(running: RunningKernel) -> int:
    """The process that runs this kernel's cells on the device."""
    messages: list[dict] = []
    running.kc.execute_interactive("import os\nos.getpid()", output_hook=messages.append, timeout=60)
    (result,) = [m for m in messages if m["msg_type"] == "execute_result"]
    return int(result["content"]["data"]["text/plain"])


def series(running: RunningKernel, call: str, tries: int) -> tuple[list[float], int, int]:
    """(latencies, how many were given up, threads left on the device) of `tries` interrupts of `call`."""
    setup, code, cleanup = CALLS[call]
    process = psutil.Process(device_pid(running))
    running.kc.execute_interactive("pass", timeout=60)  # the control connection is open: its thread counts
    threads = process.num_threads()
    latencies, given_up = [], 0
    for _ in range(tries):
        running.kc.execute_interactive(setup, timeout=60)
        latency, content = interrupt_latency(running, code, prompt=call == "input")
        if content.get("ename") != "KeyboardInterrupt":
            raise RuntimeError(f"{call}: the cell ended with {content}, not KeyboardInterrupt")
        given_up += "blocked" in content.get("evalue", "")
        latencies.append(latency)
        running.kc.execute_interactive(cleanup, timeout=60)
    time.sleep(0.2)  # threads that were woken by the clean-up end
    return latencies, given_up, process.num_threads() - threads


@contextlib.contextmanager
def xrpyc_device() -> Iterator[int]:
    command = [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "0",
               "--token", TOKEN]  # fmt: skip
    process, port = start_ready_server(command)
    try:
        yield port
    finally:
        stop(process)


DEVICES = {"xrpyc-device": (xrpyc_device, {"XRPYC_TOKEN": TOKEN}), "rpyc_classic": (stock_rpyc_classic, {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=100, help="interrupts per call and device (100)")
    parser.add_argument("--calls", default=",".join(CALLS), help=f"comma-separated, of {','.join(CALLS)}")
    parser.add_argument("--devices", default=",".join(DEVICES), help=f"comma-separated, of {','.join(DEVICES)}")
    args = parser.parse_args(argv)
    rows = []
    for name in args.devices.split(","):
        start, env = DEVICES[name]
        with start() as port, kernel(port, **env) as running:
            for call in args.calls.split(","):
                print(f"{name}: {call} x {args.tries} ...", file=sys.stderr)
                latencies, given_up, left = series(running, call, args.tries)
                p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1] if args.tries > 1 else latencies[0]
                rows.append((name, call, statistics.median(latencies), p95, max(latencies), given_up, left))

    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"Python {platform.python_version()}, {args.tries} tries each\n")  # fmt: skip
    print("| device | blocked in | median | p95 | max | given up | threads left |")
    print("|---|---|---|---|---|---|---|")
    for name, call, median, p95, worst, given_up, left in rows:
        print(f"| {name} | {call} | {median * 1000:.0f} ms | {p95 * 1000:.0f} ms | {worst * 1000:.0f} ms "
              f"| {given_up} | {left} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
