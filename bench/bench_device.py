"""What each kernel costs an `xrpyc-device` (memory of its processes) and a `pass` round trip, as Markdown.

Run from the repository root, after `make all`:

    .venv/bin/python bench/bench_device.py
    .venv/bin/python bench/bench_device.py --kernels 1,4 --requests 100

An `xrpyc-device --token` is started on a free loopback port for each kernel
count; that many kernels (jupyter_client, ZMQ on 127.0.0.1) each run a first
cell (which connects them and creates their namespace on the device), then
the device's processes are measured with psutil: the dispatcher, and every
process under it (the zygote and the kernels' workers). PSS (proportional
set size) counts a page shared by n processes as 1/n in each, so the PSS sum
is what the device really takes; RSS counts shared pages in full everywhere.
PSS needs to read /proc/PID/smaps of processes that forbid tracing: run as
root, or the PSS columns say n/a. "per kernel" is (device PSS with n kernels
- device PSS with none) / n.

The `pass` round trip is the median over --requests execute("pass") requests
of one kernel, each from sending until its reply and idle status arrived.
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
from servers import BIN, start_ready_server, stop  # noqa: E402

TOKEN = "bench-device-token"
MIB = 1 << 20


def memory(pid: int) -> tuple[float, float | None, float, float | None, int]:
    """(dispatcher RSS, dispatcher PSS, whole device RSS, whole device PSS, processes) in MiB."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    rss, pss = [], []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss.append(process.memory_info().rss)
            try:
                pss.append(process.memory_full_info().pss)
            except psutil.AccessDenied:
                pss.append(None)
    known = None not in pss
    return (
        rss[0] / MIB,
        pss[0] / MIB if known else None,
        sum(rss) / MIB,
        sum(pss) / MIB if known else None,  # type: ignore[arg-type]
        len(rss),
    )


@contextlib.contextmanager
def kernels(port: int, count: int) -> Iterator[list[RunningKernel]]:
    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(kernel(port, XRPYC_TOKEN=TOKEN)) for _ in range(count)]
        for each in running:
            each.run("x = 1")
        time.sleep(1.0)  # the control connections open in the background
        yield running


def round_trip(running: RunningKernel, requests: int) -> float:
    for _ in range(20):  # warm-up
        running.kc.execute_interactive("pass", timeout=60)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        running.kc.execute_interactive("pass", timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", default="1,4,16", help="kernel counts, comma-separated (1,4,16)")
    parser.add_argument("--requests", type=int, default=200, help="timed `pass` requests (200)")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.kernels.split(",")]

    rows, trip = [], None
    for count in counts:
        print(f"{count} kernel(s) ...", file=sys.stderr)
        command = [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "0",
                   "--token", TOKEN, "--max-connections", str(2 * count + 4)]  # fmt: skip
        device, port = start_ready_server(command)
        try:
            time.sleep(0.5)
            idle = memory(device.pid)
            with kernels(port, count) as running:
                busy = memory(device.pid)
                if trip is None:
                    trip = round_trip(running[0], args.requests)
        finally:
            stop(device)
        per_kernel = (busy[3] - idle[3]) / count if busy[3] is not None and idle[3] is not None else None
        rows.append((count, idle, busy, per_kernel))

    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")  # fmt: skip
    print("| kernels | processes | dispatcher RSS / PSS | device RSS (sum) | device PSS (sum) | PSS per kernel |")
    print("|---|---|---|---|---|---|")
    for count, _, busy, per_kernel in [(0, rows[0][1], rows[0][1], None), *rows]:
        print(f"| {count} | {busy[4]} | {mib(busy[0])} / {mib(busy[1])} MiB | {mib(busy[2])} MiB "
              f"| {mib(busy[3])} MiB | {mib(per_kernel) + ' MiB' if per_kernel is not None else '-'} |")  # fmt: skip
    print(f"\n`pass` round trip through one kernel: {trip:.2f} ms (median of {args.requests})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
