"""$download from a hostile device: the names, modes, sizes and bytes it sends are data, never trusted.

Each test starts its own stock rpyc_classic device, connects the kernel to it,
and runs a cell that replaces device-side functions of remote/files.py in the
module the device made of it (the agent module's `files`, found through the
`_xrpyc_agents` registry): what any device, or another kernel's cell on a
shared device, can do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_client import RunningKernel
from test_files import assert_command_error, classic_device, kernel_in, no_leftovers, progress

PAYLOAD = b"#!/bin/sh\necho escaped\n"

# Run on the device: the helpers' module of this (first and only) connection, and a
# FileSource stand-in that serves `data` (in pieces of `piece` bytes, whatever was asked).
HOSTILE = """
import hashlib, io, sys
_helpers = vars(next(iter(sys.modules['_xrpyc_agents'].agents.values())).run.__func__.__globals__['files'])
class _Fake:
    def __init__(self, data, piece):
        self._file, self._hash, self._piece = io.BytesIO(data), hashlib.sha256(), piece
    def read(self, size):
        data = self._file.read(self._piece or size)
        self._hash.update(data)
        return data
    def finish(self):
        return self._hash.hexdigest()
def _serve(data, piece=0):
    def source(path):
        fake = _Fake(data, piece)
        return (fake.read, fake.finish)
    _helpers['source'] = source
def _list(files, dirs=()):
    _helpers['walk'] = lambda root: (tuple(dirs), tuple(files), 0)
def _stat(result):
    _helpers['examine'] = lambda path: result
"""


@pytest.fixture(scope="module")
def kernel_here(stock_device: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKernel]:
    with kernel_in(tmp_path_factory.mktemp("kernel"), stock_device) as running:
        yield running


@pytest.fixture
def hostile(kernel_here: RunningKernel, tmp_path: Path) -> Iterator[RunningKernel]:
    """The kernel, connected to a fresh device whose cell namespace has HOSTILE's helpers."""
    (tmp_path / "device").mkdir()
    with classic_device(tmp_path / "device") as (_, port):
        try:
            assert kernel_here.run(f'$connect("127.0.0.1:{port}")').status == "ok"
            assert kernel_here.run(HOSTILE).status == "ok"
            yield kernel_here
        finally:
            kernel_here.run("$disconnect()")


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(a directory on the device, the destination the user chose, a place outside it)."""
    source, chosen, outside = tmp_path / "device" / "tree", tmp_path / "chosen", tmp_path / "outside"
    for path in (source, chosen, outside):
        path.mkdir(parents=True)
    return source, chosen, outside


def everything(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.mark.parametrize(
    "name",
    [
        "../../escape.sh",
        "sub/../../../escape.sh",
        "ABSOLUTE",
        "./x.sh",
        "a//b.sh",
        "",
        "dir/",
        "nul\0byte.sh",
        "bell\x07\x1b]0;title\x07.sh",
        "csi\x9b31m.sh",
        "..\\..\\escape.sh",
        "x" * 300,
    ],
)
def test_device_names_never_leave_the_destination(
    hostile: RunningKernel, places: tuple[Path, Path, Path], name: str
) -> None:
    source, chosen, outside = places
    if name == "ABSOLUTE":
        name = str(outside / "abs.sh")
    before = everything(chosen.parent)
    hostile.run(f"_serve({PAYLOAD!r})\n_list([({name!r}, {len(PAYLOAD)}, 0o755)])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    error = assert_command_error(result, "the device sent an unsafe file name", "nothing was written")
    assert "\x1b" not in error and "\x07" not in error and "\x9b" not in error and "\0" not in error
    assert everything(chosen.parent) - before <= {"chosen/tree"}  # at most the (empty) directory itself
    assert not any((chosen / "tree").iterdir()) if (chosen / "tree").exists() else True


def test_a_symlink_in_the_destination_is_not_followed(
    hostile: RunningKernel, places: tuple[Path, Path, Path]
) -> None:
    """`link` (planted in the destination, pointing outside) is walked through by the device's names."""
    source, chosen, outside = places
    (chosen / "tree").mkdir()
    (chosen / "tree" / "link").symlink_to(outside)
    (chosen / "tree" / "file-link").symlink_to(outside / "target.sh")
    hostile.run(f"_serve({PAYLOAD!r})\n_list([('link/planted.sh', {len(PAYLOAD)}, 0o755)], dirs=['link'])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert_command_error(result, f"{chosen}/tree/link", "symbolic link")
    assert list(outside.iterdir()) == []
    # A file's own name being a link: replaced by the file, the link's target untouched.
    hostile.run(f"_list([('file-link', {len(PAYLOAD)}, 0o755)])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert result.status == "ok", result.of_type("error")
    assert list(outside.iterdir()) == [] and (chosen / "tree" / "file-link").read_bytes() == PAYLOAD
    assert not (chosen / "tree" / "file-link").is_symlink()


def test_the_directory_name_itself(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    """The name of what is downloaded comes from the device's idea of its full path."""
    source, chosen, _ = places
    hostile.run(f"_serve({PAYLOAD!r})\n_list([('escape2.sh', {len(PAYLOAD)}, 0o755)])")
    for full in (f"{source}/..", "/", f"{source}/\x1b[2J"):
        hostile.run(f"_stat(('dir', 0, 0o755, {full!r}))")
        result = hostile.run(f'$download("{source}", "{chosen}")')
        error = assert_command_error(result, "the device sent an unsafe file name")
        assert "\x1b" not in error
    for full in (f"{source}/..", f"{source}/.", "/"):
        hostile.run(f"_stat(('file', {len(PAYLOAD)}, 0o755, {full!r}))")
        assert_command_error(hostile.run(f'$download("{source}", "{chosen}")'), "the device sent an unsafe file name")
    assert everything(chosen.parent) == {"chosen", "device", "device/tree", "outside"}


def test_modes_from_the_device_are_masked(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    source, chosen, _ = places
    hostile.run(f"_serve({PAYLOAD!r})\n_list([('setuid.sh', {len(PAYLOAD)}, 0o7777)])")
    assert hostile.run(f'$download("{source}", "{chosen}")').status == "ok"
    mode = stat.S_IMODE((chosen / "tree" / "setuid.sh").stat().st_mode)
    assert mode & 0o7022 == 0 and mode & 0o100, oct(mode)  # still executable by its owner
    hostile.run(f"_stat(('file', {len(PAYLOAD)}, 0o6777, {str(source / 'one.sh')!r}))")
    assert hostile.run(f'$download("{source}", "{chosen}")').status == "ok"
    mode = stat.S_IMODE((chosen / "one.sh").stat().st_mode)
    assert mode & 0o7022 == 0, oct(mode)


def test_more_bytes_than_announced(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    """A device that announces 23 bytes and sends 4 MiB (reads ignoring the size asked for)."""
    source, chosen, _ = places
    hostile.run(f"_serve(b'x' * (4 << 20), piece=1 << 20)\n_list([('big.bin', {len(PAYLOAD)}, 0o644)])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert_command_error(result, "big.bin", "more of", "than the 23 B it announced")
    assert not (chosen / "tree" / "big.bin").exists() and no_leftovers(chosen)


def test_a_size_beyond_the_free_space(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    source, chosen, _ = places
    hostile.run(f"_serve({PAYLOAD!r})\n_list([('huge.bin', 1 << 60, 0o644)])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert_command_error(result, "1048576.0 TiB", "free")
    assert not (chosen / "tree").exists()


def test_a_wrong_digest_writes_nothing(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    source, chosen, _ = places
    hostile.run(f"_serve({PAYLOAD!r})\n_list([('lie.sh', {len(PAYLOAD)}, 0o755)])")
    hostile.run("_Fake.finish = lambda self: '0' * 64")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert_command_error(result, "its SHA-256 differs", "not written")
    assert not (chosen / "tree" / "lie.sh").exists() and no_leftovers(chosen)
    # Not a str: a device object whose == says yes to anything.
    hostile.run("class _Yes(str):\n    def __eq__(self, other): return True\n    __ne__ = lambda s, o: False\n"
                "_Fake.finish = lambda self: _Yes('0' * 64)")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert_command_error(result, "lie.sh")
    assert not (chosen / "tree" / "lie.sh").exists() and no_leftovers(chosen)


def test_names_in_ls_and_errors_carry_no_terminal_escapes(
    hostile: RunningKernel, places: tuple[Path, Path, Path]
) -> None:
    source, chosen, _ = places
    evil = "\x1b]0;owned\x07\x1b[2J"
    hostile.run(f"_helpers['listdir'] = lambda path: ({evil!r}, (({evil!r}, False, 1, 0.0),))")
    listing = hostile.run(f'$ls("{source}")').stream()
    assert "\x1b" not in listing and "\x07" not in listing and "\\x1b]0;owned\\x07" in listing
    # An OSError from the device whose text carries escapes (its strerror and filename are the device's).
    hostile.run(f"_stat(('file', {len(PAYLOAD)}, 0o644, {str(source / 'ok.txt')!r}))")
    hostile.run(f"def _fail(path):\n    raise OSError(5, 'I/O error' + {evil!r}, {evil!r})\n"
                "_helpers['source'] = _fail")
    result = hostile.run(f'$download("{source}/ok.txt", "{chosen}")')
    error = assert_command_error(result, "\\x1b]0;owned")
    assert "\x1b" not in error and "\x07" not in error
    for update in progress(result)[1]:
        assert "\x1b" not in update["data"]["text/plain"]


def test_honest_names_still_work(hostile: RunningKernel, places: tuple[Path, Path, Path]) -> None:
    """Odd but harmless names: spaces, dots inside, unicode, a leading dash."""
    source, chosen, _ = places
    names = ["a b.txt", "..hidden", "x..y", "é ü 漢字.txt", "-rf", "sub/.config"]
    hostile.run(f"_serve({PAYLOAD!r})\n_list([(n, {len(PAYLOAD)}, 0o644) for n in {names!r}], dirs=['sub'])")
    result = hostile.run(f'$download("{source}", "{chosen}")')
    assert result.status == "ok", result.of_type("error")
    for name in names:
        assert (chosen / "tree" / name).read_bytes() == PAYLOAD
    assert no_leftovers(chosen)
    assert os.listdir(chosen) == ["tree"]
