"""`jupyter console --kernel xrpyc` in a pseudo-terminal, as a user types into it (pexpect)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

JUPYTER = Path(sys.executable).parent / "jupyter"
# "In [3]:", colours and all (prompt_toolkit colours the prompt whatever the colour scheme).
PROMPT = r"In \[(?:\x1b\[[0-9;]*m)*\d+(?:\x1b\[[0-9;]*m)*\]"
WAIT = 30  # s: generous, for a loaded machine; these are "does not hang" deadlines


@pytest.fixture
def console(stock_device: int, tmp_path: Path) -> Iterator[pexpect.spawn]:
    if not (JUPYTER.parent / "jupyter-console").exists():
        pytest.skip("jupyter-console is not installed (test extras)")
    env = dict(
        os.environ,
        XRPYC_DEVICE=f"127.0.0.1:{stock_device}",
        # A history of its own: the console suggests from history as one types, and other tests' cells
        # (huge ones among them) would be drawn after what is typed here.
        XRPYC_HISTORY=str(tmp_path / "history.sqlite"),
        PROMPT_TOOLKIT_NO_CPR="1",  # no cursor position requests: nobody answers them here
        TERM="xterm",
    )
    child = pexpect.spawn(
        str(JUPYTER),
        ["console", "--kernel", "xrpyc"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=WAIT,
        dimensions=(40, 200),
    )
    try:
        child.expect(PROMPT)
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def run(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")


def test_console_session(console: pexpect.spawn, tmp_path: Path) -> None:
    child = console
    # The banner is the kernel's, with no "Run with XEUS" line before the first prompt.
    assert "Run with XEUS" not in child.before

    # A block ends with one blank line, as in IPython.
    run(child, "for i in range(2):")
    run(child, "print('line', i * 7)")  # the console indents it (is_complete's indent)
    run(child, "")
    child.expect("line 7", timeout=10)
    child.expect(PROMPT)

    # Tab completes a name that exists only on the device.
    run(child, "device_only_name_xyz = 'tab' + '-completed'")
    child.expect(PROMPT)
    child.send("device_only_na\t")
    child.expect("xyz")  # the completed name, redrawn on the input line
    run(child, "")
    child.expect("tab-completed")
    child.expect(PROMPT)

    # Ctrl-C interrupts a loop on the device; the session lives on.
    run(child, "sum(1 for _ in iter(int, 1))")
    child.expect(r"\r\n")  # the cell is sent
    time.sleep(1.0)
    child.sendintr()
    child.expect("KeyboardInterrupt")
    child.expect(PROMPT)
    run(child, "print('after', 6 * 7)")
    child.expect("after 42")
    child.expect(PROMPT)

    # $upload ends with its summary line, not a bar stuck at a partial percentage.
    (tmp_path / "data.bin").write_bytes(os.urandom(600_000))
    there = tmp_path / "there"
    there.mkdir()
    run(child, f'$upload("data.bin", "{there}")')
    child.expect("SHA-256 verified")
    child.expect(PROMPT)
    assert (there / "data.bin").read_bytes() == (tmp_path / "data.bin").read_bytes()

    # exit leaves (and shuts the kernel down).
    run(child, "exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
