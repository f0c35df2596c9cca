"""IPython habits on the device: magics, shell escapes, IPython.display, is_complete as IPython answers it.

The unit tests compare with IPython itself (installed in the test venv): its
TransformerManager for is_complete, its formatting of %time and %timeit. The
kernel tests run the built kernel against a stock rpyc device whose Python has
IPython installed.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.magics.execution import TimeitResult as IPythonTimeitResult
from IPython.core.magics.execution import _format_time as ipython_format_time
from kernel_client import RunningKernel, kernel
from test_interrupt import assert_interrupted, interrupt_after_start
from xrpyc.magics import MagicError, transform_cell
from xrpyc.remote.magics import CELL_MAGICS, LINE_MAGICS, MAGICS_NAME, DeviceMagics, TimeitResult, _format_time
from xrpyc.shell import Shell

from xrpyc import session

# -- the transformer (kernel side) -------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        "x = 7 % 3",
        "s = '%time x'\nt = \"!ls\"",
        "if a != b:\n    pass",
        "x = a %b",
        "y = (1,\n     2)",
        "s = '''\n%time\n!ls\n'''",
        "# %time\n# !ls",
        "f(x=1)",
        "x = y == z",
        "a <= b",
        "d = {'k': '%s' % v}",
    ],
)
def test_python_is_left_alone(cell: str) -> None:
    assert transform_cell(cell) == cell


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%time x = 1", f"{MAGICS_NAME}.line('time', 'x = 1')"),
        ("%time x = 1;", f"{MAGICS_NAME}.line('time', 'x = 1');"),
        ("%pwd", f"{MAGICS_NAME}.line('pwd', '')"),
        ("!ls -l 'a b'", f"{MAGICS_NAME}.system(\"ls -l 'a b'\")"),
        ("!!date", f"{MAGICS_NAME}.getoutput('date')"),
        ("files = !ls (", f"files = {MAGICS_NAME}.getoutput('ls (')"),
        ("here = %pwd", f"here = {MAGICS_NAME}.line('pwd', '')"),
        (
            "for i in x:\n    !echo $i\n    %cd /\n",
            f"for i in x:\n    {MAGICS_NAME}.system('echo $i')\n    {MAGICS_NAME}.line('cd', '/')\n",
        ),
    ],
)
def test_escapes_become_device_calls(cell: str, expected: str) -> None:
    assert transform_cell(cell) == expected


def test_line_numbers_stay_those_of_the_cell() -> None:
    cells = [
        "a = 1\n!echo one \\\n  two\nb = (1,\n     2)\n!echo (\nc = 3",
        "%%time\nx = 1\n\ny = 2\n",
        "\n%%writefile f.txt\nline $x\n!not a command\n$connect('x')",
        "s = '''\n'''\n%time s",
    ]
    for cell in cells:
        out = transform_cell(cell)
        assert out.count("\n") == cell.count("\n"), out
    # A shell command's brackets and quotes are not Python's: the next line is still code.
    assert transform_cell("!echo (\nc = 3").endswith("\nc = 3")
    # A cell magic takes the rest of the cell, as written ($ lines too); the timed code is transformed too.
    assert _cell_body(transform_cell(cells[2])) == "line $x\n!not a command\n$connect('x')\n"
    assert _cell_body(transform_cell("%%time\n!ls\nx")) == f"{MAGICS_NAME}.system('ls')\nx\n"


def _cell_body(transformed: str) -> str:
    (statement,) = ast.parse(transformed).body
    return ast.literal_eval(statement.value.args[2])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["%", "%%", "!", "=", " ", "\t", "\\", "\n", "'", '"', "(", ")", "#", "time", "ls"])))
def test_any_cell_keeps_its_line_count_or_is_a_usage_error(parts: list[str]) -> None:
    cell = "".join(parts)
    try:
        out = transform_cell(cell)
    except MagicError:
        return
    assert out.count("\n") == cell.count("\n")


def test_unknown_magics_name_the_ones_there_are() -> None:
    with pytest.raises(MagicError, match=r"`%nope` not found.*%cd.*%timeit.*%%writefile"):
        transform_cell("x = 1\n%nope 3")
    with pytest.raises(MagicError, match=r"But cell magic `%%writefile` exists"):
        transform_cell("%writefile f")
    with pytest.raises(MagicError, match="first line of the cell"):
        transform_cell("x = 1\n%%time\ny = 2")
    with pytest.raises(MagicError, match="Cell magic `%%capture` not found"):
        transform_cell("%%capture\nx")


def test_every_magic_the_kernel_accepts_exists_on_the_device() -> None:
    for name in LINE_MAGICS:
        assert callable(getattr(DeviceMagics, "_line_" + name)), name
    for name in CELL_MAGICS:
        assert callable(getattr(DeviceMagics, "_cell_" + name)), name


def test_device_side_sources_parse_as_python_3_6() -> None:
    directory = Path(session.__file__).parent / "remote"
    assert "magics" in session.REMOTE_MODULES
    for name in (*session.REMOTE_MODULES, "loader"):
        ast.parse((directory / f"{name}.py").read_text(encoding="utf-8"), filename=name, feature_version=(3, 6))


# -- IPython's output formats --------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds", [0.0, 3e-9, 4.56e-8, 1.234e-6, 9.99e-4, 0.0123, 0.5, 1.0, 59.9, 61.5, 3725.0, 90061.0]
)
def test_time_format_is_ipythons(seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert _format_time(seconds) == ipython_format_time(seconds)
    assert _format_time(seconds, 5) == ipython_format_time(seconds, 5)


@pytest.mark.parametrize(("loops", "repeat"), [(1, 1), (10, 7), (1_000_000, 3)])
def test_timeit_report_is_ipythons(loops: int, repeat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [0.0123 * loops * (1 + i / 10) for i in range(repeat)]
    theirs = IPythonTimeitResult(loops, repeat, min(runs) / loops, max(runs) / loops, runs, 0.0, 3)
    # IPython picks µ and ± by sys.stdout's encoding: a kernel's is UTF-8.
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert str(TimeitResult(loops, repeat, runs, 0.0, 3)) == str(theirs)


# -- is_complete, as IPython's TransformerManager.check_complete -------------------------------

IS_COMPLETE_CASES = [
    "",
    " ",
    "\n",
    "1",
    "1\n",
    "x = 1\n\n",
    "print('a'); print('b')",
    "x = 1  # comment",
    "# only a comment",
    "# c\n",
    # blocks: one newline after the block ends it (the console's one blank line)
    "def f():",
    "def f():\n",
    "def f():\n    return 1",
    "def f():\n    return 1\n",
    "def f():\n    return 1\n\n",
    "def f():\n    return 1\n    ",
    "if x:\n    pass\nelse:",
    "if x:\n    pass\nelse:\n    y = 2\n",
    "for i in range(3):\n    if i:\n        print(i)\n",
    "for i in range(3):\n    if i:\n        print(i)",
    "class A:\n    def f(self):\n        pass\n",
    "class A:\n    def f(self):\n        pass",
    "try:\n    pass\nexcept E:\n    pass\n",
    "while x:\n\tpass\n",
    "while x:\n\tpass",
    "with a as b:\n    pass\n",
    "async def f():\n    await x\n",
    "if x:\n    pass\n  y = 1\n",
    "def f():\n    '''doc\n",
    "x = 1\ny = 2",
    # decorators
    "@dec",
    "@dec\n",
    "@dec\ndef f(): pass",
    "@dec\ndef f(): pass\n",
    # brackets and strings
    "x = (1,",
    "x = (1,\n",
    "x = (1,\n 2)",
    "x = [\n",
    "x = {1: 2,\n 3: 4}\n",
    "def f():\n    return (1,\n",
    "s = '''abc",
    "s = '''abc\n",
    "s = '''abc'''",
    "s = 'abc",
    # backslash continuation
    "x = 1 + \\",
    "x = 1 + \\\n",
    "x = 1 + \\\n 2",
    # invalid
    "1 = 2",
    "x = )",
    "(1))",
    # magics and escapes
    "%time x = 1",
    "%timeit -n1 pass\n",
    "!ls",
    "x = !ls",
    "%%time\nx = 1",
    "%%time\nx = 1\n",
    "%%time\nx = 1\n\n",
    "%%writefile a.txt\nhello",
    "for i in x:\n    !echo $i",
    "for i in x:\n    !echo $i\n",
    # help
    "zip?",
    "zip??",
]


def test_is_complete_answers_as_ipython() -> None:
    shell = Shell(_Silent())  # no device: the kernel's Python parses, as the device's would
    different = []
    for code in IS_COMPLETE_CASES:
        status, indent = TransformerManager().check_complete(code)
        theirs: dict[str, Any] = {"status": status}
        if status == "incomplete":
            theirs["indent"] = " " * (indent or 0)
        ours = json.loads(shell.is_complete(code))
        if ours != theirs:
            different.append((code, theirs, ours))
    assert different == []
    # `$` commands are not IPython's: a well-formed one is complete, a malformed one invalid.
    assert json.loads(shell.is_complete("$device()")) == {"status": "complete"}
    assert json.loads(shell.is_complete("$connect(")) == {"status": "invalid"}


class _Silent:
    """A Frontend that publishes nothing (is_complete never publishes)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


# -- on the device, through the kernel -----------------------------------------------------------

# Numbers as IPython's '%.3g' makes them: '12.3', '1e+03' (999.99 ns).
TIME_REPORT = re.compile(
    r"CPU times: user [\d.e+]+ (?:ns|μs|ms|s), sys: [\d.e+]+ (?:ns|μs|ms|s), total: [\d.e+]+ (?:ns|μs|ms|s)\n"
    r"Wall time: [\d.e+]+ (?:ns|μs|ms|s)\n"
)
TIMEIT_REPORT = re.compile(
    # IPython's warning when the runs differ much, which a busy machine can cause
    r"(?:The slowest run took [\d.]+ times longer than the fastest\. "
    r"This could mean that an intermediate result is being cached\.\n)?"
    r"[\d.e+]+ (?:ns|μs|ms|s) ± [\d.e+]+ (?:ns|μs|ms|s) per loop "
    r"\(mean ± std\. dev\. of (\d+) runs?, ([\d,]+) loops? each\)\n"
)


def test_time_and_timeit(shared_kernel: RunningKernel) -> None:
    timed = shared_kernel.run("%time sum(range(1000))")
    assert TIME_REPORT.fullmatch(timed.stream()) and timed.result == "499500"
    assert shared_kernel.run("%time 6 * 7;").result is None
    cell = shared_kernel.run("%%time\ntotal = 0\nfor i in range(10):\n    total += i\ntotal")
    assert TIME_REPORT.fullmatch(cell.stream()) and cell.result == "45"
    measured = shared_kernel.run("%timeit -n 10 -r 3 x = 1")
    assert TIMEIT_REPORT.fullmatch(measured.stream()).groups() == ("3", "10")
    auto = shared_kernel.run("%timeit -r1 pass")  # as many loops as make 0.2 s
    runs, loops = TIMEIT_REPORT.fullmatch(auto.stream()).groups()
    assert runs == "1" and int(loops.replace(",", "")) >= 1000
    kept = shared_kernel.run("t = %timeit -o -q -n2 -r2 y = 2\n(t.loops, t.repeat, len(t.all_runs))")
    assert kept.stream() == "" and kept.result == "(2, 2, 2)"
    setup = shared_kernel.run("%%timeit -n3 -r2 data = list(range(100))\nsorted(data)")
    assert TIMEIT_REPORT.fullmatch(setup.stream()).groups() == ("2", "3")


def test_errors_point_at_the_cells_lines(shared_kernel: RunningKernel) -> None:
    timed = shared_kernel.run("x = 1\n%time y = 1/0")
    assert timed.error["ename"] == "ZeroDivisionError"
    assert "line 2, in <module>\n    %time y = 1/0" in "\n".join(timed.error["traceback"])
    continued = shared_kernel.run("!echo one \\\n  two\n\n{}['missing']")
    assert continued.stream() == "one two\n" and "line 4" in "\n".join(continued.error["traceback"])
    cell = shared_kernel.run("%%time\nq = 1\n\nq / 0")
    trace = "\n".join(cell.error["traceback"])
    assert "line 4, in <module>\n    q / 0" in trace and TIME_REPORT.fullmatch(cell.stream())


def test_shell_commands_stream_in_order(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("print('a')\n!echo b; echo c >&2\nprint('d')")
    assert result.stream() == "a\nb\nc\nd\n" and result.status == "ok"
    # Output comes as the command writes it, not when it ends.
    slow = shared_kernel.run("!echo first; sleep 1; echo second")
    texts = [m["text"] for m in slow.of_type("stream")]
    assert texts[0] == "first\n" and "".join(texts) == "first\nsecond\n"
    # $name and {expression} from the namespace, as IPython; $$ and unknown names left to the shell.
    expanded = shared_kernel.run(
        "import os\nos.environ['XRPYC_M'] = 'env'\nn = 3\nfor i in range(2):\n    !echo $i {i * n} $$XRPYC_M"
    )
    assert expanded.stream() == "0 0 env\n1 3 env\n"
    assert shared_kernel.run("!echo $XRPYC_M $not_a_python_name").stream() == "env\n"
    assert shared_kernel.run("!exit 3\n_exit_code").result == "3"


def test_command_output_as_a_list(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run(
        "lines = !printf 'a\\nb\\n'; echo err >&2\n(lines, lines.n, lines.s, type(lines).__name__)"
    )
    assert result.stream() == ""
    assert result.result == "(['a', 'b', 'err'], 'a\\nb\\nerr', 'a b err', 'SList')"
    assert shared_kernel.run("!!echo hey").result == "['hey']"


def test_interrupting_a_command_stops_it(fresh_kernel: RunningKernel) -> None:
    content, _, out = interrupt_after_start(fresh_kernel, "!echo started $$; sleep 30")
    assert_interrupted(content)
    shell = int(out.split()[1])  # the device is local: its processes are ours to look at
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{shell}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{shell}"), "the command's shell outlived the interrupt"
    assert fresh_kernel.run("1 + 1").result == "2"


def test_cd_pwd_env(shared_kernel: RunningKernel, tmp_path: Path) -> None:
    start = shared_kernel.run("%pwd").result
    try:
        moved = shared_kernel.run(f"%cd {tmp_path}")
        assert moved.stream() == f"{tmp_path}\n"
        assert shared_kernel.run("%pwd").result == repr(str(tmp_path))
        assert shared_kernel.run("!pwd").stream() == f"{tmp_path}\n"
        assert shared_kernel.run("%cd -q -").stream() == ""
        assert shared_kernel.run("%pwd").result == start
        assert "No such file or directory" in shared_kernel.run("%cd /no/such/dir").stream()
    finally:
        shared_kernel.run(f"%cd -q {ast.literal_eval(start)}")
    assert shared_kernel.run("%env XRPYC_MAGIC_TEST=on").stream() == "env: XRPYC_MAGIC_TEST=on\n"
    assert shared_kernel.run("%env XRPYC_MAGIC_TEST").result == "'on'"
    assert shared_kernel.run("!echo $XRPYC_MAGIC_TEST").stream() == "on\n"
    assert shared_kernel.run("%env API_TOKEN=s3cret\nenv = %env\nenv['API_TOKEN']").result == "'<hidden>'"
    missing = shared_kernel.run("%env XRPYC_NOT_SET")
    assert missing.error["ename"] == "UsageError" and "XRPYC_NOT_SET" in missing.error["evalue"]


def test_who_and_whos(fresh_kernel: RunningKernel) -> None:
    assert fresh_kernel.run("%who").stream() == "Interactive namespace is empty.\n"
    fresh_kernel.run("import os\nalpha = 1\nbeta = [1, 2]\n_hidden = 3\ndef gamma(): pass")
    assert fresh_kernel.run("%who").stream() == "alpha\t beta\t gamma\t os\t \n"
    assert fresh_kernel.run("%who int list").stream() == "alpha\t beta\t \n"
    table = fresh_kernel.run("%whos").stream().splitlines()
    assert table[0].split() == ["Variable", "Type", "Data/Info"] and set(table[1]) == {"-"}
    assert table[2].split()[:3] == ["alpha", "int", "1"] and table[3].split() == ["beta", "list", "n=2"]
    # display rebound by the user is theirs
    assert "display" in fresh_kernel.run("display = 5\n%who").stream()


def test_writefile_and_run(shared_kernel: RunningKernel, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    written = shared_kernel.run(f"%%writefile {script}\nimport sys\nargs = sys.argv[1:]\nran = __name__\n")
    assert (
        written.stream() == f"Writing {script}\n"
        and script.read_text() == "import sys\nargs = sys.argv[1:]\nran = __name__\n"
    )
    appended = shared_kernel.run(f"%%writefile -a {script}\nprint('appended')")
    assert appended.stream() == f"Appending to {script}\n" and script.read_text().endswith("print('appended')\n")
    assert shared_kernel.run(f"%%writefile {script}\nprint('over')\n").stream() == f"Overwriting {script}\n"
    script.write_text("import sys\nargs = sys.argv[1:]\nran = __name__\nprint('hello from', __file__)\n")
    result = shared_kernel.run(f"%run {script} one 'two three'\n(args, ran)")
    assert result.stream() == f"hello from {script}\n" and result.result == "(['one', 'two three'], '__main__')"
    assert shared_kernel.run("'__file__' in dir()").result == "False"
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    assert shared_kernel.run(f"%run {tmp_path / 'exits'}").status == "ok"
    (tmp_path / "fails.py").write_text("x = 1\nraise ValueError('in the script')\n")
    failed = shared_kernel.run(f"%run {tmp_path / 'fails.py'}")
    assert failed.error["ename"] == "ValueError"
    assert "raise ValueError('in the script')" in "\n".join(failed.error["traceback"])
    assert shared_kernel.run("%run /no/such/script.py").error["ename"] == "UsageError"


def test_pip_matplotlib_and_unknown_magics(shared_kernel: RunningKernel) -> None:
    pip = shared_kernel.run("%pip --version")
    assert re.match(r"pip \S+ from .*\nNote: you may need to restart the kernel to use updated packages\.\n\Z",
                    pip.stream())  # fmt: skip
    assert shared_kernel.run("%matplotlib inline\n%matplotlib").stream() == ""
    unknown = shared_kernel.run("print('not run')\n%load_ext something")
    assert unknown.stream() == "" and unknown.error["ename"] == "UsageError"
    assert "`%load_ext` not found" in unknown.error["evalue"] and "%timeit" in unknown.error["evalue"]
    assert shared_kernel.run("%%bash\necho $0 from bash").stream() == "bash from bash\n"


def test_ipython_display_reaches_the_notebook(shared_kernel: RunningKernel) -> None:
    shared_kernel.run(
        "from IPython.display import HTML, JSON, Audio, Image, Markdown, clear_output, display, update_display"
    )
    kinds = {
        "HTML('<b>x</b>')": "text/html",
        "Markdown('*m*')": "text/markdown",
        "JSON({'a': 1})": "application/json",
        "Audio(data=[0, 1, 0], rate=8000)": "text/html",
        "Image(data=png)": "image/png",
    }
    shared_kernel.run("import io\nfrom PIL import Image as PILImage\nbuffer = io.BytesIO()\n"
                      "PILImage.new('RGB', (4, 4)).save(buffer, 'PNG')\npng = buffer.getvalue()")  # fmt: skip
    for expression, mime in kinds.items():
        result = shared_kernel.run(f"display({expression})")
        (shown,) = result.of_type("display_data")
        assert mime in shown["data"], expression
        assert result.stream() == "", expression
    cleared = shared_kernel.run("print('x')\nclear_output(wait=True)\nclear_output()")
    assert [m["msg_type"] for m in cleared.messages] == ["stream", "clear_output", "clear_output"]
    assert cleared.stream() == "x\n" and "\x1b" not in cleared.stream()
    handle = shared_kernel.run(
        "h = display(HTML('<i>1</i>'), display_id=True)\nh.update(HTML('<i>2</i>'))\n"
        "update_display(Markdown('3'), display_id=h.display_id)\ntype(h).__module__"
    )
    first, second, third = (m["content"] for m in handle.messages[:3])
    assert [m["msg_type"] for m in handle.messages[:3]] == [
        "display_data",
        "update_display_data",
        "update_display_data",
    ]
    assert first["transient"]["display_id"] == second["transient"]["display_id"] == third["transient"]["display_id"]
    assert second["data"]["text/html"] == "<i>2</i>" and third["data"]["text/markdown"] == "3"
    assert handle.result == "'IPython.core.display_functions'"
    raw = shared_kernel.run("display({'text/html': '<u>raw</u>', 'text/plain': 'raw'}, raw=True)")
    assert raw.of_type("display_data")[0]["data"]["text/html"] == "<u>raw</u>"


def test_ipython_display_in_a_second_kernel_on_the_device(fresh_kernel: RunningKernel) -> None:
    """The routing is installed once per device process; each kernel's cells reach their own notebook."""
    result = fresh_kernel.run("from IPython.display import display, HTML\ndisplay(HTML('<b>second</b>'))")
    assert result.of_type("display_data")[0]["data"]["text/html"] == "<b>second</b>"


def test_ipython_display_outside_cells_is_ipythons(shared_kernel: RunningKernel) -> None:
    """A thread the cell started is not the cell: IPython's own display() (a print on the device's console)."""
    code = (
        "import threading\nfrom IPython.display import display, HTML\n"
        "t = threading.Thread(target=display, args=(HTML('<b>late</b>'),))\nt.start()\nt.join()\n'done'"
    )
    result = shared_kernel.run(code)
    assert result.of_type("display_data") == [] and result.result == "'done'"


def test_on_the_xrpyc_device(device: int) -> None:
    with kernel(device) as running:
        assert running.run("!echo from the device").stream() == "from the device\n"
        assert TIME_REPORT.fullmatch(running.run("%time 1").stream())
        running.kc.is_complete("def f():\n    return 1\n")  # connected: the device's parser answers
        assert running.kc.get_shell_msg(timeout=10)["content"] == {"status": "complete"}
