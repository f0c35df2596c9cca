"""The `$` commands: each is a function here, registered with its usage line."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .address import Address
from .boards import DEFAULT
from .cellparse import ALL, Command
from .errors import CellError, CommandError, DeviceError
from .link import DEFAULT_TIMEOUT
from .sanitize import shown
from .security import lookup

if TYPE_CHECKING:
    from .connections import Connections
    from .frontend import Frontend
    from .videoviews import VideoViews


@dataclass(frozen=True)
class Context:
    """What a $ command works with: the connections, the cell's output, the videos, the kernel's own namespace."""

    connections: Connections
    write: Callable[[str, str], None]  # write("stdout" or "stderr", text)
    videos: VideoViews
    frontend: Frontend  # a transfer's progress display (transfer.py)
    local_namespace: dict[str, Any]  # $exec's

    def stream(self, name: str) -> StreamWriter:
        return StreamWriter(self.write, name)


class StreamWriter(io.TextIOBase):
    """A file whose writes become `stream` messages (for kernel-side output: $exec)."""

    def __init__(self, write: Callable[[str, str], None], name: str) -> None:
        self._write, self._name = write, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._write(self._name, text)
        return len(text)


@dataclass(frozen=True)
class CommandInfo:
    name: str
    usage: str
    summary: str
    function: Callable[..., None]
    # Other ways to call it, each (usage, summary): $help lists every one.
    also: tuple[tuple[str, str], ...] = ()


REGISTRY: dict[str, CommandInfo] = {}


def command(
    usage: str, summary: str, also: tuple[tuple[str, str], ...] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a $ command; its name is the usage's, up to the parenthesis ($video.stop).

    `also` lists its other forms, (usage, summary) each, such as `$video(False)`.
    """

    def register(function: Callable[..., None]) -> Callable[..., None]:
        name = usage[1:].split("(")[0]
        REGISTRY[name] = CommandInfo(name, usage, summary, function, also)
        return function

    return register


def listing() -> str:
    """Every form of every command, one a line, with what it does."""
    forms = [form for info in REGISTRY.values() for form in ((info.usage, info.summary), *info.also)]
    width = max(len(usage) for usage, _ in forms)
    return "\n".join(f"  {usage:<{width}}  {summary}" for usage, summary in forms)


def check(cmd: Command) -> CommandInfo:
    """The command's entry, if it exists and its arguments fit; else CommandError."""
    info = REGISTRY.get(cmd.name)
    if info is None:
        raise CommandError(f"unknown command ${cmd.name}. The $ commands are:\n{listing()}")
    try:
        inspect.signature(info.function).bind(None, *cmd.args, **cmd.kwargs)
    except TypeError as error:
        raise CommandError(f"${cmd.name}: {error}. Usage: {info.usage}") from None
    return info


def run(context: Context, cmd: Command) -> None:
    check(cmd).function(context, *cmd.args, **cmd.kwargs)


def _check(name: str, value: Any, kinds: type | tuple, what: str, usage: str) -> None:
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise CommandError(f"{name} must be {what}, not {value!r}. Usage: {usage}")


@command(
    '$connect("host[:port]", port=18812, timeout=5, token=None, tls=None, trusted=None)',
    "run the next cells on that device (trusted: show its HTML and scripts as sent)",
    also=(('$connect("host", name="left")', "connect one more device, named, keeping the others ($use, $on)"),),
)
def connect(
    context: Context,
    host: str,
    port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    token: str | None = None,
    tls: bool | str | None = None,
    trusted: bool | None = None,
    name: str | None = None,
) -> None:
    usage = REGISTRY["connect"].usage
    _check("host", host, str, "a string", usage)
    if port is not None:
        _check("port", port, int, "a number", usage)
    _check("timeout", timeout, (int, float), "a number of seconds", usage)
    if timeout <= 0:
        raise CommandError(f"timeout must be positive, not {timeout!r}")
    if token is not None:
        _check("token", token, str, "a string", usage)
    if tls is not None and not isinstance(tls, (bool, str)):
        raise CommandError(f"tls must be True/False or the path of a certificate to trust. Usage: {usage}")
    if trusted is not None and not isinstance(trusted, bool):
        raise CommandError(f"trusted must be True or False, not {trusted!r}. Usage: {usage}")
    try:
        address = Address.parse(host, port)
        credentials = lookup(address, token, tls, trusted)
    except ValueError as error:
        raise CommandError(f"$connect: {error}. Usage: {usage}") from None
    if name is None:
        context.connections.connect(address, float(timeout), credentials)
        return
    connections = context.connections  # Boards.add checks the name
    connections.say_connected(connections.boards.add(name, address, float(timeout), credentials), name)


@command(
    "$disconnect()",
    "close the connection; later cells run on the default device",
    also=(('$disconnect("left")', "close the connection named left (its variables dropped)"),),
)
def disconnect(context: Context, name: str | None = None) -> None:
    if name is not None and name != DEFAULT:
        board = context.connections.boards.remove(name)
        context.write("stdout", f"disconnected {shown(name)} from {board.address} (its variables dropped)\n")
        return
    connections = context.connections
    left = connections.address if connections.device is not None or connections.explicit else None
    connections.disconnect()
    if left is None:
        context.write("stdout", f"not connected: cells run on the default device, {connections.address}\n")
    else:
        context.write(
            "stdout", f"disconnected from {left} (its variables dropped); next cells run on {connections.address}\n"
        )


@command('$use("left")', 'run plain cells on the device named left ($use("default"): the unnamed connection)')
def use(context: Context, name: str) -> None:
    connections = context.connections
    if name != DEFAULT:
        connections.boards.board(name, "$use")
    connections.boards.current = name
    where = connections.address if name == DEFAULT else connections.boards.named[name].address
    context.write("stdout", f"plain cells run on {shown(name)} ({where})\n")


@command("$devices()", "list the connections: name, address, state, Python (* marks where plain cells run)")
def devices(context: Context) -> None:
    context.write("stdout", context.connections.boards.describe())


@command(
    '$on("left", "right")',
    "first line of a cell: run the rest of it on these devices at once, each in its own area",
    also=(("$on(all)", "the same on every device $devices() lists"),),
)
def on(context: Context, *names: str) -> None:
    raise CommandError("$on(...) must be the first line of its cell: it runs the rest of it")


@command("$device()", "show the device's address, platform, machine, Python and rpyc versions")
def device(context: Context) -> None:
    device = context.connections.ensure_device()
    facts = [("address", str(device.address)), *device.info()]
    width = max(len(label) for label, _ in facts)
    context.write("stdout", "".join(f"{label:<{width}}  {value}\n" for label, value in facts))


@command('$exec("code")', "run code in the kernel's own Python process, not on the device")
def exec_(context: Context, code: str) -> None:
    _check("code", code, str, "a string", REGISTRY["exec"].usage)
    with contextlib.redirect_stdout(context.stream("stdout")), contextlib.redirect_stderr(context.stream("stderr")):
        try:
            exec(compile(code, "<$exec>", "exec"), context.local_namespace)
        except BaseException as error:
            lines = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
            raise CellError(type(error).__name__, str(error), [line.rstrip("\n") for line in lines]) from None


@command(
    '$video("url", fps=30, width=640, record=None, overwrite=False)',
    'play an RTSP/MJPEG stream in the background ("device": its live view); record="file.mp4" saves it',
    also=(
        ('$video("left")', "play the live view of the device named left"),
        ('$video(["left", "right"])', "play several views (names or URLs) side by side in one display"),
        ("$video()", "list the streams playing"),
        ("$video(True)", "show the device's live view while cells run"),
        ("$video(False)", "stop showing it"),
    ),
)
def video(
    context: Context,
    source: str | bool | None = None,
    fps: float = 30.0,
    width: int = 640,
    record: str | None = None,
    overwrite: bool = False,
) -> None:
    usage = REGISTRY["video"].usage
    if source is None:
        context.write("stdout", context.videos.describe())
        return
    if isinstance(source, bool):
        # $video(False) / $video(True): the device's live view during cells.
        context.videos.live_view = source
        if not source:
            context.videos.stop_live_view()
        context.write("stdout", f"live view during cells: {'on' if source else 'off'}\n")
        return
    _check("fps", fps, (int, float), "a number of frames per second", usage)
    _check("width", width, int, "a number of pixels", usage)
    if not (0 < fps <= 60 and 16 <= width <= 4096):
        raise CommandError(f"$video: fps must be in (0, 60] and width in [16, 4096]. Usage: {usage}")
    if isinstance(source, (list, tuple)):
        if not 1 <= len(source) <= 16 or record is not None:
            raise CommandError(f"$video: side by side takes 1 to 16 sources, and records none. Usage: {usage}")
        context.videos.start_row([(shown(str(each)), *_video_source(context, each)) for each in source], fps, width)
        return
    source, timeout = _video_source(context, source)
    if not isinstance(overwrite, bool):
        raise CommandError(f"$video: overwrite must be True or False. Usage: {usage}")
    recorder = None
    if record is not None:
        _check("record", record, str, "a file name (a string)", usage)
        from .videorecord import Recorder

        try:
            # Relative to the kernel's working directory: the notebook's.
            recorder = Recorder(os.path.abspath(os.path.expanduser(record)), overwrite=overwrite)
        except (OSError, ValueError) as error:
            message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
                message = f"{error.filename}: {message}"
            raise CommandError(f"$video: cannot record: {message}") from None
    context.videos.start(source, float(fps), width, timeout, recorder)
    if recorder is not None:
        context.write("stdout", f"recording to {recorder.path}\n")


def _video_source(context: Context, source: Any) -> tuple[str, float]:
    """The URL of `source` (a URL, "device", or a connection's name: its live view) and its read timeout."""
    from .video import DEFAULT_OPTIONS
    from .videoviews import LIVE_VIEW_TIMEOUT

    usage = REGISTRY["video"].usage
    _check("url", source, str, 'a stream URL (rtsp://, http://), "device", a device\'s name, or True/False', usage)
    if source == "device" or source == "default" or source in context.connections.boards.named:
        # A device's own live view: the one plain cells run on, or the one named.
        connections = context.connections
        url = (connections.ensure_device() if source == "device" else connections.device_named(source)).video_url
        if url is None:
            raise CommandError("$video: the device serves no live view (MaixPy3's 18811, xrpyc-device's MJPEG)")
        # It sends a frame only when its picture changes: silence is normal there.
        return url, LIVE_VIEW_TIMEOUT
    if not source.startswith(("rtsp://", "rtsps://", "http://", "https://", "maix-rtsp://")):
        raise CommandError(f"$video: {source!r} is not an rtsp://, http:// or maix-rtsp:// URL. Usage: {usage}")
    return source, DEFAULT_OPTIONS.timeout


@command("$video.stop()", "stop the streams started with $video (interrupting the kernel does too)")
def video_stop(context: Context) -> None:
    stopped = context.videos.stop_all()
    context.write("stdout", f"stopped {stopped} video stream{'s' if stopped != 1 else ''}\n")


def _paths(name: str, **paths: str) -> None:
    for what, path in paths.items():
        _check(what, path, str, "a path (a string)", REGISTRY[name].usage)
        if not path:
            raise CommandError(f"${name}: the {what} is empty. Usage: {REGISTRY[name].usage}")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rpyc could not send it
            raise CommandError(f"${name}: the {what} {path!r} is not valid text") from None


def _on(context: Context, command: str, on: Any, many: bool = False) -> list[str | None]:
    """The connection names that `on=` chooses for a transfer: [None] for where plain cells run."""
    if on is None:
        return [None]
    if on is ALL and not many:
        raise CommandError(f"${command}: on=all is for $upload (one file to every device); name one device")
    if on is not ALL and type(on) is not str:
        usage = REGISTRY[command].usage
        raise CommandError(f"${command}: on must be a device's name or all, not {on!r}. Usage: {usage}")
    return list(context.connections.boards.targets((on,), f"${command}"))


@command(
    '$upload("local path", "remote path")',
    "copy a file or directory to the device (default: its directory)",
    also=(('$upload("model.bin", on="left")', "copy it to the device named left (on=all: to every device)"),),
)
def upload(context: Context, source: str, destination: str = ".", on: str | None = None) -> None:
    from . import transfer  # on use: with remote.files and remote.facts, ~10 ms of the kernel's start

    _paths("upload", **{"local path": source, "remote path": destination})
    names = _on(context, "upload", on, many=True)
    if on is not ALL:
        transfer.upload(context, source, destination, names[0])
        return
    failures = []
    for name in names:
        try:
            transfer.upload(context, source, destination, name)
        except (CommandError, DeviceError) as error:  # the others still get the file
            failures.append(f"{shown(str(name))}: {error}")
    if failures:
        raise CommandError(f"$upload failed on {len(failures)} of {len(names)} devices: " + "; ".join(failures))


@command(
    '$download("remote path", "local path")',
    "copy a file or directory from the device (default: into the notebook's directory)",
    also=(('$download("log.txt", on="left")', "copy it from the device named left"),),
)
def download(context: Context, source: str, destination: str = ".", on: str | None = None) -> None:
    from . import transfer  # on use: with remote.files and remote.facts, ~10 ms of the kernel's start

    _paths("download", **{"remote path": source, "local path": destination})
    transfer.download(context, source, destination, _on(context, "download", on)[0])


@command('$ls("remote path", on=None)', "list a directory on the device (default: its working directory)")
def ls(context: Context, path: str = ".", on: str | None = None) -> None:
    from . import transfer  # on use: with remote.files and remote.facts, ~10 ms of the kernel's start

    _paths("ls", **{"remote path": path})
    transfer.list_directory(context, path, _on(context, "ls", on)[0])


@command("$help()", "list the $ commands")
def help_(context: Context) -> None:
    context.write("stdout", f"$ commands (each on a line of its own):\n{listing()}\n")
