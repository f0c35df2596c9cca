"""Jupyter widgets on the device, at the protocol level: comms both ways through the kernel.

A stock rpyc server of this venv's Python (which has ipywidgets) and one of
pyenv's 3.8 without it (remote/widgets.py's controls), with the kernel driven
through jupyter_client as JupyterLab's widget manager drives it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kernel_client import RunningKernel, kernel
from servers import free_port, stock_rpyc_classic
from test_kernelspec import device_python

WIDGET = "jupyter.widget"
CONTROL = "jupyter.widget.control"


class Frontend:
    """What a widget manager sees and sends: iopub comm messages, comm_msg/comm_open on shell."""

    def __init__(self, running: RunningKernel) -> None:
        self.running = running
        self.kc = running.kc
        self.seen: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []  # from collect(): (parent's msg_id, state), in order

    def run(self, code: str) -> Any:
        result = self.running.run(code)
        self.seen.extend(m for m in result.messages if m["msg_type"].startswith("comm_"))
        return result

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.kc.get_iopub_msg(timeout=left)
            except Exception:
                return
            if message["msg_type"].startswith("comm_"):
                self.seen.append(message)
            elif message["msg_type"] == "status":
                self.statuses.append((message["parent_header"].get("msg_id"), message["content"]["execution_state"]))

    def wait_for(self, predicate: Any, seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            for message in self.seen:
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"not seen; comm messages: {[m['content'] for m in self.seen][-10:]}")
            self.collect(0.2)

    def opened(self, model: str) -> dict[str, Any]:
        """The content of the comm_open of the last model named `model`."""
        opens = [m["content"] for m in self.seen if m["msg_type"] == "comm_open"]
        return [c for c in opens if c["data"]["state"].get("_model_name") == model][-1]

    def send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
        message = self.kc.session.msg(msg_type, content, metadata=metadata)
        self.kc.shell_channel.send(message)
        return message["header"]["msg_id"]

    def update(self, comm_id: str, **state: Any) -> str:
        return self.send(
            "comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}}
        )


@contextlib.contextmanager
def frontend(port: int) -> Iterator[Frontend]:
    with kernel(port) as running:
        yield Frontend(running)


@pytest.fixture(params=["ipywidgets", "fallback"])
def device(request: pytest.FixtureRequest) -> Iterator[int]:
    program = None if request.param == "ipywidgets" else device_python("3.8")
    with stock_rpyc_classic(*([program] if program else [])) as port:
        yield port


def test_widgets_both_ways(device: int) -> None:
    with frontend(device) as ui:
        shown = ui.run("import ipywidgets as w\ns = w.IntSlider(value=3, description='t')\ns")
        assert shown.status == "ok"
        slider = ui.opened("IntSliderModel")
        assert slider["target_name"] == WIDGET and slider["data"]["state"]["value"] == 3
        assert shown.of_type("execute_result")[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] \
            == slider["comm_id"]  # fmt: skip
        comm_id = slider["comm_id"]

        # comm_info lists it.
        ui.send("comm_info_request", {"target_name": WIDGET})
        info = ui.kc.get_shell_msg(timeout=10)
        assert info["msg_type"] == "comm_info_reply" and comm_id in info["content"]["comms"]

        # The browser moves it while a cell's loop reads it.
        ui.kc.execute(
            "import time\nt0 = time.time()\nwhile s.value == 3 and time.time() - t0 < 20:\n    time.sleep(0.005)\n"
            "print('saw', s.value)"
        )
        time.sleep(0.5)
        ui.update(comm_id, value=42)
        reply = ui.kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "ok"
        assert "saw 42" in ui.run("print('saw', s.value)").stream()

        # The device changes it: the browser hears.
        ui.run("s.value = 7")
        ui.wait_for(lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("state", {}).get("value") == 7)

        # An observer runs for a browser change between cells.
        ui.run("hits = []\ns.observe(lambda change: hits.append(change['new']), 'value')")
        ui.update(comm_id, value=9)
        deadline = time.monotonic() + 10
        while "9" not in (ui.run("hits").result or "") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ui.run("hits").result == "[9]"

        # A thread the cell left running changes it after the cell: published at once.
        ui.run("import threading\nthreading.Thread(target=lambda: (time.sleep(0.5), setattr(s, 'value', 11))).start()")
        ui.wait_for(lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("state", {}).get("value") == 11)

        # The widget manager asks for all states (a page reload).
        control = uuid.uuid4().hex
        ui.send("comm_open", {"comm_id": control, "target_name": CONTROL, "data": {}}, {"version": "1.0.0"})
        ui.send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        states = ui.wait_for(lambda m: m["content"].get("comm_id") == control
                             and m["content"]["data"].get("method") == "update_states")  # fmt: skip
        assert states["content"]["data"]["states"][comm_id]["state"]["value"] == 11

        ui.run("s.close()")
        ui.wait_for(lambda m: m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm_id)


def test_each_change_while_a_cell_runs_gets_its_idle(device: int) -> None:
    """ipywidgets' frontend sends a model's next change only after the kernel's idle status for its last one:
    while a cell runs, each comm message gets busy and idle (then busy again for the cell, the kernel's state),
    or a dragged slider reaches the device once and then never again."""
    with frontend(device) as ui:
        ui.run("import ipywidgets as w\ns = w.IntSlider(value=3)\ns")
        comm_id = ui.opened("IntSliderModel")["comm_id"]
        cell = ui.kc.execute(
            "import time\nt0 = time.time()\nwhile s.value != 5 and time.time() - t0 < 20:\n    time.sleep(0.005)\n"
            "print('saw', s.value)"
        )
        time.sleep(0.5)
        for value in (4, 5):  # as the throttle sends them: the next after the last one's idle
            change = ui.update(comm_id, value=value)
            deadline = time.monotonic() + 10
            while (change, "idle") not in ui.statuses and time.monotonic() < deadline:
                ui.collect(0.1)
            assert (change, "idle") in ui.statuses, f"no idle for the change to {value}: {ui.statuses}"
            done = ui.statuses.index((change, "idle"))
            assert ui.statuses[done - 1] == (change, "busy")
            if value == 4:
                ui.collect(0.5)  # the cell still runs: the kernel is busy with it again
                assert (cell, "busy") in ui.statuses[done + 1 :], ui.statuses
        reply = ui.kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == cell and reply["content"]["status"] == "ok"
        assert "saw 5" in ui.run("print('saw', s.value)").stream()


def test_control_comm_without_a_device() -> None:
    """JupyterLab asks for the widgets' states as the kernel starts: with no device there, none."""
    with frontend(1) as ui:
        control = uuid.uuid4().hex
        ui.send("comm_open", {"comm_id": control, "target_name": CONTROL, "data": {}}, {"version": "1.0.0"})
        ui.send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        answer = ui.wait_for(lambda m: m["content"].get("comm_id") == control and m["msg_type"] == "comm_msg")
        assert answer["content"]["data"] == {"method": "update_states", "states": {}, "buffer_paths": {}}


ATTACKS = """
import comm, ipywidgets as w
html = w.HTML(value='<b>ok</b><img src=x onerror="alert(1)">')
out = w.Output()
out.outputs = ({'output_type': 'display_data', 'metadata': {},
                'data': {'text/html': '<script>alert(2)</script><i>kept</i>', 'text/plain': 'x'}},)
label = w.Label(value='a', description='<img src=y onmouseover=alert(3)>', description_allow_html=True)
foreign = comm.create_comm(target_name='jupyter.widget', data={'state': {
    '_model_module': 'https://evil.example/x.js', '_model_name': 'EvilModel',
    '_view_module': 'https://evil.example/x.js', '_view_name': 'EvilView'}, 'buffer_paths': []})
html.value = '<svg onload=alert(4)>'
as_html = comm.create_comm(target_name='jupyter.widget', data={'state': {'_model_module': '@jupyter-widgets/controls',
    '_model_name': 'LabelModel', '_view_module': '@jupyter-widgets/controls', '_view_name': 'HTMLView',
    'value': '<img src=z onerror=alert(5)>'}, 'buffer_paths': []})
html.comm.send({'method': 'update', 'state': {'value': ['<img src=z onerror=alert(6)>']}, 'buffer_paths': []})
"""


def test_an_untrusted_devices_widgets_cannot_run_script_in_the_browser() -> None:
    """HTML widgets (also with a value that is not text), an Output widget's outputs, HTML descriptions, foreign
    widget modules and stock models drawn by an HTML view: what the
    browser would run from a device's widget messages never reaches it from an untrusted device."""
    with stock_rpyc_classic() as port, frontend(port) as ui:
        assert ui.run(ATTACKS).status == "ok"
        ui.collect(1.0)
        sent = str([m["content"] for m in ui.seen])
        for active in ("onerror", "<script", "onload", "evil.example"):
            assert active not in sent, active
        assert "<b>ok</b>" in sent and "<i>kept</i>" in sent  # what is harmless still shows
        # Shown as text, as written (the browser puts it in textContent).
        assert ui.opened("LabelModel")["data"]["state"]["description_allow_html"] is False


def test_a_widget_on_a_board_in_use_hears_the_browser() -> None:
    """Messages from the browser go to the device that made the widget, not to the unnamed connection."""
    with stock_rpyc_classic() as default, stock_rpyc_classic() as left, frontend(default) as ui:
        assert ui.run(f'$connect("127.0.0.1:{left}", name="left")').status == "ok"
        assert ui.run('$use("left")').status == "ok"
        ui.run("import ipywidgets as w\ns = w.IntSlider(value=3)\ns")
        comm_id = ui.opened("IntSliderModel")["comm_id"]
        ui.update(comm_id, value=42)
        deadline = time.monotonic() + 10
        while ui.run("s.value").result != "42" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ui.run("s.value").result == "42"


def test_a_thread_change_is_heard_when_the_control_comm_came_before_the_device() -> None:
    """JupyterLab opens the control comm as the kernel starts: a device connected later is linked all the same."""
    with stock_rpyc_classic() as port, frontend(free_port()) as ui:
        control = uuid.uuid4().hex
        ui.send("comm_open", {"comm_id": control, "target_name": CONTROL, "data": {}}, {"version": "1.0.0"})
        ui.collect(0.5)
        assert ui.run(f'$connect("127.0.0.1:{port}")').status == "ok"
        ui.run("import ipywidgets as w, threading, time\ns = w.IntSlider(value=3)\ns")
        ui.run("threading.Thread(target=lambda: (time.sleep(0.5), setattr(s, 'value', 11))).start()")
        ui.wait_for(lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("state", {}).get("value") == 11)
