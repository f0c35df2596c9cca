"""`$` commands through the kernel."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

from kernel_client import RunningKernel, kernel
from servers import free_port
from xrpyc.commands import REGISTRY


def test_dollar_inside_strings_and_brackets_goes_to_the_device(shared_kernel: RunningKernel) -> None:
    assert shared_kernel.run('print("cost $5 (approx)")').stream() == "cost $5 (approx)\n"
    assert shared_kernel.run("s = '''\n$connect('x')\n'''\nprint(s.strip())").stream() == "$connect('x')\n"
    assert shared_kernel.run("t = ('a',\n'$b')\nt").result == "('a', '$b')"


def test_connect_forms(shared_kernel: RunningKernel, stock_device: int, device: int) -> None:
    for form in (f'$connect("127.0.0.1:{device}")', f'$connect("127.0.0.1", {device})',
                 f'$connect("localhost", port={device}, timeout=2)'):
        result = shared_kernel.run(form + "\nimport sys\n'xrpyc' in sys.modules")
        assert result.status == "ok", result.messages
        assert f"Connected to 127.0.0.1:{device}" in result.stream() or f"localhost:{device}" in result.stream()
        # Our xrpyc-device imports xrpyc; the stock server does not.
        assert result.result == "True"
    shared_kernel.run(f'$connect("127.0.0.1:{stock_device}")')
    assert shared_kernel.run("import sys\n'xrpyc' in sys.modules").result == "False"


def test_connect_gives_a_fresh_namespace_and_disconnect_returns_to_default(
    shared_kernel: RunningKernel, device: int, stock_device: int
) -> None:
    shared_kernel.run("on_default = 1")
    shared_kernel.run(f'$connect("127.0.0.1:{device}")')
    assert shared_kernel.run("on_default").error["ename"] == "NameError"
    left = shared_kernel.run("$disconnect()")
    assert left.stream() == (
        f"disconnected from 127.0.0.1:{device} (its variables dropped); next cells run on 127.0.0.1:{stock_device}\n"
    )
    # A new connection to the default device: a new namespace there too.
    assert shared_kernel.run("import os; os.getpid() > 0").result == "True"
    assert shared_kernel.run("$disconnect()").stream().startswith(f"disconnected from 127.0.0.1:{stock_device} ")
    assert shared_kernel.run("$disconnect()").stream() == (
        f"not connected: cells run on the default device, 127.0.0.1:{stock_device}\n"
    )


def test_unreachable_device_fails_fast_with_a_clear_message(shared_kernel: RunningKernel) -> None:
    port = free_port()
    started = time.monotonic()
    result = shared_kernel.run(f'$connect("127.0.0.1:{port}")\nprint("not reached")')
    assert time.monotonic() - started < 5
    assert result.status == "error"
    assert result.error["ename"] == "DeviceRefused"
    assert "connection refused" in result.error["evalue"] and str(port) in result.error["evalue"]
    assert result.stream() == ""
    # The kernel still runs cells on the device it had.
    assert shared_kernel.run("1 + 1").result == "2"


def test_unresolvable_host(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run('$connect("no-such-host.invalid")')
    assert result.error["ename"] == "DeviceError"
    assert "cannot resolve" in result.error["evalue"]


def test_unknown_and_malformed_commands_list_the_valid_ones(shared_kernel: RunningKernel) -> None:
    unknown = shared_kernel.run('$conect("x")')
    assert unknown.status == "error" and unknown.error["ename"] == "CommandError"
    for name in ("$connect", "$disconnect", "$exec", "$device", "$help"):
        assert name in unknown.error["evalue"]
    for bad in ('$connect(', "$connect(host)", "$connect()", '$connect("h", "p")', "  $device()", "$5",
                '$connect("h:1", 2)', '$connect("h", 70000)'):
        result = shared_kernel.run(bad)
        assert result.status == "error", bad
        assert result.error["ename"] in ("CommandError", "CommandSyntaxError"), bad
    assert shared_kernel.run("1").result == "1"


def test_a_bad_command_stops_the_cell_before_anything_runs(shared_kernel: RunningKernel) -> None:
    shared_kernel.run("counter = 0")
    assert shared_kernel.run("counter += 1\n$nonsense()").status == "error"
    assert shared_kernel.run("counter").result == "0"


def test_code_and_commands_run_in_order(shared_kernel: RunningKernel, device: int) -> None:
    result = shared_kernel.run(f"print('before')\n$connect('127.0.0.1:{device}')\nprint('after')\n1/0")
    lines = result.stream().splitlines()
    assert lines[0] == "before" and lines[-1] == "after"
    # Line numbers in tracebacks are those of the whole cell.
    assert "line 4" in "\n".join(result.error["traceback"])


def test_device_command_shows_what_the_device_is_and_has(shared_kernel: RunningKernel) -> None:
    text = shared_kernel.run("$device()").stream()
    facts = dict(re.match(r"(\S+) +(.*)", line).groups() for line in text.splitlines())
    # The device runs on this machine: its facts are this machine's.
    assert facts["machine"] == platform.machine()
    assert f"{os.cpu_count()} cores, load " in facts["cpu"]
    assert re.fullmatch(r"[\d.]+ [KMG]iB available of [\d.]+ [KMG]iB", facts["memory"])
    assert re.match(r"[\d.]+ [KMG]iB free of [\d.]+ [KMG]iB \(where the cells run: /", facts["disk"])
    assert re.fullmatch(r"(\d+ d )?\d+:\d\d", facts["uptime"])
    assert facts["python"] == f"CPython {platform.python_version()}" and facts["rpyc"].startswith("6.")
    assert set(facts) >= {"address", "host", "platform", "executable", "cwd"}


def test_exec_runs_in_the_kernel_process(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("$exec('import os; print(os.getpid())')")
    assert int(result.stream()) == shared_kernel.pid
    assert shared_kernel.run("$exec('kept = 3')\n$exec('print(kept * 2)')").stream() == "6\n"
    error = shared_kernel.run("$exec('1/0')").error
    assert error["ename"] == "ZeroDivisionError"
    assert shared_kernel.run("$exec('raise SystemExit')").error["ename"] == "SystemExit"
    assert shared_kernel.run("2 + 2").result == "4"


def test_help_lists_every_command_with_its_summary(shared_kernel: RunningKernel) -> None:
    text = shared_kernel.run("$help()").stream()
    for info in REGISTRY.values():
        for usage, summary in ((info.usage, info.summary), *info.also):
            assert re.search(rf"^  {re.escape(usage)} +{re.escape(summary)}$", text, re.MULTILINE), info
    for form in ("$video()", "$video(True)", "$video(False)", '$video("url"'):
        assert f"\n  {form}" in text, form


def test_a_quiet_start(stock_device: int, tmp_path: Path) -> None:
    """Nothing on the kernel's stderr, which frontends show (jupyter console, nbconvert, the server's log):
    xeus 2.4's "Run with XEUS 2.4.1" was there at every start."""
    with open(tmp_path / "stderr", "w+") as stderr:
        with kernel(stock_device, stderr=stderr) as running:
            assert running.run("1 + 1").result == "2"
        stderr.seek(0)
        assert stderr.read() == ""
