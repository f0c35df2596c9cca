"""Pure-Python units: the cell splitter, addresses, the agent (in process), the kernelspec installer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from xrpyc.address import Address
from xrpyc.cellparse import Code, Command, CommandSyntaxError, split_cell
from xrpyc.errors import CellError, DeviceError
from xrpyc.remote.agent import Agent

from xrpyc import devicemessages


@pytest.mark.parametrize(
    "cell",
    [
        'print("cost $5 (approx)")',
        "x = '$connect(\"a\")'",
        's = """\n$connect("a")\n"""',
        "d = {\n  '$k': 1,\n}",
        "x = 1 + \\\n    2",
        "# $connect('a')",
        "r'\\'$x'",
    ],
)
def test_dollar_not_at_a_statement_start_is_code(cell: str) -> None:
    segments = split_cell(cell)
    assert all(isinstance(s, Code) for s in segments)
    assert "".join(s.text for s in segments).strip() == cell.strip() or cell.startswith("#")


def test_commands_and_code_in_order_with_line_numbers_kept() -> None:
    cell = "a = 1\n$connect('h', 18812)  # board\nb = (2,\n3)\n$disconnect\n$exec(code='x', )"
    segments = split_cell(cell)
    assert segments == [
        Code("a = 1"),
        Command("connect", ("h", 18812), {}, 1),
        Code("\n\nb = (2,\n3)"),
        Command("disconnect", (), {}, 4),
        Command("exec", (), {"code": "x"}, 5),
    ]


def test_multiline_command_arguments() -> None:
    assert split_cell('$connect(\n  "h",\n  port=1)') == [Command("connect", ("h",), {"port": 1}, 0)]


@pytest.mark.parametrize(
    "cell, message",
    [
        ("$connect(", "malformed"),
        ("$connect(host)", "literals"),
        ("$connect(*a)", "not supported"),
        ("$connect(**k)", "not supported"),
        ("$", "command name"),
        ("$1()", "command name"),
        ("if x:\n    $device()", "beginning of a line"),
        ("$connect['a']", "parentheses"),
    ],
)
def test_malformed_commands(cell: str, message: str) -> None:
    with pytest.raises(CommandSyntaxError, match=message):
        split_cell(cell)


@pytest.mark.parametrize(
    "target, port, expected",
    [
        ("board", None, Address("board", 18812)),
        ("board:1234", None, Address("board", 1234)),
        ("board", 99, Address("board", 99)),
        ("[::1]:5", None, Address("::1", 5)),
        ("::1", None, Address("::1", 18812)),
        (" 10.0.0.2 ", "77", Address("10.0.0.2", 77)),
    ],
)
def test_address_parse(target: str, port: object, expected: Address) -> None:
    assert Address.parse(target, port) == expected


@pytest.mark.parametrize("target, port", [("", None), ("h:x", None), ("h:1", 2), ("h", 0), ("h", 70000)])
def test_address_parse_rejects(target: str, port: object) -> None:
    with pytest.raises(ValueError):
        Address.parse(target, port)


class Collector:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []

    def __call__(self, chunks: tuple) -> None:
        self.chunks.extend(chunks)


def test_agent_batches_output_and_returns_plain_tuples() -> None:
    sent = Collector()
    agent = Agent(sent)
    result = agent.run("import sys\nfor i in range(1000):\n    print(i)\nsys.stderr.write('e')\n7", "In[1]")
    assert result == ("ok", (("text/plain", "7"),))
    assert sent.chunks[-1] == ("stderr", "e")
    assert "".join(t for n, t in sent.chunks if n == "stdout") == "".join(f"{i}\n" for i in range(1000))
    assert len(sent.chunks) < 10


def test_agent_leaves_other_threads_output_alone(capsys: pytest.CaptureFixture) -> None:
    sent = Collector()
    agent = Agent(sent)
    agent.run("import threading\nt = threading.Thread(target=print, args=('bg',))\nt.start(); t.join()", "In[1]")
    assert sent.chunks == []
    print("outside a cell")
    assert sent.chunks == []


def test_agent_error_tuple_has_only_user_frames() -> None:
    agent = Agent(Collector())
    status, ename, evalue, trace = agent.run("def f():\n    raise KeyError('k')\nf()", "In[9]")
    assert (status, ename, evalue) == ("error", "KeyError", "'k'")
    assert trace[0] == "Traceback (most recent call last):"
    assert 'File "In[9]", line 3, in <module>' in trace[1] and "raise KeyError('k')" in trace[2]
    assert not any("agent" in line for line in trace)


def test_agent_completion_and_inspection() -> None:
    agent = Agent(Collector())
    agent.run("import json, os\nvalue = 3", "In[1]")
    start, end, items = agent.complete("os.pa", 5)
    matches = [text for text, _, _ in items]
    assert {"pardir", "path", "pathsep"} <= set(matches) and all(m.lower().startswith("pa") for m in matches)
    assert (start, end) == (3, 5)
    assert "value" in [text for text, _, _ in agent.complete("x = valu", 8)[2]]
    ((mime, text),) = agent.inspect("os.path.join(", 12, 0)
    assert mime == "text/plain" and text.startswith("Signature: join(a, *p)")
    assert "Source:" in agent.inspect("json.dumps", 3, 1)[0][1]
    assert agent.inspect("nothing_here", 3, 0) == ()


@pytest.mark.parametrize(
    "content, message",
    [(None, "No such file"), ('{"bad": ', "parse error"), ('{"ip": "127.0.0.1"}', "type must be")],
)
def test_bad_connection_files_give_a_clear_message(tmp_path, content: str | None, message: str) -> None:
    path = tmp_path / "connection.json"
    if content is not None:
        path.write_text(content)
    done = subprocess.run([sys.executable, "-m", "xrpyc", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"cannot use the connection file {path}" in done.stderr and message in done.stderr


def test_devices_file_credentials_and_errors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xrpyc.security import DEVICES_FILE, lookup

    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("XRPYC_TOKEN", raising=False)
    board = Address("board", 18812)
    assert lookup(board).token is None and not lookup(board).tls  # no file: no credentials
    (tmp_path / DEVICES_FILE).write_text(
        json.dumps({"devices": {"board:18812": {"token": "t1", "cafile": "/c.pem"}, "other": {"token": "t2"}}})
    )
    found = lookup(board)
    assert (found.token, found.tls, found.cafile) == ("t1", True, "/c.pem")
    assert "t1" not in repr(found)  # never in logs or tracebacks
    assert lookup(Address("other", 1)).token == "t2"
    assert lookup(board, token="explicit").token == "explicit"
    monkeypatch.setenv("XRPYC_TOKEN", "from-env")
    assert lookup(Address("unknown")).token == "from-env"
    (tmp_path / DEVICES_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        lookup(board)


def test_a_thread_a_first_cell_left_running_makes_widgets_for_that_kernel() -> None:
    # In a fresh process: the cell's first use of comms (its first widget) set up the comm state there,
    # which must not forget the kernel whose cell ran last (a thread's widget would belong to nobody).
    code = (
        "import threading\n"
        "from xrpyc.remote.agent import Agent\n"
        "agent = Agent(lambda chunks: None)\n"
        "agent.run('from xrpyc.remote import comms\\ncomms.current_owner()', 'In[1]')\n"
        "from xrpyc.remote import comms\n"
        "owners = []\n"
        "thread = threading.Thread(target=lambda: owners.append(comms.current_owner()))\n"
        "thread.start(); thread.join()\n"
        "print(owners[0] is agent.comms)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


class RecordingOutput:
    """A devicemessages.Output that records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def stream(self, name: str, text: str) -> None:
        self.calls.append(("stream", name, text))

    def display(self, bundle: tuple, display_id: str | None, update: bool) -> None:
        self.calls.append(("display", bundle, display_id, update))

    def clear(self, wait: bool) -> None:
        self.calls.append(("clear", wait))

    def comm(self, payload: object) -> None:
        self.calls.append(("comm", payload))


@pytest.mark.parametrize(
    "chunk", [("display", 5), ("display", ((), "id")), ("stdout",), ("stdout", "a", "b"), "stdout", None, 7]
)
def test_a_malformed_output_chunk_is_dropped_and_the_batch_goes_on(chunk: object) -> None:
    to = RecordingOutput()
    devicemessages.deliver((("stdout", "before\n"), chunk, ("stdout", "after\n")), to)
    assert to.calls == [("stream", "stdout", "before\n"), ("stream", "stdout", "after\n")]


@pytest.mark.parametrize(
    "answer",
    [("error", 5, None, ()), ("error", "E", "v", (1, 2)), ("error", "E", "v", "text"), ("ok",), ("nope", 1), None, 5],
)
def test_a_cell_answer_that_is_not_the_agents_is_a_device_error(answer: object) -> None:
    with pytest.raises(DeviceError, match="answered the cell with something else"):
        devicemessages.cell_result(answer)


def test_the_agents_cell_answers_are_decoded() -> None:
    assert devicemessages.cell_result(("ok", (("text/plain", "7"),))) == (("text/plain", "7"),)
    with pytest.raises(CellError) as raised:
        devicemessages.cell_result(("error", "KeyError", "'k'", ("Traceback", "KeyError: 'k'")))
    assert (raised.value.ename, raised.value.traceback) == ("KeyError", ["Traceback", "KeyError: 'k'"])
