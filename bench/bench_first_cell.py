"""Where a kernel's first cell spends its time, stage by stage, as a Markdown table.

Run from the repository root, after `make all`:

    .venv/bin/python bench/bench_first_cell.py                 # xrpyc-device and a stock rpyc server
    .venv/bin/python bench/bench_first_cell.py --armhf         # also the emulated armv7l board (slow)

Each sample is a fresh Python process doing what a starting kernel does before its first cell is answered
(kernel.py's preparation, Connections.connect_ahead, Device.run), timed stage by stage with perf_counter:

- imports: the shell and what connecting needs (session.preload), from compiled bytecode;
- connect: name lookup, TCP, the token exchange when the device asks for one, rpyc's handshake;
- helpers: the device-side helpers (agent) attached for this kernel: two round trips when the device
  process has them compiled, else sending and compiling them (the first kernel of a stock server);
- control: the interrupt channel, opened beside the helpers (what is left to wait for after them);
- first run: the `pass` cell.

The devices run on 127.0.0.1 and live for all samples, as a board does (its first kernel pays for
compiling the helpers: that sample is shown apart). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's servers

from servers import BIN, FIXTURES, free_port, start_classic, start_ready_server, stop  # noqa: E402

TOKEN = "bench-first-cell-token"
STAGES = ("imports", "connect", "helpers", "control", "first run")

# One kernel's first cell, in a fresh interpreter; prints the stages' milliseconds as JSON.
SAMPLE = r"""
import json, sys, time, uuid
t0 = time.perf_counter()
from xrpyc import link, session, shell  # noqa: F401
session.preload()
t1 = time.perf_counter()
from xrpyc.deadline import Attempt
from xrpyc.security import Credentials
from xrpyc.address import Address
address = Address.parse(sys.argv[1])
credentials = Credentials(token=sys.argv[2] or None)
key = uuid.uuid4().hex
attempt = Attempt(30)
conn = link.open_connection(address, attempt, credentials, key)
attempt.finish()
control = link.open_in_background(address, credentials, key)
t2 = time.perf_counter()
installed = session._install(conn, key, lambda chunks: None, None)
t3 = time.perf_counter()
device = session.Device(address, conn, installed, key, credentials, control)
device._control_ready.wait()
t4 = time.perf_counter()
device.run("pass", "In[1]")
t5 = time.perf_counter()
device.close(forget=True)
print(json.dumps([1000 * (b - a) for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))]))
"""


def sample(address: str, token: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE, address, token], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the sample failed against {address}:\n{done.stderr}")
    return json.loads(done.stdout)


def row(name: str, samples: list[list[float]]) -> str:
    medians = [statistics.median(values) for values in zip(*samples)]
    cells = " | ".join(f"{value:.1f}" for value in medians)
    return f"| {name} ({len(samples)}) | {cells} | {sum(medians):.1f} |"


def measure(name: str, start: Callable[[], tuple[subprocess.Popen, int]], token: str, repeat: int) -> list[str]:
    process, port = start()
    try:
        address = f"127.0.0.1:{port}"
        first = sample(address, token)
        print(f"{name}: first kernel {first}", file=sys.stderr)
        later = [sample(address, token) for _ in range(repeat)]
    finally:
        stop(process)
    return [row(f"{name}, first kernel", [first]), row(f"{name}, later kernels", later)]


def stock_server() -> tuple[subprocess.Popen, int]:
    port = free_port()
    return start_classic(BIN / "rpyc_classic", port), port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9, help="kernels measured after the first (median)")
    parser.add_argument("--armhf", action="store_true", help="also the emulated armv7l board (rpyc 5, qemu)")
    args = parser.parse_args(argv)
    device = [str(BIN / "xrpyc-device"), "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "0"]
    rows = measure("xrpyc-device --token", lambda: start_ready_server([*device, "--token", TOKEN]), TOKEN, args.repeat)
    rows += measure("stock rpyc_classic", lambda: stock_server(), "", args.repeat)
    if args.armhf:
        armhf = FIXTURES / "armhf-device"
        subprocess.run([str(armhf), "build"], check=True, capture_output=True, timeout=900)
        rows += measure("emulated armv7l board", lambda: start_ready_server([str(armhf), "run", "--port", "0"]), "",
                        args.repeat)  # fmt: skip
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load}; "
          f"Python {platform.python_version()}. Milliseconds, median of (n) kernels.\n")  # fmt: skip
    print("| device | " + " | ".join(STAGES) + " | total |")
    print("|---" * (len(STAGES) + 2) + "|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
