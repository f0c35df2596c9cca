"""Many boards from one notebook: named connections, $use, $devices, $on cells, transfers to one and to all."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_client import Result, RunningKernel, kernel
from servers import device_process, xrpyc_device


@pytest.fixture(scope="module")
def boards(stock_device: int) -> Iterator[tuple[int, int]]:
    """Two more xrpyc-devices beside the stock one (the default device)."""
    with xrpyc_device() as left, xrpyc_device() as right:
        yield left, right


@pytest.fixture
def three(stock_device: int, boards: tuple[int, int]) -> Iterator[RunningKernel]:
    """A kernel on the stock device (default) with "left" and "right" connected."""
    left, right = boards
    with kernel(stock_device) as running:
        for name, port in (("left", left), ("right", right)):
            result = running.run(f'$connect("127.0.0.1:{port}", name="{name}")')
            assert result.status == "ok", result.messages
            assert result.stream().startswith(f"Connected to 127.0.0.1:{port} as 'left'" if name == "left" else
                                              f"Connected to 127.0.0.1:{port} as 'right'")  # fmt: skip
        yield running


def areas(result: Result) -> dict[str, dict]:
    """The final bundle of each device's area, by the name in its label (the first word of text/plain)."""
    latest: dict[str, dict] = {}
    for message in result.messages:
        if message["msg_type"] in ("display_data", "update_display_data"):
            latest[message["content"]["transient"]["display_id"]] = message["content"]["data"]
    return {re.match(r"── (.*?) · ", data["text/plain"]).group(1): data for data in latest.values()}


def test_names_use_and_devices(three: RunningKernel, stock_device: int, boards: tuple[int, int]) -> None:
    left, right = boards
    three.run("where = 'default'")
    # Named connections do not move plain cells.
    assert three.run("where").result == "'default'"
    assert three.run('$use("left")').stream() == f"plain cells run on left (127.0.0.1:{left})\n"
    assert three.run("where").error["ename"] == "NameError"  # its own namespace
    three.run("where = 'left'")
    three.run('$use("right")\nwhere = "right"')
    assert three.run('$use("left")\nwhere').result == "'left'"
    assert three.run('$use("default")\nwhere').result == "'default'"
    listing = three.run("$use('right')\n$devices()").stream().splitlines()[1:]
    assert re.fullmatch(r"  name +address +state +Python", listing[0])
    rows = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in listing[1:]}
    assert set(rows) == {"default", "left", "right"}
    assert rows["right"].startswith("* right") and f"127.0.0.1:{right}" in rows["right"]
    assert f"127.0.0.1:{stock_device}" in rows["default"] and "connected" in rows["default"]
    assert re.search(r"connected +3\.\d+\.\d+$", rows["left"])
    # Tab completion goes where plain cells run.
    three.run("only_on_right = 1")
    reply = three.kc.complete("only_on_r", 9, reply=True)["content"]
    assert reply["matches"] == ["only_on_right"]
    # $disconnect of the current one sends plain cells back to the unnamed connection.
    assert three.run('$disconnect("right")').stream() == (
        f"disconnected right from 127.0.0.1:{right} (its variables dropped)\n"
    )
    assert three.run("where").result == "'default'"
    assert "right" not in three.run("$devices()").stream()


def test_bad_names(three: RunningKernel, boards: tuple[int, int]) -> None:
    left, _ = boards
    for cell, ename, words in (
        (f'$connect("127.0.0.1:{left}", name="left")', "CommandError", "already names"),
        (f'$connect("127.0.0.1:{left}", name="")', "CommandError", "1 to 64"),
        (f'$connect("127.0.0.1:{left}", name="all")', "CommandError", "reserved"),
        (f'$connect("127.0.0.1:{left}", name="default")', "CommandError", "reserved"),
        (f'$connect("127.0.0.1:{left}", name="a\\x1b[2J")', "CommandError", "control characters"),
        (f'$connect("127.0.0.1:{left}", name="x" * 3)', "CommandSyntaxError", "literals"),
        (f'$connect("127.0.0.1:{left}", name=7)', "CommandError", "must be a string"),
        ('$use("nobody")', "CommandError", "no device named 'nobody'"),
        ("$use(all)", "CommandError", "no device named all"),
        ('$disconnect("nobody")', "CommandError", "no device named"),
        ('$on("left", "nobody")\nprint(1)', "CommandError", "no device named 'nobody'"),
        ("$on()\nprint(1)", "CommandError", "name the devices"),
        ('$on("left")', "CommandError", "write the code below it"),
        ('$on("left")\n$devices()', "CommandError", "Python only"),
        ('print(1)\n$on("left")\nprint(2)', "CommandError", "first line of its cell"),
        ('$upload("x", on=3)', "CommandError", "on must be"),
        ('$download("x", on=all)', "CommandError", "name one device"),
    ):
        result = three.run(cell)
        assert result.status == "error", cell
        assert result.error["ename"] == ename and words in result.error["evalue"], (cell, result.error)
        assert result.stream() == "", cell  # nothing ran
    assert "Devices: 'default', 'left', 'right'" in three.run('$use("x")').error["evalue"]
    assert three.run("1 + 1").result == "2"


def test_a_name_that_is_html_is_shown_as_text(stock_device: int, boards: tuple[int, int]) -> None:
    left, _ = boards
    name = '<img src=x onerror="alert(1)">'
    with kernel(stock_device) as running:
        assert running.run(f"$connect('127.0.0.1:{left}', name='{name}')").status == "ok"
        result = running.run(f"$on('{name}')\nprint('<b>hi</b>')")
        assert result.status == "ok", result.messages
        area = areas(result)[name]
        assert "<img" not in area["text/html"] and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in area[
            "text/html"]  # fmt: skip
        assert "&lt;b&gt;hi&lt;/b&gt;" in area["text/html"] and "<b>hi" not in area["text/html"]
        assert area["text/plain"].startswith(f"── {name} · 127.0.0.1:{left}: ok")
        assert name in running.run("$devices()").stream()


def test_on_runs_everywhere_with_an_area_each(three: RunningKernel, stock_device: int) -> None:
    result = three.run('$on(all)\nimport os\nprint("pid", os.getpid())\nprint("oops", file=__import__("sys").stderr)\n'
                       "'last'")  # fmt: skip
    assert result.status == "ok", result.messages
    shown = areas(result)
    assert set(shown) == {"default", "left", "right"}
    pids = set()
    for name, data in shown.items():
        text = data["text/plain"]
        assert re.match(rf"── {name} · 127\.0\.0\.1:\d+: ok \(\d+\.\d\d s\)\n", text), text
        pids.add(re.search(r"^pid (\d+)$", text, re.MULTILINE).group(1))
        assert "oops" in text and "'last'" in text
        assert 'style="color: #b22"' in data["text/html"]  # stderr in its colour
    assert len(pids) == 3  # three devices, three processes
    # No output outside the areas: streams and results are in them.
    assert result.stream() == "" and result.of_type("execute_result") == []
    # One display per device (a quick cell shows each once, when done).
    firsts = [m["content"]["transient"]["display_id"] for m in result.messages if m["msg_type"] == "display_data"]
    assert len(firsts) == len(set(firsts)) == 3
    # A longer one shows them at once, then updates each in place as its device goes on.
    slow = three.run("$on(all)\nimport time\nprint('a', flush=True)\ntime.sleep(0.5)\nprint('b')")
    kinds = [(m["msg_type"], m["content"]["transient"]["display_id"]) for m in slow.messages
             if m["msg_type"] in ("display_data", "update_display_data")]  # fmt: skip
    ids = [display_id for kind, display_id in kinds if kind == "display_data"]
    assert len(ids) == 3 and kinds[:3] == [("display_data", display_id) for display_id in ids]
    assert {display_id for kind, display_id in kinds[3:]} == set(ids)
    assert all(kind == "update_display_data" for kind, _ in kinds[3:])
    for data in areas(slow).values():
        assert data["text/plain"].endswith("\na\nb") and ": ok (0." in data["text/plain"]
    assert any("running" in m["content"]["data"]["text/plain"] for m in slow.messages if "data" in m["content"])
    # Each device keeps its own namespace: a value set in an $on cell stays there.
    three.run('$on("left", "right")\nmine = os.getpid()')
    assert three.run('$use("left")\nmine == os.getpid()').result == "True"
    assert three.run('$use("default")\n"mine" in dir()').result == "False"


def test_mixed_success_and_failure_names_the_devices(three: RunningKernel) -> None:
    three.run('$on("left")\nfail = True')
    three.run('$on("right", "default")\nfail = False')
    result = three.run("$on(all)\nif fail:\n    raise ValueError('left says no')\nprint('fine')")
    assert result.status == "error"
    error = result.error
    assert error["ename"] == "ValueError"
    assert error["evalue"] == "1 device failed: left: ValueError: left says no"
    shown = areas(result)
    assert re.match(r"── left · 127\.0\.0\.1:\d+: failed \(ValueError\)", shown["left"]["text/plain"])
    assert "line 3" in shown["left"]["text/plain"] and "left says no" in shown["left"]["text/plain"]
    for name in ("right", "default"):
        assert ": ok (" in shown[name]["text/plain"] and "fine" in shown[name]["text/plain"]
    # Run All stops at it: the reply is an error.
    assert result.reply["content"]["status"] == "error"


def test_interrupt_stops_them_all(three: RunningKernel) -> None:
    messages: list[dict] = []
    done: list[dict] = []
    started = time.monotonic()
    code = "$on(all)\nimport time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.01)"
    thread = threading.Thread(target=lambda: done.append(three.kc.execute_interactive(
        code, output_hook=messages.append, timeout=60)))  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        texts = [m["content"]["data"]["text/plain"] for m in messages if "data" in m.get("content", {})]
        if sum("started" in text for text in texts[-3:]) == 3 or len([t for t in texts if "started" in t]) >= 3:
            break
        time.sleep(0.05)
    three.km.interrupt_kernel()
    thread.join(30)
    assert done, "the $on cell did not end on interrupt"
    assert done[0]["content"]["status"] == "error" and done[0]["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 30
    shown = areas(Result(done[0], messages))
    assert all(": interrupted (KeyboardInterrupt)" in data["text/plain"] for data in shown.values()), shown
    assert three.run("$on(all)\n1 + 1").status == "ok"


def test_a_device_that_dies_during_an_on_cell(stock_device: int, boards: tuple[int, int]) -> None:
    left, _ = boards
    with device_process() as (port, process), kernel(stock_device) as running:
        running.run(f'$connect("127.0.0.1:{left}", name="left")')
        running.run(f'$connect("127.0.0.1:{port}", name="doomed")')
        code = "$on(all)\nimport os, time\nif os.getpid() == PID:\n    os._exit(1)\ntime.sleep(0.2)\nprint('alive')"
        running.run("$on('doomed')\nimport os\nPID = os.getpid()")
        running.run("$on('left', 'default')\nPID = -1")
        result = running.run(code)
        assert result.status == "error"
        assert result.error["ename"] == "DeviceError" and result.error["evalue"].startswith("1 device failed: doomed:")
        shown = areas(result)
        assert "alive" in shown["left"]["text/plain"] and "alive" in shown["default"]["text/plain"]
        assert "lost while the cell ran" in shown["doomed"]["text/plain"]
        # The others go on; the lost one is listed as such, and its device (a new worker) serves again.
        assert running.run("$on('left')\n1").status == "ok"
        assert "doomed" in running.run("$devices()").stream()
        again = running.run("$on('doomed')\nprint('back')")
        assert again.status == "ok" and "back" in areas(again)["doomed"]["text/plain"]
        process.poll()


def test_upload_to_one_and_to_all(three: RunningKernel, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)
    result = three.run(f'$upload("{source}", "/nonexistent-dir-xrpyc/x", on="left")')
    assert result.status == "error" and "nonexistent" in result.error["evalue"]
    # To one: only left has it.
    three.run("$on(all)\nimport os, tempfile\nos.chdir(tempfile.mkdtemp())")
    result = three.run(f'$upload("{source}", on="left")')
    assert result.status == "ok", result.messages
    assert re.match(r"uploaded left: .*model\.bin → .*model\.bin: 100%", result.stream())
    check = three.run("$on(all)\nprint('has' if os.path.exists('model.bin') else 'lacks')")
    have = {name: "has" in data["text/plain"].split("\n", 1)[1] for name, data in areas(check).items()}
    assert have == {"left": True, "right": False, "default": False}
    # To all.
    result = three.run(f'$upload("{source}", on=all)')
    assert result.status == "ok", result.messages
    assert len(re.findall(r"^uploaded (default|left|right): ", result.stream(), re.MULTILINE)) == 3
    check = three.run("$on(all)\nprint(open('model.bin', 'rb').read() == b'weights' * 1000)")
    assert all("True" in data["text/plain"] for data in areas(check).values())
    listing = three.run('$ls(on="right")').stream()
    assert "model.bin" in listing


def test_upload_to_all_goes_on_past_a_failure(three: RunningKernel, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    three.run("$on('right')\nimport os, tempfile\nos.chdir(tempfile.mkdtemp())\nopen('sub', 'w').close()")
    three.run("$on('left', 'default')\nimport os, tempfile\nos.chdir(tempfile.mkdtemp())\nos.mkdir('sub')")
    result = three.run(f'$upload("{source}", "sub/f.txt", on=all)')  # right's "sub" is a file
    assert result.status == "error"
    assert result.error["evalue"].startswith("$upload failed on 1 of 3 devices: right: ")
    assert len(re.findall(r"^uploaded (default|left): ", result.stream(), re.MULTILINE)) == 2


def test_video_of_a_named_device_without_a_view(three: RunningKernel) -> None:
    result = three.run('$video("left")')
    assert result.error["ename"] == "CommandError" and "no live view" in result.error["evalue"]


def test_live_views_of_two_boards_side_by_side() -> None:
    pytest.importorskip("av")
    with xrpyc_device(0, "--mjpeg-port", "auto") as left, xrpyc_device(0, "--mjpeg-port", "auto") as right, \
            kernel(left) as running:  # fmt: skip
        running.run(f'$connect("127.0.0.1:{left}", name="<i>left</i>")')
        running.run(f'$connect("127.0.0.1:{right}", name="right")')
        started = running.run('$video(["<i>left</i>", "right"], fps=10)')
        assert started.status == "ok", started.messages
        show = ("$on(all)\nimport time\nfrom PIL import Image\nfrom xrpyc.device import display\n"
                "for i in range(10):\n    display.show(Image.new('RGB', (64, 48), (i * 20, 9, 0)))\n    time.sleep(.1)")
        running.kc.execute(show)  # not run(): it would swallow the $video cell's messages meanwhile
        parent = started.reply["parent_header"]["msg_id"]
        frames: list[dict] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m["content"]["data"]["text/html"].count("<img") == 2
                                                      for m in frames):  # fmt: skip
            with contextlib.suppress(Exception):
                message = running.kc.get_iopub_msg(timeout=0.5)
                if message["parent_header"].get("msg_id") == parent and "data" in message["content"]:
                    frames.append(message)
        ids = {m["content"]["transient"]["display_id"] for m in frames}
        assert len(ids) == 1 and frames[0]["msg_type"] == "display_data"  # one display for the row
        page = frames[-1]["content"]["data"]["text/html"]
        assert page.count('<img src="data:image/jpeg;base64,') == 2
        assert "<figcaption>&lt;i&gt;left&lt;/i&gt;</figcaption>" in page and "<i>" not in page
        assert running.run("$video.stop()").stream() == "stopped 2 video streams\n"


def test_a_board_in_use_lost_during_a_plain_cell_leaves_the_default_connection(
    stock_device: int, boards: tuple[int, int]
) -> None:
    with device_process() as (port, _), kernel(stock_device) as running:
        assert running.run("x = 1").status == "ok"  # the default connection is up
        running.run(f'$connect("127.0.0.1:{port}", name="doomed")')
        running.run('$use("doomed")')
        assert running.run("import os\nos._exit(1)").status == "error"  # its worker dies: that connection is lost
        listed = running.run("$devices()").stream()
        assert re.search(r"^  default .* connected ", listed, re.MULTILINE), listed  # not the one let go
        assert re.search(r"^\* doomed .* not connected", listed, re.MULTILINE), listed  # the next cell reconnects
