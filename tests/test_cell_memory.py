"""The device keeps cells' sources (for tracebacks and `obj??`) within a budget, against a real device process."""

from __future__ import annotations

import re
from pathlib import Path

from kernel_client import RunningKernel
from test_files import classic_device
from xrpyc.remote import agent

BIG = 20 << 20  # characters in one cell
# The agent's cell sources, from a cell: (how many, their characters).
CELLS = (
    "import sys as _sys\n"
    "_cells = next(iter(_sys.modules['_xrpyc_agents'].agents.values()))._cells\n"
    "(len(_cells), sum(len(line) for lines in _cells.values() for line in lines))"
)


def rss(pid: int) -> int:
    """Resident set size of process `pid`, in bytes (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def test_big_cells_are_not_kept(fresh_kernel: RunningKernel, tmp_path: Path) -> None:
    """Three 20 MB cells (a long comment each): the device's memory goes back down, and so do the sources kept."""
    with classic_device(tmp_path) as (process, port):
        assert fresh_kernel.run(f'$connect("127.0.0.1:{port}")').status == "ok"
        assert fresh_kernel.run("def old():\n    raise ValueError('from an old cell')").status == "ok"
        before = rss(process.pid)
        for index in range(3):
            result = fresh_kernel.run(f"# {'x' * BIG}\nbig_{index} = {index}", timeout=120)
            assert result.status == "ok", result.of_type("error")
        _, characters = eval(fresh_kernel.run(CELLS).result)
        assert characters <= agent.CELL_BYTES_KEPT, characters
        # What the device still holds, not what its allocator kept of what was freed (that varies with the
        # order of frees): freed memory goes back to the system first.
        fresh_kernel.run("import ctypes as _ctypes\n_ctypes.CDLL('libc.so.6').malloc_trim(0);")
        grown = rss(process.pid) - before
        # Without a budget: +100 MiB (measured).
        assert grown < 30 << 20, grown
        # The function defined before is live, so its cell's source stayed: its line shows.
        trace = "\n".join(fresh_kernel.run("old()").error["traceback"])
        assert "raise ValueError('from an old cell')" in trace, trace
        fresh_kernel.run("$disconnect()")


def test_many_cells_keep_a_bounded_number(fresh_kernel: RunningKernel, tmp_path: Path) -> None:
    with classic_device(tmp_path) as (_, port):
        assert fresh_kernel.run(f'$connect("127.0.0.1:{port}")').status == "ok"
        assert fresh_kernel.run("class Old:\n    def method(self):\n        return 1 / 0").status == "ok"
        assert fresh_kernel.run("square = lambda x: x ** 2").status == "ok"
        for index in range(agent.CELLS_KEPT + 10):
            assert fresh_kernel.run(f"n_{index} = {index}").status == "ok"
        count, _ = eval(fresh_kernel.run(CELLS).result)
        assert count <= agent.CELLS_KEPT + 2  # the newest, and the two whose definitions are live
        trace = "\n".join(fresh_kernel.run("Old().method()").error["traceback"])
        assert "return 1 / 0" in trace, trace
        for name, line in (("Old.method", "return 1 / 0"), ("square", "square = lambda x: x ** 2")):
            page = fresh_kernel.run(f"{name}??").reply["content"]["payload"]
            assert line in page[0]["data"]["text/plain"], page
        fresh_kernel.run("$disconnect()")
