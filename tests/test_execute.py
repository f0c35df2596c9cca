"""Cells run on a stock rpyc classic device through the built kernel."""

from __future__ import annotations

import re
import time

import jupyter_client.session
import nbformat
import pytest
from kernel_client import RunningKernel, kernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def test_variables_persist_across_cells(shared_kernel: RunningKernel) -> None:
    assert shared_kernel.run("persisted = 41").status == "ok"
    assert shared_kernel.run("persisted + 1").result == "42"


def test_cells_run_on_the_device_not_in_the_kernel(shared_kernel: RunningKernel) -> None:
    device_pid = shared_kernel.run("import os; os.getpid()").result
    assert int(device_pid) != shared_kernel.pid


def test_trailing_expression_and_execution_count(fresh_kernel: RunningKernel) -> None:
    first = fresh_kernel.run("1 + 1")
    second = fresh_kernel.run("'a' * 3")
    assert (first.result, second.result) == ("2", "'aaa'")
    counts = [r.reply["content"]["execution_count"] for r in (first, second)]
    assert counts == [1, 2]
    assert second.of_type("execute_result")[0]["execution_count"] == 2


def test_no_result_for_none_statements_or_semicolon(shared_kernel: RunningKernel) -> None:
    assert shared_kernel.run("None").of_type("execute_result") == []
    assert shared_kernel.run("x = 5").of_type("execute_result") == []
    assert shared_kernel.run("x * 2;  # quiet").of_type("execute_result") == []
    assert shared_kernel.run("x * 2  # loud").result == "10"
    assert shared_kernel.run("_").result == "10"


def test_stdout_and_stderr_arrive_in_order(shared_kernel: RunningKernel) -> None:
    code = "import sys\nfor i in range(3):\n    print('out', i)\n    print('err', i, file=sys.stderr)"
    result = shared_kernel.run(code)
    texts = [(c["name"], c["text"]) for c in result.of_type("stream")]
    joined = "".join(f"{name}:{text}" for name, text in texts)
    assert joined == "".join(f"stdout:out {i}\nstderr:err {i}\n" for i in range(3))


def test_ten_thousand_lines_complete_and_in_order(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("for i in range(10000):\n    print(i)")
    assert result.status == "ok"
    assert result.stream() == "".join(f"{i}\n" for i in range(10000))
    # Batched on the device: far fewer messages than lines.
    assert len(result.of_type("stream")) < 100


def test_output_streams_while_the_cell_runs(shared_kernel: RunningKernel) -> None:
    arrivals: list[tuple[float, str]] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            arrivals.append((time.monotonic(), msg["content"]["text"]))

    shared_kernel.kc.execute_interactive(
        "import time\nprint('before', flush=True)\ntime.sleep(1.5)\nprint('after')", output_hook=hook, timeout=30
    )
    assert [text for _, text in arrivals] == ["before\n", "after\n"]
    # "before" was shown while the device slept, not with the reply.
    assert arrivals[1][0] - arrivals[0][0] > 1.0


def test_error_reply_and_traceback_from_the_device(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("def inner():\n    return 1 / 0\n\nprint('partial')\ninner()")
    assert result.status == "error"
    assert result.stream() == "partial\n"
    error = result.error
    assert (error["ename"], error["evalue"]) == ("ZeroDivisionError", "division by zero")
    reply = result.reply["content"]
    assert (reply["ename"], reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    trace = "\n".join(error["traceback"])
    assert "line 5, in <module>" in trace and "line 2, in inner" in trace
    assert "return 1 / 0" in trace
    assert "xrpyc" not in trace and "rpyc" not in trace  # only the user's frames


def test_chained_exceptions_are_shown(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('bad') from e")
    trace = "\n".join(result.error["traceback"])
    assert "KeyError: 'k'" in trace and "direct cause" in trace and trace.endswith("ValueError: bad")


def test_syntax_error_comes_from_the_device(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("x = 1\ndef broken(:\n    pass")
    assert result.status == "error"
    assert result.error["ename"] == "SyntaxError"
    trace = "\n".join(result.error["traceback"])
    assert "line 2" in trace and "def broken(:" in trace
    assert "Traceback" not in trace  # no frames of ours before a syntax error


def test_system_exit_does_not_stop_the_device(shared_kernel: RunningKernel) -> None:
    shared_kernel.run("survivor = 'still here'")
    assert shared_kernel.run("raise SystemExit(3)").error["ename"] == "SystemExit"
    assert shared_kernel.run("survivor").result == "'still here'"


def test_two_kernels_on_one_device_are_isolated(stock_device: int) -> None:
    with kernel(stock_device) as first, kernel(stock_device) as second:
        first.run("secret = 'first'")
        second.run("secret = 'second'")
        assert first.run("secret").result == "'first'"
        assert second.run("secret").result == "'second'"
        first.run("only_in_first = 1")
        assert second.run("only_in_first").error["ename"] == "NameError"
        # Output goes to the kernel whose cell printed it.
        a, b = first.run("print('to first')"), second.run("print('to second')")
        assert (a.stream(), b.stream()) == ("to first\n", "to second\n")


def test_run_all_stops_at_the_failing_cell(stock_device: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XRPYC_DEVICE", f"127.0.0.1:{stock_device}")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ("a = 1", "raise RuntimeError('stop here')", "print('never')")]
    client = NotebookClient(nb, kernel_name="xrpyc", timeout=60)
    with pytest.raises(CellExecutionError, match="stop here"):
        client.execute()
    assert nb.cells[1].outputs[0]["ename"] == "RuntimeError"
    assert nb.cells[2].outputs == []


def test_is_complete_follows_the_connected_device(shared_kernel: RunningKernel) -> None:
    shared_kernel.run("1")  # connected: the device's parser answers

    def status(code: str) -> dict:
        shared_kernel.kc.is_complete(code)
        return shared_kernel.kc.get_shell_msg(timeout=10)["content"]

    assert status("for i in range(3):") == {"status": "incomplete", "indent": "    "}
    assert status("for i in range(3):\n    print(i)") == {"status": "incomplete", "indent": "    "}
    assert status("for i in range(3):\n    print(i)\n\n") == {"status": "complete"}
    assert status("print(1))") == {"status": "invalid"}
    assert status("$connect(") == {"status": "invalid"}


def test_message_dates_have_all_their_microseconds(
    shared_kernel: RunningKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # xeus writes microseconds without leading zeros (".63593Z" for .063593 s), which clients read as
    # .635930: about one message in ten dated up to 0.9 s off. The kernel pads them.
    dates: list[str] = []
    extract_dates = jupyter_client.session.extract_dates

    def record(obj: object) -> object:
        if isinstance(obj, dict) and isinstance(obj.get("date"), str) and "msg_id" in obj:
            dates.append(obj["date"])
        return extract_dates(obj)

    monkeypatch.setattr(jupyter_client.session, "extract_dates", record)
    for _ in range(100):
        shared_kernel.kc.execute_interactive("pass", output_hook=lambda _m: None, timeout=10)
    assert len(dates) >= 400
    unpadded = [date for date in dates if not re.fullmatch(r"\S+T\d\d:\d\d:\d\d\.\d{6}Z", date)]
    assert not unpadded, unpadded[:5]


def test_cells_queued_behind_an_error_are_aborted_with_a_status(shared_kernel: RunningKernel) -> None:
    # Run All: the cells sent behind a failing one are aborted, each with a reply and the busy/idle
    # status that clients wait for (xeus 2.4 published none: execute_interactive hung).
    kc = shared_kernel.kc
    # It fails after the others have surely arrived: only cells queued when the error comes are aborted.
    failing = kc.execute("import time\ntime.sleep(0.5)\nraise ValueError('stop here')")
    queued = [kc.execute(f"ran_{i} = True") for i in range(3)]
    replies = {}
    while len(replies) < 4:
        reply = kc.get_shell_msg(timeout=30)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
    assert replies[failing] == "error"
    assert {replies[msg_id] for msg_id in queued} <= {"error", "aborted"}
    idle: set[str] = set()
    while not set(queued) <= idle:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle.add(msg["parent_header"].get("msg_id"))
    time.sleep(0.2)  # xeus aborts what arrives within 50 ms of the last abort
    assert shared_kernel.run("'ran_0' in dir()").result == "False"
