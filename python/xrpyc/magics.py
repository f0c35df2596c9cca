"""IPython's magics and shell escapes in a cell, turned into Python for the device.

As IPython's TransformerManager turns `%time x` into
`get_ipython().run_line_magic('time', 'x')`, this turns it into
`_xrpyc_magics.line('time', 'x')`, a call of the kernel's DeviceMagics on the
device (remote/magics.py). No IPython is imported here or needed there.

- `%name args` and `!command` (also `!!command`) where a statement starts,
  indented or not; `x = !command` and `x = %name args`.
- `%%name args` on the cell's first (non-blank) line takes the rest of the cell.

One line in, one line out: a magic continued with backslashes becomes a call
on its first line and blank lines, so the device's line numbers stay the
cell's. `%`, `!` inside strings, in `a % b` or `a != b`, are Python and are
left alone: only where a logical line starts (cellparse.logical_lines, which
knows strings, brackets and continuations) can a line be an escape.
"""

from __future__ import annotations

import re

from .cellparse import logical_lines
from .remote.magics import CELL_MAGICS, LINE_MAGICS, MAGICS_NAME


class MagicError(ValueError):
    """A magic that does not exist here (reported as IPython's UsageError, before the cell runs)."""


# `%name args`: the name runs to the first blank, as in IPython (`%cd..` is the magic "cd..").
_MAGIC = re.compile(r"(?P<name>\S*)\s?(?P<args>.*)\Z", re.DOTALL)
# Magics whose trailing `;` silences the value they return, as IPython's output_can_be_silenced.
_SILENCEABLE = frozenset({"time", "timeit"})


def available() -> str:
    """The magics there are, for messages."""
    return "line magics %{}; cell magics %%{}".format(", %".join(LINE_MAGICS), ", %%".join(CELL_MAGICS))


def is_cell_magic(cell: str) -> bool:
    """True when the cell starts with a `%%` line (blank lines before it aside)."""
    return cell.lstrip(" \t\r\n").startswith("%%") and not cell[: cell.find("%%")].strip()


def transform_cell(cell: str) -> str:
    """`cell` with its magics and shell escapes as device calls, line for line.

    Raises MagicError for a magic that does not exist.
    """
    lines = cell.split("\n")
    if is_cell_magic(cell):
        first = next(index for index, line in enumerate(lines) if line.strip())
        name, args = _name_and_args(lines[first].lstrip()[2:], cell=True)
        body = "\n".join(lines[first + 1 :])
        if name in ("time", "timeit"):  # the timed code may use magics too, as in IPython
            body = transform_cell(body)
        if not body.endswith("\n") and first + 1 < len(lines):
            body += "\n"  # as IPython's transform_cell: a cell's last line ends with a newline
        call = f"{MAGICS_NAME}.cell({name!r}, {args!r}, {body!r})"
        return "\n".join([*lines[:first], call] + [""] * (len(lines) - first - 1))
    out: list[str] = []
    done = 0  # lines before this one are in `out`
    while done < len(lines):
        for first, _text in logical_lines("\n".join(lines[done:])):
            start = done + first
            # An escape runs to the end of its physical line, continued by backslashes only:
            # what follows `!` is shell, whose brackets and quotes are not Python's.
            end = start
            while lines[end].endswith("\\") and end + 1 < len(lines):
                end += 1
            call = _escape(lines[start : end + 1])
            if call is not None:
                out.extend(lines[done:start])
                out.append(call)
                out.extend([""] * (end - start))
                done = end + 1
                break  # the rest of the cell is scanned anew, from a statement's start
        else:
            out.extend(lines[done:])
            done = len(lines)
    return "\n".join(out)


def _escape(physical: list[str]) -> str | None:
    """The device call for the line(s) of one escape, or None when they are plain Python."""
    text = " ".join([part[:-1].rstrip() for part in physical[:-1]] + [physical[-1]])
    stripped = text.lstrip(" \t")
    indent = text[: len(text) - len(stripped)]
    if stripped.startswith("!!"):
        return f"{indent}{MAGICS_NAME}.getoutput({stripped[2:]!r})"
    if stripped.startswith("!"):
        return f"{indent}{MAGICS_NAME}.system({stripped[1:]!r})"
    if stripped.startswith("%%"):
        name = stripped[2:].split(" ", 1)[0]
        raise MagicError(f"Cell magic `%%{name}` must be on the first line of the cell.")
    if stripped.startswith("%"):
        return indent + _line_magic(stripped[1:])
    split = _assignment(stripped)
    if split is None:
        return None
    target, value = stripped[:split], stripped[split:].lstrip(" \t")
    if value.startswith("!"):
        return f"{indent}{target} {MAGICS_NAME}.getoutput({value[1:]!r})"
    return f"{indent}{target} {_line_magic(value[1:])}"


def _line_magic(content: str) -> str:
    name, args = _name_and_args(content, cell=False)
    silenced = name in _SILENCEABLE and args.rstrip().endswith(";")
    if silenced:
        args = args.rstrip()[:-1]
    return f"{MAGICS_NAME}.line({name!r}, {args!r})" + (";" if silenced else "")


def _name_and_args(content: str, cell: bool) -> tuple[str, str]:
    match = _MAGIC.match(content)
    assert match is not None  # the pattern matches any text
    name, args = match.group("name"), match.group("args")
    known, other = (CELL_MAGICS, LINE_MAGICS) if cell else (LINE_MAGICS, CELL_MAGICS)
    if name not in known:
        kind, mark = ("Cell magic", "%%") if cell else ("Line magic function", "%")
        hint = ""
        if name in other:
            hint = f" (But {'line' if cell else 'cell'} magic `{'%' if cell else '%%'}{name}` exists.)"
        raise MagicError(f"{kind} `{mark}{name}` not found.{hint} Here: {available()}.")
    return name, args


def _assignment(line: str) -> int | None:
    """Where the value starts in `target = !command` or `target = %magic`: just after the `=`.

    The `=` is the first one outside brackets and strings that is an
    assignment (not `==`, `<=`, `+=`...), as IPython finds it.
    """
    depth = 0
    quote = None
    i = 0
    while i < len(line):
        char = line[i]
        if quote is not None:
            if char == "\\":
                i += 1
            elif line.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif char == "#":
            return None
        elif char in "'\"":
            quote = line[i : i + 3] if line[i : i + 3] in ('"""', "'''") else char
            i += len(quote) - 1
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "=" and depth == 0:
            if line[i - 1 : i] in tuple("=!<>+-*/%&|^@:") or line.startswith("=", i + 1):
                return None  # a comparison or an augmented assignment: never an escape
            value = line[i + 1 :].lstrip(" \t")
            if i > 0 and ((value.startswith("!") and not value.startswith("!=")) or re.match(r"%\w", value)):
                return i + 1
            return None
        i += 1
    return None
