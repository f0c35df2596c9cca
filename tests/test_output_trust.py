"""A device's output is untrusted input to the browser: nothing that runs code reaches the notebook
unless the device is trusted, and only the running cell's device output is published."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_client import RunningKernel, kernel
from servers import free_port, stock_rpyc_classic
from xrpyc.address import Address
from xrpyc.sanitize import clean_html, publishable
from xrpyc.security import lookup

# Everything a device can put in a bundle to run script in the student's browser.
HOSTILE = {
    "application/javascript": "window.pwned = 1",
    "text/javascript": "window.pwned = 2",
    "text/html": "<script>window.pwned = 3</script><img src=x onerror='window.pwned = 4'>"
    "<iframe srcdoc='<script>parent.pwned = 5</script>'></iframe><a href='javascript:window.pwned = 6'>link</a>"
    "<form action='/api/contents' method='post'><button>go</button></form>"
    "<meta http-equiv='refresh' content='0;url=javascript:window.pwned = 7'><b>kept</b>",
    "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' onload='window.pwned = 8'>"
    "<script>window.pwned = 9</script><circle r='4'/></svg>",
    "text/markdown": "<img src=x onerror='window.pwned = 10'> [a](javascript:window.pwned=11)",
    "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
}
# What of it may show, and must, from an untrusted device.
ACTIVE_MARKERS = ("pwned", "<script", "onerror", "onload", "javascript:", "<iframe", "<form", "<meta")
HOSTILE_CELL = (
    f"class Hostile:\n"
    f"    def _repr_mimebundle_(self, include=None, exclude=None):\n"
    f"        return {HOSTILE!r}\n"
    f"    def __repr__(self):\n"
    f"        return 'Hostile()'\n"
    f"display(Hostile())\n"
    f"Hostile()"
)
# pandas' DataFrame._repr_html_ (pandas 3.1), verbatim.
PANDAS_HTML = """<div>
<style scoped>
    .dataframe tbody tr th:only-of-type {
        vertical-align: middle;
    }

    .dataframe tbody tr th {
        vertical-align: top;
    }

    .dataframe thead th {
        text-align: right;
    }
</style>
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;">
      <th></th>
      <th>a</th>
      <th>b</th>
    </tr>
    <tr>
      <th>idx</th>
      <th></th>
      <th></th>
    </tr>
  </thead>
  <tbody>
    <tr>
      <th>r1</th>
      <td>1</td>
      <td>x&lt;y</td>
    </tr>
    <tr>
      <th>r2</th>
      <td>2</td>
      <td>z</td>
    </tr>
  </tbody>
</table>
</div>"""


def published(result: Any) -> list[dict[str, Any]]:
    """The data dicts of a cell's display_data and execute_result messages."""
    return [m["content"]["data"] for m in result.messages if m["msg_type"] in ("display_data", "execute_result")]


def assert_inert(data: dict[str, Any]) -> None:
    text = json.dumps(data)
    assert not [marker for marker in ACTIVE_MARKERS if marker in text], text
    assert not {"application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json"} & set(data)


@pytest.fixture(scope="module")
def untrusted(stock_device: int) -> Iterator[RunningKernel]:
    with kernel(stock_device) as running:
        yield running


def test_active_content_from_an_untrusted_device_does_not_reach_the_browser(untrusted: RunningKernel) -> None:
    nh3_loaded = "$exec(\"import sys; print('nh3' in sys.modules)\")"
    assert untrusted.run(f"'no HTML yet'\n{nh3_loaded}").stream() == "False\n"  # the kernel stays small
    result = untrusted.run(HOSTILE_CELL)
    assert result.status == "ok"
    outputs = published(result)
    assert len(outputs) == 2  # display() and the cell's value
    for data in outputs:
        assert_inert(data)
        assert data["text/plain"] == "Hostile()" and "<b>kept</b>" in data["text/html"]
        assert "<circle" in data["image/svg+xml"]
    # One note for the cell, however much was removed, saying how to trust the device.
    assert result.stream("stderr").count("trusted=True") == 1
    # The next cell starts quiet.
    assert untrusted.run("1 + 1").stream("stderr") == ""


def test_pandas_tables_and_matplotlib_svg_look_right_without_a_note(untrusted: RunningKernel) -> None:
    table = untrusted.run(
        f"class Frame:\n    def _repr_html_(self):\n        return {PANDAS_HTML!r}\nFrame()"
    )
    html = published(table)[0]["text/html"]
    for kept in ('<table border="1" class="dataframe">', '<tr style="text-align:right">', "<th>idx</th>",
                 "<td>x&lt;y</td>", "</tbody>"):  # fmt: skip
        assert kept in html
    assert "<style" not in html  # a <style> block restyles the whole page
    svg = untrusted.run(
        "import io, matplotlib.pyplot as plt\nfigure = plt.figure()\nplt.plot([1, 3, 2])\n"
        "buffer = io.StringIO()\nfigure.savefig(buffer, format='svg')\nplt.close(figure)\n"
        "class Chart:\n    def _repr_svg_(self):\n        return buffer.getvalue()\nChart()"
    )
    drawing = published(svg)[0]["image/svg+xml"]
    assert drawing.startswith("<svg") and drawing.count("<path") > 5 and "<use" in drawing
    assert table.stream("stderr") == svg.stream("stderr") == ""


def test_a_trusted_device_shows_its_output_as_sent(stock_device: int, tmp_path: Path) -> None:
    with kernel(stock_device) as running:
        connected = running.run(f'$connect("127.0.0.1", {stock_device}, trusted=True)')
        assert connected.status == "ok" and "trusted" in connected.stream()
        for data in published(running.run(HOSTILE_CELL)):
            assert data["application/javascript"] == HOSTILE["application/javascript"]
            assert data["text/html"] == HOSTILE["text/html"] and data["image/svg+xml"] == HOSTILE["image/svg+xml"]
        refused = running.run(f'$connect("127.0.0.1", {stock_device}, trusted="yes")')
        assert refused.status == "error" and "trusted must be True or False" in refused.error["evalue"]
    # The devices file can say it too, for the default device.
    devices = {"devices": {f"127.0.0.1:{stock_device}": {"trusted": True}}}
    (tmp_path / "xrpyc_devices.json").write_text(json.dumps(devices))
    with kernel(stock_device, JUPYTER_CONFIG_DIR=str(tmp_path)) as running:
        data = published(running.run(HOSTILE_CELL))[0]
        assert data["text/html"] == HOSTILE["text/html"] and "application/javascript" in data


def test_the_private_device_the_kernel_started_is_trusted() -> None:
    with kernel(XRPYC_DEVICE=f"127.0.0.1:{free_port()}") as running:
        result = running.run(HOSTILE_CELL)
        assert "cells run on a private xrpyc-device" in result.stream()
        assert "trusted=True" not in result.stream("stderr")
        assert published(result)[0]["application/javascript"] == HOSTILE["application/javascript"]


def test_trusted_in_the_devices_file_must_be_a_boolean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    path = tmp_path / "xrpyc_devices.json"
    path.write_text(json.dumps({"devices": {"board": {"trusted": "yes"}, "other": {"trusted": True}}}))
    with pytest.raises(ValueError, match='"trusted" for board:18812 must be true or false'):
        lookup(Address("board"))
    assert lookup(Address("other")).trusted and not lookup(Address("other"), trusted=False).trusted
    assert not lookup(Address("unknown")).trusted


INJECTOR = """
import sys, threading, time, rpyc
agent = sys.modules['_xrpyc_agents'].agents[{key!r}]
def inject():
    time.sleep(1.0)  # the cell is over by then
    for _ in range(3):
        rpyc.async_(agent._send)((("stdout", "INJECTED\\n"), ("display", ((("text/plain", "INJECTED"),), None, False))))
    rpyc.async_(agent._ask)("INJECTED password: ", True)
threading.Thread(target=inject, daemon=True).start()
"""


def drain_iopub(running: RunningKernel, quiet: float = 1.0) -> list[dict[str, Any]]:
    messages = []
    while True:
        try:
            messages.append(running.kc.get_iopub_msg(timeout=quiet))
        except queue.Empty:
            return messages


def test_a_device_cannot_publish_or_prompt_between_cells() -> None:
    with stock_rpyc_classic() as port, kernel(port) as running:
        # This kernel's key on the device: the only agent there.
        key = running.run("import sys\nlist(sys.modules['_xrpyc_agents'].agents)[0]").result.strip("'")
        assert running.run(INJECTOR.format(key=key)).status == "ok"
        time.sleep(2.0)  # the device sends while the kernel is idle; the kernel reads it when it next polls
        # A completion makes the kernel serve the device's connection...
        running.kc.complete("sy", 2)
        reply = running.kc.get_shell_msg(timeout=30)
        assert reply["msg_type"] == "complete_reply"
        # ... and so does the next cell (checking that the link is alive).
        after = running.run("print('mine')")
        assert after.stream() == "mine\n" and after.status == "ok"
        leaked = [m for m in drain_iopub(running) + after.messages if "INJECTED" in json.dumps(m["content"])]
        assert leaked == []
        assert not running.kc.stdin_channel.msg_ready()


# -- the filter itself, in-process ------------------------------------------------------------

SAFE_MARKDOWN = "**bold**, metadata: [a](https://example.org) ![p](data:image/png;base64,AA==)"


@pytest.mark.parametrize(
    ("mime", "value", "kept"),
    [
        ("text/plain", "<script>x</script>", "<script>x</script>"),  # text is shown as text
        ("text/latex", r"$x^2$", r"$x^2$"),
        ("application/json", '{"a": [1]}', {"a": [1]}),
        ("image/png", b"\x89PNG", "iVBORw=="),
        ("image/png", "iVBO\nRw==", "iVBO\nRw=="),
        ("image/png", 'x" onerror="alert(1)', None),
        ("application/javascript", "alert(1)", None),
        ("application/x-javascript", "alert(1)", None),
        ("application/ecmascript", "alert(1)", None),
        ("text/vnd.custom-thing", "?", None),
        ("application/vnd.vegalite.v5+json", "{}", None),
        ("application/pdf", b"%PDF", None),
        ("text/markdown", "**bold**, a < b", None),
        ("text/markdown", "[a](jav&#x61;script:alert(1))", None),
        ("text/markdown", "[a](java\\script:alert(1))", None),
        ("text/markdown", SAFE_MARKDOWN, SAFE_MARKDOWN),
        ("text/html", "<b onclick=alert(1)>b</b>", "<b>b</b>"),
        ("text/html", "<a href='  java&#9;script:alert(1)'>a</a>", '<a rel="noopener noreferrer">a</a>'),
        ("text/html", "<a href='data:text/html,<script>alert(1)</script>'>a</a>", '<a rel="noopener noreferrer">a</a>'),
        ("text/html", "<img src='data:image/png;base64,AA=='>", '<img src="data:image/png;base64,AA==">'),
        ("text/html", "<div style='position:fixed;top:0;color:red;background-image:url(http://x/)'>d</div>",
         '<div style="color:red">d</div>'),
        ("text/html", "<object data=x></object><embed src=x><base href=x><link rel=stylesheet href=x>t", "t"),
        ("text/html", "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>", ...),
        ("text/html", "<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>", ...),
        ("text/html", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ...),
        ("image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'><title><![CDATA[><img src=x onerror=alert(1)>]]>"
         "</title></svg>",
         '<svg xmlns="http://www.w3.org/2000/svg"><title>&gt;&lt;img src=x onerror=alert(1)&gt;</title></svg>'),
        ("image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg' xmlns:x='http://www.w3.org/1999/xlink'>"
         "<a x:href='javascript:alert(1)'><rect/></a><use x:href='data:image/svg+xml,x'/><animate attributeName='href'"
         " to='javascript:alert(1)'/><foreignObject><p xmlns='http://www.w3.org/1999/xhtml'>x</p></foreignObject>"
         "<image x:href='data:image/png;base64,AA=='/></svg>", ...),
        ("image/svg+xml", "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><svg>&e;</svg>", None),
        ("image/svg+xml", "<html><script>alert(1)</script></html>", None),
    ],
)
def test_what_an_untrusted_device_may_show(mime: str, value: Any, kept: Any) -> None:
    data, removed = publishable(((mime, value),), trusted=False)
    if kept is ...:  # kept in part: whatever remains is inert
        assert_inert(data)
        assert "alert" not in json.dumps(data) and "passwd" not in json.dumps(data)
    else:
        assert data.get(mime) == kept
        if kept is None:
            assert removed  # for the note
        elif kept == value:
            assert not removed


def test_trusted_bundles_only_change_encoding() -> None:
    bundle = (("application/javascript", "alert(1)"), ("image/png", b"\x89PNG"), ("application/json", "[1]"))
    assert publishable(bundle, trusted=True) == (
        {"application/javascript": "alert(1)", "image/png": "iVBORw==", "application/json": [1]},
        [],
    )


def test_malformed_entries_are_dropped_not_raised() -> None:
    bundle = (("text/plain", "ok"), (3, "x"), ("text/html", None), "junk", ("application/json", "{"))
    data, removed = publishable(bundle, trusted=True)
    assert data == {"text/plain": "ok"} and len(removed) == 3


def test_html_survives_what_it_should() -> None:
    assert clean_html("<details open><summary>s</summary><code>x</code></details>") == (
        '<details open=""><summary>s</summary><code>x</code></details>'
    )
