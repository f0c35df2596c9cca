"""Runs a kernel's cells on the device, each kernel in its own namespace.

One Agent exists per kernel connection. Output written by a cell is captured
per thread (other connections' and threads' output is left alone), buffered,
and sent to the kernel in ordered batches: one network round trip per batch,
never one per write. Shipped to the device as source text with the other
modules of this package (see __init__.py).
"""

import ast
import builtins
import linecache
import os
import queue
import sys
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import files, registry
from .comms import AgentComms, install_comm_factory, note_cell
from .facts import device_facts
from .introspect import Introspector
from .magics import MAGICS_NAME, DeviceMagics, route_ipython_display
from .richrepr import close_figure, figure_bundle, install_inline_backend, mime_bundle, open_figures, wire_text
from .widgets import install_widgets

# Where this package's files are ("<xrpyc-remote>" on a device, see loader.py): frames
# from them are ours, not the user's, and are left out of tracebacks.
OWN_DIRECTORY = os.path.dirname((lambda: None).__code__.co_filename)
# A batch leaves the device when it is this old or this large, whichever first.
FLUSH_INTERVAL = 0.02
FLUSH_SIZE = 64 * 1024
# Cell sources kept for tracebacks and `obj??`: the newest cells, up to
# CELLS_KEPT of them and CELL_BYTES_KEPT characters, whichever comes first,
# and any older cell whose functions or classes the namespace still holds.
# 50 cells cover the ones a traceback or a session's `obj??` usually reach
# back to; typical cells are a few KB, so the character budget (4 MiB: little
# even for a 64 MB board) only bites for cells carrying pasted data, whose
# source is worth nothing later but would otherwise stay forever.
CELLS_KEPT = 50
CELL_BYTES_KEPT = 4 << 20

STREAMS = ("stdout", "stderr")
# What a sink sends: ((kind, payload), ...) where kind is a stream name with
# text, "display" with (bundle, display_id or None, update), or "clear" with wait.
Chunks = Tuple[Tuple[str, Any], ...]
# What the kernel answers to input(): ("ok", text), ("interrupted",) or ("nostdin",).
Ask = Callable[[str, bool], tuple]


def _without_waiting(send: Callable[[Chunks], Any]) -> Callable[[Chunks], Any]:
    """`send` as an rpyc asynchronous call: it goes out, nobody waits for the answer.

    The batch timer runs in a thread of its own, and with rpyc 5 no thread
    but the one serving the connection can receive an answer while a cell
    runs (5.x holds the receive lock while it dispatches a request), so a
    timer waiting for one would wait for the cell's end: output would stop
    being live, and the cell's end, which joins the timer, would hang.
    Order still holds: batches leave over one socket, in order, under the
    sink's send lock, and the kernel handles them in order, all before the
    cell's reply, which follows them.
    """
    try:
        import rpyc

        return rpyc.async_(send)
    except (ImportError, TypeError):  # not a netref: the agent runs in-process (unit tests)
        return send


def _waiting_for_ever(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call` (the kernel's callback) waiting for its answer as long as it takes: a user answers input() when
    they come back, and no sync_request_timeout applies.

    A plain call to a netref is a sync request, which gives up after the
    device's connection's sync_request_timeout (30 s on stock servers: the
    answer was lost with "result expired"). An asynchronous call with no
    expiry is waited for without one, serving the connection meanwhile as a
    sync request does (rpyc 5.x and 6.x). A dropped link still ends the wait
    (EOFError), and an interrupt is the kernel answering ("interrupted",).
    """
    try:
        import rpyc

        asynchronous = rpyc.async_(call)
    except (ImportError, TypeError):  # not a netref: the agent runs in-process (unit tests)
        return call

    def wait(*args: Any) -> Any:
        result = asynchronous(*args)
        result.set_expiry(None)
        return result.value

    return wait


class _Sink:
    """Collects one cell's stdout/stderr and ships it in order, in batches; `ask` answers its input()."""

    def __init__(self, send: Callable[[Chunks], Any], ask: Optional[Ask], cell: "_Cell") -> None:
        self._send = _without_waiting(send)
        self.ask = ask
        self.cell = cell
        self._lock = threading.Lock()  # guards the buffer
        self._send_lock = threading.Lock()  # keeps batches in order
        self._parts = []  # type: List[Tuple[str, List[str]]]
        self._size = 0
        self._done = threading.Event()
        self._timer = None  # type: Optional[threading.Thread]

    def write(self, name: str, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        with self._lock:
            if self._parts and self._parts[-1][0] == name:
                self._parts[-1][1].append(text)
            else:
                self._parts.append((name, [text]))
            self._size += len(text)
            full = self._size >= FLUSH_SIZE
            self._start_timer()
        if full:
            self.flush()
        return len(text)

    def post(self, kind: str, payload: Any) -> None:
        """A display or clear message, in order with the text around it, sent at once."""
        with self._lock:
            self._parts.append((kind, [payload]))
            self._start_timer()
        self.flush()

    def _start_timer(self) -> None:
        # On the first output only: a cell that shows nothing costs no thread.
        if self._timer is None:
            self._timer = threading.Thread(target=self._flush_periodically, daemon=True)
            self._timer.start()

    def flush(self) -> None:
        with _Talk(self.cell), self._send_lock:
            with self._lock:
                parts, self._parts, self._size = self._parts, [], 0
            if parts:
                self._send(
                    tuple((kind, wire_text("".join(items)) if kind in STREAMS else items[0]) for kind, items in parts)
                )

    def _flush_periodically(self) -> None:
        while not self._done.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:
                return  # the link is gone; the cell's own flush reports it

    def close(self) -> None:
        """Stop the timer and send what is left (before the cell's reply)."""
        self._done.set()
        if self._timer is not None:
            self._timer.join()
        self.flush()


class _Router:
    """Process-wide stand-in for sys.stdout or sys.stderr.

    Writes from a thread that runs a cell go to that cell's sink; all others
    go to the stream that was there before. Installed once per device process
    and shared by every connection's agent through the `targets` dict.
    """

    _xrpyc_router = True

    def __init__(self, name: str, original: Any) -> None:
        self.name = name
        self.original = original
        self.targets = {}  # type: Dict[int, _Sink]

    def write(self, text: str) -> int:
        sink = self.targets.get(threading.get_ident())
        if sink is not None:
            return sink.write(self.name, text)
        if self.original is not None:
            return self.original.write(text)
        return len(text)

    def flush(self) -> None:
        sink = self.targets.get(threading.get_ident())
        if sink is None and self.original is not None:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, attr: str) -> Any:
        # encoding, errors, fileno, buffer, ...: those of the real stream.
        return getattr(self.original, attr)


def _router(name: str) -> Any:
    stream = getattr(sys, name)
    if not getattr(stream, "_xrpyc_router", False):
        stream = _Router(name, stream)
        setattr(sys, name, stream)
    return stream


def _current_sink() -> Optional[_Sink]:
    """The sink of the cell running in this thread, if any."""
    return _router("stdout").targets.get(threading.get_ident())


class StdinNotImplementedError(NotImplementedError):
    """input() in a cell whose frontend cannot answer (allow_stdin false), as in IPython."""


def _ask(prompt: Any, password: bool, fallback: Callable[..., str], *args: Any) -> str:
    """input()/getpass() for the notebook when a cell of ours runs in this thread, else `fallback`."""
    sink = _current_sink()
    if sink is None or sink.ask is None:
        return fallback(*args)
    with _Talk(getattr(sink, "cell", None)):  # an interrupt meanwhile: the kernel answers ("interrupted",)
        sink.flush()  # what the cell printed comes before the prompt
        answer = _waiting_for_ever(sink.ask)(wire_text(str(prompt)), password)
    if answer[0] == "ok":
        return str(answer[1])
    if answer[0] == "interrupted":
        raise KeyboardInterrupt
    raise StdinNotImplementedError("input() was called, but this frontend does not support input requests.")


def _install_input() -> None:
    """builtins.input and getpass.getpass ask the notebook, in cells' threads (once per device process)."""
    if getattr(builtins.input, "_xrpyc", False):
        return
    import getpass as getpass_module

    console_input, console_getpass = builtins.input, getpass_module.getpass

    def input(prompt: Any = "") -> str:
        return _ask(prompt, False, console_input, prompt)

    def getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        return _ask(prompt, True, console_getpass, prompt, stream)

    input._xrpyc = True  # type: ignore[attr-defined]
    builtins.input, getpass_module.getpass = input, getpass


def _install_sleep() -> None:
    """time.sleep in a cell's thread that no signal reaches ends at once when the cell is interrupted.

    Process-wide (once per device process), but acting differently only in
    threads that run a cell: elsewhere, and for odd arguments, it is the
    original. Code that took `from time import sleep` before keeps the original.
    """
    import time

    if getattr(time.sleep, "_xrpyc", False):
        return
    original = time.sleep

    def sleep(seconds: float) -> None:
        cell = getattr(_current_sink(), "cell", None)  # None too for a sink of an older agent's
        if cell is None or cell.by_signal or type(seconds) not in (int, float) or not seconds > 0:
            return original(seconds)
        cell.sleep(seconds)

    sleep._xrpyc = True  # type: ignore[attr-defined]
    sleep.__doc__ = original.__doc__
    time.sleep = sleep


def _async_raise(ident: int, exc: Optional[type]) -> None:
    """Raise `exc` in thread `ident` at its next bytecode; None cancels a pending one."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


class _Cell:
    """The interrupt of one running cell: asked for by interrupt() (another thread), raised in the cell's thread.

    In the process's main thread (an xrpyc-device's worker) it is a SIGINT,
    which also ends a blocking system call (sleep, socket, select) at once;
    in another thread (stock servers) an asynchronous exception, which fires
    at the next bytecode only, except in time.sleep (_install_sleep). Never
    while the cell's thread talks to the kernel (output, input()): a
    KeyboardInterrupt in the middle of an rpyc message would break the link.
    It is raised when the talk ends instead.
    """

    def __init__(self) -> None:
        import signal

        self.ident = threading.get_ident()
        self.by_signal = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")
        self.running = False  # between start() and finish(): the user's code may be interrupted
        self.requested = False
        self._talks = 0
        self._sleeping = False
        self._wake = threading.Event()

    def start(self) -> None:
        self.running = True

    def finish(self) -> None:
        self.running = self.requested = False
        if not self.by_signal:
            _async_raise(self.ident, None)  # one that has not fired yet must not hit the agent's own code

    def request(self) -> None:
        """Interrupt the cell (from another thread). The order of the flags matters: see _Talk and sleep()."""
        if not self.running:
            return
        self.requested = True
        if self._talks:
            return  # raised when the talk ends
        if self._sleeping:
            self._wake.set()
        elif self.by_signal:
            import signal

            signal.pthread_kill(self.ident, signal.SIGINT)  # Python runs on_signal() in this thread
        else:
            _async_raise(self.ident, KeyboardInterrupt)

    def take(self) -> bool:
        """True once per request, when it may be raised now (in the cell's thread)."""
        if self.requested and self.running and not self._talks:
            self.requested = False
            return True
        return False

    def on_signal(self, signum: int, frame: Any) -> None:
        """The SIGINT handler while the cell runs in the main thread: a signal nobody asked for does nothing."""
        if self.take():
            raise KeyboardInterrupt

    def sleep(self, seconds: float) -> None:
        """time.sleep(seconds), ended with KeyboardInterrupt by request() (in a thread no signal reaches)."""
        import time

        self._sleeping = True
        try:
            deadline = time.monotonic() + seconds
            while not self.requested:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self._wake.wait(min(left, threading.TIMEOUT_MAX)):
                    self._wake.clear()  # request()'s (`requested` is set), or a late one meant for an earlier sleep
        finally:
            self._sleeping = False
        # Checked after _sleeping is off: a request() that found it still on has set `requested` before.
        if self.take():
            _async_raise(self.ident, None)  # request() may have raised one before we were sleeping
            raise KeyboardInterrupt


class _Talk:
    """A context in which a cell's thread talks to the kernel: no KeyboardInterrupt inside (see _Cell)."""

    __slots__ = ("_cell", "_mine")

    def __init__(self, cell: Optional[_Cell]) -> None:
        self._cell = cell
        self._mine = False

    def __enter__(self) -> None:
        cell = self._cell
        # Only in the cell's own thread: the batch timer's thread talks too, and is never interrupted.
        self._mine = cell is not None and threading.get_ident() == cell.ident
        if self._mine:
            cell._talks += 1
            if cell.requested and not cell.by_signal:
                _async_raise(cell.ident, None)  # not fired yet: raised when the talk ends

    def __exit__(self, etype: Any, value: Any, tb: Any) -> None:
        cell = self._cell
        if self._mine and cell is not None:
            cell._talks -= 1
            if etype is KeyboardInterrupt:
                cell.requested = False  # one is on its way already
            elif etype is None and cell.take():
                raise KeyboardInterrupt


def _post_bundle(bundle: tuple, display_id: Optional[str], update: bool) -> None:
    sink = _current_sink()
    if sink is not None:
        sink.post("display", (bundle, display_id, update))
    else:
        # Not a cell's thread (a background thread the cell started): the
        # notebook is not listening for it, the device's console is.
        print(dict(bundle)["text/plain"])


class DisplayHandle:
    """What display(..., display_id=True) returns, as in IPython."""

    def __init__(self, display_id: str) -> None:
        self.display_id = display_id

    def display(self, obj: Any) -> None:
        display(obj, display_id=self.display_id)

    def update(self, obj: Any) -> None:
        update_display(obj, display_id=self.display_id)

    def __repr__(self) -> str:
        return "<DisplayHandle display_id={}>".format(self.display_id)


def display(*objs: Any, display_id: Any = None, update: bool = False) -> Optional[DisplayHandle]:
    """IPython's display(), on the device: rich output in the running cell's output."""
    if display_id is True:
        import uuid

        display_id = uuid.uuid4().hex
    for obj in objs:
        _post_bundle(mime_bundle(obj), display_id, update)
    return DisplayHandle(display_id) if display_id else None


def update_display(obj: Any, display_id: str) -> None:
    """Replace what an earlier display(..., display_id=...) showed."""
    display(obj, display_id=display_id, update=True)


def clear_output(wait: bool = False) -> None:
    """Clear the running cell's output (wait=True: when the next output arrives)."""
    sink = _current_sink()
    if sink is not None:
        sink.post("clear", wait)


def show_figures(*_args: Any, **_kwargs: Any) -> None:
    """plt.show() on the device: the open figures go to the notebook, then close."""
    for figure in open_figures():
        _post_bundle(figure_bundle(figure), None, False)
        close_figure(figure)


def connect(key: str, send: Callable[[Chunks], Any], ask: Optional[Ask] = None) -> tuple:
    """All a kernel needs from a new connection, in one round trip (session.Device.connect): (files.py's
    module for transfers, agent, resumed, agent.run, agent.complete, agent.inspect, live view, Python version)."""
    _disable_nagle(send)
    agent, resumed = attach(key, send, ask)
    try:
        view = live_view(send)
    except Exception:  # a device's failure here costs the view, never the connection
        view = None
    python = "{}.{}.{}".format(*sys.version_info[:3])
    return (files, agent, resumed, agent.run, agent.complete, agent.inspect, view, python)


def _disable_nagle(kernel_link: Any) -> None:
    """TCP_NODELAY on this end of the kernel's connection, which stock rpyc servers leave off: with
    Nagle's algorithm meeting the kernel's delayed ACKs, exchanges stall 40 ms each (session.py)."""
    import socket

    link = _connection_of(kernel_link)
    try:
        link._channel.stream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # in-process (unit tests), or an rpyc laid out differently: slower, still correct


def attach(key: str, send: Callable[[Chunks], Any], ask: Optional[Ask] = None) -> tuple:
    """(agent, resumed): the kernel's existing agent with a new `send` and `ask`, or a new one."""
    agents = registry.shared().agents
    agent = agents.get(key)
    if agent is not None:
        agent._send, agent._ask = send, ask
        return (agent, True)
    agent = agents.setdefault(key, Agent(send, ask))
    return (agent, False)


def _source_line(lines: List[str], lineno: int) -> str:
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


class Agent:
    """Runs cells for one kernel; `send` delivers output batches to it, `ask` asks it for input."""

    def __init__(self, send: Callable[[Chunks], Any], ask: Optional[Ask] = None) -> None:
        self._send = send
        self._ask = ask
        self.namespace = {
            "__name__": "__main__",
            "__builtins__": builtins,
            # Available without import, as in IPython.
            "display": display,
            "update_display": update_display,
            "clear_output": clear_output,
        }  # type: Dict[str, Any]
        install_inline_backend(show_figures)
        _install_input()
        _install_sleep()
        # Cell sources by file name, oldest first, for tracebacks. Kept here
        # rather than in the device's shared linecache, where two kernels'
        # "In[3]" collide. Bounded: see CELLS_KEPT and _forget_cells.
        self._cells = {}  # type: Dict[str, List[str]]
        self._cell_sizes = {}  # type: Dict[str, int]
        # %magics and !commands (magics.py turns them into calls of this), and IPython's display().
        self.namespace[MAGICS_NAME] = DeviceMagics(self.namespace, self._cells, _post_bundle)
        route_ipython_display(_post_bundle, clear_output, lambda: _current_sink() is not None)
        # Widgets: ipywidgets' comms, or widgets.py's controls where it is not installed.
        self.comms = AgentComms(self._post_comm)
        install_comm_factory()
        install_widgets()
        self._introspector = Introspector(self.namespace, self._cells)
        self._routers = (_router("stdout"), _router("stderr"))
        # This agent's running cells, for interrupt().
        self._running = set()  # type: set
        self._state = threading.Lock()

    def _post_comm(self, payload: tuple) -> bool:
        """A comm message in this kernel's running cell's output, in order with it, if this thread runs it."""
        sink = _current_sink()
        if sink is None or getattr(sink, "comms", None) is not self.comms:
            return False
        sink.post("comm", payload)
        return True

    def interrupt(self) -> int:
        """Interrupt the running cells (see _Cell); returns how many."""
        with self._state:
            for cell in self._running:
                cell.request()
            return len(self._running)

    def run(self, code: str, filename: str) -> tuple:
        """Run one cell.

        Returns ("ok", bundle) where bundle is the trailing expression's
        ((mime, data), ...) or (); or ("error", ename, evalue, traceback_lines).
        Only tuples of strings: rpyc passes them by value in the reply.
        On an xrpyc-device the worker's main thread runs it (where a signal
        can interrupt a blocking call) unless it runs another kernel's cell.
        """
        main_thread = getattr(registry.shared(), "main_thread", None)
        if main_thread is not None:
            ran, result = main_thread.call(lambda: self._run_here(code, filename))
            if ran:
                return result
        return self._run_here(code, filename)

    def _run_here(self, code: str, filename: str) -> tuple:
        cell = _Cell()
        sink = _Sink(self._send, self._ask, cell)
        sink.comms = self.comms  # type: ignore[attr-defined]  # comms.current_owner
        note_cell(self.comms)
        for router in self._routers:
            router.targets[cell.ident] = sink
        handler = None  # type: Any
        if cell.by_signal:
            import signal

            try:
                handler = signal.signal(signal.SIGINT, cell.on_signal) or signal.SIG_DFL  # None: not from Python
            except (ValueError, OSError):  # not the main interpreter's main thread, after all
                cell.by_signal = False
        try:
            try:
                result = self._guarded(cell, code, filename)
            except KeyboardInterrupt:
                # An interrupt that fired in _guarded's own bookkeeping, after
                # the user's code: the cell was interrupted all the same.
                self._finish(cell)
                result = ("error", "KeyboardInterrupt", "", ("KeyboardInterrupt",))
        finally:
            for router in self._routers:
                router.targets.pop(cell.ident, None)
            sink.close()
            if handler is not None:
                signal.signal(signal.SIGINT, handler)  # a late SIGINT finds what the worker had: SIG_IGN
        return result

    def _guarded(self, cell: _Cell, code: str, filename: str) -> tuple:
        try:
            with self._state:
                self._running.add(cell)
                cell.start()
            return ("ok", self._execute(code, filename))
        except BaseException:  # SystemExit and KeyboardInterrupt too: the device must live on
            return self._error(*sys.exc_info())
        finally:
            self._finish(cell)

    def _finish(self, cell: _Cell) -> None:
        with self._state:
            self._running.discard(cell)
            cell.finish()

    def _execute(self, code: str, filename: str) -> tuple:
        self._cells.pop(filename, None)  # a name run again is the newest
        self._cells[filename] = code.splitlines()
        self._cell_sizes[filename] = len(code)
        self._forget_cells()
        # compile(), not ast.parse(): no stdlib frame in a SyntaxError traceback.
        tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr) and not _ends_with_semicolon(code, tree.body[-1]):
            last = ast.Expression(tree.body.pop().value)
        figures_before = set(map(id, open_figures()))
        try:
            exec(compile(tree, filename, "exec"), self.namespace)
            value = None if last is None else eval(compile(last, filename, "eval"), self.namespace)
        finally:
            # Figures the cell drew and did not show, as matplotlib_inline does.
            for figure in open_figures():
                if id(figure) not in figures_before:
                    _post_bundle(figure_bundle(figure), None, False)
                    close_figure(figure)
        if value is None:
            return ()
        self.namespace["_"] = value
        return mime_bundle(value)

    def _forget_cells(self) -> None:
        """Drop the sources of cells beyond the budget (CELLS_KEPT, CELL_BYTES_KEPT),
        newest kept first, except those whose definitions are still in the namespace."""
        if len(self._cells) <= CELLS_KEPT and sum(self._cell_sizes.values()) <= CELL_BYTES_KEPT:
            return
        live = _defining_files(self.namespace)
        count = size = 0
        for filename in reversed(list(self._cells)):
            cell_size = self._cell_sizes[filename]
            # The newest (the running cell) always, for its own traceback.
            if count == 0 or (count < CELLS_KEPT and size + cell_size <= CELL_BYTES_KEPT):
                count += 1
                size += cell_size
            elif filename not in live:
                del self._cells[filename], self._cell_sizes[filename]

    def _error(self, etype: type, value: BaseException, tb: Any) -> tuple:
        lines = []  # type: List[str]
        seen = set()  # type: set
        chain = []  # type: List[Tuple[BaseException, Optional[str]]]
        note = None  # type: Optional[str]
        exc = value  # type: Optional[BaseException]
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            chain.append((exc, note))
            if exc.__cause__ is not None:
                exc, note = exc.__cause__, "The above exception was the direct cause of the following exception:"
            elif exc.__context__ is not None and not exc.__suppress_context__:
                exc, note = exc.__context__, "During handling of the above exception, another exception occurred:"
            else:
                exc = None
        for exc, note in reversed(chain):
            lines.extend(self._format_one(exc))
            if note is not None:
                lines.extend(("", note, ""))
        try:
            evalue = str(value)
        except Exception:  # an exception whose __str__ raises is still the user's error
            evalue = "<exception str() failed>"
        return ("error", etype.__name__, wire_text(evalue), tuple(wire_text(line) for line in lines))

    def _format_one(self, exc: BaseException) -> List[str]:
        frames = []
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if os.path.dirname(filename) == OWN_DIRECTORY:
                continue
            if filename in self._cells:
                line = _source_line(self._cells[filename], lineno)
            else:
                line = linecache.getline(filename, lineno, frame.f_globals).strip()
            frames.append(traceback.FrameSummary(filename, lineno, frame.f_code.co_name, line=line))
        lines = []
        if frames:
            lines.append("Traceback (most recent call last):")
            lines.extend(entry.rstrip("\n") for entry in traceback.StackSummary.from_list(frames).format())
        lines.extend(entry.rstrip("\n") for entry in traceback.format_exception_only(type(exc), exc))
        return lines

    def complete(self, code: str, cursor_pos: int, budget: float = 0.2) -> tuple:
        """(cursor_start, cursor_end, ((text, type, signature), ...)): what is ready within `budget` s."""
        return self._introspector.complete(code, cursor_pos, budget)

    def inspect(self, code: str, cursor_pos: int, detail_level: int, budget: float = 1.0) -> tuple:
        """((mime, text), ...) describing the object at the cursor; () when nothing is known."""
        return self._introspector.inspect(code, cursor_pos, detail_level, budget)

    def is_complete(self, code: str) -> str:
        return code_status(code)

    def device_info(self) -> tuple:
        """Facts about the device, as ((label, value), ...): see facts.py."""
        return device_facts()


def live_view(kernel_link: Any = None) -> Optional[tuple]:
    """The device's live view: ("http", port, "/"), ("maix-rtsp", port, source) or None.

    Read from the servers the device's own modules run, never guessed from a
    port number: xrpyc-device's MJPEG server, MaixPy3's `maix.mjpg` (port in
    its server, else `MjpgPort`) and MaixPy3 0.3.4-0.4.3's legacy
    `maix.utils.rtsps` (`RtspVar`, `RtspPort`). What the port speaks is the
    class of the server listening there. A server that could not take its
    port (MaixPy3 hides that) is no view. Modules are only looked up in
    sys.modules: importing maix.utils.rtsps on 0.3.5-0.4.3 would replace
    `maix.utils` (which is _maix there) and break display.show().
    For MaixPy3 releases whose display.show() does not feed the view by
    itself, `kernel_link` (the kernel's callback, whose connection tells when
    the kernel is gone) gets it adapted until the last such kernel leaves.
    """
    ours = sys.modules.get("xrpyc.device.mjpeg")
    port = getattr(ours, "serving_port", None)
    if port:
        return ("http", int(port), "/")
    mjpg = sys.modules.get("maix.mjpg")
    port = _listening_port(getattr(mjpg, "MjpgSrv", None), getattr(mjpg, "MjpgPort", None))
    if port is not None and _speaks_http(mjpg.MjpgSrv.server):
        _adapt_maix_display(mjpg, kernel_link)
        return ("http", port, "/")
    rtsps = sys.modules.get("maix.utils.rtsps")
    port = _listening_port(getattr(rtsps, "RtspVar", None), getattr(rtsps, "RtspPort", None))
    if port is not None and type(rtsps.RtspVar.server).__module__ == rtsps.__name__:
        return ("maix-rtsp", port, "/dev/display")
    return None


def _listening_port(thread: Any, configured: Any) -> Optional[int]:
    """The port a MaixPy3 server thread listens on, or None when it is not (its bind failed, it ended)."""
    server = getattr(thread, "server", None)
    if server is None or not thread.is_alive():
        return None
    try:
        if server.socket.fileno() < 0:
            return None
        return int(server.server_address[1])  # the real one, also when started with port 0
    except (AttributeError, OSError, TypeError, ValueError, IndexError):
        return int(configured) if isinstance(configured, int) and 0 < configured < 65536 else None


def _speaks_http(server: Any) -> bool:
    from http.server import HTTPServer

    return isinstance(server, HTTPServer)


def _view_state() -> Any:
    """What live_view() changed in MaixPy3's modules, shared by the device's kernels (in the registry module)."""
    module = registry.shared()
    if not hasattr(module, "view_links"):
        module.view_links = []  # connections of the kernels viewing through an adapted display
        module.view_undo = []  # what puts MaixPy3's modules back as they were
        module.view_lock = threading.Lock()
    return module


def _adapt_maix_display(mjpg: Any, kernel_link: Any) -> None:
    """Make display.show() feed the MJPEG view on releases that do not by default, while kernels watch.

    0.3.4: show() feeds it only after display.jupyter(show=True), whose
    default debug=True stores each frame 9 times (debug=False here).
    0.4.6 and later: store_mjpg() silently ignores PIL images (its PIL branch
    is commented out): they are encoded with Pillow here and stored as JPEG.
    """
    link = _connection_of(kernel_link)
    if link is None:
        return
    display = sys.modules.get("maix.display")
    needs_jupyter = display is not None and hasattr(display, "jupyter") and not getattr(display, "_remote_show", True)
    ignores_pil = "PIL" not in getattr(getattr(mjpg.store_mjpg, "__code__", None), "co_names", ("PIL",))
    state = _view_state()
    with state.view_lock:
        if state.view_undo:  # adapted already, for another kernel
            state.view_links.append(link)
            return
        if not (needs_jupyter or ignores_pil):
            return
        state.view_links.append(link)
        if needs_jupyter:
            shown, debug = display._remote_show, display._remote_debug
            display.jupyter(show=True, debug=False)
            state.view_undo.append(lambda: display.jupyter(show=shown, debug=debug))
            frames = getattr(mjpg, "MjpgQueue", None)
            if type(frames) is queue.Queue:
                # Its 8-frame queue blocks show() once full, whenever no viewer reads
                # (between cells, with $video(False)): keep the newest frames instead.
                frames.__class__ = _NewestFrames
                state.view_undo.append(lambda: setattr(frames, "__class__", queue.Queue))
        if ignores_pil:
            original = mjpg.store_mjpg

            def store_mjpg(img: Any) -> Any:
                if type(img).__module__.startswith("PIL."):
                    import io

                    out = io.BytesIO()
                    img.convert("RGB").save(out, "JPEG", quality=85)
                    img = out.getvalue()
                return original(img)

            mjpg.store_mjpg = store_mjpg

            def restore() -> None:
                if mjpg.store_mjpg is store_mjpg:
                    mjpg.store_mjpg = original

            state.view_undo.append(restore)
        threading.Thread(target=_undo_when_kernels_leave, args=(state,), daemon=True).start()


class _NewestFrames(queue.Queue):
    """A frame queue whose put() never blocks: when full, it drops its oldest frame."""

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        with self.not_full:
            while 0 < self.maxsize <= self._qsize():
                self._get()
                self.unfinished_tasks -= 1
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


def _connection_of(netref: Any) -> Any:
    """The rpyc connection a kernel's callback came over; None in-process (unit tests)."""
    try:
        conn = object.__getattribute__(netref, "____conn__")
    except AttributeError:
        return None
    if not hasattr(conn, "closed") and callable(conn):  # older rpyc keeps a weak reference
        conn = conn()
    return conn if hasattr(conn, "closed") else None


def _undo_when_kernels_leave(state: Any) -> None:
    """Put MaixPy3's display back once no kernel that needed it is connected (checked each second)."""
    import time

    while True:
        time.sleep(1.0)
        with state.view_lock:
            state.view_links[:] = [link for link in state.view_links if not link.closed]
            if not state.view_links:
                while state.view_undo:
                    try:
                        state.view_undo.pop()()
                    except Exception:
                        pass  # MaixPy3 changed under us: nothing more to put back
                return


def _defining_files(namespace: Dict[str, Any]) -> set:
    """The file names (cells) where the functions and classes the namespace holds were defined.

    One level deep, cheap whatever the namespace holds, and by type only (no
    attribute lookup that could run a user's __getattr__): its functions and
    methods (and what they wrap, as functools.wraps records it), classes and
    their methods, and the classes of its other values. A function reachable
    only through a container or another module loses its cell's lines in
    tracebacks once the cell is forgotten.
    """
    import types
    files = set()
    classes = set()

    def add(value: Any) -> None:
        while type(value) is types.MethodType or type(value) in (staticmethod, classmethod):
            value = value.__func__
        if type(value) is property:
            value = value.fget
        for _ in range(8):  # a chain of decorators; never a loop
            if type(value) is types.FunctionType:
                files.add(value.__code__.co_filename)
            try:
                value = object.__getattribute__(value, "__dict__").get("__wrapped__")
            except Exception:  # no __dict__
                return

    for value in list(namespace.values()):
        add(value)
        cls = value if isinstance(value, type) else type(value)
        if cls not in classes:
            classes.add(cls)
            for member in list(cls.__dict__.values()):
                add(member)
    return files


def code_status(code: str) -> str:
    """is_complete for this Python: "complete", "incomplete", "invalid" or "unknown"."""
    import codeop

    try:
        compiled = codeop.compile_command(code, "<cell>", "exec")
    except (SyntaxError, ValueError, OverflowError, UnicodeError):
        return "invalid"
    except (RecursionError, MemoryError):
        return "unknown"  # too deep for the parser: running it will tell
    return "incomplete" if compiled is None else "complete"


def _ends_with_semicolon(code: str, node: ast.AST) -> bool:
    """True when the last expression is followed by ';' (IPython: no output)."""
    end_line = getattr(node, "end_lineno", None)
    if end_line is None:  # Python < 3.8 has no end positions: show the value
        return False
    line = code.splitlines()[end_line - 1].encode("utf-8")
    # end_col_offset counts UTF-8 bytes, not characters.
    rest = line[node.end_col_offset :].decode("utf-8", "replace")
    return rest.lstrip().startswith(";")
