"""Attacks on the widget checks (comms._checked, widgettrust.py, sanitize.publishable's widget views), fast:
the real Comms and checks, with a frontend that records what would reach the browser (the kernel-level
attacks are in test_widgets.py)."""

from __future__ import annotations

import json
from typing import Any

from xrpyc.comms import Comms
from xrpyc.sanitize import WIDGET_VIEW, publishable

CONTROLS = {"_model_module": "@jupyter-widgets/controls", "_view_module": "@jupyter-widgets/controls"}
SCRIPT = "<img src=x onerror=alert(1)>"


class Browser:
    """The frontend's side of Comms: what reaches the browser, as JSON text."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.unparented = self

    def comm_open(self, comm_id: str, target: str, data: Any, metadata: Any, buffers: Any = ()) -> bool:
        self.sent.append(json.dumps(["open", comm_id, data]))
        return True

    def comm_send(self, comm_id: str, data: Any, metadata: Any, buffers: Any = ()) -> bool:
        self.sent.append(json.dumps(["msg", comm_id, data]))
        return True

    def comm_msg(self, comm_id: str, data: Any) -> None:
        self.comm_send(comm_id, data, {})

    def comm_close(self, comm_id: str, data: Any, metadata: Any, buffers: Any = ()) -> bool:
        self.sent.append(json.dumps(["close", comm_id, data]))
        return True


class Credentials:
    def __init__(self, trusted: bool) -> None:
        self.trusted = trusted


class Device:
    closed = False

    def __init__(self, address: str, trusted: bool = False) -> None:
        self.address, self.credentials = address, Credentials(trusted)


def comms() -> tuple[Comms, Browser]:
    browser = Browser()
    widgets = Comms(browser)  # type: ignore[arg-type]
    widgets._forwarder = object()  # type: ignore[assignment]  # no second connection to a device here
    return widgets, browser


def send(widgets: Comms, device: Device, kind: str, comm_id: str, data: dict[str, Any], target: str = "") -> None:
    widgets.from_device(device, (kind, comm_id, target, json.dumps(data), "{}", ()))  # type: ignore[arg-type]


def open_model(widgets: Comms, device: Device, comm_id: str, model: str, **state: Any) -> None:
    state = dict(CONTROLS, _model_name=model, **state)
    send(widgets, device, "comm_open", comm_id, {"state": state, "buffer_paths": []}, "jupyter.widget")


def update(widgets: Comms, device: Device, comm_id: str, **state: Any) -> None:
    send(widgets, device, "comm_msg", comm_id, {"method": "update", "state": state, "buffer_paths": []})


def test_a_stock_model_cannot_be_drawn_by_an_html_view() -> None:
    widgets, browser = comms()
    for view in ("HTMLView", "HTMLMathView"):
        open_model(widgets, Device("d"), view, "LabelModel", _view_name=view, value=SCRIPT)
    assert "onerror" not in str(browser.sent)


def test_an_html_widgets_value_that_is_not_text_is_emptied() -> None:
    widgets, browser = comms()
    device = Device("d")
    open_model(widgets, device, "h", "HTMLModel", value=[SCRIPT])
    update(widgets, device, "h", value=[SCRIPT])
    open_model(widgets, device, "m", "HTMLMathModel", value={"x": SCRIPT})
    assert "onerror" not in str(browser.sent)
    assert [json.loads(sent)[2]["state"]["value"] for sent in browser.sent] == ["", "", ""]


def test_a_comm_cannot_be_opened_twice_to_change_its_model() -> None:
    """Re-opened as a slider, an HTML widget's updates would be cleaned as a slider's (not at all)."""
    widgets, browser = comms()
    device = Device("d")
    open_model(widgets, device, "x", "HTMLModel", value="<b>ok</b>")
    open_model(widgets, device, "x", "IntSliderModel")
    update(widgets, device, "x", value=SCRIPT)
    assert len([s for s in browser.sent if s.startswith('["open"')]) == 1
    assert "onerror" not in str(browser.sent)


def test_a_device_cannot_use_or_close_a_comm_it_did_not_open() -> None:
    widgets, browser = comms()
    mine, other = Device("mine"), Device("other")
    open_model(widgets, mine, "x", "IntSliderModel", value=1)
    update(widgets, other, "x", value=2)
    update(widgets, other, "nobody's", value=3)
    send(widgets, other, "comm_close", "x", {})
    assert [json.loads(s)[0] for s in browser.sent] == ["open"]
    update(widgets, mine, "x", value=4)  # its own still works
    send(widgets, mine, "comm_close", "x", {})
    assert [json.loads(s)[0] for s in browser.sent] == ["open", "msg", "close"]


def states(widgets: Comms, device: Device, entries: dict[str, Any]) -> None:
    widgets.on_open("control", "jupyter.widget.control", "{}", "{}", [])
    data = {"method": "update_states", "states": entries, "buffer_paths": {}}
    send(widgets, device, "comm_msg", "control", data)


def entry(model: str, module: str = "@jupyter-widgets/controls", **state: Any) -> dict[str, Any]:
    return {"model_name": model, "model_module": module, "model_module_version": "2.0.0",
            "state": dict(CONTROLS, _model_name=model, **state)}  # fmt: skip


def test_update_states_only_for_the_devices_own_models_as_opened() -> None:
    widgets, browser = comms()
    device, other = Device("d"), Device("other")
    widgets.device_of = lambda: device  # type: ignore[assignment,return-value]
    open_model(widgets, device, "h", "HTMLModel", value="")
    open_model(widgets, device, "s", "IntSliderModel", value=1)
    open_model(widgets, other, "o", "IntSliderModel", value=1)
    evil = entry("LabelModel", value=SCRIPT)
    evil["state"]["_model_name"] = "HTMLModel"  # cleaned as a label, drawn as HTML
    foreign = entry("HTMLModel", module="https://evil.example/x.js", value=SCRIPT)
    states(widgets, device, {
        "h": evil,                                        # another name than the entry's state
        "s": entry("HTMLModel", value=SCRIPT),            # another model than opened
        "o": entry("IntSliderModel", value=5),            # another device's
        "new": entry("IntSliderModel", value=6),          # never opened
        "x": foreign,
    })  # fmt: skip
    sent = json.loads(browser.sent[-1])[2]
    assert sent["states"] == {}
    assert "onerror" not in str(browser.sent) and "evil" not in str(browser.sent)
    states(widgets, device, {"s": entry("IntSliderModel", value=7), "h": entry("HTMLModel", value=SCRIPT)})
    kept = json.loads(browser.sent[-1])[2]["states"]
    assert kept["s"]["state"]["value"] == 7 and kept["h"]["state"]["value"] == '<img src="x">'


def test_a_widget_view_only_of_the_devices_own_models() -> None:
    """Also inside an Output widget's outputs, which the browser renders as it renders a cell's."""
    view = {"model_id": "secret", "version_major": 2, "version_minor": 0}
    bundle = ((WIDGET_VIEW, json.dumps(view)), ("text/plain", "x"))
    assert WIDGET_VIEW not in publishable(bundle, False)[0]
    assert WIDGET_VIEW in publishable(bundle, False, view_allowed=lambda model: model == "secret")[0]
    assert WIDGET_VIEW in publishable(bundle, True)[0]

    widgets, browser = comms()
    device, other = Device("d"), Device("other")
    open_model(widgets, other, "secret", "PasswordModel", value="hunter2")
    open_model(widgets, device, "mine", "IntSliderModel", value=1)
    outputs = [{"output_type": "display_data", "metadata": {}, "data": {WIDGET_VIEW: dict(view, model_id=model)}}
               for model in ("secret", "mine")]  # fmt: skip
    state = dict(CONTROLS, _model_module="@jupyter-widgets/output", _view_module="@jupyter-widgets/output",
                 _model_name="OutputModel", outputs=outputs)  # fmt: skip
    send(widgets, device, "comm_open", "out", {"state": state, "buffer_paths": []}, "jupyter.widget")
    shown = json.loads(browser.sent[-1])[2]["state"]["outputs"]
    assert [output["data"].get(WIDGET_VIEW, {}).get("model_id") for output in shown] == [None, "mine"]


def test_an_output_widgets_outputs_keep_no_metadata_or_other_keys_of_the_device() -> None:
    """sanitize.py's rule for display output: metadata never comes from a device (it steers renderers)."""
    widgets, browser = comms()
    device = Device("d")
    outputs = [
        {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {"text/html": {"isolated": False}},
         "transient": {"display_id": "another cell's"}, "extra": "<script>"},
        {"output_type": "stream", "name": "stdout", "text": "hi", "metadata": {"any": "thing"}},
    ]  # fmt: skip
    state = dict(CONTROLS, _model_module="@jupyter-widgets/output", _view_module="@jupyter-widgets/output",
                 _model_name="OutputModel", outputs=outputs)  # fmt: skip
    send(widgets, device, "comm_open", "out", {"state": state, "buffer_paths": []}, "jupyter.widget")
    shown = json.loads(browser.sent[-1])[2]["state"]["outputs"]
    assert shown == [
        {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "hi"},
    ]
