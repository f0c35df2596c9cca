"""Compare the xrpyc kernel with ipykernel and xeus-python (xpython) on the same machine.

Run from the repository root, after `make all`:

    make bench
    # or, directly (needs `pip install ipykernel xeus-python` in .venv):
    .venv/bin/python bench/bench_kernels.py --repeat 5
    .venv/bin/python bench/bench_kernels.py --kernels xrpyc --repeat 3

Each kernel is started with jupyter_client (KernelManager and a blocking client
talking ZMQ on 127.0.0.1) several times, the kernels taking turns, and the
median of the repetitions is printed as a Markdown table:

1. spawn → first kernel_info reply: from KernelManager.start_kernel() until
   the first kernel_info_reply arrives.
2. ready: from start_kernel() until the reply to a first `pass` execute (for
   xrpyc this includes connecting to the device).
3. idle RSS of the kernel process (psutil, the kernel's PID only), once the
   first cells ran and the kernel is idle (xrpyc: connected to its device).
4. `pass` round trip: median over many execute("pass") requests, from
   sending the request until both the execute_reply and the idle status on
   IOPub arrived.
5. throughput of `for i in range(10000): print(i)`: lines/s from sending the
   request until the execute_reply and all stream output (up to the idle
   status) arrived; the lines are checked to be complete and in order.

For xrpyc the script starts its own `xrpyc-device` on a free loopback port
beforehand (outside the timings) and points the kernel at it with
$XRPYC_DEVICE. Progress goes to stderr, the report to stdout. The exit status
is 1 when a run failed; no timing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import queue
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import psutil
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

# Benchmark name -> kernelspec name. ipykernel is jupyter_client's "native"
# kernel: found even without an installed kernelspec when ipykernel imports.
KERNELS = {"xrpyc": "xrpyc", "ipykernel": NATIVE_KERNEL_NAME, "xpython": "xpython"}
INSTALL_HINTS = {"ipykernel": "pip install ipykernel", "xpython": "pip install xeus-python", "xrpyc": "make all"}

LOOPBACK = "127.0.0.1"
LINES = 10_000
LINES_CODE = f"for i in range({LINES}): print(i)"
START_TIMEOUT = 60.0  # s, until the first kernel_info reply
CELL_TIMEOUT = 60.0  # s, for any one cell
KERNEL_INFO_RETRY = 0.2  # s between kernel_info requests while the kernel starts
ZMQ_RECONNECT_INTERVAL = 2  # ms; ZMQ's default (100 ms) would quantize the start-up times
WARMUP_CELLS = 5
IDLE_SETTLE = 0.5  # s of idleness before the RSS is read
DEVICE_READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
IOPUB_QUIET = 2.0  # s of IOPub silence after the reply that mean the idle status was lost

GOALS = {  # xrpyc's goals, per metric: (text, is the goal met by this value?)
    "first_reply_ms": ("≤ 60 ms", lambda v: v <= 60),
    "ready_ms": ("", None),
    "idle_rss_mib": ("≤ 24 MiB", lambda v: v <= 24),
    "pass_rtt_ms": ("≤ 2 ms", lambda v: v <= 2),
    "lines_per_s": ("≥ 100,000 lines/s, none lost", lambda v: v >= 100_000),
}


# -- results --------------------------------------------------------------------


@dataclass
class RunResult:
    """What one start of one kernel measured."""

    first_reply_ms: float
    ready_ms: float
    idle_rss_mib: float
    pass_rtt_ms: float
    lines_per_s: float
    lines_lost: int
    lines_in_order: bool
    shutdown_ms: float = float("nan")
    notes: list[str] = field(default_factory=list)


@dataclass
class Execution:
    """One execute request, answered: its reply status, output and duration."""

    status: str
    seconds: float
    stdout: str
    stderr: str
    stream_messages: int
    idle_seen: bool


# -- machine and versions ---------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    physical = psutil.cpu_count(logical=False)
    cores = f"{os.cpu_count()} logical cores" + (f" ({physical} physical)" if physical else "")
    memory = psutil.virtual_memory().total / 2**30
    packages = ", ".join(
        f"{name} {package_version(name)}"
        for name in ("xrpyc", "ipykernel", "xeus-python", "rpyc", "jupyter_client", "pyzmq")
    )
    return [
        f"Machine: {cpu_model()}, {cores}, {memory:.1f} GiB RAM, {platform.system()} {platform.release()}, "
        f"load average {os.getloadavg()[0]:.2f}",
        f"Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"Versions: {packages}",
    ]


# -- the xrpyc device ---------------------------------------------------------------


def device_command() -> list[str]:
    script = Path(sys.executable).with_name("xrpyc-device")
    if script.exists():
        return [str(script), "--host", LOOPBACK, "--port", "0"]
    return [sys.executable, "-m", "xrpyc.device", "--host", LOOPBACK, "--port", "0"]


def read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The device's first stdout line, or "" when none came within `timeout`."""
    assert process.stdout is not None
    if not select.select([process.stdout], [], [], timeout)[0]:
        return ""
    return process.stdout.readline().decode(errors="replace").strip()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def xrpyc_device() -> Iterator[str]:
    """A private xrpyc-device on a free loopback port; yields "127.0.0.1:PORT"."""
    process = subprocess.Popen(device_command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        line = read_ready_line(process, DEVICE_READY_TIMEOUT)
        prefix = f"READY rpyc://{LOOPBACK}:"
        if not line.startswith(prefix):
            raise RuntimeError(f"xrpyc-device did not start (its first line: {line!r})")
        yield f"{LOOPBACK}:{int(line[len(prefix):])}"
    finally:
        stop_process(process)


@contextlib.contextmanager
def kernel_env(name: str, base: dict[str, str]) -> Iterator[dict[str, str]]:
    """The environment for one start of kernel `name` (with its device for xrpyc)."""
    if name != "xrpyc":
        yield dict(base)
        return
    with xrpyc_device() as address:
        yield {**base, "XRPYC_DEVICE": address}


# -- talking to a kernel ---------------------------------------------------------------


def remaining(deadline: float, what: str) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError(f"timed out waiting for {what}")
    return left


def parent_id(msg: dict[str, Any]) -> str | None:
    # xeus 6 sends its iopub_welcome with a null parent header.
    return (msg.get("parent_header") or {}).get("msg_id")


def wait_shell_reply(kc: BlockingKernelClient, msg_ids: set[str], deadline: float) -> dict[str, Any]:
    """The next shell reply to one of `msg_ids` (others are dropped)."""
    while True:
        try:
            msg = kc.shell_channel.get_msg(timeout=remaining(deadline, "a shell reply"))
        except queue.Empty:
            continue
        if parent_id(msg) in msg_ids:
            return msg


def first_kernel_info(kc: BlockingKernelClient, deadline: float) -> float:
    """perf_counter() when the first kernel_info_reply arrived.

    One request is enough in practice (ZMQ queues it until the kernel binds);
    it is repeated every KERNEL_INFO_RETRY in case a kernel drops early ones.
    The replies to the repeats are collected before returning.
    """
    sent: set[str] = set()
    while True:
        sent.add(kc.kernel_info())
        retry_at = min(time.perf_counter() + KERNEL_INFO_RETRY, deadline)
        try:
            msg = wait_shell_reply(kc, sent, retry_at)
        except TimeoutError:
            remaining(deadline, "the first kernel_info reply")
            continue
        arrived = time.perf_counter()
        sent.discard(parent_id(msg))
        while sent:  # answers to the repeats: already on their way
            sent.discard(parent_id(wait_shell_reply(kc, sent, time.perf_counter() + CELL_TIMEOUT)))
        return arrived


def execute(
    kc: BlockingKernelClient, code: str, timeout: float = CELL_TIMEOUT, quiet: float = IOPUB_QUIET
) -> Execution:
    """Run `code`; return once its execute_reply and its idle status arrived.

    A kernel may lose IOPub messages (ZMQ drops them past the high-water mark),
    the idle status among them: once the reply is in, IOPub silence for
    `quiet` also ends the wait, and the time of the last message counts.
    """
    shell, iopub = kc.shell_channel, kc.iopub_channel
    poller = zmq.Poller()
    poller.register(shell.socket, zmq.POLLIN)
    poller.register(iopub.socket, zmq.POLLIN)
    start = time.perf_counter()
    msg_id = kc.execute(code)
    deadline = start + timeout
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    reply: dict[str, Any] | None = None
    idle, count, last = False, 0, start
    while reply is None or not idle:
        wait = remaining(deadline, f"the reply to {code!r}")
        if reply is not None:
            wait = min(wait, quiet)
        events = dict(poller.poll(wait * 1000))
        if not events:
            if reply is not None:
                break  # the idle status was lost
            continue
        while iopub.msg_ready():
            msg = iopub.get_msg(timeout=0)
            if parent_id(msg) != msg_id:
                continue
            last = time.perf_counter()
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                streams.setdefault(content["name"], []).append(content["text"])
                count += 1
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        if shell.msg_ready():
            msg = shell.get_msg(timeout=0)
            if parent_id(msg) == msg_id:
                reply, last = msg, time.perf_counter()
    return Execution(
        reply["content"]["status"],
        last - start,
        "".join(streams["stdout"]),
        "".join(streams["stderr"]),
        count,
        idle,
    )


def execute_ok(kc: BlockingKernelClient, code: str) -> Execution:
    result = execute(kc, code)
    if result.status != "ok":
        raise RuntimeError(f"{code!r} failed: status {result.status}, stderr {result.stderr[-500:]!r}")
    return result


def first_execute(kc: BlockingKernelClient, deadline: float) -> float:
    """perf_counter() when the reply to a first `pass` arrived (IOPub may not be subscribed yet)."""
    msg_id = kc.execute("pass")
    reply = wait_shell_reply(kc, {msg_id}, deadline)
    arrived = time.perf_counter()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the first cell failed: {reply['content']}")
    return arrived


def settle_iopub(kc: BlockingKernelClient, tries: int = 20) -> None:
    """Run cells until IOPub delivers their idle status (the subscription is up)."""
    for _ in range(tries):
        if execute(kc, "pass", quiet=0.25).idle_seen:
            return
    raise TimeoutError("IOPub never delivered an idle status")


# -- the measurements ---------------------------------------------------------------------


def kernel_process(km: KernelManager) -> psutil.Process:
    provisioner = km.provisioner
    pid = getattr(provisioner, "pid", None) or provisioner.process.pid  # type: ignore[union-attr]
    return psutil.Process(pid)


def idle_rss_mib(process: psutil.Process) -> float:
    time.sleep(IDLE_SETTLE)
    return process.memory_info().rss / 2**20


def pass_round_trip_ms(kc: BlockingKernelClient, count: int) -> float:
    times = [execute_ok(kc, "pass").seconds * 1000 for _ in range(count)]
    return statistics.median(times)


def check_lines(text: str) -> tuple[int, bool]:
    """(lines lost, all lines present and in order) for the output of LINES_CODE."""
    expected = [str(i) for i in range(LINES)]
    received = text.splitlines()
    lost = len(set(expected) - set(received))
    return lost, received == expected


def xrpyc_notes(process: psutil.Process, env: dict[str, str]) -> list[str]:
    """Checks that xrpyc uses the benchmark's device (and no private one)."""
    notes = []
    address = env["XRPYC_DEVICE"]
    if process.environ().get("XRPYC_DEVICE") != address:
        notes.append(f"kernel environment lacks XRPYC_DEVICE={address}")
    port = int(address.rsplit(":", 1)[1])
    if not any(c.raddr and c.raddr.port == port for c in process.net_connections(kind="tcp")):
        notes.append(f"no TCP connection from the kernel to the device at {address}")
    return notes


def child_notes(process: psutil.Process) -> list[str]:
    children = process.children(recursive=True)
    return [f"kernel has child processes: {[(c.pid, c.name()) for c in children]}"] if children else []


def measure(km: KernelManager, ctx: zmq.Context, name: str, env: dict[str, str], round_trips: int) -> RunResult:
    """Start the kernel and measure it; the caller shuts it down."""
    start = time.perf_counter()
    km.start_kernel(env=env)
    kc = km.client(context=ctx)
    kc.start_channels(hb=False)
    try:
        deadline = start + START_TIMEOUT
        first_reply = first_kernel_info(kc, deadline)
        ready = first_execute(kc, deadline)
        settle_iopub(kc)
        for _ in range(WARMUP_CELLS):
            execute_ok(kc, "pass")
        process = kernel_process(km)
        notes = (xrpyc_notes(process, env) if name == "xrpyc" else []) + child_notes(process)
        rss = idle_rss_mib(process)
        rtt = pass_round_trip_ms(kc, round_trips)
        lines = execute_ok(kc, LINES_CODE)
        lost, in_order = check_lines(lines.stdout)
        notes.append(f"{lines.stream_messages} stream messages for {LINES} lines")
        if not lines.idle_seen:
            notes.append("the idle status after the printed lines never arrived (IOPub dropped it)")
        return RunResult(
            first_reply_ms=(first_reply - start) * 1000,
            ready_ms=(ready - start) * 1000,
            idle_rss_mib=rss,
            pass_rtt_ms=rtt,
            lines_per_s=LINES / lines.seconds,
            lines_lost=lost,
            lines_in_order=in_order,
            notes=notes,
        )
    finally:
        kc.stop_channels()


def shut_down(km: KernelManager) -> float:
    """Shut the kernel down (politely, then by force) and stop what it left; returns ms."""
    start = time.perf_counter()
    if not km.has_kernel:
        return float("nan")
    try:
        children = kernel_process(km).children(recursive=True)
    except psutil.Error:
        children = []
    try:
        km.shutdown_kernel(now=False)
    except Exception:
        km.shutdown_kernel(now=True)
    elapsed = (time.perf_counter() - start) * 1000
    for child in children:  # e.g. a private device the kernel should have stopped
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                print(f"  stopping leftover kernel child {child.pid} ({child.name()})", file=sys.stderr)
                child.terminate()
                child.wait(STOP_TIMEOUT)
    return elapsed


def run_once(name: str, ctx: zmq.Context, base_env: dict[str, str], round_trips: int) -> RunResult:
    with kernel_env(name, base_env) as env:
        km = KernelManager(kernel_name=KERNELS[name], context=ctx, ip=LOOPBACK, transport="tcp")
        try:
            result = measure(km, ctx, name, env, round_trips)
        finally:
            shutdown_ms = shut_down(km)
        result.shutdown_ms = shutdown_ms
        return result


# -- report -----------------------------------------------------------------------------------


def progress_line(name: str, rep: int, repeat: int, r: RunResult) -> str:
    check = "✓" if r.lines_in_order else f"lost {r.lines_lost}, in order: {r.lines_in_order}"
    line = (
        f"[{rep}/{repeat}] {name}: first reply {r.first_reply_ms:.1f} ms, ready {r.ready_ms:.1f} ms, "
        f"RSS {r.idle_rss_mib:.1f} MiB, pass {r.pass_rtt_ms:.2f} ms, {r.lines_per_s:,.0f} lines/s {check}, "
        f"shutdown {r.shutdown_ms:.0f} ms"
    )
    return line + "".join(f"\n    note: {note}" for note in r.notes)


def median_of(results: list[RunResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results)


def lines_cell(results: list[RunResult]) -> str:
    value = f"{median_of(results, 'lines_per_s'):,.0f}"
    lost = max(r.lines_lost for r in results)
    if lost:
        return f"{value} (lost: {lost})"
    if not all(r.lines_in_order for r in results):
        return f"{value} (out of order)"
    return f"{value} ✓"


def goal_cell(attr: str, xrpyc: list[RunResult] | None) -> str:
    text, met = GOALS[attr]
    if not text or not xrpyc or met is None:
        return text
    ok = met(median_of(xrpyc, attr))
    if attr == "lines_per_s":
        ok = ok and all(r.lines_lost == 0 and r.lines_in_order for r in xrpyc)
    return f"{text} {'(met)' if ok else '(missed)'}"


def table(results: dict[str, list[RunResult]], round_trips: int) -> str:
    names = list(results)
    rows = [
        ("spawn → first kernel_info reply (ms)", "first_reply_ms", "{:.1f}"),
        ("ready (first execute answered) (ms)", "ready_ms", "{:.1f}"),
        ("idle RSS of the kernel process (MiB)", "idle_rss_mib", "{:.1f}"),
        (f"`pass` round trip (ms, median of {round_trips})", "pass_rtt_ms", "{:.2f}"),
        (f"{LINES:,} printed lines (lines/s)", "lines_per_s", None),
    ]
    xrpyc = results.get("xrpyc") or None
    out = ["| metric | " + " | ".join(names) + " | goal (xrpyc) |", "|---" * (len(names) + 2) + "|"]
    for label, attr, fmt in rows:
        cells = []
        for name in names:
            runs = results[name]
            if not runs:
                cells.append("failed")
            elif fmt is None:
                cells.append(lines_cell(runs))
            else:
                cells.append(fmt.format(median_of(runs, attr)))
        out.append(f"| {label} | " + " | ".join(cells) + f" | {goal_cell(attr, xrpyc)} |")
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="starts of each kernel (default: %(default)s)")
    parser.add_argument(
        "--kernels", default=",".join(KERNELS), help="comma-separated, from: %(default)s (default: all)"
    )
    parser.add_argument(
        "--round-trips", type=int, default=200, help="`pass` requests per start (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    args.kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in args.kernels if k not in KERNELS]
    if unknown or not args.kernels:
        parser.error(f"unknown kernels {unknown}; choose from {', '.join(KERNELS)}")
    if args.repeat < 1 or args.round_trips < 1:
        parser.error("--repeat and --round-trips must be at least 1")
    return args


def missing_kernels(names: list[str]) -> list[str]:
    specs = KernelSpecManager()
    missing = []
    for name in names:
        try:
            specs.get_kernel_spec(KERNELS[name])
        except NoSuchKernel:
            missing.append(f"{name} (kernelspec {KERNELS[name]!r}; {INSTALL_HINTS[name]})")
    return missing


def zmq_context() -> zmq.Context:
    ctx = zmq.Context()
    ctx.setsockopt(zmq.RECONNECT_IVL, ZMQ_RECONNECT_INTERVAL)
    ctx.setsockopt(zmq.LINGER, 0)
    return ctx


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_kernels(args.kernels)
    if missing:
        print("Kernels not found: " + "; ".join(missing), file=sys.stderr)
        return 1
    results: dict[str, list[RunResult]] = {name: [] for name in args.kernels}
    failures = 0
    ctx = zmq_context()
    # ipykernel's history of the benchmark's cells goes to a throw-away IPYTHONDIR.
    with tempfile.TemporaryDirectory(prefix="bench-ipython-") as ipython_dir:
        base_env = {**os.environ, "IPYTHONDIR": ipython_dir}
        try:
            for rep in range(1, args.repeat + 1):
                for name in args.kernels:  # kernels take turns: drift hits all alike
                    try:
                        result = run_once(name, ctx, base_env, args.round_trips)
                    except Exception as error:  # report, go on with the other runs
                        failures += 1
                        print(f"[{rep}/{args.repeat}] {name}: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
                        continue
                    results[name].append(result)
                    print(progress_line(name, rep, args.repeat, result), file=sys.stderr, flush=True)
        finally:
            ctx.destroy(linger=0)
    print("\n".join(machine_lines()))
    print(
        f"Median of {args.repeat} start(s) per kernel, kernels in turn; jupyter_client on {LOOPBACK}; "
        f"xrpyc runs cells on a local xrpyc-device started beforehand.\n"
    )
    print(table(results, args.round_trips))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
