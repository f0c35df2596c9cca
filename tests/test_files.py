"""$upload, $download and $ls through the built kernel, against real device servers.

The devices run on this machine, so the test reads and writes "the device's"
files directly. Full disks and refused permissions are real too (root only): a
device in a private mount namespace with a 1 MiB tmpfs, running as `nobody`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager, start_new_kernel
from kernel_client import Result, RunningKernel
from servers import BIN, DEBIAN_RPYC_CLASSIC, free_port, stock_rpyc_classic, stop, wait_for_port
from xrpyc.remote import files as file_ops

PART = file_ops.PART_SUFFIX
HUGE = 4 << 30  # sparse: instant to make, 10+ s to send, so an interrupt lands mid-transfer


@contextlib.contextmanager
def kernel_in(cwd: Path, device_port: int, argv: list[str] | None = None) -> Iterator[RunningKernel]:
    """A kernel whose working directory is `cwd` (a notebook's directory); `argv` wraps its command."""
    env = dict(os.environ, XRPYC_DEVICE=f"127.0.0.1:{device_port}")
    if argv is None:
        km, kc = start_new_kernel(kernel_name="xrpyc", env=env, cwd=str(cwd))
    else:
        km = KernelManager(kernel_name="xrpyc")
        # jupyter_client puts its own Python for the spec's "python" only when it comes first.
        spec = [sys.executable if part == "python" else part for part in km.kernel_spec.argv]
        km.kernel_spec.argv = [*argv, *spec]
        km.start_kernel(env=env, cwd=str(cwd))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
    try:
        yield RunningKernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the kernel's working directory, a directory on the device)."""
    return tmp_path_factory.mktemp("here"), tmp_path_factory.mktemp("there")


@pytest.fixture(scope="module")
def files_kernel(stock_device: int, places: tuple[Path, Path]) -> Iterator[RunningKernel]:
    with kernel_in(places[0], stock_device) as running:
        yield running


@pytest.fixture
def here(files_kernel: RunningKernel, places: tuple[Path, Path], request: pytest.FixtureRequest) -> Path:
    """The kernel's working directory, one for each test."""
    path = places[0] / request.node.name
    path.mkdir()
    assert files_kernel.run(f'$exec("import os; os.chdir({str(path)!r})")').status == "ok"
    return path


@pytest.fixture
def there(places: tuple[Path, Path], request: pytest.FixtureRequest) -> Path:
    path = places[1] / request.node.name
    path.mkdir()
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every directory (None) and file (its bytes) under root, by relative path."""
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes() for path in sorted(root.rglob("*"))
    }


def progress(result: Result) -> tuple[str, list[dict[str, Any]]]:
    """(display_id, its updates), after checking that the display comes first and alone."""
    shown = [m for m in result.messages if m["msg_type"] in ("display_data", "update_display_data")]
    assert shown and shown[0]["msg_type"] == "display_data", shown
    assert [m["msg_type"] for m in shown[1:]] == ["update_display_data"] * (len(shown) - 1)
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert all(m["content"]["transient"]["display_id"] == display_id for m in shown)
    return display_id, [m["content"] for m in shown[1:]]


def assert_command_error(result: Result, *parts: str) -> str:
    """A one-line CommandError whose message holds `parts`, no traceback of ours; returns the message."""
    assert result.status == "error"
    error = result.error
    assert error["ename"] == "CommandError"
    assert error["traceback"] == [f"CommandError: {error['evalue']}"]
    for part in parts:
        assert part in error["evalue"], error["evalue"]
    return error["evalue"]


def no_leftovers(directory: Path) -> bool:
    return not any(path.name.endswith(PART) for path in directory.rglob("*"))


def test_file_round_trip_with_progress(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    data = os.urandom(1_500_000)  # 6 chunks: several in flight at once
    (here / "data.bin").write_bytes(data)
    result = files_kernel.run(f'$upload("data.bin", "{there}")')  # relative to the kernel's directory
    assert result.status == "ok", result.of_type("error")
    assert (there / "data.bin").read_bytes() == data
    _, updates = progress(result)
    final = updates[-1]["data"]
    assert final["text/plain"] == "█" * 24 + " 100%" and 'max="1000" value="1000"' in final["text/html"]
    # The summary, a line of its own under the bar (clients that ignore display updates show it too).
    summary = result.stream()
    assert summary.endswith("\n") and summary.count("\n") == 1, summary
    assert "100%" in summary and "SHA-256 verified" in summary
    assert f"{here / 'data.bin'} → {there / 'data.bin'}" in summary

    result = files_kernel.run(f'$download("{there}/data.bin", "copy.bin")')
    assert result.status == "ok", result.of_type("error")
    assert (here / "copy.bin").read_bytes() == data
    assert "100%" in progress(result)[1][-1]["data"]["text/plain"]

    # Replacing a file: the new content, the old file's permissions (as scp).
    (there / "data.bin").chmod(0o600)
    (here / "data.bin").write_bytes(b"new")
    assert files_kernel.run(f'$upload("data.bin", "{there}/data.bin")').status == "ok"
    assert (there / "data.bin").read_bytes() == b"new" and (there / "data.bin").stat().st_mode & 0o777 == 0o600
    # A new file gets the source's permissions: scripts stay executable.
    (here / "run.sh").write_text("#!/bin/sh\n")
    (here / "run.sh").chmod(0o755)
    assert files_kernel.run(f'$upload("run.sh", "{there}")').status == "ok"
    assert (there / "run.sh").stat().st_mode & 0o111
    assert no_leftovers(here) and no_leftovers(there)


def test_directory_tree_round_trip(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    tree = here / "project"
    (tree / "src" / "pkg").mkdir(parents=True)
    (tree / "empty-dir").mkdir()
    (tree / "README.md").write_text("# hello\n")
    (tree / "empty.txt").write_bytes(b"")
    (tree / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "src" / "pkg" / "blob.bin").write_bytes(os.urandom(700_000))
    expected = snapshot(tree)
    # Skipped: a link to a directory (it could loop), a name rpyc cannot send (not UTF-8).
    (tree / "link").symlink_to("src")
    (tree / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    result = files_kernel.run(f'$upload("project", "{there}")')  # an existing directory: into it
    assert result.status == "ok", result.of_type("error")
    assert snapshot(there / "project") == expected
    final = result.stream()
    assert "4/4 files" in final and "skipped 2" in final

    result = files_kernel.run(f'$download("{there}/project", "again")')  # a new name: the copy
    assert result.status == "ok", result.of_type("error")
    assert snapshot(here / "again") == expected
    assert no_leftovers(here) and no_leftovers(there)


def test_missing_source(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    result = files_kernel.run(f'$upload("no-such-file.bin", "{there}")')
    assert_command_error(result, f"{here / 'no-such-file.bin'} does not exist locally")
    assert not result.of_type("display_data")
    result = files_kernel.run(f'$download("{there}/nothing.bin")')
    assert_command_error(result, f"{there / 'nothing.bin'} does not exist on the device")
    assert list(there.iterdir()) == [] and not (here / "nothing.bin").exists()


def test_missing_destination_directory(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    (here / "small.txt").write_text("small")
    for destination in (f"{there}/missing/small.txt", f"{there}/missing/"):
        result = files_kernel.run(f'$upload("small.txt", "{destination}")')
        assert_command_error(result, f"the destination directory {there / 'missing'} does not exist on the device")
    (there / "small.txt").write_text("small")
    result = files_kernel.run(f'$download("{there}/small.txt", "missing/small.txt")')
    assert_command_error(result, f"the destination directory {here / 'missing'} does not exist locally")
    assert sorted(path.name for path in there.iterdir()) == ["small.txt"] and not (here / "missing").exists()


def test_ls(files_kernel: RunningKernel, there: Path) -> None:
    (there / "b.txt").write_bytes(b"x" * 2048)
    (there / "a").mkdir()
    (there / "c.bin").write_bytes(b"")
    os.utime(there / "b.txt", (0, datetime(2024, 5, 17, 8, 30).timestamp()))
    lines = files_kernel.run(f'$ls("{there}")').stream().splitlines()
    assert lines[0] == f"{there}: 3 entries"
    assert [line.split()[-1] for line in lines[1:]] == ["a/", "b.txt", "c.bin"]
    assert "2024-05-17 08:30" in lines[2] and "2.0 KiB" in lines[2] and "0 B" in lines[3]
    assert files_kernel.run(f'$ls("{there}/b.txt")').stream().splitlines()[1].endswith("2.0 KiB  b.txt")
    result = files_kernel.run(f'$ls("{there}/no-such-dir")')
    assert_command_error(result, f"cannot list {there}/no-such-dir on the device: no such file or directory [ENOENT]")


@contextlib.contextmanager
def classic_device(cwd: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """A stock rpyc_classic server working in `cwd`: (its process, its port)."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "rpyc_classic"), "--host", "127.0.0.1", "--port", str(port), "-q"], cwd=cwd)
    try:
        wait_for_port(port, process)
        yield process, port
    finally:
        stop(process)


def test_defaults_are_the_working_directories(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    """No remote path: the device's working directory; no local path: the kernel's."""
    with classic_device(there) as (_, port):
        try:
            assert files_kernel.run(f'$connect("127.0.0.1:{port}")').status == "ok"
            (here / "up.txt").write_text("up")
            (there / "down.txt").write_text("down")
            assert files_kernel.run('$upload("up.txt")').status == "ok"
            assert files_kernel.run('$download("down.txt")').status == "ok"
            assert (there / "up.txt").read_text() == "up" and (here / "down.txt").read_text() == "down"
            listing = files_kernel.run("$ls()").stream()
            assert listing.startswith(f"{there}: 2 entries\n") and "up.txt" in listing
        finally:
            files_kernel.run("$disconnect()")


def interrupt_transfer(running: RunningKernel, code: str) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Run `code`, interrupt it once data flows.

    Returns the execute_reply's content, the display messages, and the seconds from the first to the last.
    """
    kc = running.kc
    msg_id = kc.execute(code)
    shown: list[dict[str, Any]] = []
    times: list[float] = []
    interrupted = False
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] in ("display_data", "update_display_data"):
            shown.append(msg)
            times.append(time.monotonic())
            if msg["msg_type"] == "update_display_data" and not interrupted:  # under way: ~0.1 s in
                running.km.interrupt_kernel()
                interrupted = True
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply["content"], shown, times[-1] - times[0]


@pytest.mark.parametrize("verb", ["upload", "download"])
def test_interrupted_transfer_leaves_no_file(files_kernel: RunningKernel, here: Path, there: Path, verb: str) -> None:
    source_dir, target_dir = (here, there) if verb == "upload" else (there, here)
    with open(source_dir / "huge.bin", "wb") as huge:
        huge.truncate(HUGE)
    source = "huge.bin" if verb == "upload" else f"{there}/huge.bin"
    destination = there if verb == "upload" else here
    started = time.monotonic()
    reply, shown, seconds = interrupt_transfer(files_kernel, f'${verb}("{source}", "{destination}")')
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 5  # it stopped: the whole transfer takes 10+ s
    final = shown[-1]["content"]["data"]["text/plain"]
    assert f"{verb} interrupted at" in final and "100%" not in final
    assert not (target_dir / "huge.bin").exists() and no_leftovers(target_dir)
    assert len(shown) <= seconds / 0.1 + 3  # at most ~10 updates a second, and the final one
    # The connection is intact: the next transfer and cell work.
    (source_dir / "after.txt").write_text("after")
    after = "after.txt" if verb == "upload" else f"{there}/after.txt"
    assert files_kernel.run(f'${verb}("{after}", "{destination}")').status == "ok"
    assert (target_dir / "after.txt").read_text() == "after"
    assert files_kernel.run("6 * 7").result == "42"


def test_interrupt_while_the_device_is_stuck(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    """A device that stops answering mid-file (SIGSTOP): Interrupt gives the connection up after a few
    seconds; the device, running again, removes its partial file; the next command reconnects."""
    with open(here / "huge.bin", "wb") as huge:
        huge.truncate(HUGE)
    with classic_device(there) as (process, port):
        try:
            assert files_kernel.run(f'$connect("127.0.0.1:{port}")').status == "ok"
            kc = files_kernel.kc
            msg_id = kc.execute(f'$upload("huge.bin", "{there}")')
            while (msg := kc.get_iopub_msg(timeout=30))["msg_type"] != "update_display_data":
                pass
            assert msg["parent_header"]["msg_id"] == msg_id
            process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            files_kernel.km.interrupt_kernel()
            reply = kc.get_shell_msg(timeout=30)["content"]
            assert reply["ename"] == "KeyboardInterrupt" and time.monotonic() - started < 5
            assert [path.name for path in there.iterdir()] == [f".huge.bin{PART}"]
            process.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 10
            while list(there.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(there.iterdir()) == []
            assert files_kernel.run(f'$ls("{there}")').stream() == f"{there}: 0 entries\n"
        finally:
            process.send_signal(signal.SIGCONT)
            files_kernel.run("$disconnect()")


@pytest.mark.skipif(not DEBIAN_RPYC_CLASSIC.exists(), reason="Debian's python3-rpyc is not installed")
def test_rpyc5_device(files_kernel: RunningKernel, here: Path, there: Path) -> None:
    tree = here / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.bin").write_bytes(data := os.urandom(600_000))
    (tree / "top.txt").write_text("top")
    with stock_rpyc_classic(DEBIAN_RPYC_CLASSIC) as port:
        try:
            assert files_kernel.run(f'$connect("127.0.0.1:{port}")\nimport rpyc\nrpyc.__version__').result == "'5.3.0'"
            assert files_kernel.run(f'$upload("tree", "{there}")').status == "ok"
            assert snapshot(there / "tree") == snapshot(tree)
            result = files_kernel.run(f'$download("{there}/tree/sub/data.bin", "back.bin")')
            assert result.status == "ok" and (here / "back.bin").read_bytes() == data
            assert "SHA-256 verified" in result.stream()
            listing = files_kernel.run(f'$ls("{there}/tree")').stream()
            assert listing.endswith(" 3 B  top.txt\n") and "  sub/\n" in listing
            # The device's OSError, rebuilt by rpyc 5, still says what happened.
            assert_command_error(files_kernel.run(f'$ls("{there}/nope")'), "no such file or directory [ENOENT]")
        finally:
            files_kernel.run("$disconnect()")


def test_sink_keeps_nothing_when_the_digest_differs(tmp_path: Path) -> None:
    """The integrity check itself (the same code runs on the device): a wrong SHA-256 writes nothing."""
    (tmp_path / "kept.txt").write_text("old")
    handle, _lease = file_ops.sink(str(tmp_path), "kept.txt", 0o644)
    file_ops.write(handle, b"new")
    assert file_ops.finish(handle, "0" * 64) == hashlib.sha256(b"new").hexdigest()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept.txt"]
    assert (tmp_path / "kept.txt").read_text() == "old"


# -- full disks and refused permissions (root: a private tmpfs, a device running as nobody) --


def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    with tempfile.TemporaryDirectory() as mountpoint:
        probe = ["unshare", "--mount", "mount", "-t", "tmpfs", "-o", "size=1m", "xrpyc-test", mountpoint]
        return subprocess.run(probe, capture_output=True).returncode == 0


needs_tmpfs = pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root, unshare and setpriv (a private tmpfs)")


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A mount point (empty outside the tests' mount namespaces), traversable by nobody."""
    mountpoint = Path(tempfile.mkdtemp(prefix="xrpyc-small-disk-"))
    mountpoint.chmod(0o755)
    yield mountpoint
    mountpoint.rmdir()


def _mount(mountpoint: Path) -> str:
    """Shell commands: a 1 MiB tmpfs with room for 12 files at mountpoint, owned by root,
    with a world-writable `open/`."""
    return (
        f"mount -t tmpfs -o size=1m,nr_inodes=12,mode=755 xrpyc-test {mountpoint} && "
        f"mkdir {mountpoint}/open && chmod 1777 {mountpoint}/open"
    )


def _many_small_files(root: Path) -> None:
    """More files than _mount's tmpfs has room for: the disk fills during the transfer."""
    (root / "many").mkdir()
    for index in range(24):
        (root / "many" / f"f{index:02d}.txt").write_text("small")


FULL = "no space left (the disk is full) [ENOSPC]"


@needs_tmpfs
def test_full_disk_and_permission_denied_on_the_device(
    files_kernel: RunningKernel, here: Path, small_disk: Path
) -> None:
    port = free_port()
    device = (
        f"{_mount(small_disk)} && exec setpriv --reuid=65534 --regid=65534 --clear-groups "
        f"{BIN / 'rpyc_classic'} --host 127.0.0.1 --port {port} -q"
    )
    process = subprocess.Popen(["unshare", "--mount", "sh", "-c", device])
    (here / "two-mb.bin").write_bytes(os.urandom(2 << 20))
    _many_small_files(here)
    (here / "small.txt").write_text("small")
    try:
        wait_for_port(port, process)
        assert files_kernel.run(f'$connect("127.0.0.1:{port}")').status == "ok"
        # Too large for the free space: refused before anything is written.
        result = files_kernel.run(f'$upload("two-mb.bin", "{small_disk}/open/")')
        assert_command_error(
            result, f"2.0 MiB do not fit in {small_disk}/open on the device: 1.0 MiB free; nothing was written"
        )
        assert not result.of_type("display_data")
        assert files_kernel.run(f'$ls("{small_disk}/open")').stream() == f"{small_disk}/open: 0 entries\n"
        # The disk fills during the transfer.
        result = files_kernel.run(f'$upload("many", "{small_disk}/open/")')
        assert_command_error(result, f"cannot write {small_disk}/open/many/f", f"on the device: {FULL}")
        assert "upload failed at" in progress(result)[1][-1]["data"]["text/plain"]
        assert PART not in files_kernel.run(f'$ls("{small_disk}/open/many")').stream()  # no temporary copy left
        result = files_kernel.run(f'$upload("small.txt", "{small_disk}")')
        assert_command_error(result, f"cannot write {small_disk}/small.txt on the device: permission denied [EACCES]")
        result = files_kernel.run(f'$upload("many", "{small_disk}")')
        assert_command_error(result, f"cannot create the directory {small_disk}/many on the device")
        assert_command_error(files_kernel.run('$ls("/root")'), "cannot list /root on the device: permission denied")
    finally:
        files_kernel.run("$disconnect()")
        stop(process)


@needs_tmpfs
def test_full_disk_here(stock_device: int, there: Path, small_disk: Path) -> None:
    """The kernel's own disk full: a kernel started in a mount namespace of its own with a 1 MiB tmpfs."""
    (there / "two-mb.bin").write_bytes(os.urandom(2 << 20))
    _many_small_files(there)
    wrapper = ["unshare", "--mount", "sh", "-c", f'{_mount(small_disk)} && exec "$@"', "sh"]
    with kernel_in(there, stock_device, wrapper) as running:
        result = running.run(f'$download("{there}/two-mb.bin", "{small_disk}/open")')
        assert_command_error(result, f"2.0 MiB do not fit in {small_disk}/open locally: 1.0 MiB free")
        result = running.run(f'$download("{there}/many", "{small_disk}/open")')
        assert_command_error(result, f"cannot write {small_disk}/open/many/f", f"locally: {FULL}")
        assert "download failed at" in progress(result)[1][-1]["data"]["text/plain"]
        # No temporary copy left, and the big file is not there.
        listing = f'$exec("import os; print(sorted(os.listdir({str(small_disk / "open")!r})))")'
        assert running.run(listing).stream() == "['many']\n"
        listing = f'$exec("import os; print(os.listdir({str(small_disk / "open" / "many")!r}))")'
        assert PART not in running.run(listing).stream()
