"""How many kernels one host holds: the total memory of N connected, idle kernels (64 by default).

Run from the repository root, after `make all` and `make bench` (which installs ipykernel):

    .venv/bin/python bench/bench_host.py                  # 64 of each
    .venv/bin/python bench/bench_host.py --count 16 --kernels xrpyc,ipykernel

Measured for each kind of kernel, one kind at a time:

- xrpyc, device without a live view: N kernels on one `xrpyc-device` (no MJPEG stream), each of which ran a
  cell that shows 30 pictures on the device (bench_video.SHOW_CELL), so it is connected and has its agent.
- xrpyc, device with a live view: the same on a device that serves an MJPEG live view (the pictures go to it).
- ipykernel: N ipykernels that each ran `pass` (their cells run in the kernel itself: there is no device).

Once all N are idle, the PSS (proportional set size: a page shared by n processes counts 1/n in each, so the
sum is what the N kernels cost together) and RSS of every kernel process and its children are summed. The
devices are not counted: in a classroom they are the students' boards, not the host. PSS needs
/proc/PID/smaps_rollup, readable for your own processes. The report is a Markdown table on stdout, progress on
stderr; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import zmq
from bench_kernels import (
    IDLE_SETTLE,
    KERNELS,
    LOOPBACK,
    execute_ok,
    kernel_process,
    machine_lines,
    settle_iopub,
    shut_down,
    xrpyc_device,
)
from bench_video import SHOW_CELL
from jupyter_client.manager import KernelManager

MIB = 2**20


@dataclass(frozen=True)
class Kind:
    label: str
    kernel: str  # a name in bench_kernels.KERNELS
    mjpeg_port: str | None  # the device's live view ("0": none, "auto": one); None: no device
    cell: str


KINDS = {
    "xrpyc": Kind("xrpyc, device without a live view", "xrpyc", "0", SHOW_CELL),
    "xrpyc-live": Kind("xrpyc, device with a live view (MJPEG)", "xrpyc", "auto", SHOW_CELL),
    "ipykernel": Kind("ipykernel", "ipykernel", None, "pass"),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def device_for(kind: Kind, count: int) -> Iterator[dict[str, str]]:
    """The kernels' environment: XRPYC_DEVICE on one device that takes `count` kernels at once, for xrpyc."""
    if kind.mjpeg_port is None:
        yield dict(os.environ)
        return
    # Each kernel holds a few connections: room for all of them (the default is 16 at once).
    with xrpyc_device(kind.mjpeg_port, "--max-connections", str(8 * count)) as address:
        yield {**os.environ, "XRPYC_DEVICE": address}


def start(kind: Kind, env: dict[str, str], ctx: zmq.Context, log_file: IO[bytes]) -> KernelManager:
    """One kernel of `kind` that ran its cell; its client is closed again (an idle notebook tab holds no more)."""
    km = KernelManager(kernel_name=KERNELS[kind.kernel], context=ctx, ip=LOOPBACK, transport="tcp")
    km.start_kernel(env=env, stdout=log_file, stderr=log_file)
    kc = km.client(context=ctx)
    kc.start_channels(hb=False)
    try:
        settle_iopub(kc)
        execute_ok(kc, kind.cell)
    finally:
        kc.stop_channels()
    return km


def total_memory_mib(managers: list[KernelManager]) -> tuple[float, float, int]:
    """(PSS sum, RSS sum, processes) of the kernels and their children, once idle."""
    time.sleep(IDLE_SETTLE)
    pss = rss = 0
    processes = [p for km in managers for p in (kernel_process(km), *kernel_process(km).children(recursive=True))]
    for process in processes:
        memory = process.memory_full_info()
        pss, rss = pss + memory.pss, rss + memory.rss
    return pss / MIB, rss / MIB, len(processes)


def measure(kind: Kind, count: int, ctx: zmq.Context) -> tuple[float, float, int]:
    with device_for(kind, count) as env, contextlib.ExitStack() as stack, tempfile.TemporaryFile() as log_file:
        managers = []
        for index in range(count):
            km = start(kind, env, ctx, log_file)
            stack.callback(shut_down, km)
            managers.append(km)
            if (index + 1) % 16 == 0:
                log(f"  {kind.label}: {index + 1} kernels")
        return total_memory_mib(managers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64, help="kernels of each kind at once (default 64)")
    parser.add_argument("--kernels", default=",".join(KINDS), help="which, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    chosen = [KINDS[name] for name in args.kernels.split(",")]
    ctx = zmq.Context()
    rows = []
    for kind in chosen:
        log(f"{kind.label}: starting {args.count}")
        began = time.monotonic()
        pss, rss, processes = measure(kind, args.count, ctx)
        rows.append((kind, pss, rss, processes))
        log(f"  {kind.label}: {time.monotonic() - began:.0f} s")
    print("\n".join(machine_lines()) + "\n")
    print(
        f"| {args.count} idle kernels, each connected and after one cell | total PSS (MiB) | PSS per kernel "
        "| total RSS (MiB) | processes |"
    )
    print("|---|---:|---:|---:|---:|")
    for kind, pss, rss, processes in rows:
        print(f"| {kind.label} | {pss:,.0f} | {pss / args.count:.1f} | {rss:,.0f} | {processes} |")


if __name__ == "__main__":
    main()
