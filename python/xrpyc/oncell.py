"""A cell that starts with `$on("left", "right")` or `$on(all)`: the rest of it runs on those devices at once.

Each device runs the code in a thread of its own (rpyc waits on sockets with
the GIL released, so N devices take about the time of the slowest, not N
times one). What a device prints or displays goes to its own area: one
display per device (a display_id each), created when the cell starts and
updated in place by the kernel's main thread, which alone may publish on
IOPub. A device's output arrives in its worker thread (rpyc serves the
device's callbacks in the thread waiting for its reply) and is only stored
there. The cell's reply is an error when any device failed, naming each.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .deadline import Attempt
from .devicemessages import Chunks, deliver
from .errors import CellError, DeviceError
from .link import DEFAULT_TIMEOUT
from .sanitize import publishable, shown

if TYPE_CHECKING:
    from .frontend import Frontend
    from .session import Device

UPDATE_INTERVAL = 0.1  # s between updates of the areas while devices run: at most 10 a second
TEXT_MAX = 64 * 1024  # characters of text an area keeps (the end): each update sends the whole area
DISPLAYS_MAX = 16  # displays an area keeps (the last ones), for the same reason
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours in tracebacks: kept in text/plain, not in HTML
_STATE_COLOURS = {"running": "#888", "ok": "#2a7a2a", "failed": "#b22", "interrupted": "#b60"}


class _Area:
    """One device's output in an $on cell: text, displays, its result or error, as one display."""

    def __init__(self, name: str, address: str) -> None:
        self.name, self.address = name, address
        self.display_id = os.urandom(16).hex()
        self.state = "running"
        self.summary = ""
        self.started = time.monotonic()
        # ["stdout" | "stderr", text] and ["display", data, display id or None], in order.
        self._parts: list[list[Any]] = []
        self._cut = False  # earlier text was dropped (TEXT_MAX)
        self._noted = False  # the removal note of sanitize was given
        self._lock = threading.Lock()
        self.version = 0
        self.shown = -1

    def text(self, kind: str, text: str) -> None:
        with self._lock:
            if self._parts and self._parts[-1][0] == kind:
                self._parts[-1][1] += text
            else:
                self._parts.append([kind, text])
            self._trim()
            self.version += 1

    def display(self, data: dict[str, Any], display_id: str | None, update: bool) -> None:
        with self._lock:
            if update:
                for part in self._parts:
                    if part[0] == "display" and display_id is not None and part[2] == display_id:
                        part[1] = data
                self.version += 1
                return
            self._parts.append(["display", data, display_id])
            displays = [part for part in self._parts if part[0] == "display"]
            if len(displays) > DISPLAYS_MAX:
                self._parts.remove(displays[0])
                self._cut = True
            self.version += 1

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self.version += 1

    def finish(self, state: str, summary: str = "") -> None:
        with self._lock:
            self.state = state
            self.summary = summary or f"{time.monotonic() - self.started:.2f} s"
            self.version += 1

    def note_removal(self, removed: list[str], address: str) -> None:
        if removed and not self._noted:
            self._noted = True
            self.text("stderr", f"xrpyc: removed what could run code in this browser from {address}'s output "
                                f"({', '.join(dict.fromkeys(removed))}).\n")  # fmt: skip

    def _trim(self) -> None:
        size = sum(len(part[1]) for part in self._parts if part[0] != "display")
        while size > TEXT_MAX and self._parts:
            part = self._parts[0]
            if part[0] == "display":
                self._parts.pop(0)
                continue
            drop = min(len(part[1]), size - TEXT_MAX)
            part[1] = part[1][drop:]
            size -= drop
            self._cut = True
            if not part[1]:
                self._parts.pop(0)

    def bundle(self) -> dict[str, Any]:
        """text/plain and text/html of the area as it is now."""
        with self._lock:
            parts = [list(part) for part in self._parts]
            state, summary, cut = self.state, self.summary, self._cut
        label = f"{self.name} · {self.address}"
        status = state + (f" ({summary})" if summary else "")
        plain = [f"── {label}: {status}"]
        page = [
            f'<div style="border-left: 3px solid {_STATE_COLOURS.get(state, "#888")}; padding-left: 6px">',
            f"<div><b>{html.escape(self.name)}</b> <small>{html.escape(self.address)} · "
            f"{html.escape(status)}</small></div>",
        ]
        if cut:
            plain.append("… (earlier output cut)")
            page.append("<div><small>… (earlier output cut)</small></div>")
        for part in parts:
            if part[0] == "display":
                data = part[1]
                plain.append(str(data.get("text/plain", "")))
                page.append(_html_of(data))
            else:
                plain.append(part[1].rstrip("\n"))
                colour = ' style="color: #b22"' if part[0] == "stderr" else ""
                text = html.escape(_ANSI.sub("", part[1]))
                page.append(f'<pre{colour} style="margin: 0">{text}</pre>')
        page.append("</div>")
        return {"text/plain": "\n".join(plain), "text/html": "".join(page)}


def _html_of(data: dict[str, Any]) -> str:
    """A published (sanitized) bundle as a piece of the area's HTML."""
    for mime in ("image/png", "image/jpeg", "image/gif", "image/webp"):
        if isinstance(data.get(mime), str):
            return f'<img src="data:{mime};base64,{html.escape(data[mime].strip(), quote=True)}">'
    if isinstance(data.get("text/html"), str):  # already cut to what cannot run code, unless trusted
        return f"<div>{data['text/html']}</div>"
    return f'<pre style="margin: 0">{html.escape(_ANSI.sub("", str(data.get("text/plain", ""))))}</pre>'


@dataclass(eq=False)
class Target:
    """One device of an $on cell: its name, and how to get its connection (in its worker thread)."""

    name: str
    address: str
    # The device if it is connected: most cells need no connection attempt (each has a timer thread).
    ready: Callable[[], Device | None]
    # (attempt) -> (device, notice): connects (or reconnects) within the attempt, which an interrupt cancels.
    open: Callable[[Attempt], tuple[Device, str]]
    # Called in the main thread after the cell for a connection that was lost or let go.
    drop: Callable[[], None]
    area: _Area = field(init=False)
    device: Device | None = None
    attempt: Attempt | None = None
    failure: tuple[str, str] | None = None  # (ename, evalue)

    def __post_init__(self) -> None:
        self.area = _Area(self.name, self.address)


class _AreaOutput:
    """A device's output in its area (devicemessages.Output): as it may reach the browser (sanitize.py)."""

    def __init__(self, area: _Area, device: Device) -> None:
        self._area, self._device = area, device

    def stream(self, name: str, text: str) -> None:
        self._area.text(name, text)

    def display(self, bundle: tuple, display_id: str | None, update: bool) -> None:
        data, removed = publishable(bundle, self._device.credentials.trusted)
        self._area.note_removal(removed, str(self._device.address))
        self._area.display(data, display_id, update)

    def clear(self, wait: bool) -> None:
        self._area.clear()

    def comm(self, payload: Any) -> None:
        """Dropped: an $on cell's areas show no widgets (as before devicemessages)."""


class OnCell:
    """Runs one cell's code on several devices at once and shows each device's output in its own area."""

    def __init__(self, frontend: Frontend, targets: list[Target], code: str, filename: str) -> None:
        self._frontend = frontend
        self.targets = targets
        self._code, self._filename = code, filename
        self._by_device: dict[int, Target] = {}
        # Set when the last device is done: the main thread sleeps until then, or until the next update.
        self._done = threading.Event()
        self._pending = len(targets)
        self._stopping = False
        self._lock = threading.Lock()

    # -- from the devices (worker threads) ---------------------------------

    def takes(self, device: Device) -> bool:
        """Whether `device` runs in this cell (its output and prompts belong to it)."""
        return id(device) in self._by_device

    def output(self, device: Device, chunks: Chunks) -> None:
        """A device's ordered output batch, stored in its area."""
        target = self._by_device.get(id(device))
        if target is not None:
            deliver(chunks, _AreaOutput(target.area, device))

    # -- the cell ------------------------------------------------------------

    def run(self) -> None:
        """Run everywhere, showing the areas as they fill; CellError when a device failed.

        The areas appear UPDATE_INTERVAL after the start, or at the end when all devices are done
        sooner: a quick cell costs one display message per device, not two.
        """
        threads = [threading.Thread(target=self._work, args=(target,), daemon=True, name=f"xrpyc-on-{i}")
                   for i, target in enumerate(self.targets)]  # fmt: skip
        for thread in threads:
            thread.start()
        while True:
            try:
                if self._done.wait(UPDATE_INTERVAL):
                    break
                self._publish_changes()
            except KeyboardInterrupt:  # raised here by an interrupt before the cell registered: stop all
                self.interrupt()
        self._publish_changes()
        for target in self.targets:
            if target.device is not None and target.device.closed:
                target.drop()  # lost, or let go after an interrupt: the next cell reconnects
        failures = [target for target in self.targets if target.failure is not None]
        if failures:
            raise _failed(failures)

    def interrupt(self) -> None:
        """Stop every device (from the signal thread: each interrupt waits in a thread of its own)."""
        with self._lock:
            self._stopping = True
            targets = list(self.targets)
        for target in targets:
            if target.attempt is not None:
                target.attempt.cancel()
            if target.device is not None:
                threading.Thread(target=target.device.interrupt, daemon=True).start()

    def _work(self, target: Target) -> None:
        area = target.area
        try:
            device = target.ready()
            if device is None:
                with self._lock:
                    if self._stopping:
                        raise KeyboardInterrupt
                    target.attempt = Attempt(DEFAULT_TIMEOUT)
                device, notice = target.open(target.attempt)
                if notice:
                    area.text("stderr", notice)
            with self._lock:
                target.device = device
                self._by_device[id(device)] = target
                stopping = self._stopping
            if stopping:
                raise KeyboardInterrupt
            bundle = device.run(self._code, self._filename)
            if bundle:
                _AreaOutput(area, device).display(bundle, None, False)
            area.finish("ok")
        except CellError as error:
            self._fail(target, error.ename, error.evalue, "\n".join(error.traceback))
        except KeyboardInterrupt:
            self._fail(target, "KeyboardInterrupt", "", "KeyboardInterrupt")
        except DeviceError as error:
            self._fail(target, type(error).__name__, str(error), f"{type(error).__name__}: {error}")
        except Exception as error:  # a bug of ours: this device's failure, the others go on
            lines = traceback.format_exception(type(error), error, error.__traceback__)
            self._fail(target, type(error).__name__, str(error), "".join(lines))
        finally:
            with self._lock:
                self._pending -= 1
                if not self._pending:
                    self._done.set()

    def _fail(self, target: Target, ename: str, evalue: str, trace: str) -> None:
        target.failure = (ename, evalue)
        target.area.text("stderr", trace.rstrip("\n") + "\n")
        target.area.finish("interrupted" if ename == "KeyboardInterrupt" else "failed", ename)

    def _publish_changes(self) -> None:
        for target in self.targets:
            if target.area.version != target.area.shown:
                self._publish(target.area)

    def _publish(self, area: _Area) -> None:
        version = area.version
        publish = self._frontend.display_data if area.shown < 0 else self._frontend.update_display_data
        publish(area.bundle(), {}, {"display_id": area.display_id})
        area.shown = version


def _failed(failures: list[Target]) -> CellError:
    """The cell's error: the first failure's name, and every failing device with what it raised."""
    lines = [f"{shown(t.name)}: {t.failure[0]}" + (f": {t.failure[1]}" if t.failure[1] else "")
             for t in failures if t.failure is not None]  # fmt: skip
    ename = failures[0].failure[0] if failures[0].failure is not None else "Error"
    evalue = f"{len(failures)} device{'s' if len(failures) > 1 else ''} failed: " + "; ".join(lines)
    return CellError(ename, evalue, [f"{ename}: {evalue}", *lines])
