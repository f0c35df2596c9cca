"""What the kernel does with execute, complete, inspect and is_complete requests.

Each public method answers one Jupyter request and returns the reply content
as JSON text. What the frontend is sent goes through `frontend` (frontend.py;
in tests, any object with the same methods).
Nothing here may raise for something a user typed: every failure becomes an
error reply with a message that says what happened.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import tokenize
import traceback
from typing import TYPE_CHECKING, Any

from . import commands
from .boards import DEFAULT, Boards
from .cellparse import Code, Command, CommandSyntaxError, Help, split_cell
from .commands import CommandError
from .comms import WIDGET_VIEW, Comms
from .deadline import Attempt
from .history import History
from .loopback import listener_uids, owner_name
from .magics import MagicError, is_cell_magic, transform_cell
from .sanitize import publishable
from .security import DEVICES_FILE, Credentials, lookup
from .session import DEFAULT_TIMEOUT, Address, CellError, Device, DeviceError, DeviceRefused, default_address
from .videoviews import VideoViews

if TYPE_CHECKING:
    from .frontend import Frontend
    from .localdevice import PrivateDevice
    from .oncell import OnCell

# Starts the input_reply value with which an interrupt ends a pending prompt.
CANCELLED = "\x00xrpyc-interrupted-"


class StreamWriter(io.TextIOBase):
    """A file whose writes become `stream` messages (for kernel-side output)."""

    def __init__(self, kernel: Shell, name: str) -> None:
        self._kernel, self._name = kernel, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._kernel.write(self._name, text)
        return len(text)


# A cell that is only one of these asks the frontend to end the session, as in IPython.
EXIT_WORDS = frozenset(("exit", "quit", "exit()", "quit()"))


class Shell:
    def __init__(self, frontend: Frontend, history: History | None = None, comms: Comms | None = None) -> None:
        self.frontend = frontend
        self.history = history
        # Widgets on the device (comms.py): the kernel's, which C++ registered with xeus.
        self.comms = comms or Comms(frontend)
        self.comms.device_of = lambda: self.device
        self.device: Device | None = None
        self.private_device: PrivateDevice | None = None
        # Where cells go: the default device until $connect names one.
        self.address: Address = default_address()
        self.explicit = False
        self.credentials: Credentials | None = None  # from $connect; else looked up (security.py)
        self.local_namespace: dict[str, Any] = {"__name__": "__xrpyc_local__"}
        # Names this kernel's namespace on devices, across reconnects.
        self.key = os.urandom(16).hex()
        # Devices that hold a namespace of this kernel: reconnecting to one
        # that lost it (it restarted) is worth a notice.
        self._known: set[Address] = set()
        # The device running the current cell, for interrupt().
        self._busy: Device | None = None
        # The connection attempt in progress, which an interrupt ends.
        self._connecting: Attempt | None = None
        # Held by whoever connects or lets go: a cell, $connect, or connect_ahead() in the background.
        self._connection_lock = threading.RLock()
        # What connecting had to say, for the cell that uses the device (connect_ahead() has no cell).
        self._notices: list[tuple[str, str]] = []
        # How connect_ahead() failed, and when: the answer of a cell that was waiting for it.
        self._early_failure: tuple[BaseException, float] | None = None
        # input() on the device: whether the frontend can answer, whether it
        # is being asked, and the answer an interrupt sends to end the wait.
        self._allow_stdin = False
        self._asking = False
        self._cancel_value: str | None = None
        # Whether this cell's output already said that something was removed from it (sanitize.py).
        self._removal_noted = False
        self.videos = VideoViews(frontend)
        # Named connections beside the unnamed one ($connect(..., name=), $use), and the $on cell running.
        self.boards = Boards(self)
        self._on: OnCell | None = None

    # -- output ------------------------------------------------------------

    def write(self, name: str, text: str) -> None:
        if text:
            self.frontend.stream(name, text)

    def _notice(self, name: str, text: str) -> None:
        """Something connecting says: published by the cell that uses the device (ensure_device)."""
        self._notices.append((name, text))

    def stream(self, name: str) -> StreamWriter:
        return StreamWriter(self, name)

    def _on_device_output(self, device: Device, chunks: tuple) -> None:
        # Called from the device (through rpyc, _DeviceCalls) with ordered batches; see agent.Chunks.
        for kind, payload in chunks:
            if kind == "display":
                bundle, display_id, update = payload
                transient = {"display_id": display_id} if isinstance(display_id, str) else {}
                publish = self.frontend.update_display_data if update else self.frontend.display_data
                publish(self._publishable(device, bundle), {}, transient)
            elif kind == "clear":
                self.frontend.clear_output(bool(payload))
            elif kind in ("stdout", "stderr") and isinstance(payload, str):
                self.frontend.stream(kind, payload)
            elif kind == "comm":
                self.comms.from_device(device, payload)

    def _publishable(self, device: Device, bundle: tuple, note: bool = True) -> dict[str, Any]:
        """The device's bundle as it may reach the browser (sanitize.py); the first removal in a
        cell gets a note on stderr, so that a user who misses something learns why."""
        trusted = device.credentials.trusted
        data, removed = publishable(bundle, trusted)
        if not trusted and WIDGET_VIEW in data:
            view = data[WIDGET_VIEW]
            if not self.comms.made(device, view.get("model_id") if isinstance(view, dict) else None):
                del data[WIDGET_VIEW]  # a view of a widget this device did not make (another device's, or none)
                removed.append(WIDGET_VIEW)
        # From a trusted device, only malformed entries are removed: trusting it more would not help.
        if removed and note and not trusted and not self._removal_noted:
            self._removal_noted = True
            self.write(
                "stderr",
                f"xrpyc: removed what could run code in this browser from {device.address}'s output "
                f"({', '.join(dict.fromkeys(removed))}). To show it as sent, trust the device: "
                f'$connect("{device.address}", trusted=True) or "trusted": true in {DEVICES_FILE}.\n',
            )
        return data

    # -- devices -----------------------------------------------------------

    def connect(
        self, address: Address, timeout: float = DEFAULT_TIMEOUT, credentials: Credentials | None = None
    ) -> Device:
        """Connect to `address` for the next cells ($connect), with a fresh namespace there."""
        if self._connecting is not None:
            self._connecting.cancel()  # connect_ahead() to the default device: not wanted now
        with self._connection_lock:
            self._early_failure = None
            key = os.urandom(16).hex()  # a new namespace, even on the device we had
            device = self._open_device(address, key, timeout, credentials)
            self.disconnect()
            self.device, self.address, self.explicit, self.key = device, address, True, key
            # Kept for reconnects: a token given to $connect is in memory only.
            self.credentials = device.credentials
            self._known.add(address)
        self.say_connected(device)
        return device

    def say_connected(self, device: Device, name: str = "") -> None:
        """The line a $connect answers: what the device is, and its name if it has one."""
        info = dict(device.info())
        trust = " (trusted: its HTML and scripts run in this browser)" if device.credentials.trusted else ""
        named = f" as {name!r}" if name else ""
        self.write("stdout", f"Connected to {device.address}{named}{trust}: {info['machine']}, {info['python']}, "
                             f"rpyc {info['rpyc']}\n")  # fmt: skip

    def disconnect(self) -> None:
        """Close the connection and drop this kernel's namespace on the device."""
        with self._connection_lock:
            if self.device is not None:
                self.device.close(forget=True)
                self._known.discard(self.device.address)
                self.device = None
            self.address, self.explicit, self.credentials = default_address(), False, None

    def connect_ahead(self) -> None:
        """Connect to the default device before the first cell asks (the kernel's start, kernel.py).

        Only to a device that is there: a private device is started by the
        first cell that needs one, since a first `$connect` elsewhere would
        leave it unused. What connecting says waits for the first cell; so
        does a failure, if that cell was already waiting for this attempt
        (otherwise the cell tries again, and reports its own attempt).
        """
        with self._connection_lock:
            if self.device is not None or self.explicit:
                return
            try:
                self.device = self._connect_current(start_private=False)
            except DeviceRefused:
                pass  # nothing there yet: the first cell decides what to do
            except BaseException as error:  # KeyboardInterrupt too: an interrupted first cell
                self._early_failure = (error, time.monotonic())

    def ensure_device(self) -> Device:
        """The device plain cells run on ($use): connects on first use, and again after a loss."""
        return self.device_named(self.boards.current)

    def device_named(self, name: str) -> Device:
        """The connection `name`'s device (DEFAULT: the unnamed one), connected if it was not."""
        if name == DEFAULT:
            return self._ensure_default()
        device, notice = self.boards.ensure(self.boards.board(name, "$use"))
        self.write("stderr", notice)
        return device

    def _ensure_default(self) -> Device:
        """The unnamed connection's device: connects on first use, and again after a loss."""
        asked = time.monotonic()
        with self._connection_lock:  # a connection being made ahead is waited for
            early, self._early_failure = self._early_failure, None
            if early is not None and early[1] >= asked:
                raise early[0]  # the attempt this cell waited for failed: that is its answer
            try:
                if self.device is not None and not self.device.alive():
                    self._drop_device()  # it went away while we were idle: reconnect quietly
                if self.device is None:
                    self.device = self._connect_current()
            finally:
                notices, self._notices = self._notices, []
                for name, text in notices:
                    self.write(name, text)
            return self.device

    def _drop_device(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None

    def _connect_current(self, start_private: bool = True) -> Device:
        first = not self._known
        try:
            credentials = self.credentials or lookup(self.address)
        except ValueError as error:
            raise DeviceError(str(error)) from None
        stranger = None if self.explicit or credentials.token else _stranger_listening(self.address)
        try:
            if stranger is not None:
                if os.environ.get("XRPYC_DEVICE"):
                    raise DeviceError(
                        f"{self.address} is served by another user ({stranger}): your cells do not go there. "
                        "If it is yours to use, give its token (XRPYC_TOKEN) or $connect to it explicitly."
                    )
                raise DeviceRefused(f"{self.address} is served by another user ({stranger})")
            device = self._open_device(self.address, self.key, credentials=credentials)
        except DeviceRefused:
            # A private device stands in only for a local default device that
            # never ran; one that went away is waited for, not replaced.
            if not start_private or self.explicit or not self.address.is_loopback or self.address in self._known:
                raise
            device = self._connect_private_device(stranger)
        else:
            if first and not self.explicit and not os.environ.get("XRPYC_DEVICE"):
                self._notice("stdout", f"xrpyc: cells run on the local default device at {self.address}.\n")
        if device.address in self._known and not device.resumed:
            self._notice(
                "stderr",
                f"xrpyc: reconnected to {device.address}. The device restarted: this kernel's namespace there "
                "is new, and variables from before are gone.\n",
            )
        self._known.add(device.address)
        return device

    def _connect_private_device(self, stranger: str | None = None) -> Device:
        if self.private_device is None or not self.private_device.running:
            restarted = self.private_device is not None
            from .localdevice import PrivateDevice  # ctypes, subprocess: not on the first cell's path

            self.private_device = PrivateDevice.start()
            where = f"a private xrpyc-device at {self.private_device.address}, started for this kernel"
            if restarted:
                self._notice("stderr", f"xrpyc: the private xrpyc-device had stopped (its namespace is gone); "
                                       f"cells now run on {where}.\n")  # fmt: skip
            else:
                why = f"served by another user, {stranger}" if stranger else "nothing listens there"
                self._notice("stdout", f"xrpyc: cells run on {where} ({self.address}: {why}).\n")
        return self._open_device(self.private_device.address, self.key, credentials=self.private_device.credentials)

    def _open_device(
        self,
        address: Address,
        key: str,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
        attempt: Attempt | None = None,
    ) -> Device:
        """Connect to `address` for namespace `key`; within `attempt` when given (an $on cell's
        device, in its own thread), else within the kernel's one connection attempt."""
        calls = _DeviceCalls(self, address)
        if attempt is not None:
            calls.device = Device.connect(address, key, calls.output, timeout, credentials, calls.input, attempt)
            return calls.device
        attempt = self._connecting = Attempt(timeout)
        try:
            calls.device = Device.connect(address, key, calls.output, timeout, credentials, calls.input, attempt)
        finally:
            self._connecting = None
        return calls.device

    def _on_input_request(self, prompt: str, password: bool) -> tuple:
        """A cell's input() or getpass() on the device (called through rpyc, in the main thread)."""
        if not self._allow_stdin:
            return ("nostdin",)
        self._asking = True
        try:
            while True:
                value = self.frontend.input_request(prompt, password)
                if not value.startswith(CANCELLED):
                    return ("ok", value)
                if value == self._cancel_value:
                    return ("interrupted",)
                # A cancel meant for an earlier prompt, which the user answered
                # at the same moment: this prompt still waits for its answer.
        finally:
            self._asking, self._cancel_value = False, None

    def interrupt(self, during_request: bool) -> bool:
        """SIGINT (from the signal thread).

        While idle it stops background video. During a request, returns True
        to raise KeyboardInterrupt in the kernel itself: for anything but a
        cell on the device ($exec, connecting). A prompt of the cell's input()
        is ended: the device's input() raises KeyboardInterrupt.
        """
        if not during_request:
            self.videos.stop_all()
            return False
        if self._asking:
            self._cancel_value = f"{CANCELLED}{os.urandom(16).hex()}"
            self.frontend.cancel_input(self._cancel_value)
            return False
        if self._connecting is not None:
            self._connecting.cancel()  # wakes the connection attempt, which raises KeyboardInterrupt
            return False
        if self._on is not None:
            self._on.interrupt()  # every device of the $on cell
            return False
        device = self._busy
        if device is None:
            return True
        # Not in the signal thread: it must be free for the next SIGINT.
        threading.Thread(target=device.interrupt, daemon=True).start()
        return False

    # -- requests ----------------------------------------------------------

    def execute(
        self,
        execution_count: int,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: str,
        allow_stdin: bool,
    ) -> str:
        self._allow_stdin = allow_stdin
        self._removal_noted = False
        if code.strip() in EXIT_WORDS:
            # As IPython's exit: the frontend ends the session (jupyter console leaves); the device is not asked.
            return json.dumps({"status": "ok", "payload": [{"source": "ask_exit", "keepkernel": False}]})
        if self.history is not None and store_history and not silent:
            self.history.start_cell(execution_count)
        try:
            segments = split_cell(transform_cell(code))
            if segments and isinstance(segments[0], Command) and segments[0].name == "on":
                self._run_on(segments, execution_count)
                return json.dumps({"status": "ok", "payload": [], "user_expressions": {}})
            # A mistyped command stops the cell before any of it runs.
            for segment in segments:
                if isinstance(segment, Command):
                    commands.check(segment)
                    if segment.name == "on":
                        raise CommandError("$on(...) must be the first line of its cell: it runs the rest of it")
            pages: list[dict[str, Any]] = []
            for segment in segments:
                if isinstance(segment, Code):
                    self._run_code(segment.text, execution_count, silent)
                elif isinstance(segment, Help):
                    pages.extend(self._help(segment))
                else:
                    commands.run(self, segment)
            reply: dict[str, Any] = {"status": "ok", "payload": pages, "user_expressions": {}}
        except CellError as error:
            reply = self._error(error.ename, error.evalue, error.traceback, silent)
        except MagicError as error:  # as IPython names it
            reply = self._error("UsageError", str(error), [f"UsageError: {error}"], silent)
        except (CommandSyntaxError, CommandError, DeviceError) as error:
            reply = self._error(type(error).__name__, str(error), [f"{type(error).__name__}: {error}"], silent)
        except KeyboardInterrupt:
            reply = self._error("KeyboardInterrupt", "", ["KeyboardInterrupt"], silent)
        except Exception as error:
            # A bug of ours: report it like a Python error, keep the kernel alive.
            lines = [line.rstrip("\n") for line in traceback.format_exception(type(error), error, error.__traceback__)]
            reply = self._error(type(error).__name__, str(error), lines, silent)
        return json.dumps(reply)

    def _run_code(self, text: str, execution_count: int, silent: bool) -> None:
        device = self.ensure_device()
        self._busy = device
        self.comms.cell_started()
        if device.video_url is not None:
            self.videos.start_cell_view(device.video_url)
        try:
            bundle = device.run(text, f"In[{execution_count}]", self.comms.between)
        finally:
            self._busy = None
            self.videos.stop_cell_view()
            if device.closed:  # lost, or let go after an interrupt: the next cell reconnects
                self._drop_device()
        if bundle and not silent:
            data = self._publishable(device, bundle)
            self.frontend.execute_result(execution_count, data)
            if self.history is not None and "text/plain" in data:
                self.history.add_output(data["text/plain"])

    def _run_on(self, segments: list, execution_count: int) -> None:
        """`$on(names...)` and the rest of the cell, Python run on those devices at once (oncell.py)."""
        from .oncell import OnCell, Target

        on, rest = segments[0], segments[1:]
        commands.check(on)
        if any(not isinstance(segment, Code) for segment in rest):
            raise CommandError("$on(...) runs the rest of its cell on the devices: Python only, no $ commands "
                               "or help requests after it (put them in another cell)")  # fmt: skip
        if not rest:
            raise CommandError('$on(...) runs the rest of its cell on the devices: write the code below it')
        targets = []
        for name in self.boards.targets(on.args, "$on"):
            if name == DEFAULT:
                device = self._ensure_default()  # here: it may start the private device, and has notices
                targets.append(Target(name, str(device.address), lambda d=device: d, lambda _, d=device: (d, ""),
                                      self._drop_device))  # fmt: skip
            else:
                board = self.boards.named[name]
                targets.append(Target(name, str(board.address), lambda b=board: self.boards.live(b),
                                      lambda attempt, b=board: self.boards.ensure(b, attempt),
                                      lambda b=board: self.boards.drop(b)))  # fmt: skip
        self._on = OnCell(self.frontend, targets, rest[0].text, f"In[{execution_count}]")
        try:
            self._on.run()
        finally:
            self._on = None

    def _error(self, ename: str, evalue: str, trace: list[str], silent: bool) -> dict[str, Any]:
        if not silent:
            self.frontend.error(ename, evalue, trace)
        return {"status": "error", "ename": ename, "evalue": evalue, "traceback": trace}

    def _help(self, request: Help) -> list[dict[str, Any]]:
        """`name?` and `name??`: the device's description of `name` as a page, as IPython shows it."""
        device = self.ensure_device()
        bundle = device.help(request.name, request.detail)
        if not bundle:
            self.write("stdout", f"Object `{request.name}` not found.\n")
            return []
        return [{"source": "page", "data": self._publishable(device, bundle), "start": 0}]

    def _introspection_device(self) -> Device:
        """The device for Tab and Shift-Tab: the connected one; connecting is left to cells.

        Reaching a board that went away takes up to the connect timeout (5 s), too long for a
        keystroke. Only the local default device is connected to here: it answers at once.
        """
        if self.boards.current != DEFAULT:
            device = self.boards.named[self.boards.current].device
            if device is not None and not device.closed and device.alive():
                return device
            raise DeviceError("not connected; the next cell reconnects")
        if self.device is not None and self.device.alive():
            return self.device
        if self.explicit or not self.address.is_loopback:
            raise DeviceError("not connected; the next cell reconnects")
        return self.ensure_device()

    def complete(self, code: str, cursor_pos: int) -> str:
        answer = None
        try:
            answer = self._introspection_device().complete(code, cursor_pos)
        except (DeviceError, EOFError):
            pass  # no device, no names: an empty answer, never an error popup
        except Exception as error:  # a bug of ours on the device: still an answer
            print(f"xrpyc: completion failed: {type(error).__name__}", file=sys.stderr)
        # None: the device did not answer in time.
        start, end, items = answer or (cursor_pos, cursor_pos, ())
        # As ipykernel: the types and signatures for JupyterLab's completer in metadata.
        types = [dict(zip(("text", "type", "signature"), item), start=start, end=end) for item in items]
        return json.dumps(
            {
                "status": "ok",
                "matches": [text for text, _, _ in items],
                "cursor_start": start,
                "cursor_end": end,
                "metadata": {"_jupyter_types_experimental": types},
            }
        )

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> str:
        data: dict[str, Any] = {}
        try:
            device = self._introspection_device()
            # No note: there is no cell to write it in.
            data = self._publishable(device, device.inspect(code, cursor_pos, detail_level), note=False)
        except (DeviceError, EOFError):
            pass
        except Exception as error:  # a bug of ours on the device: still an answer
            print(f"xrpyc: inspection failed: {type(error).__name__}", file=sys.stderr)
        return json.dumps({"status": "ok", "found": bool(data), "data": data, "metadata": {}})

    def is_complete(self, code: str) -> str:
        """As IPython's TransformerManager.check_complete answers it (a console continues what is incomplete).

        A block ends when the code ends with a newline; a cell magic with a
        blank line; a backslash at the end continues. The device's Python
        decides what is valid Python (when one is connected).
        """
        if is_cell_magic(code):
            return _reply("incomplete" if code.splitlines()[-1].strip() else "complete", code)
        if code.rstrip().endswith("\\"):
            return _reply("incomplete", code)
        try:
            segments = split_cell(transform_cell(code))
        except MagicError:
            return _reply("complete", code)  # runs, to say which magics there are
        except CommandSyntaxError:
            return _reply("invalid", code)
        for segment in segments:
            if not isinstance(segment, Code):
                continue
            status = self._code_status(segment.text)
            if status != "complete":
                return _reply(status, segment.text)
        last = segments[-1] if segments else None
        if isinstance(last, Code) and _last_statement_indented(last.text) and "\n" not in _trailing_space(code):
            return _reply("incomplete", last.text)
        return _reply("complete", code)

    def _code_status(self, text: str) -> str:
        # The device's Python decides when one is connected (a board's 3.6
        # has no `match`); asking costs a round trip, connecting would cost
        # seconds, so an idle kernel without a device answers for itself.
        device = self.device if self.boards.current == DEFAULT else self.boards.named[self.boards.current].device
        if device is not None:
            try:
                return str(device.is_complete(text))
            except Exception:  # the device went away: the local parser answers
                pass
        # Imported here: agent.py (with the device-side sources it imports) is
        # the device's code, which the kernel needs only when no device is there.
        from .agent import code_status

        return code_status(text)

    def shutdown(self) -> None:
        self.videos.stop_all()
        self.videos.stop_live_view()
        if self._connecting is not None:
            self._connecting.cancel()  # a connection still being made ahead
        with self._connection_lock:
            self.disconnect()  # also drops this kernel's namespace on the device
            self.boards.close_all()
            if self.private_device is not None:
                self.private_device.stop()
                self.private_device = None


class _DeviceCalls:
    """What a device may call in the kernel, through rpyc, at any moment: a cell's output and input().

    Both are taken only while that device runs this kernel's cell. Between cells, or while the
    kernel waits for a completion, a device could otherwise publish output that looks like the
    notebook's, or put up a password prompt; those calls are dropped (and logged once).
    """

    def __init__(self, shell: Shell, address: Address) -> None:
        self._shell, self._address = shell, address
        self.device: Device | None = None  # set once connected; calls during the connection are dropped
        self._ignored = 0

    def output(self, chunks: tuple) -> None:
        on = self._shell._on
        if on is not None and self.device is not None and on.takes(self.device):
            on.output(self.device, chunks)  # in this device's thread: stored for its area
        elif self._in_cell("output"):
            assert self.device is not None
            self._shell._on_device_output(self.device, chunks)

    def input(self, prompt: str, password: bool) -> tuple:
        on = self._shell._on
        if on is not None and self.device is not None and on.takes(self.device):
            return ("nostdin",)  # one prompt for several devices at once would answer none of them well
        return self._shell._on_input_request(prompt, password) if self._in_cell("a prompt") else ("nostdin",)

    def _in_cell(self, what: str) -> bool:
        if self.device is not None and self.device is self._shell._busy:
            return True
        self._ignored += 1
        if self._ignored == 1:  # the kernel's log, not the notebook: that is what the device wants to reach
            print(f"xrpyc: ignored {what} that {self._address} sent outside a running cell (later ones silently)",
                  file=sys.stderr)  # fmt: skip
        return False


def _reply(status: str, text: str) -> str:
    """An is_complete reply; an incomplete one says how to indent the next line."""
    reply = {"status": status, "indent": _next_indent(text)} if status == "incomplete" else {"status": status}
    return json.dumps(reply)


def _next_indent(text: str) -> str:
    """The indentation of the last line (tabs as four spaces, as IPython), four more after a `:`."""
    lines = text.rstrip("\n").splitlines() or [""]
    last = lines[-1].replace("\t", "    ")
    indent = last[: len(last) - len(last.lstrip())]
    return indent + "    " if last.rstrip().endswith(":") else indent


def _trailing_space(code: str) -> str:
    return code[len(code.rstrip()) :]


def _last_statement_indented(text: str) -> bool:
    """True when the last statement is inside a block (not a bracket's continuation line)."""
    column, at_start = 0, True
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NEWLINE:
                at_start = True
            elif token.type not in _LAYOUT_TOKENS and at_start:
                column, at_start = token.start[1], False
    except (tokenize.TokenError, SyntaxError):
        return False
    return column > 0


_LAYOUT_TOKENS = frozenset({tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER})


def _stranger_listening(address: Address) -> str | None:
    """The name of another user whose process listens on loopback `address`, if one does.

    Root counts as no stranger: it can reach into every process of the host anyway.
    """
    if not address.is_loopback:
        return None
    others = (listener_uids(address.host, address.port) or set()) - {os.getuid(), 0}
    return ", ".join(sorted(owner_name(uid) for uid in others)) or None
