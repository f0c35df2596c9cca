"""Compare the xrpyc kernel with ipykernel and xeus-python (xpython) on this machine.

Run from the repository root, after `make all`:

    make bench                                        # installs ipykernel and xeus-python first
    .venv/bin/python bench/bench_kernels.py --repeat 5
    .venv/bin/python bench/bench_kernels.py --kernels xrpyc,xpython --repeat 3

Each kernel is started once untimed (warm-up), then several times with
jupyter_client (KernelManager and a blocking client, ZMQ on 127.0.0.1), the
kernels taking turns, and the median of the timed starts is printed as a
Markdown table (kernels as columns, xrpyc's goals in the last one):

1. spawn → first kernel_info reply: from KernelManager.start_kernel() until
   the first kernel_info_reply arrives.
2. ready: from start_kernel() until the reply to a first `pass` execute
   arrives (for xrpyc this includes connecting to the device).
3. idle RSS of the kernel process alone (psutil on the kernel's PID) once the
   first cells ran and the kernel is idle (xrpyc: connected to its device).
4. `pass` round trip: median over many execute("pass") requests, each from
   sending until both its execute_reply and its idle status arrived.
5. `for i in range(10000): print(i)`: lines/s from sending the request until
   the execute_reply and all stream output (up to the idle status) arrived;
   the lines are checked to be complete and in order.

For xrpyc the script first starts its own `xrpyc-device` on a free loopback
port (not timed) and points the kernel at it with $XRPYC_DEVICE. Progress and
per-start figures go to stderr, the report to stdout. Nothing is asserted
about timings; the exit status is 1 only when a start failed.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import psutil
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

# Benchmark name -> kernelspec name. ipykernel is jupyter_client's "native"
# kernel: found even without an installed kernelspec, as long as it imports.
KERNELS = {"xrpyc": "xrpyc", "ipykernel": NATIVE_KERNEL_NAME, "xpython": "xpython"}
INSTALL_HINTS = {"xrpyc": "run `make all`", "ipykernel": "pip install ipykernel", "xpython": "pip install xeus-python"}

LOOPBACK = "127.0.0.1"
LINES = 10_000
LINES_CODE = f"for i in range({LINES}): print(i)"

START_TIMEOUT = 60.0  # s, from spawn to the first execute reply
CELL_TIMEOUT = 60.0  # s, for any one cell
KERNEL_INFO_RETRY = 0.2  # s between kernel_info requests while the kernel starts
ZMQ_RECONNECT_INTERVAL = 2  # ms; ZMQ's default of 100 ms would quantize the start-up times
IOPUB_QUIET = 2.0  # s of IOPub silence after the reply that mean the idle status was lost
WARMUP_CELLS = 5
IDLE_SETTLE = 0.5  # s of idleness before the RSS is read
DEVICE_READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
LOG_TAIL = 2000  # characters of a failed kernel's output that are shown


# -- results ----------------------------------------------------------------------------


@dataclass
class Execution:
    """One answered execute request."""

    status: str
    seconds: float  # until the reply and the idle status (or the last message) arrived
    stdout: str
    stderr: str
    stream_messages: int
    idle_seen: bool
    error: str = ""  # "ename: evalue" of a failed cell


@dataclass
class RunResult:
    """What one start of one kernel measured."""

    first_reply_ms: float
    ready_ms: float
    idle_rss_mib: float
    idle_pss_mib: float
    pass_rtt_ms: float
    lines_per_s: float
    lines_lost: int
    lines_in_order: bool
    stream_messages: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    label: str
    attr: str
    fmt: str
    goal: str = ""
    goal_met: Callable[[float], bool] | None = None


ROWS = (
    Row("spawn → first kernel_info reply (ms)", "first_reply_ms", "{:.1f}", "≤ 60 ms", lambda v: v <= 60),
    Row("ready (first execute answered) (ms)", "ready_ms", "{:.1f}"),
    Row("idle RSS of the kernel process (MiB)", "idle_rss_mib", "{:.1f}", "≤ 24 MiB", lambda v: v <= 24),
    Row("idle PSS of the kernel process (MiB)", "idle_pss_mib", "{:.1f}"),
    Row("`pass` round trip (ms, median)", "pass_rtt_ms", "{:.2f}", "≤ 2 ms", lambda v: v <= 2),
    Row(f"{LINES:,} printed lines (lines/s)", "lines_per_s", "{:,.0f}", "≥ 100,000, none lost", lambda v: v >= 100_000),
)


# -- machine and versions ----------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
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
        (
            f"Machine: {cpu_model()}, {cores}, {memory:.1f} GiB RAM, {platform.system()} {platform.release()}, "
            f"load average {os.getloadavg()[0]:.2f}"
        ),
        f"Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"Versions: {packages}",
    ]


# -- processes ------------------------------------------------------------------------------


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


def device_command(mjpeg_port: str = "0", *options: str) -> list[str]:
    """An xrpyc-device on a free port with `options`; its MJPEG live view on `mjpeg_port` ("0": none, "auto": a
    free port)."""
    script = Path(sys.executable).with_name("xrpyc-device")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "xrpyc.device"]
    return [*program, "--host", LOOPBACK, "--port", "0", "--mjpeg-port", mjpeg_port, *options]


def read_first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The process's first stdout line, or "" when none came within `timeout`."""
    assert process.stdout is not None
    if not select.select([process.stdout], [], [], timeout)[0]:
        return ""
    return process.stdout.readline().decode(errors="replace").strip()


@contextlib.contextmanager
def xrpyc_device(mjpeg_port: str = "0", *options: str) -> Iterator[str]:
    """An xrpyc-device on a free loopback port (for one kernel unless `options` say more); yields "127.0.0.1:PORT"."""
    # Unbuffered: a buffered reader would take the READY line along with the MJPEG one, out of select()'s sight.
    process = subprocess.Popen(
        device_command(mjpeg_port, *options), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0
    )
    try:
        line = read_first_line(process, DEVICE_READY_TIMEOUT)
        if line.startswith("MJPEG "):  # the live view's URL comes first
            line = read_first_line(process, DEVICE_READY_TIMEOUT)
        prefix = f"READY rpyc://{LOOPBACK}:"
        if not line.startswith(prefix):
            raise RuntimeError(f"xrpyc-device did not start (its first line: {line!r})")
        yield f"{LOOPBACK}:{int(line[len(prefix) :].split()[0])}"
    finally:
        stop_process(process)


@contextlib.contextmanager
def kernel_env(name: str, base: dict[str, str], mjpeg_port: str = "0") -> Iterator[dict[str, str]]:
    """The environment for one start of kernel `name` (with a running device for xrpyc)."""
    if name != "xrpyc":
        yield dict(base)
        return
    with xrpyc_device(mjpeg_port) as address:
        yield {**base, "XRPYC_DEVICE": address}


def kernel_process(km: KernelManager) -> psutil.Process:
    provisioner = km.provisioner
    pid = getattr(provisioner, "pid", None) or provisioner.process.pid  # type: ignore[union-attr]
    return psutil.Process(pid)


def shut_down(km: KernelManager) -> None:
    """Shut the kernel down (politely, else by force) and stop children it left behind."""
    if not km.has_kernel:
        return
    try:
        children = kernel_process(km).children(recursive=True)
    except psutil.Error:
        children = []
    try:
        km.shutdown_kernel(now=False)
    except Exception:
        km.shutdown_kernel(now=True)
    for child in children:  # e.g. a private device the kernel should have stopped
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                print(f"  stopping leftover kernel child {child.pid} ({child.name()})", file=sys.stderr)
                child.terminate()
                child.wait(STOP_TIMEOUT)


@dataclass
class Started:
    """A running kernel: its manager, a connected client, when it was started, its environment."""

    km: KernelManager
    kc: BlockingKernelClient
    start: float  # perf_counter() just before KernelManager.start_kernel()
    env: dict[str, str]


def log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace").strip()[-LOG_TAIL:]


@contextlib.contextmanager
def running_kernel(
    name: str, ctx: zmq.Context, base_env: dict[str, str], mjpeg_port: str = "0"
) -> Iterator[Started]:
    """Start kernel `name` (xrpyc: with a device, its live view on `mjpeg_port`); shut everything down on leaving.

    The kernel's own output is captured and shown only when something fails.
    """
    with kernel_env(name, base_env, mjpeg_port) as env, tempfile.TemporaryFile() as log:
        km = KernelManager(kernel_name=KERNELS[name], context=ctx, ip=LOOPBACK, transport="tcp")
        try:
            start = time.perf_counter()
            km.start_kernel(env=env, stdout=log, stderr=log)
            kc = km.client(context=ctx)
            kc.start_channels(hb=False)
            try:
                yield Started(km, kc, start, env)
            finally:
                kc.stop_channels()
        except Exception as error:
            raise RuntimeError(f"{type(error).__name__}: {error}\n--- kernel output ---\n{log_tail(log)}") from error
        finally:
            shut_down(km)


# -- talking to a kernel -----------------------------------------------------------------------


def remaining(deadline: float, what: str) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError(f"timed out waiting for {what}")
    return left


def parent_id(msg: dict[str, Any]) -> str | None:
    # xeus 6 (xpython) sends its iopub_welcome with a null parent header.
    return (msg.get("parent_header") or {}).get("msg_id")


def wait_shell_reply(kc: BlockingKernelClient, msg_ids: set[str], deadline: float) -> dict[str, Any]:
    """The next shell reply to one of `msg_ids` (other replies are dropped)."""
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
    it is repeated every KERNEL_INFO_RETRY in case a kernel drops early ones,
    and the replies to the repeats are collected before returning.
    """
    sent: set[str] = set()
    while True:
        sent.add(kc.kernel_info())
        try:
            msg = wait_shell_reply(kc, sent, min(time.perf_counter() + KERNEL_INFO_RETRY, deadline))
        except TimeoutError:
            remaining(deadline, "the first kernel_info reply")
            continue
        arrived = time.perf_counter()
        sent.discard(parent_id(msg))
        while sent:
            sent.discard(parent_id(wait_shell_reply(kc, sent, time.perf_counter() + CELL_TIMEOUT)))
        return arrived


def first_execute(kc: BlockingKernelClient, deadline: float) -> float:
    """perf_counter() when the reply to a first `pass` arrived (IOPub may not be subscribed yet)."""
    msg_id = kc.execute("pass")
    reply = wait_shell_reply(kc, {msg_id}, deadline)
    arrived = time.perf_counter()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the first cell failed: {reply['content']}")
    return arrived


def execute(
    kc: BlockingKernelClient, code: str, timeout: float = CELL_TIMEOUT, quiet: float = IOPUB_QUIET
) -> Execution:
    """Run `code`; return once its execute_reply and its idle status arrived.

    A kernel may lose IOPub messages (ZMQ drops them past its high-water mark),
    the idle status among them: once the reply is in, IOPub silence for
    `quiet` seconds also ends the wait, and the last message's time counts.
    """
    shell, iopub = kc.shell_channel, kc.iopub_channel
    poller = zmq.Poller()
    poller.register(shell.socket, zmq.POLLIN)
    poller.register(iopub.socket, zmq.POLLIN)
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    reply: dict[str, Any] | None = None
    idle, count = False, 0
    start = time.perf_counter()
    msg_id = kc.execute(code)
    deadline, last = start + timeout, start
    while reply is None or not idle:
        wait = remaining(deadline, f"the reply to {code!r}")
        if not poller.poll((min(wait, quiet) if reply is not None else wait) * 1000):
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
    content = reply["content"]
    error = f"{content.get('ename')}: {content.get('evalue')}" if content["status"] == "error" else ""
    stdout, stderr = "".join(streams["stdout"]), "".join(streams["stderr"])
    return Execution(content["status"], last - start, stdout, stderr, count, idle, error)


def execute_ok(kc: BlockingKernelClient, code: str) -> Execution:
    result = execute(kc, code)
    if result.status != "ok":
        raise RuntimeError(f"{code!r} failed: {result.error or result.status} {result.stderr[-500:]}")
    return result


def settle_iopub(kc: BlockingKernelClient, tries: int = 20) -> None:
    """Run cells until IOPub delivers their idle status (the subscription is up)."""
    for _ in range(tries):
        if execute(kc, "pass", quiet=0.25).idle_seen:
            return
    raise TimeoutError("IOPub never delivered an idle status")


# -- the measurements ----------------------------------------------------------------------------


def idle_memory_mib(process: psutil.Process) -> tuple[float, float]:
    """(RSS, PSS) once idle. PSS charges shared library pages (libpython,
    libcrypto, ...) in proportion to the processes that map them."""
    time.sleep(IDLE_SETTLE)
    memory = process.memory_full_info()
    return memory.rss / 2**20, memory.pss / 2**20


def pass_round_trip_ms(kc: BlockingKernelClient, count: int) -> float:
    return statistics.median(execute_ok(kc, "pass").seconds * 1000 for _ in range(count))


def check_lines(text: str) -> tuple[int, bool]:
    """(lines lost, all lines there and in order) for the output of LINES_CODE."""
    expected = [str(i) for i in range(LINES)]
    received = text.splitlines()
    return len(set(expected) - set(received)), received == expected


def process_notes(name: str, process: psutil.Process, env: dict[str, str]) -> list[str]:
    """Checks that the kernel is alone and (xrpyc) uses the benchmark's device."""
    notes = []
    children = process.children(recursive=True)
    if children:
        notes.append(f"kernel has child processes: {[(c.pid, c.name()) for c in children]}")
    if name == "xrpyc":
        address = env["XRPYC_DEVICE"]
        if process.environ().get("XRPYC_DEVICE") != address:
            notes.append(f"the kernel's environment lacks XRPYC_DEVICE={address}")
        port = int(address.rsplit(":", 1)[1])
        if not any(c.raddr and c.raddr.port == port for c in process.net_connections(kind="tcp")):
            notes.append(f"no TCP connection from the kernel to the device at {address}")
    return notes


def measure(name: str, kernel: Started, round_trips: int) -> RunResult:
    """Measure a kernel that was just started."""
    km, kc, start = kernel.km, kernel.kc, kernel.start
    first_reply = first_kernel_info(kc, start + START_TIMEOUT)
    ready = first_execute(kc, start + START_TIMEOUT)
    settle_iopub(kc)
    for _ in range(WARMUP_CELLS):
        execute_ok(kc, "pass")
    process = kernel_process(km)
    notes = process_notes(name, process, kernel.env)
    rss, pss = idle_memory_mib(process)
    rtt = pass_round_trip_ms(kc, round_trips)
    lines = execute_ok(kc, LINES_CODE)
    lost, in_order = check_lines(lines.stdout)
    if not lines.idle_seen:
        notes.append("the idle status after the printed lines never arrived (IOPub dropped it)")
    return RunResult(
        first_reply_ms=(first_reply - start) * 1000,
        ready_ms=(ready - start) * 1000,
        idle_rss_mib=rss,
        idle_pss_mib=pss,
        pass_rtt_ms=rtt,
        lines_per_s=LINES / lines.seconds,
        lines_lost=lost,
        lines_in_order=in_order,
        stream_messages=lines.stream_messages,
        notes=notes,
    )


def run_once(name: str, ctx: zmq.Context, base_env: dict[str, str], round_trips: int) -> RunResult:
    """One measured start of kernel `name`."""
    with running_kernel(name, ctx, base_env) as kernel:
        return measure(name, kernel, round_trips)


def warm_up(name: str, ctx: zmq.Context, base_env: dict[str, str]) -> None:
    """A start that is not measured: jupyter_client's first start in a process costs
    tens of ms more (imports), and it brings the kernel's files into the page cache."""
    with running_kernel(name, ctx, base_env) as kernel:
        first_kernel_info(kernel.kc, kernel.start + START_TIMEOUT)


# -- report -----------------------------------------------------------------------------------------


def progress_line(r: RunResult) -> str:
    check = "✓" if r.lines_in_order and not r.lines_lost else f"lost {r.lines_lost}, in order: {r.lines_in_order}"
    line = (
        f"first reply {r.first_reply_ms:.1f} ms, ready {r.ready_ms:.1f} ms, RSS {r.idle_rss_mib:.1f} MiB, "
        f"pass {r.pass_rtt_ms:.2f} ms, {r.lines_per_s:,.0f} lines/s {check} ({r.stream_messages} stream messages)"
    )
    return line + "".join(f"\n    note: {note}" for note in r.notes)


def median_of(runs: list[RunResult], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def lines_complete(runs: list[RunResult]) -> bool:
    return all(r.lines_lost == 0 and r.lines_in_order for r in runs)


def cell(row: Row, runs: list[RunResult]) -> str:
    if not runs:
        return "failed"
    value = row.fmt.format(median_of(runs, row.attr))
    if row.attr != "lines_per_s":
        return value
    lost = max(r.lines_lost for r in runs)
    if lost:
        return f"{value} (lost: {lost})" if len(runs) == 1 else f"{value} (lost: up to {lost})"
    return f"{value} ✓" if lines_complete(runs) else f"{value} (out of order)"


def goal_cell(row: Row, xrpyc: list[RunResult]) -> str:
    if not row.goal or row.goal_met is None or not xrpyc:
        return row.goal
    met = row.goal_met(median_of(xrpyc, row.attr))
    if row.attr == "lines_per_s":
        met = met and lines_complete(xrpyc)
    return f"{row.goal} {'(met)' if met else '(missed)'}"


def table(results: dict[str, list[RunResult]]) -> str:
    names = list(results)
    lines = ["| metric | " + " | ".join(names) + " | goal (xrpyc) |", "|---" * (len(names) + 2) + "|"]
    for row in ROWS:
        cells = " | ".join(cell(row, results[name]) for name in names)
        lines.append(f"| {row.label} | {cells} | {goal_cell(row, results.get('xrpyc', []))} |")
    return "\n".join(lines)


def notes_section(results: dict[str, list[RunResult]]) -> list[str]:
    counts = ", ".join(f"{name} {median_of(runs, 'stream_messages'):,.0f}" for name, runs in results.items() if runs)
    lines = [f"- IOPub stream messages for the {LINES:,} lines (median): {counts}"] if counts else []
    if any(r.lines_lost or not r.lines_in_order for runs in results.values() for r in runs):
        lines.append(
            "- Lost lines: ZMQ drops IOPub messages beyond its high-water mark (1,000 by default, kept here as "
            "jupyter_client sets it) when a kernel sends messages faster than the client reads them."
        )
    for name, runs in results.items():
        for note in dict.fromkeys(note for r in runs for note in r.notes):
            times = sum(note in r.notes for r in runs)
            lines.append(f"- {name} ({times} of {len(runs)} starts): {note}")
    return lines


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="starts of each kernel (default: %(default)s)")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated subset of: %(default)s")
    parser.add_argument("--round-trips", type=int, default=200, help="`pass` requests per start (default: %(default)s)")
    args = parser.parse_args(argv)
    args.kernels = list(dict.fromkeys(k.strip() for k in args.kernels.split(",") if k.strip()))
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
            missing.append(f"{name} (kernelspec {KERNELS[name]!r}: {INSTALL_HINTS[name]})")
    return missing


def zmq_context() -> zmq.Context:
    ctx = zmq.Context()
    ctx.setsockopt(zmq.RECONNECT_IVL, ZMQ_RECONNECT_INTERVAL)
    ctx.setsockopt(zmq.LINGER, 0)
    return ctx


def run_all(names: list[str], repeat: int, round_trips: int) -> tuple[dict[str, list[RunResult]], int]:
    """A warm-up start of each kernel, then the measured starts, kernels taking turns so
    that drift affects them alike; returns (results, failures)."""
    results: dict[str, list[RunResult]] = {name: [] for name in names}
    failures = 0
    ctx = zmq_context()
    # ipykernel's history of the benchmark's cells goes to a throw-away IPYTHONDIR.
    with tempfile.TemporaryDirectory(prefix="bench-ipython-") as ipython_dir:
        base_env = {**os.environ, "IPYTHONDIR": ipython_dir}
        try:
            for rep in range(repeat + 1):
                for name in names:
                    label = f"[{rep}/{repeat}] {name}" if rep else f"[warm-up] {name}"
                    try:
                        if not rep:
                            warm_up(name, ctx, base_env)
                            continue
                        result = run_once(name, ctx, base_env, round_trips)
                    except Exception as error:
                        failures += 1
                        print(f"{label}: FAILED: {error}", file=sys.stderr, flush=True)
                        continue
                    results[name].append(result)
                    print(f"{label}: {progress_line(result)}", file=sys.stderr, flush=True)
        finally:
            ctx.destroy(linger=0)
    return results, failures


def exit_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C does, so that kernels and devices are stopped."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    missing = missing_kernels(args.kernels)
    if missing:
        print("Kernels not found: " + "; ".join(missing), file=sys.stderr)
        return 1
    results, failures = run_all(args.kernels, args.repeat, args.round_trips)
    print("\n".join(machine_lines()))
    print(
        f"Median of {args.repeat} start(s) per kernel (kernels in turn), {args.round_trips} `pass` round trips "
        f"per start; jupyter_client {package_version('jupyter_client')} over ZMQ on {LOOPBACK}; xrpyc runs its "
        f"cells on an xrpyc-device started beforehand on {LOOPBACK}.\n"
    )
    print(table(results))
    print()
    print("\n".join(notes_section(results)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
