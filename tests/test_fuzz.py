"""Bad input never crashes anything: property-based tests (hypothesis) and fixed hostile cells.

From the inside out:
  1. split_cell gives segments or CommandSyntaxError, and keeps every line where the cell has it.
  2. parse_command and commands.check fail only with CommandSyntaxError or CommandError.
  3. Address.parse gives a usable Address or ValueError.
  4. Shell.is_complete always gives a valid is_complete reply.
  5. The built kernel, on a device of this module's own, answers every hostile request and lives on.

The bugs these tests found are fixed and their reproducers kept (section at the end), but
for one: xeus drops a request whose JSON has a lone surrogate (invalid UTF-8) without a
reply. That is pinned by xfail(strict=True), and the kernel-level properties send no lone
surrogates (_has_lone_surrogate).
"""

from __future__ import annotations

import contextlib
import json
import queue
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jupyter_client.jsonutil import json_default
from kernel_client import Result, RunningKernel, kernel
from servers import stock_rpyc_classic
from xrpyc.address import Address
from xrpyc.cellparse import Code, Command, CommandSyntaxError, Help, Segment, parse_command, split_cell
from xrpyc.commands import REGISTRY, check
from xrpyc.errors import CommandError
from xrpyc.shell import Shell

CELL_TIMEOUT = 60.0  # s for one hostile cell; the slowest (2 MB) takes about a second
HANG_TIMEOUT = 5.0  # s to wait for a reply that a known bug withholds; real replies take milliseconds
IS_COMPLETE_STATUSES = {"complete", "incomplete", "invalid", "unknown"}

# The example database would be written into the checkout; these tests pin their finds as plain tests instead.
PURE = settings(max_examples=300, deadline=None, database=None)
THROUGH_KERNEL = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- strategies --------------------------------------------------------------

IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
# Commands that always parse, so that a property about lines is not cut short by a CommandSyntaxError.
SAFE_DOLLAR_LINES = st.builds(
    lambda name, args: f"${name}({', '.join(map(str, args))})", IDENTIFIER, st.lists(st.integers(-99, 99), max_size=3)
)

# Pieces of Python a scanner can trip on; lone surrogates only exist in Python strings, so they go
# to the in-process tests, never to the kernel (see test_lone_surrogate_in_a_cell_gets_a_reply).
FRAGMENTS = (
    "'", '"', "'''", '"""', "\\'", '\\"', "r'", "b'", "f'{", "}'",
    "(", ")", "[", "]", "{", "}", "\\", "\\\n", "\n", "\r\n", "\r", "\t", " ", "    ", "#", "# c\n",
    "x", "1", " = ", ":", ",", ".", "pass", "print(", "lambda: ", "\nif x:\n    ", "\x00", "\x0c",
    "é", "€", "\u2028", "\ufeff", "\U0001f600",
)
SURROGATES = ("\ud800", "\udc80", "\udfff")
DOLLAR_FRAGMENTS = (
    "$", "$help()", "$connect(", "$x.y", "\n$help()\n", "\n  $help()\n", "\n$exec('1')\n", "\n$video.stop()\n",
    "\n$nope(1, k=2)\n", "\n$\n", "\n$9\n", "\n$help(\n1)\n", "\n$help() # c\n", "\n$exec('''\n$help()\n''')\n",
    "\nx?\n", "\n??x.y\n", "?",  # help requests: not $ commands, not code either
)
# Whole lines that leave a string, a bracket or a continuation open for the lines below them.
OPENERS_AND_CLOSERS = (
    '"""', "'''", "(", ")", "[", "]", 's = "a\\', "s = 'a\\", 'b"', "b'", "x = 1 + \\", "# c \\", "",
)


def _pythonish(pieces: tuple[str, ...], extra: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(pieces), extra), max_size=40).map("".join)


def _lines(pieces: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Cells line by line: commands then often follow something left open above them."""
    line = st.one_of(
        st.sampled_from(OPENERS_AND_CLOSERS),
        SAFE_DOLLAR_LINES,
        st.lists(st.sampled_from(pieces), max_size=6).map("".join),
    )
    return st.lists(line, max_size=12).map("\n".join)


# 200 characters cannot nest deep enough for the parser's recursion bugs (about 330 levels in a $ line).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
CELLS = st.one_of(
    ANY_TEXT,
    _pythonish(FRAGMENTS + SURROGATES + DOLLAR_FRAGMENTS, st.text(max_size=3)),
    _lines(FRAGMENTS + SURROGATES + DOLLAR_FRAGMENTS),
)
CELLS_WITHOUT_DOLLAR = st.one_of(  # nor "?": `name?` is a help request
    st.text(st.characters(exclude_categories=(), exclude_characters="$?"), max_size=200),
    _pythonish(FRAGMENTS + SURROGATES, st.text(st.characters(exclude_characters="$?"), max_size=3)),
)

COMMAND_NAMES = st.one_of(
    st.sampled_from(sorted(REGISTRY)), IDENTIFIER, IDENTIFIER.map(lambda name: f"{name}.stop"), st.text(max_size=10)
)
LITERALS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.complex_numbers() | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.tuples(inner, inner)
    | st.sets(st.integers(), max_size=3)  # repr "set()" is not a literal
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


def _call(args: list[Any], kwargs: dict[str, Any]) -> str:
    return "(" + ", ".join([repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]) + ")"


ARGUMENT_TEXT = st.one_of(
    st.just(""),
    st.builds(_call, st.lists(LITERALS, max_size=4), st.dictionaries(IDENTIFIER, LITERALS, max_size=3)),
    st.text(max_size=60),
    st.text(max_size=60).map(lambda text: f"({text})"),
    st.sampled_from(["()", "(*a)", "(**k)", "(x)", "(1", ")", "(1)(2)", "[1]", "(1) # c", " # c", "(\n1,\n)", " ("]),
)
DOLLAR_LINES = st.one_of(
    st.text(max_size=200).map(lambda text: "$" + text),
    st.builds(
        lambda lead, name, args: f"{lead}${name}{args}",
        st.sampled_from(["", "", " ", "\t", "\n", " \n"]),
        COMMAND_NAMES,
        ARGUMENT_TEXT,
    ),
)

# Quote-free lines: backslash continuations here are outside strings, where the scanner counts them.
PLAIN_LINES = st.text(alphabet="abxy01 =+(),:#", max_size=12)

HOSTS = st.one_of(st.text(max_size=30), st.from_regex(r"[a-z0-9.:-]{0,20}", fullmatch=True))
PORT_TEXT = st.one_of(
    st.integers().map(str),
    st.text(max_size=6),
    st.sampled_from(["", "0", "1", "65535", "65536", "-1", " 80 ", "1_000", "٨٠", "0x50", "8e1", "1" * 5000]),
)
TARGETS = st.one_of(
    st.text(),
    HOSTS,
    st.builds(lambda host, port: f"{host}:{port}", HOSTS, PORT_TEXT),
    st.builds(lambda host, port: f"[{host}]:{port}", HOSTS, PORT_TEXT),
    st.builds(lambda host, rest: f"[{host}]{rest}", HOSTS, st.text(max_size=5)),
    st.builds(lambda pad, host: f"{pad}{host}{pad}", st.sampled_from([" ", "\t\n", "\x00"]), HOSTS),
)
PORTS = st.one_of(st.none(), st.integers(), st.sampled_from([0, 1, 65535, 65536, -1, 2**64]))


# -- helpers -----------------------------------------------------------------


def _has_lone_surrogate(text: str) -> bool:
    """xeus drops a request whose JSON carries one (test_lone_surrogate_in_a_cell_gets_a_reply)."""
    return any("\ud800" <= char <= "\udfff" for char in text)


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _assert_user_message(error: Exception) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert "Traceback" not in message, message


def _parses_to(text: str, command: Command) -> bool:
    try:
        parsed = parse_command(text, command.line)
    except Exception:  # a prefix of a multi-line command is usually not one
        return False
    return repr(parsed) == repr(command)  # repr: 1 == True, and args must be exactly the same


def _assert_gap(lines: list[str], begin: int, stop: int, after: Segment | None, before_code: bool) -> None:
    """Lines that no segment holds: the continuation of the command `after`, if any, then lines
    left out. Before code only empty lines (its padding); elsewhere blank or comment lines (dropped code)."""
    gap = lines[begin:stop]
    fits: Callable[[str], bool] = (lambda line: line == "") if before_code else _is_blank_or_comment
    if isinstance(after, Command):
        assert any(
            _parses_to("\n".join(lines[after.line : begin + k]), after) and all(map(fits, gap[k:]))
            for k in range(len(gap) + 1)
        ), f"lines {begin}..{stop - 1} are neither ${after.name}'s nor blank: {gap!r}"
    else:
        assert all(map(fits, gap)), f"lines {begin}..{stop - 1} were lost: {gap!r}"


def _assert_lines_preserved(cell: str, segments: list[Segment]) -> None:
    """Every segment is on the cell's own lines, in order, and only blank/comment lines are left out.

    The scheme (cellparse.split_cell): Code.text is the cell's lines from the code's first line
    on, behind one empty line per earlier line, so that the device numbers lines as the cell
    does; a Command starts on the cell's line `line`; code runs right up to the next command.
    """
    lines = cell.split("\n")
    position = 0  # the first line that no segment has accounted for
    previous: Segment | None = None
    for segment in segments:
        if isinstance(segment, Code):
            own = segment.text.split("\n")
            start, end = next((i for i, line in enumerate(own) if line), len(own)), len(own)
            assert not all(map(_is_blank_or_comment, own)), f"blank code would go to the device: {segment!r}"
            assert end <= len(lines) and own[start:] == lines[start:end], f"code lines moved: {segment!r}"
        else:
            start, end = segment.line, segment.line + 1
            line = lines[start] if start < len(lines) else ""
            if isinstance(segment, Help):
                assert "?" in line and segment.name in line, f"{segment!r} is not on {start}"
            else:
                assert line.lstrip().startswith("$"), f"${segment.name} is not on {start}"
            if isinstance(previous, Code):
                assert start == position, f"code stops at line {position}, ${segment.name} starts at {start}"
        assert start >= position, f"{segment!r} overlaps the segment before it"
        _assert_gap(lines, position, start, previous, before_code=isinstance(segment, Code))
        previous, position = segment, end
    _assert_gap(lines, position, len(lines), previous, before_code=isinstance(previous, Code))


class RecordingFrontend:
    """Stands in for the kernel's Frontend (frontend.py): records what would be published."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, args))


def _run(running: RunningKernel, code: str, timeout: float = CELL_TIMEOUT, **options: Any) -> Result:
    """Execute `code`; the reply must come, as ok or as a well-formed error."""
    result = running.run(code, timeout=timeout, **options)
    content = result.reply["content"]
    assert content["status"] in ("ok", "error"), content
    if content["status"] == "error":
        assert content["ename"] and isinstance(content["evalue"], str) and isinstance(content["traceback"], list)
    return result


def _assert_alive(running: RunningKernel) -> None:
    result = running.run("1 + 1", timeout=30)
    assert (result.status, result.result) == ("ok", "2"), result.messages


def _shell_reply(running: RunningKernel, msg_id: str, timeout: float) -> dict[str, Any]:
    """The reply to request `msg_id`; queue.Empty if none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        reply = running.kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


@contextlib.contextmanager
def _ascii_json(running: RunningKernel) -> Iterator[None]:
    """Send messages as ASCII JSON, where a lone surrogate is a legal `\\udXXX` escape.

    jupyter_client itself sends raw UTF-8 with surrogateescape: U+DC80..U+DCFF become
    invalid bytes, and U+D800 cannot be sent at all.
    """
    session = running.kc.session
    original = session.pack
    session.pack = lambda obj: json.dumps(obj, default=json_default, ensure_ascii=True).encode("ascii")
    try:
        yield
    finally:
        session.pack = original


# -- 1. split_cell ---------------------------------------------------------------


@PURE
@given(cell=CELLS)
def test_split_cell_gives_segments_or_a_command_syntax_error(cell: str) -> None:
    try:
        segments = split_cell(cell)
    except CommandSyntaxError as error:
        _assert_user_message(error)
        return
    assert all(isinstance(segment, (Code, Command, Help)) for segment in segments)
    _assert_lines_preserved(cell, segments)


@PURE
@given(lines=st.lists(st.one_of(PLAIN_LINES, PLAIN_LINES.map(lambda line: line + " \\"), SAFE_DOLLAR_LINES)))
def test_backslash_continuations_keep_line_numbers(lines: list[str]) -> None:
    cell = "\n".join(lines)
    try:
        segments = split_cell(cell)
    except CommandSyntaxError:
        return  # e.g. a command continued by a backslash onto a code line
    _assert_lines_preserved(cell, segments)


@PURE
@given(cell=CELLS_WITHOUT_DOLLAR)
def test_a_cell_without_commands_is_its_own_code(cell: str) -> None:
    segments = split_cell(cell)
    if all(map(_is_blank_or_comment, cell.split("\n"))):
        assert segments == []  # nothing to run: no device needed
    else:
        # The one logical line break the scanner drops is a final newline outside brackets and strings.
        assert segments in ([Code(cell)], [Code(cell.removesuffix("\n"))])


@PURE
@given(
    wrapper=st.sampled_from(
        [('s = """', '"""'), ("s = '''", "'''"), ("f(", ")"), ("t = [", "]"), ("d = {", "}"), ("x = (1 +", " 2)")]
    ),
    hidden=st.lists(st.tuples(st.sampled_from(["", "  "]), SAFE_DOLLAR_LINES).map("".join), min_size=1, max_size=3),
    same_line=SAFE_DOLLAR_LINES,
)
def test_dollar_lines_inside_strings_brackets_and_comments_are_code(
    wrapper: tuple[str, str], hidden: list[str], same_line: str
) -> None:
    opening, closing = wrapper
    cell = "\n".join([f"x = 1  # {same_line}", f"s = '{same_line}'", opening, *hidden, closing])
    assert split_cell(cell) == [Code(cell)]


# -- 2. parse_command and commands.check ----------------------------------------------


def _assert_command_error(command: Command, error: CommandError) -> None:
    _assert_user_message(error)
    message = str(error)
    info = REGISTRY.get(command.name)
    if info is None:
        assert message.startswith(f"unknown command ${command.name}.")
        assert all(entry.usage in message for entry in REGISTRY.values()), "the valid commands are not listed"
    else:
        assert message.startswith(f"${command.name}: ") and message.endswith(f"Usage: {info.usage}"), message


@PURE
@given(line=DOLLAR_LINES)
def test_dollar_lines_fail_only_with_command_errors(line: str) -> None:
    try:
        command = parse_command(line)
    except CommandSyntaxError as error:
        _assert_user_message(error)
        assert str(error).startswith(("$", "a $ command", "expected a command name")), str(error)
        return
    try:
        info = check(command)
    except CommandError as error:
        _assert_command_error(command, error)
        return
    assert info is REGISTRY[command.name]


@PURE
@given(
    name=COMMAND_NAMES,
    args=st.lists(LITERALS, max_size=4),
    kwargs=st.dictionaries(st.one_of(IDENTIFIER, st.text(max_size=8), st.just("kernel")), LITERALS, max_size=3),
)
def test_check_accepts_or_refuses_with_a_command_error(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    command = Command(name, tuple(args), kwargs)
    try:
        info = check(command)
    except CommandError as error:
        _assert_command_error(command, error)
        return
    assert info is REGISTRY[name]


# -- 3. Address.parse ---------------------------------------------------------------


@PURE
@given(target=TARGETS, port=PORTS)
def test_address_parse_gives_a_usable_address_or_a_value_error(target: str, port: int | None) -> None:
    try:
        address = Address.parse(target, port)
    except ValueError as error:
        _assert_user_message(error)
        return
    assert isinstance(address.port, int) and 1 <= address.port <= 65535, address
    assert isinstance(address.host, str) and address.host, address


# -- 4. Shell.is_complete -----------------------------------------------------------


@pytest.fixture(scope="module")
def offline_shell() -> Shell:
    """A Shell that never connects: is_complete needs no device."""
    return Shell(RecordingFrontend())


# codeop compiles the cell, so invalid escapes and the like warn; those warnings are the cell's.
@pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")
@PURE
@given(cell=CELLS)
def test_is_complete_always_gives_a_valid_reply(offline_shell: Shell, cell: str) -> None:
    reply = json.loads(offline_shell.is_complete(cell))
    assert reply["status"] in IS_COMPLETE_STATUSES, reply
    if reply["status"] == "incomplete":
        assert isinstance(reply["indent"], str) and not reply["indent"].strip(), reply
    assert offline_shell.frontend.calls == [], "is_complete published something"
    assert offline_shell.connections.device is None, "is_complete connected to a device"


# -- 5. through the built kernel ------------------------------------------------------


@pytest.fixture(scope="module")
def victim() -> Iterator[RunningKernel]:
    """One kernel for the module, on a device of its own: hostile cells may leave a device
    damaged (sys.stdout replaced), and the session's shared device serves other modules."""
    with stock_rpyc_classic() as port, kernel(port) as running:
        yield running


@pytest.fixture
def hostile(victim: RunningKernel) -> Iterator[RunningKernel]:
    """`victim`, checked after the test: in teardown, so that an xfail cannot hide a dead kernel."""
    yield victim
    _assert_alive(victim)


# Random text for the device, without '*': 9**9**9 and 'a' * 10**10 are legitimately endless,
# and without lone surrogates: test_lone_surrogate_in_a_cell_gets_a_reply.
DEVICE_TEXT = st.text(st.characters(exclude_characters="*"), max_size=300)
# $ commands that fail or finish at once: never a real $connect or $video, which would reach out,
# nor $exec of random code, which would run in the kernel's own process.
KERNEL_COMMANDS = st.one_of(
    st.builds(
        lambda name, args: f"${name}{args}",
        st.one_of(
            st.sampled_from(["help", "device", "disconnect", "video.stop"]),
            IDENTIFIER.filter(lambda name: name not in REGISTRY),
        ),
        ARGUMENT_TEXT,
    ),
    st.sampled_from(
        [
            "$connect()",
            "$connect(1)",
            '$connect("h", 0)',
            '$connect("h", port=10**100)',
            f'$connect("h", port={10**100})',
            '$connect("h:1", port=2)',
            '$connect("127.0.0.1", 1, timeout=-1)',
            '$connect("127.0.0.1", 1, timeout="5")',
            '$connect("h", 1, token=5)',
            '$connect("h", 1, tls=5)',
            '$connect("h", 1, nope=1)',
            '$video("ftp://x")',
            '$video("rtsp://x", fps=0)',
            f'$video("rtsp://x", width={10**9})',
            "$video(fps=1, width=2)",
            "$video(1.5)",
        ]
    ),
    st.integers(0, 200_000).map(lambda n: f'$connect("{"h" * n}", 0)'),
    st.integers(0, 50_000).map(lambda n: f"$help({'1, ' * n})"),
    st.integers(0, 200_000).map(lambda n: f"$exec({'x = 1; ' * n!r})"),
)
# Sizes up to where things break: the scanner walks every character, the device's parser nests.
SIZED_CELLS = st.one_of(
    st.integers(1, 6000).map(lambda n: "(" * n),
    st.integers(1, 6000).map(lambda n: "x = " + "-" * n + "1"),
    st.integers(1, 6000).map(lambda n: "x = " + "[" * n + "]" * n),
    st.integers(1, 2000).map(lambda n: "$help(" + "-" * n + "1)"),
    st.integers(0, 500_000).map(lambda n: f"s = '{'a' * n}'\nlen(s)"),
    st.integers(0, 1_000_000).map(lambda n: f"print('x' * {n})"),
)
HOSTILE_TEXT = st.one_of(
    DEVICE_TEXT,
    _pythonish(FRAGMENTS + DOLLAR_FRAGMENTS, st.text(st.characters(exclude_characters="*"), max_size=3)),
    _lines(FRAGMENTS + DOLLAR_FRAGMENTS),
)
# One property per kind of cell: in a single one_of, hypothesis spends most examples on sizes.
HOSTILE_CELLS = {
    "text": HOSTILE_TEXT,
    "commands": st.lists(st.one_of(KERNEL_COMMANDS, HOSTILE_TEXT), min_size=1, max_size=4).map("\n".join),
    "sizes": SIZED_CELLS,
}


@pytest.mark.parametrize("kind", HOSTILE_CELLS)
def test_the_kernel_answers_every_hostile_cell_and_lives_on(victim: RunningKernel, kind: str) -> None:
    @THROUGH_KERNEL
    @given(cell=HOSTILE_CELLS[kind], silent=st.booleans())
    def answers(cell: str, silent: bool) -> None:
        _run(victim, cell, silent=silent, store_history=not silent)
        _assert_alive(victim)

    answers()


@THROUGH_KERNEL
@given(cell=HOSTILE_TEXT)
def test_the_kernel_answers_every_is_complete_request(victim: RunningKernel, cell: str) -> None:
    assume(not _has_lone_surrogate(cell))
    reply = _shell_reply(victim, victim.kc.is_complete(cell), timeout=30)
    assert reply["content"]["status"] in IS_COMPLETE_STATUSES, reply["content"]


def test_the_kernel_answers_every_complete_and_inspect_request(victim: RunningKernel) -> None:
    # `_` may hold a value left by another test whose repr() raises, which inspecting "_" would meet
    # (test_introspecting_hostile_objects_gives_an_ok_reply): start from a plain one.
    assert _run(victim, "_ = None").status == "ok"

    @THROUGH_KERNEL
    @given(code=DEVICE_TEXT, cursor=st.integers(-10, 400), detail=st.integers(-1, 2))
    def answers(code: str, cursor: int, detail: int) -> None:
        assume(not _has_lone_surrogate(code))  # jupyter_client cannot even send it
        completed = _shell_reply(victim, victim.kc.complete(code, cursor), timeout=30)["content"]
        assert completed["status"] == "ok" and isinstance(completed["matches"], list), completed
        inspected = _shell_reply(victim, victim.kc.inspect(code, cursor, detail), timeout=30)["content"]
        assert inspected["status"] == "ok" and isinstance(inspected["found"], bool), inspected

    answers()


def _repr_cell(body: str) -> str:
    """A cell whose value is an object with `body` as its __repr__."""
    return f"class R:\n    def __repr__(self):\n        {body}\nR()"


NASTY_CELLS: dict[str, tuple[str, str, str | None]] = {
    # id: (cell, reply status, ename or None for any)
    "5000 open parentheses": ("(" * 5000, "error", "SyntaxError"),
    "5000 nested lists": ("x = " + "[" * 5000 + "]" * 5000, "error", "SyntaxError"),
    "5000 unary minus": ("x = " + "-" * 5000 + "1", "error", None),
    "3000-term sum": ("x = " + "+".join(["1"] * 3000), "error", "RecursionError"),
    "a 2 MB string literal": (f"s = '{'a' * 2_000_000}'\nlen(s)", "ok", None),
    "NUL in code": ("x = 1\x00", "error", None),
    "NUL in a string": ("'\x00'", "error", None),
    "escaped NUL": ("'\\x00'", "ok", None),
    "raise SystemExit": ("raise SystemExit", "error", "SystemExit"),
    "sys.exit(3)": ("import sys\nsys.exit(3)", "error", "SystemExit"),
    "raise KeyboardInterrupt": ("raise KeyboardInterrupt", "error", "KeyboardInterrupt"),
    "raise BaseException": ("raise BaseException('b')", "error", "BaseException"),
    "raise GeneratorExit": ("raise GeneratorExit", "error", "GeneratorExit"),
    "bare raise": ("raise", "error", "RuntimeError"),
    "endless recursion": ("def f():\n    return f()\nf()", "error", "RecursionError"),
    "a 2 MB exception message": ("raise ValueError('e' * 2_000_000)", "error", "ValueError"),
    # The agent's own str(exception) raises: an error all the same (test_exception_whose_str_raises_is_reported).
    "an exception whose str() raises": (
        "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no str')\nraise E()",
        "error",
        None,
    ),
    "repr() raises": (_repr_cell("raise RuntimeError('no repr')"), "ok", None),
    "repr() returns a number": (_repr_cell("return 5"), "ok", None),
    "repr() returns 1 MB": (_repr_cell("return 'r' * 1_000_000"), "ok", None),
    "bytes to sys.stdout": ("import sys\nsys.stdout.write(b'bytes')", "error", "TypeError"),
    "bytes to sys.stdout.buffer (the device's console)": ("import sys\nsys.stdout.buffer.write(b'b')", "ok", None),
    "a lone $": ("$", "error", "CommandSyntaxError"),
    "an indented $ line": ("if 1:\n    $help()", "error", "CommandSyntaxError"),
    "an unknown $ command": ("$rm('-rf')", "error", "CommandError"),
    "$ command with 100000 arguments": (f"$help({'1, ' * 100_000})", "error", "CommandError"),
    "$ command with a 1 MB string": (f"$help({'a' * 1_000_000!r})", "error", "CommandError"),
    "$connect to a 1 MB host name": (f'$connect("{"h" * 1_000_000}", 0)', "error", "CommandError"),
    "$connect with a port of 100 digits": (f'$connect("h", {10**100})', "error", "CommandError"),
    "$exec with 2 MB of code": (f"$exec({'x = 1; ' * 300_000!r})", "ok", None),
    "$exec raising SystemExit": ("$exec('raise SystemExit')", "error", "SystemExit"),
    "$exec recursing forever": ("$exec('def f(): f()\\nf()')", "error", "RecursionError"),
    "$exec with a NUL": ("$exec('\\x00')", "error", None),
    "a $ line after 2 MB of code": (f"s = '{'a' * 2_000_000}'\n$help()\nlen(s)", "ok", None),
}


@pytest.mark.parametrize("cell, status, ename", NASTY_CELLS.values(), ids=NASTY_CELLS.keys())
def test_nasty_cell_gets_a_reply(hostile: RunningKernel, cell: str, status: str, ename: str | None) -> None:
    result = _run(hostile, cell)
    assert result.status == status, result.reply["content"]
    if ename is not None:
        assert result.reply["content"]["ename"] == ename, result.reply["content"]


def test_a_2_mb_literal_arrives_whole(hostile: RunningKernel) -> None:
    assert _run(hostile, f"s = '{'a' * 2_000_000}'\nlen(s), set(s)").result == "(2000000, {'a'})"


def test_one_megabyte_in_one_print_arrives_whole(hostile: RunningKernel) -> None:
    result = _run(hostile, "print('x' * 1_000_000)")
    assert result.status == "ok" and result.stream() == "x" * 1_000_000 + "\n"


def test_a_long_generator_in_one_print_arrives_whole(hostile: RunningKernel) -> None:
    result = _run(hostile, "import itertools\nprint(*itertools.islice(itertools.count(), 200_000))")
    assert result.status == "ok" and result.stream() == " ".join(map(str, range(200_000))) + "\n"


def test_printing_forever_stops_at_an_interrupt(hostile: RunningKernel) -> None:
    # stop_on_error=False: the teardown's check comes at once, and would be aborted after this error.
    msg_id = hostile.kc.execute("import itertools\nfor i in itertools.count():\n    print(i)", stop_on_error=False)
    deadline = time.monotonic() + CELL_TIMEOUT
    while time.monotonic() < deadline:  # until the flood has started
        msg = hostile.kc.get_iopub_msg(timeout=CELL_TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    hostile.km.interrupt_kernel()
    reply = _shell_reply(hostile, msg_id, timeout=30)["content"]
    assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")


def test_sys_stdout_set_to_none_and_back(hostile: RunningKernel) -> None:
    # sys.stdout is the device process's: None silences this kernel's prints (as in IPython)
    # until it is put back. Put back here, so that the rest of the module has output again.
    assert _run(hostile, "import sys\nsaved_stdout = sys.stdout\nsys.stdout = None").status == "ok"
    silenced = _run(hostile, "print('lost')\n'still answers'")
    assert (silenced.status, silenced.result, silenced.stream()) == ("ok", "'still answers'", "")
    assert _run(hostile, "sys.stdout = saved_stdout\nprint('back')").stream() == "back\n"


MALFORMED_REQUESTS = [
    ("execute_request", {"code": 5, "silent": False}),
    ("execute_request", {"code": None}),
    ("execute_request", {"code": "1", "silent": "yes"}),
    ("execute_request", {"code": "1", "user_expressions": [1]}),
    ("complete_request", {"code": "pri", "cursor_pos": "x"}),
    ("complete_request", {"code": "pri", "cursor_pos": 2**70}),
    ("inspect_request", {"code": "print", "cursor_pos": 2, "detail_level": "x"}),
    ("is_complete_request", {"code": None}),
    ("is_complete_request", {}),
    ("no_such_request", {}),
    ("comm_open", {"comm_id": 5, "target_name": "x", "data": {}}),
]


@pytest.mark.parametrize(
    "msg_type, content", MALFORMED_REQUESTS, ids=[f"{kind} {json.dumps(body)}" for kind, body in MALFORMED_REQUESTS]
)
def test_malformed_requests_leave_the_kernel_alive(hostile: RunningKernel, msg_type: str, content: dict) -> None:
    # xeus drops what it cannot read (logging "received bad message"), so no reply is asserted:
    # only that the kernel survives it, checked by `hostile`.
    message = hostile.kc.session.msg(msg_type, content)
    hostile.kc.shell_channel.send(message)
    with contextlib.suppress(queue.Empty):
        _shell_reply(hostile, message["header"]["msg_id"], timeout=1)


# -- Bugs this file found, fixed; and the one left (xfail) ---------------------------------


def test_backslash_newline_in_a_string_keeps_line_numbers() -> None:
    cell = 's = "a\\\nb"\n$help()\ny = 1'
    assert split_cell(cell) == [Code('s = "a\\\nb"'), Command("help", line=2), Code("\n\n\ny = 1")]


def test_backslash_newline_in_a_string_keeps_traceback_line_numbers(hostile: RunningKernel) -> None:
    result = _run(hostile, 's = "a\\\nb"\n$help()\n1 / 0')
    assert result.status == "error" and 'File "In[' in result.error["traceback"][1]
    assert "line 4" in result.error["traceback"][1], result.error["traceback"]


@pytest.mark.parametrize("line", ["$help('\x00')", "$a\x00", "$connect(\x00)", "$a\ud800", "$help('\udc80')"])
def test_unparsable_character_in_a_command_line_is_a_syntax_error(line: str) -> None:
    with pytest.raises(CommandSyntaxError):
        parse_command(line)


DEEP_ARGUMENTS = {
    "330 unary minus": "$help(" + "-" * 330 + "1)",
    "330-term sum": "$help(" + "+".join(["1"] * 330) + ")",
    "400 nested lambdas": "$help(" + "lambda: " * 400 + "1)",
    "100000 unary minus": "$help(" + "-" * 100_000 + "1)",
}


@pytest.mark.parametrize("line", DEEP_ARGUMENTS.values(), ids=DEEP_ARGUMENTS.keys())
def test_deeply_nested_command_arguments_are_a_syntax_error(line: str) -> None:
    with pytest.raises(CommandSyntaxError):
        parse_command(line)


IS_COMPLETE_CRASHES = {
    "NUL in a $ line": "$help('\x00')",
    "deep $ arguments": "$help(" + "-" * 1000 + "1)",
    "3000-term sum": "x = " + "+".join(["1"] * 3000),
    "100000 unary minus": "x = " + "-" * 100_000 + "1",
}


@pytest.mark.parametrize(
    "cell",
    # A lone surrogate only in-process: no client can send one (test_lone_surrogate_in_a_cell_gets_a_reply).
    [*IS_COMPLETE_CRASHES.values(), "$help('\ud800')"],
    ids=[*IS_COMPLETE_CRASHES.keys(), "lone surrogate in a $ line"],
)
def test_is_complete_answers_cells_that_crash_it(offline_shell: Shell, cell: str) -> None:
    assert json.loads(offline_shell.is_complete(cell))["status"] in IS_COMPLETE_STATUSES


@pytest.mark.parametrize("cell", IS_COMPLETE_CRASHES.values(), ids=IS_COMPLETE_CRASHES.keys())
def test_is_complete_reply_status_is_valid_for_cells_that_crash_it(hostile: RunningKernel, cell: str) -> None:
    reply = _shell_reply(hostile, hostile.kc.is_complete(cell), timeout=30)
    assert reply["content"]["status"] in IS_COMPLETE_STATUSES, reply["content"]


@pytest.mark.xfail(
    strict=True,
    raises=TimeoutError,
    reason="xeus cannot parse the request's JSON (invalid UTF-8), logs it and drops it: no reply, ever",
)
def test_lone_surrogate_in_a_cell_gets_a_reply(hostile: RunningKernel) -> None:
    # jupyter_client encodes U+DC80 with surrogateescape: a raw 0x80 byte in the JSON.
    _run(hostile, "x = '\udc80'", timeout=HANG_TIMEOUT)


@pytest.mark.xfail(
    strict=True,
    raises=TimeoutError,
    reason="xeus (nlohmann::json) rejects a lone surrogate escape, logs it and drops the request",
)
def test_lone_surrogate_escape_in_a_cell_gets_a_reply(hostile: RunningKernel) -> None:
    with _ascii_json(hostile):
        _run(hostile, "x = '\ud800'", timeout=HANG_TIMEOUT)


@pytest.mark.xfail(strict=True, raises=queue.Empty, reason="as above: the is_complete request is dropped")
def test_lone_surrogate_in_is_complete_gets_a_reply(hostile: RunningKernel) -> None:
    _shell_reply(hostile, hostile.kc.is_complete("x = '\udc80'"), timeout=HANG_TIMEOUT)


SURROGATES_FROM_THE_DEVICE = {
    # id: (cell, expected reply status, expected ename)
    "in an exception message": ("raise ValueError('\\ud800')", "error", "ValueError"),
    "in printed output": ("print('\\ud800')", "ok", None),
    "in a repr": (_repr_cell("return '\\ud800'"), "ok", None),
}


@pytest.mark.parametrize(
    "cell, status, ename", SURROGATES_FROM_THE_DEVICE.values(), ids=SURROGATES_FROM_THE_DEVICE.keys()
)
def test_lone_surrogate_from_the_device_keeps_the_connection(
    hostile: RunningKernel, cell: str, status: str, ename: str | None
) -> None:
    content = _run(hostile, cell).reply["content"]
    assert (content["status"], content.get("ename")) == (status, ename), content


def test_exception_whose_str_raises_is_reported(hostile: RunningKernel) -> None:
    cell = "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no str')\nraise E()"
    error = _run(hostile, cell).error
    assert error["ename"] == "E" and not any("Remote Traceback" in line for line in error["traceback"]), error


@pytest.mark.parametrize("host", ["192.168..1", "a..b", "a" * 64])
def test_connect_to_a_malformed_host_name_is_a_device_error(hostile: RunningKernel, host: str) -> None:
    error = _run(hostile, f"$connect({host!r}, 1, timeout=1)").error
    assert error["ename"] in ("DeviceError", "CommandError"), error


# Objects that fight introspection; defined once per test, in the kernel's namespace on the device.
UNINSPECTABLE = """
class Fights:
    def __repr__(self):
        raise RuntimeError('no repr')
    def __dir__(self):
        raise RuntimeError('no dir')
fights = Fights()
class BadDoc:
    __doc__ = property(lambda self: 1 / 0)
bad_doc = BadDoc()
"""


@pytest.mark.parametrize(
    "request_kind, code", [("complete", "fights."), ("inspect", "fights"), ("inspect", "bad_doc")]
)
def test_introspecting_hostile_objects_gives_an_ok_reply(hostile: RunningKernel, request_kind: str, code: str) -> None:
    assert _run(hostile, UNINSPECTABLE).status == "ok"
    if request_kind == "complete":
        msg_id = hostile.kc.complete(code, len(code))
    else:
        msg_id = hostile.kc.inspect(code, len(code), 1)
    content = _shell_reply(hostile, msg_id, timeout=30)["content"]
    assert content["status"] == "ok", content
