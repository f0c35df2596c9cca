"""The file operations behind $upload, $download and $ls, for either end of a transfer.

Shipped to the device as source text like agent.py (see __init__.py); the
kernel imports it too for its own side of a transfer (transfer.py), so both
ends behave alike.

What crosses rpyc is tuples of str, int and bytes (passed by value), the
bound methods of a FileSource and a FileSink's lease (netrefs, one round trip
per file for each). Errors are plain OSErrors: the kernel turns their errno
into a message.
"""

import errno
import hashlib
import itertools
import os
import stat
import weakref

# A file being received is written under this name next to its destination
# and renamed over it only once complete and verified.
PART_SUFFIX = ".xrpyc-part"


# Permission bits a received file may take from its sender: never setuid,
# setgid or sticky, never writable by group or others (as scp with umask 022).
SENT_MODE_MASK = 0o755
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def resolve(path: str) -> str:
    """`path` made absolute (relative to this process's directory, `~` expanded)."""
    return os.path.abspath(os.path.expanduser(path))


def examine(path: str) -> tuple:
    """(kind, size, permission bits, absolute path); kind is "file", "dir", "other",
    or "" when nothing is there."""
    full = resolve(path)
    try:
        info = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):  # "a.txt/b": nothing there either
        return ("", 0, 0, full)
    if stat.S_ISDIR(info.st_mode):
        kind = "dir"
    elif stat.S_ISREG(info.st_mode):
        kind = "file"
    else:
        kind = "other"
    return (kind, info.st_size, info.st_mode & 0o7777, full)


def walk(root: str) -> tuple:
    """A directory tree as (dirs, files, skipped), paths relative to `root`, parents first.

    files are (relative path, size, mode). Symbolic links to files count as
    files; symbolic links to directories and special files (sockets, FIFOs,
    devices) are skipped and counted, as a link cycle could never end; so are
    names that are not UTF-8, which rpyc cannot send.
    """
    dirs, files, skipped = [], [], 0
    root = resolve(root)
    for top, subdirs, names in os.walk(root, onerror=_raise):
        relative = os.path.relpath(top, root)
        kept = []
        for name in sorted(subdirs):
            if os.path.islink(os.path.join(top, name)) or not _sendable(name):
                skipped += 1
            else:
                kept.append(name)
                dirs.append(os.path.normpath(os.path.join(relative, name)))
        subdirs[:] = kept  # os.walk descends into these only
        for name in sorted(names):
            if not _sendable(name):
                skipped += 1
                continue
            try:
                info = os.stat(os.path.join(top, name))
            except FileNotFoundError:  # a dangling link, or gone since listed
                skipped += 1
                continue
            if stat.S_ISREG(info.st_mode):
                files.append((os.path.normpath(os.path.join(relative, name)), info.st_size, info.st_mode & 0o7777))
            else:
                skipped += 1
    return (tuple(dirs), tuple(files), skipped)


def _raise(error: OSError) -> None:
    raise error


def _sendable(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False


def listdir(path: str) -> tuple:
    """(absolute path, ((name, is directory, size, mtime), ...)) sorted by name;
    a file's own entry for a file."""
    full = resolve(path)
    if not os.path.isdir(full):
        info = os.stat(full)
        return (full, ((os.path.basename(full), False, info.st_size, info.st_mtime),))
    entries = []
    for name in sorted(os.listdir(full)):
        try:
            info = os.stat(os.path.join(full, name))
        except OSError:  # a dangling link: listed, without size or date
            info = None
        # A name that is not UTF-8 is shown with its odd bytes escaped (rpyc sends UTF-8 only).
        shown = name if _sendable(name) else os.fsencode(name).decode("utf-8", "backslashreplace")
        if info is None:
            entries.append((shown, False, -1, 0.0))
        else:
            entries.append((shown, stat.S_ISDIR(info.st_mode), info.st_size, info.st_mtime))
    return (full, tuple(entries))


def free(path: str) -> int:
    """Bytes free for this process in the file system of directory `path`."""
    info = os.statvfs(resolve(path))
    return info.f_bavail * info.f_frsize


def _parts(relative: str) -> list:
    """`relative`'s names; OSError(EINVAL) unless each is a plain name, so that
    walking them from a directory can never leave it."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise OSError(errno.EINVAL, "not a plain relative path", relative)
    return parts


def _open_dir(root: str, parts: list, create: bool) -> int:
    """A descriptor of directory root/parts..., each name opened relative to the
    one before and never through a symbolic link (ELOOP): no path swapped in
    meanwhile, no link planted in the destination, leads out of `root`. The
    root itself is the receiver's choice, links and all. `create`: make the
    missing directories."""
    fd = os.open(resolve(root), _DIR_FLAGS)
    try:
        for index, part in enumerate(parts):
            try:
                if create:
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as error:
                full = os.path.join(resolve(root), *parts[: index + 1])
                number = errno.ELOOP if _is_link(fd, part) else error.errno  # O_DIRECTORY says ENOTDIR
                raise OSError(number, os.strerror(number), full) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def makedirs(root: str, relative: str) -> None:
    """Directory root/relative and its missing parents (see _open_dir)."""
    os.close(_open_dir(root, _parts(relative), True))


class FileSource:
    """Reads one file in chunks and hashes what it read."""

    def __init__(self, path: str) -> None:
        self._file = None
        self._file = open(resolve(path), "rb")
        self._hash = hashlib.sha256()

    def read(self, size: int) -> bytes:
        data = self._file.read(size)
        self._hash.update(data)
        return data

    def finish(self) -> str:
        """The SHA-256 of everything read; closes the file."""
        self._file.close()
        return self._hash.hexdigest()

    def __del__(self) -> None:
        if self._file is not None:
            self._file.close()


def source(path: str) -> tuple:
    """(read, finish) of a new FileSource: one round trip gives both methods."""
    source = FileSource(path)
    return (source.read, source.finish)


class FileSink:
    """Writes file root/relative under a temporary name, and renames it over the
    destination only when its SHA-256 is the one expected (see finish).

    Every name is used relative to a descriptor of its directory, opened
    without following links (_open_dir): the file lands inside `root`.
    """

    def __init__(self, root: str, relative: str, mode: int) -> None:
        self._done = True  # nothing to clean up until the file exists
        self._dir = None  # the directory descriptor, until finished or aborted
        self.path = os.path.join(resolve(root), relative)
        parts = _parts(relative)
        self._dir = _open_dir(root, parts[:-1], False)
        self.name = parts[-1]
        self.part = "." + self.name + PART_SUFFIX
        mode &= SENT_MODE_MASK
        try:
            # An existing file keeps its permissions, as with scp (a link is
            # replaced by the file, not followed).
            info = os.stat(self.name, dir_fd=self._dir, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                mode = info.st_mode & 0o777
        except FileNotFoundError:
            pass
        try:
            # Left by a device that lost power, or by a transfer abandoned
            # with its connection (which no longer touches it: see _ours).
            os.unlink(self.part, dir_fd=self._dir)
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.part, flags, mode, dir_fd=self._dir)
        self._file = os.fdopen(fd, "wb")
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        self._hash = hashlib.sha256()
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)

    def finish(self, expected: str) -> str:
        """Returns the SHA-256 of what was written; when it is `expected`, the
        file is on disk (fsync: boards lose power) under its final name."""
        digest = self._hash.hexdigest()
        if digest != expected:
            self.abort()
            return digest
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if not self._ours():  # another transfer to this file started since: never publish its half
                raise OSError(errno.EBUSY, "another transfer to the same file took its place", self.path)
            os.replace(self.part, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._close_dir()
        return digest

    def abort(self) -> None:
        """Close and remove the temporary file (idempotent)."""
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        except OSError:  # a write that failed (disk full) fails again on close: the file goes anyway
            pass
        if self._ours():
            try:
                os.unlink(self.part, dir_fd=self._dir)
            except FileNotFoundError:
                pass
        self._close_dir()

    def _ours(self) -> bool:
        """Whether the temporary file is still the one this sink made."""
        try:
            info = os.stat(self.part, dir_fd=self._dir, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def _close_dir(self) -> None:
        if self._dir is not None:
            os.close(self._dir)
            self._dir = None

    def __del__(self) -> None:
        # The kernel went away mid-transfer (its connection closed, so rpyc
        # dropped this object): no partial file is left behind.
        self.abort()
        self._close_dir()


# Sinks by handle, held weakly: only the kernel's lease (see sink) keeps one alive.
_sinks = weakref.WeakValueDictionary()  # type: weakref.WeakValueDictionary
_handles = itertools.count(1)


def sink(root: str, relative: str, mode: int) -> tuple:
    """(handle, lease) of a new FileSink for root/relative; write with write(handle, data), ...

    The kernel holds the lease (the sink itself, as a netref) and never calls
    it: when its connection dies, rpyc drops the lease and the sink's __del__
    removes the temporary file at once. Calls go through the handle because a
    call's arguments can outlive the connection in a reference cycle (rpyc's
    tracebacks, measured), which only a garbage collection, maybe much later,
    would break: they must not hold the sink.
    """
    sink = FileSink(root, relative, mode)
    handle = next(_handles)
    _sinks[handle] = sink
    return (handle, sink)


def write(handle: int, data: bytes) -> None:
    _sinks[handle].write(data)


def finish(handle: int, expected: str) -> str:
    return _sinks[handle].finish(expected)


def abort(handle: int) -> None:
    sink = _sinks.get(handle)
    if sink is not None:
        sink.abort()
