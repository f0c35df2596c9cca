"""What a `pass` costs on 1, 4 and 16 devices at once with `$on`, as Markdown.

Run from the repository root, after `make all`:

    .venv/bin/python bench/bench_boards.py
    .venv/bin/python bench/bench_boards.py --devices 1,2,8 --requests 50

Starts the largest count of `xrpyc-device`s on free loopback ports (one
process each, as boards are), and one kernel (jupyter_client, ZMQ on
127.0.0.1) that connects to every one by name. For each count n, the kernel
runs `$on(n names)` + `pass` --requests times; the figure is the median from
sending the request until its reply and idle status arrived (each device's
area is published and updated before the reply: 2n display messages). The
first row is a plain `pass` on one device, without `$on`, for comparison.
All devices share this machine's cores with the kernel: on real boards each
runs on its own CPU. Nothing is asserted; progress goes to stderr, the table
to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's device servers and kernel client

from kernel_client import RunningKernel, kernel  # noqa: E402
from servers import xrpyc_device  # noqa: E402


def median_ms(running: RunningKernel, code: str, requests: int) -> float:
    for _ in range(5):  # warm-up: connections, the devices' first cell
        reply = running.kc.execute_interactive(code, timeout=60, output_hook=lambda message: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed: {reply['content']}")
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        running.kc.execute_interactive(code, timeout=60, output_hook=lambda message: None)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,4,16", help="device counts, comma-separated (1,4,16)")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per count (100)")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.devices.split(",")]

    with contextlib.ExitStack() as stack:
        print(f"starting {max(counts)} devices ...", file=sys.stderr)
        ports = [stack.enter_context(xrpyc_device()) for _ in range(max(counts))]
        running = stack.enter_context(kernel(ports[0]))
        for i, port in enumerate(ports):
            result = running.run(f'$connect("127.0.0.1:{port}", name="d{i}")')
            if result.status != "ok":
                raise RuntimeError(f"cannot connect to device {i}: {result.reply['content']}")
        rows = [("plain `pass`, 1 device", median_ms(running, "pass", args.requests), 1)]
        for count in counts:
            print(f"$on {count} device(s) ...", file=sys.stderr)
            names = ", ".join(f'"d{i}"' for i in range(count))
            rows.append((f"`$on` {count} device{'s' if count > 1 else ''}",
                         median_ms(running, f"$on({names})\npass", args.requests), count))  # fmt: skip

    on_one = next((ms for label, ms, count in rows[1:] if count == 1), None)
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"median of {args.requests} requests\n")  # fmt: skip
    print("| cell | round trip | per device | vs `$on` 1 device |")
    print("|---|---|---|---|")
    for label, ms, count in rows:
        ratio = f"{ms / on_one:.1f}x" if on_one and label.startswith("`$on`") else "-"
        print(f"| {label} | {ms:.2f} ms | {ms / count:.2f} ms | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
