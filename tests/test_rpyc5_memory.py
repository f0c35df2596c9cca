"""A kernel remembers which devices speak rpyc 5.x (rpyc5.Generations), so that its next kernels skip the request
that finds out (a failed connection each time, ~12 ms on the emulated board, a Wi-Fi round trip and more on a real
one). What is remembered is only a hint: a device that changed, or a cache file someone mangled, costs one retry.

Each kernel is a fresh process here (a subprocess that opens a connection as Device.connect does), with its own
XDG_CACHE_HOME; the rpyc 5.x server is Debian's, and its log counts the connections it accepted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import BIN, DEBIAN_RPYC_CLASSIC, free_port, stop, wait_for_port

OPEN = (
    "import sys\n"
    "from xrpyc import link\n"
    "from xrpyc.address import Address\n"
    "from xrpyc.deadline import Attempt\n"
    "from xrpyc.security import Credentials\n"
    "address = Address.parse(sys.argv[1])\n"
    "conn = link.open_connection(address, Attempt(20), Credentials(), 'k')\n"
    "print(conn.eval('1 + 1'))\n"
    "conn.close()\n"
)


def open_in_a_new_kernel(port: int, cache: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OPEN, f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, env={"XDG_CACHE_HOME": str(cache), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Server:
    def __init__(self, program: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [str(program), "--host", "127.0.0.1", "--port", str(self.port)], stderr=log.open("w")
        )
        wait_for_port(self.port, self.process)  # a connection too
        self._before = self._logged()

    def _logged(self) -> int:
        time.sleep(0.2)  # the server logs after accepting
        return self.log.read_text().count("accepted")

    def accepted(self) -> int:
        """Connections accepted since the server was ready."""
        return self._logged() - self._before


@pytest.fixture
def rpyc5(tmp_path: Path) -> Iterator[Server]:
    if not DEBIAN_RPYC_CLASSIC.exists():
        pytest.skip("Debian's python3-rpyc (rpyc 5.x) is not installed")
    server = Server(DEBIAN_RPYC_CLASSIC, tmp_path / "rpyc5.log")
    yield server
    stop(server.process)


def test_the_next_kernel_goes_straight_to_rpyc5_framing(rpyc5: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert open_in_a_new_kernel(rpyc5.port, cache) == "2"
    assert rpyc5.accepted() == 2  # the rpyc 6 request that found out, then the connection
    assert open_in_a_new_kernel(rpyc5.port, cache) == "2"
    assert rpyc5.accepted() == 3  # one connection: nothing to find out


def test_a_remembered_device_that_now_speaks_rpyc6_is_still_reached(rpyc5: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert open_in_a_new_kernel(rpyc5.port, cache) == "2"
    port = rpyc5.port
    stop(rpyc5.process)  # the board was updated: rpyc 6 on the same address
    process = subprocess.Popen([str(BIN / "rpyc_classic"), "--host", "127.0.0.1", "--port", str(port)])
    try:
        wait_for_port(port, process)
        assert open_in_a_new_kernel(port, cache) == "2"
        assert f"127.0.0.1:{port}" not in (cache / "xrpyc" / "rpyc5-devices").read_text()
    finally:
        stop(process)


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff garbage\n", b"127.0.0.1:notaport\n[::1\n", b"x" * 5_000_000, b"127.0.0.1:1\n" * 10_000],
)
def test_a_mangled_memory_is_ignored(rpyc5: Server, tmp_path: Path, content: bytes) -> None:
    memory = tmp_path / "cache" / "xrpyc" / "rpyc5-devices"
    memory.parent.mkdir(parents=True)
    memory.write_bytes(content)
    assert open_in_a_new_kernel(rpyc5.port, tmp_path / "cache") == "2"
    assert open_in_a_new_kernel(rpyc5.port, tmp_path / "cache") == "2"
    assert rpyc5.accepted() == 3
