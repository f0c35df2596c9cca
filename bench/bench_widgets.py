"""How soon a cell's loop on the device sees a widget moved in the browser, as a Markdown table.

Run from the repository root, after `make all`:

    .venv/bin/python bench/bench_widgets.py [--moves 50]

A kernel (jupyter_client, ZMQ on 127.0.0.1) on a stock rpyc server shows an IntSlider; a cell then runs a
loop on the device that notes (value, time.time()) whenever `s.value` changes, polling every millisecond. The
bench moves the slider `--moves` times as JupyterLab's widget manager does (a comm_msg "update", each sent after
the kernel's idle status for the one before, 20 ms apart) and compares the device's times with its own sending
times (one machine, one clock). Two devices: this venv's Python with ipywidgets, and pyenv's 3.8 without it
(xrpyc's own controls). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's servers, kernel client and widget frontend

from servers import stock_rpyc_classic  # noqa: E402
from test_kernelspec import device_python  # noqa: E402
from test_widgets import frontend  # noqa: E402

LOOP = """import time
seen, last = [], s.value
while len(seen) < {moves}:
    value = s.value
    if value != last:
        seen.append((value, time.time()))
        last = value
    time.sleep(0.001)
"""


def measure(port: int, moves: int) -> list[float]:
    """Milliseconds from sending each move to the device's loop seeing it."""
    with frontend(port) as ui:
        ui.run("import ipywidgets as w\ns = w.IntSlider(value=0, max=100000)\ns")
        comm_id = ui.opened("IntSliderModel")["comm_id"]
        cell = ui.kc.execute(LOOP.format(moves=moves))
        time.sleep(0.5)  # the loop runs
        sent: dict[int, float] = {}
        for value in range(1, moves + 1):
            sent[value] = time.time()
            change = ui.update(comm_id, value=value)
            deadline = time.monotonic() + 10
            while (change, "idle") not in ui.statuses and time.monotonic() < deadline:
                ui.collect(0.005)
            time.sleep(0.02)
        reply = ui.kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == cell, reply
        seen = ast.literal_eval(ui.run("seen").result)
    return [1000 * (when - sent[value]) for value, when in seen if value in sent]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=50)
    args = parser.parse_args(argv)
    rows = []
    for name, program in (("ipywidgets 8 (this venv's Python)", None), ("xrpyc's controls (CPython 3.8)", "3.8")):
        with stock_rpyc_classic(*([device_python(program)] if program else [])) as port:
            latencies = sorted(measure(port, args.moves))
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        rows.append(f"| {name} | {len(latencies)} | {statistics.median(latencies):.1f} | {p95:.1f} |")
        print(rows[-1], file=sys.stderr)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, load {load}; Python {platform.python_version()}.\n")
    print("| device | moves seen | browser → device loop, median (ms) | p95 (ms) |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
