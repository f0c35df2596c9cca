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
import tokenize
import traceback
from typing import TYPE_CHECKING, Any

from . import commands
from .address import Address
from .boards import DEFAULT
from .cellparse import Code, Command, CommandSyntaxError, Help, split_cell
from .comms import Comms
from .connections import Connections
from .devicemessages import INTERRUPTED, NO_STDIN, Chunks, answered, deliver
from .errors import CellError, CommandError, DeviceError
from .history import History
from .magics import MagicError, is_cell_magic, transform_cell
from .sanitize import publishable
from .security import DEVICES_FILE
from .session import Device
from .videoviews import VideoViews

if TYPE_CHECKING:
    from .frontend import Frontend
    from .oncell import OnCell

# Starts the input_reply value with which an interrupt ends a pending prompt.
CANCELLED = "\x00xrpyc-interrupted-"


# A cell that is only one of these asks the frontend to end the session, as in IPython.
EXIT_WORDS = frozenset(("exit", "quit", "exit()", "quit()"))


class Shell:
    def __init__(self, frontend: Frontend, history: History | None = None, comms: Comms | None = None) -> None:
        self.frontend = frontend
        self.history = history
        # Widgets on the device (comms.py): the kernel's, which C++ registered with xeus.
        self.comms = comms or Comms(frontend)
        # Where cells go, and connecting when they need it: connections.py.
        self.connections = Connections(self.write, lambda address: _DeviceCalls(self, address))
        self.comms.device_of = self.connections.current_device  # where plain cells run ($use)
        self.local_namespace: dict[str, Any] = {"__name__": "__xrpyc_local__"}
        # The device running the current cell, for interrupt().
        self._busy: Device | None = None
        # input() on the device: whether the frontend can answer, whether it
        # is being asked, and the answer an interrupt sends to end the wait.
        self._allow_stdin = False
        self._asking = False
        self._cancel_value: str | None = None
        # Whether this cell's output already said that something was removed from it (sanitize.py).
        self._removal_noted = False
        self.videos = VideoViews(frontend)
        # What $ commands work with (commands.py).
        self.context = commands.Context(self.connections, self.write, self.videos, frontend, self.local_namespace)
        self._on: OnCell | None = None  # the $on cell running

    # -- output ------------------------------------------------------------

    def write(self, name: str, text: str) -> None:
        if text:
            self.frontend.stream(name, text)

    def _publishable(self, device: Device, bundle: tuple, note: bool = True) -> dict[str, Any]:
        """The device's bundle as it may reach the browser (sanitize.py); the first removal in a
        cell gets a note on stderr, so that a user who misses something learns why."""
        trusted = device.credentials.trusted
        data, removed = publishable(bundle, trusted, lambda model_id: self.comms.made(device, model_id))
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

    def _on_input_request(self, prompt: str, password: bool) -> tuple:
        """A cell's input() or getpass() on the device (called through rpyc, in the main thread)."""
        if not self._allow_stdin:
            return NO_STDIN
        self._asking = True
        try:
            while True:
                value = self.frontend.input_request(prompt, password)
                if not value.startswith(CANCELLED):
                    return answered(value)
                if value == self._cancel_value:
                    return INTERRUPTED
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
        if self.connections.cancel_attempt():  # the attempt raises KeyboardInterrupt
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
                    commands.run(self.context, segment)
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
        device = self.connections.ensure_device()
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
                self.connections.drop(device)
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
        connections = self.connections
        boards = connections.boards
        for name in boards.targets(on.args, "$on"):
            if name == DEFAULT:
                device = connections.default_device()  # here: it may start the private device, and has notices
                targets.append(Target(name, str(device.address), lambda d=device: d, lambda _, d=device: (d, ""),
                                      connections.drop_default))  # fmt: skip
            else:
                board = boards.named[name]
                targets.append(Target(name, str(board.address), lambda b=board: boards.live(b),
                                      lambda attempt, b=board: boards.ensure(b, attempt),
                                      lambda b=board: boards.drop(b)))  # fmt: skip
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
        device = self.connections.ensure_device()
        bundle = device.help(request.name, request.detail)
        if not bundle:
            self.write("stdout", f"Object `{request.name}` not found.\n")
            return []
        return [{"source": "page", "data": self._publishable(device, bundle), "start": 0}]

    def complete(self, code: str, cursor_pos: int) -> str:
        answer = None
        try:
            answer = self.connections.introspection_device().complete(code, cursor_pos)
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
            device = self.connections.introspection_device()
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
        device = self.connections.current_device()
        if device is not None:
            try:
                return str(device.is_complete(text))
            except Exception:  # the device went away: the local parser answers
                pass
        # Imported here: agent.py (with the device-side sources it imports) is
        # the device's code, which the kernel needs only when no device is there.
        from .remote.agent import code_status

        return code_status(text)

    def shutdown(self) -> None:
        self.videos.stop_all()
        self.videos.stop_live_view()
        self.connections.close()


class _CellOutput:
    """A device's output during a plain cell (devicemessages.Output): to the notebook, as it may be shown there."""

    def __init__(self, shell: Shell, device: Device) -> None:
        self._shell, self._device = shell, device
        self.frontend = shell.frontend

    def stream(self, name: str, text: str) -> None:
        self.frontend.stream(name, text)

    def display(self, bundle: tuple, display_id: str | None, update: bool) -> None:
        transient = {"display_id": display_id} if display_id is not None else {}
        publish = self.frontend.update_display_data if update else self.frontend.display_data
        publish(self._shell._publishable(self._device, bundle), {}, transient)

    def clear(self, wait: bool) -> None:
        self.frontend.clear_output(wait)

    def comm(self, payload: Any) -> None:
        self._shell.comms.from_device(self._device, payload)


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

    def output(self, chunks: Chunks) -> None:
        on = self._shell._on
        if on is not None and self.device is not None and on.takes(self.device):
            on.output(self.device, chunks)  # in this device's thread: stored for its area
        elif self._in_cell("output"):
            assert self.device is not None
            deliver(chunks, _CellOutput(self._shell, self.device))

    def input(self, prompt: str, password: bool) -> tuple:
        on = self._shell._on
        if on is not None and self.device is not None and on.takes(self.device):
            return NO_STDIN  # one prompt for several devices at once would answer none of them well
        return self._shell._on_input_request(prompt, password) if self._in_cell("a prompt") else NO_STDIN

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
