"""history_request from the kernel's own store (python/xrpyc/history.py), through the built kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel_client import RunningKernel, kernel
from xrpyc.history import History


def history(running: RunningKernel, **request: Any) -> list[list[Any]]:
    running.kc.history(**request)
    reply = running.kc.get_shell_msg(timeout=10)
    assert reply["msg_type"] == "history_reply" and reply["content"]["status"] == "ok", reply
    return reply["content"]["history"]


def test_history_survives_a_kernel_restart(stock_device: int, tmp_path: Path) -> None:
    store = str(tmp_path / "history.sqlite")
    with kernel(stock_device, XRPYC_HISTORY=store) as first:
        first.run("a = 1")
        first.run("a + 1")
        first.run("print('not kept')", store_history=False)
        first.run("print('silent')", silent=True)
        (_, _, (source, output)), = history(first, hist_access_type="tail", n=1, output=True)
        assert (source, output) == ("a + 1", "2")
    with kernel(stock_device, XRPYC_HISTORY=store) as second:
        second.run("b = 2")
        tail = history(second, hist_access_type="tail", n=10, raw=True)
        assert [entry[2] for entry in tail] == ["a = 1", "a + 1", "b = 2"]
        (old_session, _, _), _, (new_session, line, _) = tail
        assert new_session == old_session + 1 and line == 1
        before = history(second, hist_access_type="range", session=-1, start=1, stop=100)
        assert [entry[2] for entry in before] == ["a = 1", "a + 1"]
        assert [entry[1] for entry in before] == [1, 2]
        this = history(second, hist_access_type="range", session=0, start=1, stop=100)
        assert [entry[2] for entry in this] == ["b = 2"]
        found = history(second, hist_access_type="search", pattern="a*", n=10)
        assert [entry[2] for entry in found] == ["a = 1", "a + 1"]


def test_an_unusable_history_file_keeps_history_in_memory(stock_device: int, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with kernel(stock_device, XRPYC_HISTORY=str(blocker / "history.sqlite")) as running:
        result = running.run("1 + 1")
        assert result.status == "ok" and result.result == "2"
        assert [entry[2] for entry in history(running, hist_access_type="tail", n=5)] == ["1 + 1"]


def test_search_unique_and_n_keep_the_latest_matches(tmp_path: Path) -> None:
    store = History(str(tmp_path / "h.sqlite"))
    for line, source in enumerate(["x = 1", "y = 2", "x = 1", "x = 3", "print(x)"], start=1):
        store.start_cell(line)
        store.store(0, source)
    def sources(text: str) -> list[str]:
        return [entry[2] for entry in json.loads(text)["history"]]
    assert sources(store.search("x*", True, False, 0, False)) == ["x = 1", "x = 1", "x = 3"]
    assert sources(store.search("x*", True, False, 0, True)) == ["x = 1", "x = 3"]
    assert [entry[1] for entry in json.loads(store.search("x*", True, False, 0, True))["history"]] == [3, 4]
    assert sources(store.search("x*", True, False, 2, False)) == ["x = 1", "x = 3"]
    assert sources(store.search("[py]*", True, False, 0, False)) == ["y = 2", "print(x)"]
    assert sources(store.range(0, 2, 4, True, False)) == ["y = 2", "x = 1"]
    store.close()
