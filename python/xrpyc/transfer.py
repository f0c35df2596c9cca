"""$upload, $download and $ls: files between the kernel's machine and the device.

Files travel over the cell connection (rpyc) in CHUNK-sized pieces, WINDOW of
them in flight, as bytes (by value, never netrefs), with rpyc's zlib
compression off for the transfer: on loopback it capped transfers at ~35 MB/s
(up to 560 MB/s without), and a board's CPU compresses slower than its network
sends. Both ends run remote/files.py (the device its copy, installed by
session.Device.connect): each file is written under a temporary name next to
its destination and renamed over it only once its SHA-256 matches the sender's.

The rpyc calls run in a worker thread: Jupyter's interrupt raises
KeyboardInterrupt in the kernel's main thread, where it could land in the
middle of an rpyc message and break the connection. The main thread shows
progress, and on interrupt tells the worker to stop at the next chunk.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import html
import itertools
import os
import posixpath
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import CommandError, DeviceError
from .remote import files as file_ops
from .remote.facts import byte_size
from .sanitize import shown

if TYPE_CHECKING:
    from .commands import Context
    from .session import Device

# 256 KiB chunks, 4 in flight: the fastest of 64 KiB..4 MiB and 0..8 in flight
# measured on loopback (larger chunks were slower); 1 MiB in flight also keeps
# a LAN with a few ms of round trip busy.
CHUNK = 256 * 1024
WINDOW = 4
PROGRESS_INTERVAL = 0.1  # s between progress updates: at most 10 a second
# s an interrupted transfer gets to stop at a chunk's end before the connection
# is given up (a device stuck in a write); the next cell reconnects.
STOP_GRACE = 3.0

_REASONS = {
    errno.ENOENT: "no such file or directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EFBIG: "file too large for the file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.EBUSY: "another transfer to the same file took its place",
    errno.ELOOP: "it is a symbolic link, which a transfer does not follow",
}
# The longest name a received file may have: its temporary name
# (file_ops.PART_SUFFIX) must fit in the usual 255-byte limit.
NAME_MAX = 255 - len("." + file_ops.PART_SUFFIX)
PATH_MAX = 4000


def _error(message: str) -> CommandError:
    """A CommandError whose message, which may quote a device's names, is fit to show."""
    return CommandError(shown(message))


def unsafe_name(path: Any) -> str:
    """Why a relative path received from a device cannot be written as given ("" when it can).

    A device's names are data: a receiver writes them below the destination
    only. Backslashes are refused too: they are separators on Windows, and no
    honest board needs them.
    """
    if type(path) is not str:  # a device's object (a netref), not text
        return "not text"
    if not path:
        return "empty"
    if path.startswith("/"):
        return "an absolute path"
    if any(unicodedata.category(c) == "Cc" for c in path):
        return "a control character"
    if "\\" in path:
        return "a backslash"
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return "not UTF-8"
    if size > PATH_MAX:
        return f"longer than {PATH_MAX} bytes"
    for part in path.split("/"):
        if part == "..":
            return "a '..' component"
        if part in ("", "."):
            return "an empty or '.' component"
        if len(part.encode("utf-8")) > NAME_MAX:
            return f"a name longer than {NAME_MAX} bytes"
    return ""


class _Side:
    """One end of a transfer: remote/files.py's functions on this machine (the module)
    or on the device (its copy, through rpyc)."""

    def __init__(self, where: str, functions: Any, device: Device | None = None) -> None:
        self.where = where
        self.device = device
        self._functions = functions
        self._cache: dict[str, Callable[..., Any]] = {}

    @property
    def remote(self) -> bool:
        return self.device is not None

    @property
    def path(self) -> Any:
        return posixpath if self.remote else os.path

    def function(self, name: str) -> Callable[..., Any]:
        function = self._cache.get(name)
        if function is None:  # a round trip on the device: once per name
            function = getattr(self._functions, name)
            self._cache[name] = function
        return function

    def call(self, name: str, *args: Any) -> Any:
        return self.function(name)(*args)

    @contextlib.contextmanager
    def explain(self, action: str, path: str) -> Iterator[None]:
        """OSError (the device's come back through rpyc as OSError too) → CommandError saying what failed."""
        try:
            yield
        except OSError as error:
            raise _error(describe(error, f"cannot {action}", path, self.where)) from None
        except EOFError:
            address = self.device.address if self.device else "the device"
            raise DeviceError(f"the connection to {address} was lost during the transfer") from None


def describe(error: OSError, what: str, path: str, where: str) -> str:
    """'cannot write /x/y on the device: no space left (the disk is full) [ENOSPC]'."""
    filename = getattr(error, "filename", None)
    if isinstance(filename, str) and not filename.endswith(file_ops.PART_SUFFIX):
        path = filename  # more precise: the subdirectory that could not be read, ...
    number = getattr(error, "errno", None)
    reason = _REASONS.get(number) or getattr(error, "strerror", None) or str(error.args[0] if error.args else error)
    code = errno.errorcode.get(number) if isinstance(number, int) else None
    return f"{what} {path} {where}: {reason}" + (f" [{code}]" if code else "")


def _local() -> _Side:
    return _Side("locally", file_ops)


def _remote(device: Device) -> _Side:
    return _Side("on the device", device.helpers, device)


@dataclass(frozen=True)
class _Item:
    source: str
    target: str  # relative to the transfer's root
    size: int
    mode: int


class _Job:
    """Runs `work` in a worker thread while the main thread ticks and takes interrupts."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.result: Any = None

    def run(self, work: Callable[[], Any], tick: Callable[[], None] = lambda: None) -> Any:
        """`work()`'s result, or its exception; KeyboardInterrupt once it stopped."""
        threading.Thread(target=self._work, args=(work,), daemon=True, name="xrpyc-transfer").start()
        try:
            while not self.finished.wait(PROGRESS_INTERVAL):
                tick()
        except BaseException:  # KeyboardInterrupt, or a failing tick: the worker must be done with rpyc
            self.cancelled.set()
            self._wait_for_stop()
            raise
        if self.error is not None:
            raise self.error
        return self.result

    def check(self) -> None:
        """In the worker, between chunks: stop when interrupted."""
        if self.cancelled.is_set():
            raise KeyboardInterrupt

    def _work(self, work: Callable[[], Any]) -> None:
        try:
            self.result = work()
        except BaseException as error:
            self.error = error
        finally:
            self.finished.set()

    def _wait_for_stop(self) -> None:
        deadline = time.monotonic() + STOP_GRACE
        while not self.finished.is_set():
            if time.monotonic() > deadline:
                # Stuck in one call: give the connection up. shutdown() wakes
                # the worker; closing makes the device's end fail too, so it
                # drops our objects and FileSink.__del__ removes its partial
                # file. The next command or cell reconnects (Device.alive).
                self.device.shut_down_link()
                self.finished.wait()
                # Not Device.close(): its interrupt channel would wait 1 s for the stuck device.
                self.device.close_link()
            with contextlib.suppress(KeyboardInterrupt):  # interrupted again: we are stopping already
                self.finished.wait(PROGRESS_INTERVAL)


class _Transfer:
    """One $upload or $download: plan, then copy file by file.

    Everything is written below `root`, the destination directory the user
    chose: as relative paths, each name opened there without following links
    (files._open_dir). The names a device sends are checked first
    (unsafe_name), and so are its sizes and bytes (_reader).
    """

    def __init__(self, verb: str, source: _Side, target: _Side, job: _Job) -> None:
        self.verb = verb
        self.source, self.target, self.job = source, target, job
        self.root = ""
        self.dirs: list[str] = []  # relative to root
        self.items: list[_Item] = []
        self.skipped = 0
        self.total = 0
        self.done = 0  # bytes sent (1 MiB at most may still be in flight)
        self.files_done = 0
        self.label = ""
        self.where = ""  # the device's name and a colon, when the transfer names one (on=)
        self.planned = threading.Event()
        self.started = 0.0

    def plan(self, source: str, destination: str) -> None:
        src, dst = self.source, self.target
        with src.explain("read", source):
            kind, size, mode, src_full = src.call("examine", source)
        if src.remote and not (kind in ("", "file", "dir", "other") and _is_size(size) and _is_size(mode)
                               and type(src_full) is str):
            raise _error(f"the device answered nonsense about {source}: nothing was written")
        if not kind:
            raise _error(f"{src_full} does not exist {src.where}")
        if kind == "other":
            raise _error(f"{src_full} {src.where} is not a regular file or a directory")
        name = src.path.basename(src_full)
        if src.remote:
            self._check(name, src_full)
        with dst.explain("read", destination):
            dst_kind, _, _, dst_full = dst.call("examine", destination)
            if dst_kind == "dir":
                root, top = dst_full, name
                target_kind = dst.call("examine", dst.path.join(root, top))[0]
            elif dst_kind:
                (root, top), target_kind = dst.path.split(dst_full), dst_kind
            else:
                root, top = (dst_full, name) if destination.endswith("/") else dst.path.split(dst_full)
                root_kind = dst.call("examine", root)[0]
                if not root_kind:
                    raise _error(f"the destination directory {root} does not exist {dst.where}")
                if root_kind != "dir":
                    raise _error(f"{root} {dst.where} is not a directory")
                target_kind = ""
        self.root, target = root, dst.path.join(root, top)
        if kind == "file":
            if target_kind and target_kind != "file":
                raise _error(f"{target} {dst.where} is not a regular file: it was left alone")
            self.items = [_Item(src_full, top, size, mode)]
            self.label = self.where + shown(f"{src_full} → {target}")
        else:
            if target_kind not in ("", "dir"):
                raise _error(f"{target} {dst.where} exists and is not a directory")
            with src.explain("read", src_full):
                dirs, files, self.skipped = src.call("walk", src_full)
            if src.remote:
                self._check_listing(src_full, dirs, files)
            self.dirs = [top, *(dst.path.join(top, d) for d in dirs)]
            self.items = [
                _Item(src.path.join(src_full, rel), dst.path.join(top, rel), size, mode) for rel, size, mode in files
            ]
            self.label = self.where + shown(f"{src_full}/ → {target}/")
        self.total = sum(item.size for item in self.items)
        with dst.explain("read", root):
            free = dst.call("free", root)
        if self.total > free:  # refused before a byte is written: a claimed size cannot fill the disk
            raise _error(
                f"{byte_size(self.total)} do not fit in {root} {dst.where}: {byte_size(free)} free; nothing was written"
            )

    def _check(self, relative: Any, src_full: str) -> None:
        reason = unsafe_name(relative)
        if reason:
            raise _error(
                f"the device sent an unsafe file name {relative if type(relative) is str else '?'!r} ({reason}) "
                f"for {src_full}: nothing was written"
            )

    def _check_listing(self, src_full: str, dirs: Any, files: Any) -> None:
        """The device's walk answer: tuples of plain names, sizes and modes, or CommandError."""
        if type(dirs) is not tuple or type(files) is not tuple or not _is_size(self.skipped):
            raise _error(f"the device answered nonsense listing {src_full}: nothing was written")
        for entry in files:
            if type(entry) is not tuple or len(entry) != 3 or not (_is_size(entry[1]) and _is_size(entry[2])):
                raise _error(f"the device answered nonsense listing {src_full}: nothing was written")
        for relative in (*dirs, *(entry[0] for entry in files)):
            self._check(relative, src_full)

    def copy(self) -> None:
        self.started = time.monotonic()
        self.planned.set()
        for directory in self.dirs:
            self.job.check()
            with self.target.explain("create the directory", self.target.path.join(self.root, directory)):
                self.target.call("makedirs", self.root, directory)
        for item in self.items:
            self._copy(item)
            self.files_done += 1

    def _copy(self, item: _Item) -> None:
        src, dst = self.source, self.target
        target = dst.path.join(self.root, item.target)
        with src.explain("read", item.source):
            read, finish_read = src.call("source", item.source)
        with dst.explain("write", target):
            # The lease keeps the sink alive, until this function returns.
            handle, _lease = dst.call("sink", self.root, item.target, item.mode)
        try:
            chunks, send = _reader(src, read, item), _Writer(dst, handle)
            while True:
                self.job.check()
                with src.explain("read", item.source):
                    data = next(chunks, None)
                if data is None:
                    break
                with dst.explain("write", target):
                    send(data)
                self.done += len(data)
            with dst.explain("write", target):
                send.drain()
            with src.explain("read", item.source):
                expected = finish_read()
            if type(expected) is not str:  # a device's object, whose == could say anything
                expected = "not a digest"
            with dst.explain("write", target):
                actual = dst.call("finish", handle, expected)
        except BaseException:
            with contextlib.suppress(Exception):  # the connection may be gone: the device cleans up then
                dst.call("abort", handle)
            raise
        if actual != expected:
            raise _error(f"{target} {dst.where} did not arrive as sent (its SHA-256 differs), so it was not written")


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_entry(entry: Any) -> bool:
    """A well-formed $ls entry from the device: (name, is directory, size or -1, mtime)."""
    return (
        type(entry) is tuple and len(entry) == 4 and type(entry[0]) is str and type(entry[1]) is bool
        and type(entry[2]) is int and type(entry[3]) in (int, float) and 0 <= entry[3] < 1e11
    )


def _reader(side: _Side, read: Callable[[int], bytes], item: _Item) -> Iterator[bytes]:
    """The file's chunks, up to the size announced when planning; from the device, WINDOW reads ahead.

    A file that grows meanwhile is sent as it was announced, and a device
    cannot send more than it announced: asking for no more than that, the
    transfer refuses an answer that holds more (or is not bytes). Both ends
    hash the same reads, so a file that shrinks stays consistent too.
    """
    asks = (min(CHUNK, item.size - offset) for offset in range(0, item.size, CHUNK))
    fetch = read
    if side.remote:
        import rpyc

        fetch = rpyc.async_(read)
    pending = collections.deque((size, fetch(size)) for size in itertools.islice(asks, WINDOW if side.remote else 1))
    while pending:
        size, answer = pending.popleft()
        data = answer.value if side.remote else answer
        if type(data) is not bytes or len(data) > size:
            raise _error(
                f"the device sent more of {item.source} than the {byte_size(item.size)} it announced: "
                "it was not written"
            )
        if not data:  # the file shrank
            return
        following = next(asks, None)
        if following is not None:
            pending.append((following, fetch(following)))
        yield data


class _Writer:
    """Writes chunks to a sink; to the device, WINDOW of them in flight (asynchronous calls)."""

    def __init__(self, side: _Side, handle: int) -> None:
        self._handle = handle
        self._write = side.function("write")
        self._pending: collections.deque | None = None
        if side.remote:
            import rpyc

            self._write = rpyc.async_(self._write)
            self._pending = collections.deque()

    def __call__(self, data: bytes) -> None:
        if self._pending is None:
            self._write(self._handle, data)
            return
        self._pending.append(self._write(self._handle, data))
        if len(self._pending) >= WINDOW:
            self._pending.popleft().value  # noqa: B018 (raises the device's error, if any)

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().value  # noqa: B018


class _Progress:
    """One display_data with a display_id, then update_display_data in place.

    The summary of a finished transfer is a line of stdout under the bar,
    which the update fills to 100%: clients that ignore display updates
    (jupyter console shows the first display and no update) show it too.
    """

    def __init__(self, context: Context, transfer: _Transfer) -> None:
        self._write = context.write
        self._frontend = context.frontend
        self._transfer = transfer
        self._transient = {"display_id": uuid.uuid4().hex}
        self._frontend.display_data(self._data("running"), {}, self._transient)

    def update(self, state: str) -> None:
        self._frontend.update_display_data(self._data(state), {}, self._transient)

    def finish(self) -> None:
        self.update("full")
        self._write("stdout", self._text("done") + "\n")

    def _text(self, state: str) -> str:
        t = self._transfer
        elapsed = max(time.monotonic() - t.started, 1e-6)
        fraction = self._fraction(state)
        many = len(t.items) != 1 or t.dirs
        files = f", {t.files_done}/{len(t.items)} files" if many else ""
        amount = f"{byte_size(t.done)} / {byte_size(t.total)}"
        if state == "running":
            rate = t.done / elapsed
            eta = f", ETA {_duration((t.total - t.done) / rate)}" if rate > 0 else ""
            text = f"{t.verb} {t.label}: {fraction:.0%} ({amount}{files}), {byte_size(rate)}/s{eta}"
        elif state == "done":
            skipped = (
                f"; skipped {t.skipped} (links to directories, special files, names not in UTF-8)" if t.skipped else ""
            )
            text = (
                f"{t.verb}ed {t.label}: 100% ({byte_size(t.total)}{files}) in {_duration(elapsed)} "
                f"({byte_size(t.total / elapsed)}/s), SHA-256 verified{skipped}"
            )
        elif state == "full":  # the bar of a finished transfer, whose summary follows it
            text = "100%"
        else:  # interrupted, failed: the file in progress was removed
            text = f"{t.verb} {state} at {fraction:.0%} ({amount}{files}): {t.label}"
        return text

    def _fraction(self, state: str) -> float:
        t = self._transfer
        return 1.0 if state in ("done", "full") else t.done / t.total if t.total else 0.0

    def _data(self, state: str) -> dict[str, str]:
        fraction = self._fraction(state)
        text = self._text(state)
        bar = "█" * round(fraction * 24) + "░" * (24 - round(fraction * 24))
        page = (
            f'<div style="font-family: monospace"><progress max="1000" value="{round(fraction * 1000)}" '
            f'style="width: 16em; vertical-align: middle"></progress> {html.escape(text)}</div>'
        )
        return {"text/plain": f"{bar} {text}", "text/html": page}


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


def _device(context: Context, name: str | None) -> Device:
    """The device named `name` (boards.py), or the one plain cells run on."""
    return context.connections.ensure_device() if name is None else context.connections.device_named(name)


def _transfer(context: Context, verb: str, source: str, destination: str, name: str | None) -> None:
    device = _device(context, name)
    job = _Job(device)
    sides = (_local(), _remote(device)) if verb == "upload" else (_remote(device), _local())
    transfer = _Transfer(verb, *sides, job)
    transfer.where = "" if name is None else shown(f"{name}: ")
    progress: list[_Progress] = []

    def work() -> None:
        transfer.plan(source, destination)
        with device.uncompressed():
            transfer.copy()

    def tick() -> None:
        if transfer.planned.is_set():
            if progress:
                progress[0].update("running")
            else:
                progress.append(_Progress(context, transfer))

    try:
        job.run(work, tick)
    except BaseException as error:
        if transfer.planned.is_set():
            final = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            (progress or [_Progress(context, transfer)])[0].update(final)
        raise
    (progress or [_Progress(context, transfer)])[0].finish()


def upload(context: Context, source: str, destination: str, name: str | None = None) -> None:
    """$upload: `source` relative to the kernel's directory, `destination` to the device's
    (the device named `name`, else the one plain cells run on)."""
    _transfer(context, "upload", source, destination, name)


def download(context: Context, source: str, destination: str, name: str | None = None) -> None:
    """$download: `source` relative to the device's directory, `destination` to the kernel's."""
    _transfer(context, "download", source, destination, name)


def list_directory(context: Context, path: str, name: str | None = None) -> None:
    """$ls: the entries of a directory on the device (or a file's own), sorted by name."""
    device = _device(context, name)
    side = _remote(device)

    def work() -> tuple:
        with side.explain("list", path):
            return side.call("listdir", path)

    full, entries = _Job(device).run(work)
    if type(full) is not str or type(entries) is not tuple or not all(map(_is_entry, entries)):
        raise _error(f"the device answered nonsense listing {path}")
    lines = [f"{shown(full)}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}\n"]
    for name, is_dir, size, mtime in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime)) if mtime else "?"
        amount = "" if is_dir else "?" if size < 0 else byte_size(size)
        lines.append(f"  {when}  {amount:>10}  {shown(name)}{'/' if is_dir else ''}\n")
    context.write("stdout", "".join(lines))
