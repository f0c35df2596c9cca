"""Completion latency of the xrpyc kernel against real devices, as a Markdown table.

Run from the repository root, after `make all` (it is part of `make bench`):

    .venv/bin/python bench/bench_completion.py
    .venv/bin/python bench/bench_completion.py --requests 200 --no-armhf

For each device a kernel is started (jupyter_client, ZMQ on 127.0.0.1) and
pointed at it with $XRPYC_DEVICE; a first cell defines a few objects, then
each kind of request is sent until it is warm (jedi's first run on a device
takes about a second), then `--requests` times, one at a time. A latency is
the time from sending the complete_request until its reply arrives. Devices:

- rpyc_classic: rpyc 6's stock server on this venv's Python, which has jedi
  (its answer is used when ready within the time budget);
- the same with jedi made unimportable: xrpyc's own completer, as on most boards;
- xrpyc-device on this venv's Python (jedi too);
- the emulated armv7l Debian device (../shared/fixtures/armhf-device: rpyc
  5.x, no jedi, under qemu), when the fixture is there.

Nothing is asserted about timings; progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's device servers and kernel client

from kernel_client import RunningKernel, kernel  # noqa: E402
from servers import FIXTURES, start_ready_server, stock_rpyc_classic, stop, xrpyc_device  # noqa: E402

SETUP = """
import os
data = {"alpha": 1, "beta": 2, "gamma": 3}
def greet(name, greeting="hello", *, punctuation="!"):
    return greeting + " " + name + punctuation
"""
BLOCK_JEDI = "import sys\nsys.modules['jedi'] = None"
# Kind of request -> code completed at its end.
REQUESTS = {
    "name": "gre",
    "attribute": "os.path.jo",
    "dict key": 'data["al',
    "module": "import colle",
    "path": 'open("/us',
    "keyword argument": 'greet("you", punc',
}
WARM_UP = 3.0  # s of requests of a kind before it is timed
REPLY_TIMEOUT = 10.0
ARMHF = FIXTURES / "armhf-device"


@contextlib.contextmanager
def armhf_device() -> Iterator[int]:
    build = subprocess.run([str(ARMHF), "build"], capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        raise RuntimeError(f"armhf-device build failed:\n{build.stdout}\n{build.stderr}")
    # Its rpyc 5 logs every connection, and a traceback for the kernel's first, rpyc 6 probe: not for the table.
    process, port = start_ready_server([str(ARMHF), "run", "--port", "0"], stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        stop(process)


def devices(armhf: bool) -> list[tuple[str, Callable[[], Any], tuple[str, ...]]]:
    """(label, context manager giving a port, cells to run first)."""
    found = [
        ("rpyc_classic (rpyc 6, jedi)", stock_rpyc_classic, (SETUP,)),
        ("rpyc_classic, no jedi", stock_rpyc_classic, (BLOCK_JEDI, SETUP)),
        ("xrpyc-device (jedi)", xrpyc_device, (SETUP,)),
    ]
    if armhf and ARMHF.exists():
        found.append(("armv7l under qemu (rpyc 5, no jedi)", armhf_device, (SETUP,)))
    return found


def complete(running: RunningKernel, code: str) -> tuple[float, int]:
    """(seconds until the reply, number of matches)."""
    started = time.perf_counter()
    msg_id = running.kc.complete(code, len(code))
    while True:
        reply = running.kc.get_shell_msg(timeout=REPLY_TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return time.perf_counter() - started, len(reply["content"]["matches"])


def measure(running: RunningKernel, code: str, requests: int) -> tuple[list[float], int]:
    deadline = time.monotonic() + WARM_UP
    while time.monotonic() < deadline:
        complete(running, code)
    timings, matches = [], 0
    for _ in range(requests):
        elapsed, matches = complete(running, code)
        timings.append(elapsed)
    return timings, matches


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="timed requests per kind and device (100)")
    parser.add_argument("--no-armhf", action="store_true", help="leave the emulated armv7l device out")
    args = parser.parse_args(argv)
    chosen = devices(not args.no_armhf)
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    for label, server, cells in chosen:
        print(f"{label} ...", file=sys.stderr)
        with server() as port, kernel(port) as running:
            for cell in cells:
                if running.run(cell).status != "ok":
                    raise RuntimeError(f"{label}: the set-up cell failed")
            for kind, code in REQUESTS.items():
                timings, matches = measure(running, code, args.requests)
                results.setdefault(kind, {})[label] = (
                    statistics.median(timings) * 1000,
                    percentile(timings, 0.9) * 1000,
                    matches,
                )
    labels = [label for label, _, _ in chosen]
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"complete_request → reply, median / p90 in ms over {args.requests} requests (matches in the answer)\n")
    print("| request | code | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for kind, code in REQUESTS.items():
        cells = []
        for label in labels:
            median, p90, matches = results[kind][label]
            cells.append(f"{median:.1f} / {p90:.1f} ({matches})")
        print(f"| {kind} | `{code}` | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
