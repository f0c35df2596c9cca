"""MaixPy3 releases for the tests: fetched from the package index at test time, cached, never committed.

Each release's Python files (maix/*.py) come from its armv7l wheel, the one a board installs
(its sdists of 0.4 and later do not build off the board). pip fetches it and checks its hash
against the index; the cache is ~/.cache/xrpyc-maixpy3/<version>/.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port, start_ready_server, stop

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xrpyc-maixpy3"
BOARD = Path(__file__).with_name("maixpy3_board.py")


def release(version: str) -> Path:
    """The directory holding release `version`'s `maix` package (its Python files only)."""
    target = CACHE / version
    if (target / "maix" / "__init__.py").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
            "--platform", "linux_armv7l", "--python-version", "38", "--implementation", "cp", "--abi", "cp38",
            "--dest", scratch, f"maixpy3=={version}",
        ]  # fmt: skip
        try:
            fetched = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip(f"maixpy3 {version}: the package index did not answer within 10 minutes")
        wheels = list(Path(scratch).glob("*.whl"))
        if fetched.returncode != 0 or not wheels:
            reason = fetched.stderr[-300:]
            pytest.skip(f"maixpy3 {version} is not cached and the package index is unreachable: {reason}")
        unpacked = Path(scratch) / "release"
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in wheel.namelist():
                if name.startswith("maix/") and name.endswith(".py"):
                    wheel.extract(name, unpacked)
        with contextlib.suppress(FileExistsError, OSError):  # another run got there first
            unpacked.rename(target)
    return target


@contextlib.contextmanager
def board(version: str, view: str = "mjpg", view_port: int = 0) -> Iterator[tuple[int, int]]:
    """A stand-in board running `version` (view "mjpg" or "rtsps"); yields (rpyc port, view port)."""
    files = release(version)
    view_port, rpyc_port = view_port or free_port(), free_port()
    process, port = start_ready_server(
        [sys.executable, str(BOARD), str(files), view, str(view_port), str(rpyc_port)], timeout=60
    )
    try:
        yield port, view_port
    finally:
        stop(process)


@contextlib.contextmanager
def legacy_view(version: str = "0.3.4") -> Iterator[tuple[int, str]]:
    """A board running rtsps with a picture on its display (rtsps sends nothing before); yields
    (rpyc port, maix-rtsp:// URL of its legacy view)."""
    import rpyc

    with board(version, "rtsps") as (port, view_port):
        device = rpyc.classic.connect("127.0.0.1", port)
        device.execute("from maix import display\nfrom PIL import Image\n"
                       "display.show(Image.new('RGB', (240, 240), (0, 90, 200)))")  # fmt: skip
        try:
            yield port, f"maix-rtsp://127.0.0.1:{view_port}/dev/display"
        finally:
            device.close()
