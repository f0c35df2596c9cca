"""Splitting a cell into device code and `$` commands.

A `$` command is a whole logical line of its own that starts with `$`, such as
`$connect("192.168.1.20")`. Anything else, including a `$` inside a string, a
comment or a bracket that spans lines, is Python for the device and is passed
on untouched. `$` is not valid Python anywhere outside strings and comments,
so a line that starts with it can only be a command (or a mistake we report).

The kernel's own Python may differ from the device's, so the device's code is
never parsed here: a small scanner only tracks strings, comments, brackets and
backslash continuations to find where logical lines begin and end.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Union


class CommandSyntaxError(ValueError):
    """A line starting with `$` that is not a well-formed command."""


@dataclass(frozen=True)
class Code:
    """Python source for the device.

    `text` is padded with blank lines so that line numbers in the device's
    tracebacks are those of the whole cell.
    """

    text: str


@dataclass(frozen=True)
class Command:
    """A parsed `$name(args...)` line; arguments are Python literals."""

    name: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    line: int = 0  # 0-based line of the cell where the command starts


@dataclass(frozen=True)
class Help:
    """`name?` or `name??` (also `?name`, `??name`) on a line of its own: IPython's help on `name`.

    `?` is not Python outside strings and comments, so such a line cannot be code.
    """

    name: str
    detail: int = 0  # 1 for `??`: with the source
    line: int = 0  # 0-based line of the cell


Segment = Union[Code, Command, Help]


class _All:
    """`all` in `$on(all)` and `on=all`: every connected device (the one bare name commands take)."""

    def __repr__(self) -> str:
        return "all"


ALL = _All()

_NAME = re.compile(r"\$(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?P<rest>.*)\Z", re.DOTALL)
# A dotted name with `?` or `??` before or after it, unindented, perhaps followed by a comment.
_HELP = re.compile(r"(?P<pre>\?\??)?(?P<name>(?!\d)\w+(?:\.(?!\d)\w+)*)[ \t]*(?P<post>\?\??)?[ \t]*(?:#.*)?\Z")


def logical_lines(cell: str) -> list[tuple[int, str]]:
    """Split `cell` into (first physical line, text) per logical line.

    A logical line continues while a bracket or a triple-quoted string is
    open, or after a backslash at the end of a line, as in Python.
    """
    result: list[tuple[int, str]] = []
    start = 0
    line = 0
    start_line = 0
    depth = 0
    quote: str | None = None
    i = 0
    n = len(cell)
    while i < n:
        c = cell[i]
        if quote is not None:
            if c == "\\":
                line += cell.startswith("\n", i + 1)  # an escaped newline is still a line
                i += 2
                continue
            if cell.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
            if c != "\n" or len(quote) == 3:
                line += c == "\n"
                i += 1
                continue
            quote = None  # unterminated string: the line still ends here
        if c == "#":
            end = cell.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "'\"":
            quote = cell[i : i + 3] if cell[i : i + 3] in ('"""', "'''") else c
            i += len(quote)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == "\\" and cell.startswith("\n", i + 1):
            line += 1
            i += 2
            continue
        elif c == "\n":
            line += 1
            if depth == 0:
                result.append((start_line, cell[start:i]))
                start, start_line = i + 1, line
        i += 1
    if start < n:
        result.append((start_line, cell[start:]))
    return result


def parse_command(text: str, line: int = 0) -> Command:
    """Parse one `$` logical line such as `$connect("host", 18812)`."""
    stripped = text.strip()
    if text[: len(text) - len(text.lstrip())].strip("\n"):
        raise CommandSyntaxError("a $ command must start at the beginning of a line, outside any block")
    match = _NAME.match(stripped)
    if match is None:
        raise CommandSyntaxError("expected a command name after '$', as in $connect(\"host\")")
    name, rest = match.group("name"), match.group("rest")
    if not rest.strip() or rest.lstrip().startswith("#"):
        return Command(name, line=line)
    try:
        call = ast.parse("_" + rest.strip(), mode="eval").body
    except SyntaxError as error:
        raise CommandSyntaxError(f"${name}: malformed arguments ({error.msg})") from None
    except (ValueError, UnicodeError, RecursionError, MemoryError) as error:
        # NUL bytes, lone surrogates, absurd nesting: not arguments anyone meant
        raise CommandSyntaxError(f"${name}: unreadable arguments ({type(error).__name__})") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.func.id != "_":
        raise CommandSyntaxError(f"${name}: expected ${name}(...) with arguments in parentheses")
    try:
        args = tuple(_literal(arg) for arg in call.args)
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise CommandSyntaxError(f"${name}: **keywords are not supported")
            kwargs[keyword.arg] = _literal(keyword.value)
    except ValueError as error:
        raise CommandSyntaxError(f"${name}: {error}") from None
    except (RecursionError, MemoryError) as error:
        raise CommandSyntaxError(f"${name}: unreadable arguments ({type(error).__name__})") from None
    return Command(name, args, kwargs, line)


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Starred):
        raise ValueError("*arguments are not supported")
    if isinstance(node, ast.Name) and node.id == "all":
        return ALL
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"arguments must be literals (strings, numbers, True/False/None) or all, not {ast.unparse(node)!r}"
        ) from None


def parse_help(text: str, line: int = 0) -> Help | None:
    """The help request on logical line `text`, or None when it is not one."""
    match = _HELP.match(text)
    if match is None or bool(match.group("pre")) == bool(match.group("post")):
        return None
    marks = match.group("pre") or match.group("post")
    return Help(match.group("name"), len(marks) - 1, line)


def split_cell(cell: str) -> list[Segment]:
    """The cell's code and commands, in order.

    Raises CommandSyntaxError for a malformed `$` line, before anything runs.
    """
    segments: list[Segment] = []
    code_lines: list[str] = []
    code_start = 0

    def add_code() -> None:
        # Blank and comment-only code needs no device (nor a connection).
        if any(part.strip() and not part.lstrip().startswith("#") for part in code_lines):
            segments.append(Code("\n" * code_start + "\n".join(code_lines)))

    for line, text in logical_lines(cell):
        if text.lstrip().startswith("$"):
            add_code()
            segments.append(parse_command(text, line))
            code_lines, code_start = [], line + text.count("\n") + 1
        elif (request := parse_help(text, line)) is not None:
            add_code()
            segments.append(request)
            code_lines, code_start = [], line + 1
        else:
            code_lines.append(text)
    add_code()
    return segments
