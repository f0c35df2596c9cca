"""Completion and inspection from the device's live namespace, through the built kernel.

Each kind of completion runs against three devices: the stock rpyc 6 server on the venv's Python
(which has jedi: its answer replaces the light completer's when ready in time, so the assertions
hold for both), the same server with jedi made unimportable (the light completer alone, as on most
boards), and Debian's rpyc 5.x server (no jedi either).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_client import RunningKernel, kernel
from servers import DEBIAN_RPYC_CLASSIC, stock_rpyc_classic

from xrpyc import session

SETUP = '''
import os, tempfile
data = {"alpha": 1, "beta": 2, 3: "three"}
class Point:
    """A point in the plane."""
    def __init__(self, x, y=0):
        self.x, self.y = x, y
    def norm(self, power=2):
        """The norm of the point."""
        return (self.x ** power + self.y ** power) ** (1 / power)
point = Point(3, 4)
def greet(name, greeting="hello", *, punctuation="!"):
    """Greets someone."""
    return greeting + " " + name + punctuation
tmp = tempfile.mkdtemp(prefix="xrpyc-completion-")
os.mkdir(os.path.join(tmp, "alpha_dir"))
open(os.path.join(tmp, "alpha_file.txt"), "w").close()
open(os.path.join(tmp, "beta.txt"), "w").close()
relative = os.path.relpath(tmp)
'''
BLOCK_JEDI = "import sys\nsys.modules['jedi'] = None  # import jedi fails from now on"
REPLY_TIMEOUT = 10


@contextlib.contextmanager
def _prepared(running: RunningKernel, *cells: str) -> Iterator[RunningKernel]:
    """The kernel after `cells` (SETUP among them); SETUP's directory is removed after."""
    for cell in cells:
        result = running.run(cell)
        assert result.status == "ok", result.messages
    try:
        yield running
    finally:
        running.run("import shutil\nshutil.rmtree(tmp, ignore_errors=True)")


@pytest.fixture(scope="module", params=["jedi", "no-jedi", "rpyc5"])
def any_kernel(request: pytest.FixtureRequest, shared_kernel: RunningKernel) -> Iterator[RunningKernel]:
    """A kernel with SETUP run, on each kind of device."""
    if request.param == "jedi":
        with _prepared(shared_kernel, SETUP) as running:
            yield running
        return
    if request.param == "rpyc5" and not DEBIAN_RPYC_CLASSIC.exists():
        pytest.skip("Debian's python3-rpyc (rpyc 5.x) is not installed")
    server = stock_rpyc_classic(DEBIAN_RPYC_CLASSIC) if request.param == "rpyc5" else stock_rpyc_classic()
    with server as port, kernel(port) as running, _prepared(running, BLOCK_JEDI, SETUP):
        yield running


@pytest.fixture(scope="module")
def own_kernel() -> Iterator[RunningKernel]:
    """A kernel alone on its own device (no jedi), for tests that change the device."""
    with stock_rpyc_classic() as port, kernel(port) as running, _prepared(running, BLOCK_JEDI, SETUP):
        yield running


def _reply(running: RunningKernel, msg_id: str) -> dict[str, Any]:
    while True:
        reply = running.kc.get_shell_msg(timeout=REPLY_TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def complete(running: RunningKernel, code: str, cursor: int | None = None) -> dict[str, Any]:
    content = _reply(running, running.kc.complete(code, len(code) if cursor is None else cursor))
    assert content["status"] == "ok", content
    return content


def inspect(running: RunningKernel, code: str, detail: int = 0, cursor: int | None = None) -> dict[str, Any]:
    content = _reply(running, running.kc.inspect(code, len(code) if cursor is None else cursor, detail))
    assert content["status"] == "ok", content
    return content


def device_value(running: RunningKernel, expression: str) -> str:
    return running.run(f"print({expression}, end='')").stream()


# -- completion ------------------------------------------------------------------------------


def test_names_builtins_and_keywords(any_kernel: RunningKernel) -> None:
    reply = complete(any_kernel, "gre")
    assert "greet" in reply["matches"] and (reply["cursor_start"], reply["cursor_end"]) == (0, 3)
    assert "print" in complete(any_kernel, "x = pri")["matches"]
    assert "import" in complete(any_kernel, "impor")["matches"]
    assert complete(any_kernel, "zzz_nothing")["matches"] == []


def test_attributes_of_objects_on_the_device(any_kernel: RunningKernel) -> None:
    reply = complete(any_kernel, "point.no")
    assert reply["matches"] == ["norm"] and (reply["cursor_start"], reply["cursor_end"]) == (6, 8)
    assert {"x", "y"} <= set(complete(any_kernel, "point.")["matches"])
    assert "join" in complete(any_kernel, "os.path.jo")["matches"]
    assert "upper" in complete(any_kernel, "'abc'.up")["matches"]
    assert "__init__" not in complete(any_kernel, "point.")["matches"]  # private names when asked for
    assert "__init__" in complete(any_kernel, "point.__")["matches"]


def test_cursor_in_the_middle_of_the_code(any_kernel: RunningKernel) -> None:
    code = "x = 1\ny = point.no + 2\nprint(y)"
    cursor = code.index(".no") + 3
    reply = complete(any_kernel, code, cursor)
    assert reply["matches"] == ["norm"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (cursor - 2, cursor)


def test_modules_in_imports(any_kernel: RunningKernel) -> None:
    # The first request may spend its time budget reading sys.path (then cached): ask until ready.
    assert "collections" in _eventually(lambda: complete(any_kernel, "import colle")["matches"], "collections")
    assert "path" in complete(any_kernel, "import os.pa")["matches"]
    assert "path" in complete(any_kernel, "from os.pa")["matches"]
    reply = complete(any_kernel, "from collections import Ord")
    assert "OrderedDict" in reply["matches"] and reply["cursor_start"] == len("from collections import ")
    assert complete(any_kernel, "import os as o")["matches"] == []


def test_dict_keys(any_kernel: RunningKernel) -> None:
    reply = complete(any_kernel, 'data["al')
    assert reply["matches"] == ['"alpha"'] and reply["cursor_start"] == len("data[")
    assert {"'alpha'", "'beta'"} <= set(complete(any_kernel, "data['")["matches"])
    assert {"'alpha'", "'beta'"} <= set(complete(any_kernel, "data[")["matches"])
    closed = 'data["al"]'  # the editor closed the string: no second quote
    assert complete(any_kernel, closed, len('data["al'))["matches"] == ['"alpha']


def test_paths_in_strings(any_kernel: RunningKernel) -> None:
    tmp = device_value(any_kernel, "tmp")
    code = f'open("{tmp}/alp'
    reply = complete(any_kernel, code)
    assert set(reply["matches"]) == {"alpha_dir/", 'alpha_file.txt"'}
    assert reply["cursor_start"] == len(code) - 3
    relative = device_value(any_kernel, "relative")
    assert "beta.txt'" in complete(any_kernel, f"open('{relative}/b")["matches"]  # from the device's cwd


def test_keyword_arguments_of_a_call(any_kernel: RunningKernel) -> None:
    assert "punctuation=" in complete(any_kernel, 'greet("you", punc')["matches"]
    assert "power=" in complete(any_kernel, "point.norm(pow")["matches"]


def test_nothing_in_comments(any_kernel: RunningKernel) -> None:
    assert complete(any_kernel, "x = 1  # pri")["matches"] == []


def test_types_and_signatures_in_metadata(any_kernel: RunningKernel) -> None:
    reply = complete(any_kernel, "gre")
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert [entry["text"] for entry in types] == reply["matches"]
    greet = next(entry for entry in types if entry["text"] == "greet")
    assert (greet["start"], greet["end"], greet["type"]) == (0, 3, "function")
    assert greet["signature"].startswith("(name") and "punctuation" in greet["signature"]

    def kind(code: str, text: str) -> str:
        entries = complete(any_kernel, code)["metadata"]["_jupyter_types_experimental"]
        return next(entry["type"] for entry in entries if entry["text"] == text)

    assert kind("Poin", "Point") == "class"
    assert kind("import o", "os") == "module"
    assert kind("impor", "import") == "keyword"
    assert kind("greet('a', punc", "punctuation=") == "param"
    assert kind(f'open("{device_value(any_kernel, "tmp")}/be', 'beta.txt"') == "path"


# -- inspection --------------------------------------------------------------------------------


def test_inspect_a_function_at_both_detail_levels(any_kernel: RunningKernel) -> None:
    reply = inspect(any_kernel, "greet")
    text = reply["data"]["text/plain"]
    assert reply["found"] and "Signature: greet(name, greeting='hello', *, punctuation='!')" in text
    assert "Greets someone." in text and "Source:" not in text
    detailed = inspect(any_kernel, "greet", detail=1)["data"]["text/plain"]
    assert "Source:" in detailed and 'return greeting + " " + name + punctuation' in detailed


def test_inspect_inside_a_call_and_attribute_chains(any_kernel: RunningKernel) -> None:
    assert "Signature: print(" in inspect(any_kernel, "print(")["data"]["text/plain"]
    assert "Signature: greet(" in inspect(any_kernel, "x = greet('a', ")["data"]["text/plain"]
    norm = inspect(any_kernel, "y = point.norm(2)", cursor=len("y = point.no"))["data"]["text/plain"]
    assert "Signature: norm(power=2)" in norm and "The norm of the point." in norm
    mkdtemp = inspect(any_kernel, "tempfile.mkdtemp", detail=1)["data"]["text/plain"]  # the stdlib's own source
    assert "def mkdtemp(" in mkdtemp and "tempfile.py" in mkdtemp


def test_inspect_instances_and_classes(any_kernel: RunningKernel) -> None:
    text = inspect(any_kernel, "data")["data"]["text/plain"]
    assert "Type:        dict" in text and "Length:      3" in text and "'alpha': 1" in text
    point = inspect(any_kernel, "Point", detail=1)["data"]["text/plain"]
    assert "Init signature: Point(x, y=0)" in point and "class Point:" in point


def test_nothing_found(any_kernel: RunningKernel) -> None:
    reply = inspect(any_kernel, "nothing_here")
    assert (reply["found"], reply["data"]) == (False, {})
    assert inspect(any_kernel, "")["found"] is False


# -- `?` and `??` in cells ------------------------------------------------------------------


def test_help_cells_page_the_description(any_kernel: RunningKernel) -> None:
    result = any_kernel.run("greet?")
    (page,) = result.reply["content"]["payload"]
    assert page["source"] == "page" and "Greets someone." in page["data"]["text/plain"]
    assert "Source:" not in page["data"]["text/plain"]
    (page,) = any_kernel.run("??greet").reply["content"]["payload"]
    assert "return greeting" in page["data"]["text/plain"]
    (page,) = any_kernel.run("point.norm?").reply["content"]["payload"]
    assert "The norm of the point." in page["data"]["text/plain"]


def test_help_on_nothing_and_help_between_code(any_kernel: RunningKernel) -> None:
    result = any_kernel.run("nothing_here?")
    assert result.status == "ok" and result.reply["content"]["payload"] == []
    assert result.stream() == "Object `nothing_here` not found.\n"
    result = any_kernel.run("a = 20\ngreet??\nb = a + 22\nb")
    assert result.status == "ok" and result.result == "42"
    assert len(result.reply["content"]["payload"]) == 1


# -- time bounds ---------------------------------------------------------------------------------


SLOW_DIR = """
import time
class Slow:
    def __dir__(self):
        time.sleep(5)
        return ["never_seen"]
slow = Slow()
"""


def test_a_slow_dir_does_not_freeze_completion_nor_the_next_cell(own_kernel: RunningKernel) -> None:
    own_kernel.run(SLOW_DIR)
    started = time.monotonic()
    reply = complete(own_kernel, "slow.")
    assert time.monotonic() - started < 1.0 and reply["matches"] == []
    started = time.monotonic()
    assert own_kernel.run("6 * 7").result == "42"
    assert time.monotonic() - started < 1.0  # the device's connection thread was not kept busy
    assert complete(own_kernel, "gre")["matches"] == ["greet"]


LATE_ANSWERS = """
import sys, time
introspector = next(iter(sys.modules["_xrpyc_agents"].agents.values()))._introspector
original_complete = introspector.complete
def late(*args):
    time.sleep(2)
    return original_complete(*args)
introspector.complete = late
"""


def test_a_late_answer_is_dropped_and_the_next_cell_gets_its_own_reply(own_kernel: RunningKernel) -> None:
    """The device answers after the kernel gave up (a busy board, a slow link)."""
    own_kernel.run(LATE_ANSWERS)
    try:
        started = time.monotonic()
        reply = complete(own_kernel, "gre")
        assert time.monotonic() - started < 1.0 and reply["matches"] == []
        # Sent while the device still works on the completion: its answer arrives first.
        assert own_kernel.run("'own' * 2").result == "'ownown'"
    finally:
        own_kernel.run("introspector.complete = original_complete")
    assert complete(own_kernel, "gre")["matches"] == ["greet"]


def test_tab_never_waits_for_a_device_that_went_away(shared_kernel: RunningKernel) -> None:
    """After $connect, the board disappears and its port answers nothing (as a dead host would, until
    the 5 s connect timeout): Tab and Shift-Tab answer at once, empty; cells say what happened."""
    with stock_rpyc_classic() as port:
        shared_kernel.run(f'$connect("127.0.0.1:{port}")')
        assert complete(shared_kernel, "isinst")["matches"] == ["isinstance"]
    with socket.create_server(("127.0.0.1", port)):  # listens, never speaks
        started = time.monotonic()
        assert complete(shared_kernel, "isinst")["matches"] == []
        assert inspect(shared_kernel, "len")["found"] is False
        assert time.monotonic() - started < 1.0
        assert shared_kernel.run("1", timeout=30).error["ename"] == "DeviceError"
    shared_kernel.run("$disconnect()")
    assert complete(shared_kernel, "isinst")["matches"] == ["isinstance"]  # the local default device


# -- jedi ------------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("jedi") is None, reason="jedi is not installed in the venv")
def test_jedi_completes_what_calls_return(any_kernel: RunningKernel, request: pytest.FixtureRequest) -> None:
    """jedi infers what `"abc".upper()` returns; the light completer evaluates no calls."""
    code = "'abc'.upper().low"
    if request.node.callspec.params["any_kernel"] == "jedi":
        # jedi's first run on a device takes about a second, beyond the time budget: ask until ready.
        assert _eventually(lambda: complete(any_kernel, code)["matches"], "lower") == ["lower"]
    else:
        assert complete(any_kernel, code)["matches"] == []


def test_xrpyc_device_completes_and_inspects(device: int) -> None:
    with kernel(device) as running, _prepared(running, SETUP):
        assert complete(running, "point.no")["matches"] == ["norm"]
        assert inspect(running, "greet")["found"]


def _eventually(ask: Any, wanted: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = ask()
        if wanted in found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# -- the device-side sources -----------------------------------------------------------------------


def test_each_remote_module_comes_after_the_modules_it_imports() -> None:
    """The device executes session.REMOTE_MODULES in their order as its package's modules (remote/loader.py):
    a module missing from the list, or listed before one it imports, would not be found there."""
    directory = Path(session.__file__).parent / "remote"
    assert {*session.REMOTE_MODULES, "__init__", "loader"} == {path.stem for path in directory.glob("*.py")}
    made: set[str] = set()
    for name in session.REMOTE_MODULES:
        for node in ast.walk(ast.parse((directory / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                imported = {node.module} if node.module else {alias.name for alias in node.names}
                assert imported <= made, f"{name} imports {imported - made} before the device has made it"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(module.split(".")[0] == "xrpyc" for module in modules), f"{name} imports xrpyc"
        made.add(name)
