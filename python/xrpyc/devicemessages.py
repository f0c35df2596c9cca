"""The tuples a device's agent and the kernel exchange (agent.py's side), decoded and made in one place.

- output chunks, ((kind, payload), ...), which the agent sends while a cell runs: decoded into an
  Output's typed calls (stream, display, clear, comm);
- a cell's answer, ("ok", bundle) or ("error", ename, evalue, traceback): cell_result();
- agent.connect()'s answer: Installed.decode();
- the kernel's answer to input(): answered(text), INTERRUPTED or NO_STDIN.

What a device sends may be anything (a changed agent, a hostile process): values that reach
the notebook are checked here with type() or isinstance() on plain values, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from .errors import CellError, DeviceError

Chunks = tuple  # ((kind, payload), ...), as sent by the agent (agent.Chunks)
# Answers a cell's input(prompt, password): answered(text), INTERRUPTED or NO_STDIN.
AskInput = Callable[[str, bool], tuple]
INTERRUPTED = ("interrupted",)
NO_STDIN = ("nostdin",)
INSTALLED_FIELDS = 8  # what agent.connect() answers: see Installed


def answered(text: str) -> tuple:
    """The answer to a cell's input() that the user typed."""
    return ("ok", text)


class Output(Protocol):
    """Where a device's output during a cell goes: the notebook (shell.py) or an $on cell's area (oncell.py)."""

    def stream(self, name: str, text: str) -> None:
        """`text` on "stdout" or "stderr"."""

    def display(self, bundle: tuple, display_id: str | None, update: bool) -> None:
        """A MIME bundle ((mime, data), ...) as the device sent it; `update` replaces display_id's."""

    def clear(self, wait: bool) -> None:
        """clear_output(wait)."""

    def comm(self, payload: Any) -> None:
        """A widget's comm message (remote/comms.py's form, checked by comms.py)."""


def deliver(chunks: Chunks, to: Output) -> None:
    """An ordered batch of a cell's output, as calls of `to`; unknown kinds are dropped."""
    for chunk in chunks:
        if type(chunk) is not tuple or len(chunk) != 2:
            continue  # from a device that changed the agent: the rest of the batch still goes
        kind, payload = chunk
        if kind == "display":
            if type(payload) is not tuple or len(payload) != 3:
                continue
            bundle, display_id, update = payload
            to.display(bundle, display_id if isinstance(display_id, str) else None, bool(update))
        elif kind == "clear":
            to.clear(bool(payload))
        elif kind in ("stdout", "stderr") and isinstance(payload, str):
            to.stream(kind, payload)
        elif kind == "comm":
            to.comm(payload)


def cell_result(answer: Any) -> tuple:
    """The trailing expression's MIME bundle ((mime, data), ...) of a cell's answer; CellError when it raised,
    DeviceError for anything else than the agent's two forms (its strings reach the notebook)."""
    if type(answer) is tuple and len(answer) == 2 and answer[0] == "ok":
        return answer[1]
    if type(answer) is tuple and len(answer) == 4 and answer[0] == "error":
        _, ename, evalue, traceback = answer
        if type(ename) is str and type(evalue) is str and _strings(traceback):
            raise CellError(ename, evalue, list(traceback))
    raise DeviceError(
        "the device's xrpyc agent answered the cell with something else than a result: "
        "something on the device changed xrpyc's code"
    )


def _strings(value: Any) -> bool:
    return type(value) is tuple and all(type(item) is str for item in value)


_PYTHON_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?[A-Za-z0-9+.]{0,16}")


@dataclass(frozen=True)
class Installed:
    """agent.connect()'s answer: the agent on the device, with netrefs to its objects."""

    helpers: Any  # the device's remote.files module (its functions for transfer.py)
    agent: Any
    resumed: bool  # the device still had this kernel's namespace (a reconnect)
    run: Any  # the agent's methods: each cell, completion, inspection is then one round trip
    complete: Any
    inspect: Any
    view: Any  # (kind, port, path) of the device's live view, checked by session.live_view_url
    python: str  # "3.8.18"; "" for anything else than a version number

    @classmethod
    def decode(cls, answer: Any) -> Installed:
        """DeviceError unless `answer` has INSTALLED_FIELDS values: a process that changed the agent (or its
        installed modules) may answer anything."""
        if type(answer) is not tuple or len(answer) != INSTALLED_FIELDS:
            raise DeviceError(
                f"the device's xrpyc agent answered {type(answer).__name__} instead of {INSTALLED_FIELDS} values: "
                "something on the device changed xrpyc's code"
            )
        helpers, agent, resumed, run, complete, inspect, view, python = answer
        python = python if type(python) is str and _PYTHON_VERSION.fullmatch(python) else ""
        return cls(helpers, agent, resumed, run, complete, inspect, view, python)
