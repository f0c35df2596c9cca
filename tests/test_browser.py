"""The example notebooks, widgets and many boards in real JupyterLab, in headless Chromium.

Starts JupyterLab on 127.0.0.1 (a free port, a token, a temporary copy of examples/ as its root, its own
settings and workspaces directories) and Debian's Chromium (headless, a new empty profile, a free DevTools
port), both once for the module, and drives Chromium with Playwright over CDP. For each notebook, runs all its
cells on the kernel's private local device and checks that printed text, images and the `$video("device")`
cell's live video (several distinct frames while the next cell runs) are rendered, and that only the cells
meant to fail do. A device's slider (with ipywidgets, and xrpyc's own controls on a 3.8 device without them)
dragged with the mouse while a cell's loop reads it; an $on(all) cell over two xrpyc-devices. With
XRPYC_SCREENSHOT=1, passing tests save docs/screenshot-getting-started.png (01-getting-started.ipynb's run, its
image and video on screen), docs/screenshot-widgets.png and docs/screenshot-boards.png.

    .venv/bin/python -m pytest -m browser tests/test_browser.py
    XRPYC_SCREENSHOT=1 .venv/bin/python -m pytest -m browser tests/test_browser.py -k "started or slider or on_all"

Needs /usr/bin/chromium (Debian's `chromium`), jupyterlab and playwright (`pip install jupyterlab playwright`;
Playwright's own browser download is not needed). Everything started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import BIN, free_port, stock_rpyc_classic, stop, xrpyc_device

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
JPEG_SRC = re.compile(r"^(data:image/jpeg|blob:)")
IMAGE_SRC = re.compile(r"^(data:image/(png|jpeg)|blob:)")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
# No news, no update check: no toast over the notebook, no request out of the machine. All cells attached and
# rendered (JupyterLab's default skips rendering those out of view): what the test reads is current.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("jupyterlab") is None, reason="jupyterlab is missing (pip install jupyterlab)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright is missing (pip install playwright; its browser download is not needed)",
    ),
]


def _tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _descendants(pid: int) -> list:
    import psutil

    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def _stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM by PID, then SIGKILL; the process's descendants (kernels, devices) get the same afterwards."""
    import psutil

    children = _descendants(process.pid)
    stop(process, timeout)
    alive = [child for child in children if child.is_running()]
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def api(self, method: str, path: str, body: object = None) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            data=None if body is None else json.dumps(body).encode(),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for running in self.api("GET", "/api/kernels"):
                with contextlib.suppress(OSError):
                    self.api("DELETE", f"/api/kernels/{running['id']}")


@contextlib.contextmanager
def jupyterlab(workdir: Path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port, serving a copy of examples/; stopped, with its kernels, by PID."""
    root = workdir / "notebooks"
    shutil.copytree(EXAMPLES, root)
    settings = workdir / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    env.pop("XRPYC_DEVICE", None)  # the kernel's own private local device, as for a new user
    log = workdir / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=workdir)
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(OSError):
                lab.api("GET", "/api/status")
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab does not answer on port {port}:\n{_tail(log)}")
            time.sleep(0.2)
        yield lab
    finally:
        lab.shut_down_kernels()
        _stop(process)


@contextlib.contextmanager
def chromium(workdir: Path) -> Iterator[str]:
    """Headless Chromium with a new empty profile; yields its DevTools URL. Stopped by PID."""
    profile = workdir / "chromium-profile"
    profile.mkdir()
    log = workdir / "chromium.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    try:
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active_port.exists() and len(active_port.read_text().split()) >= 2):
            if process.poll() is not None:
                raise RuntimeError(f"Chromium exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Chromium did not open its DevTools port:\n{_tail(log)}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{active_port.read_text().split()[0]}"
    finally:
        _stop(process)
        # Chromium's zygote and helpers are in its session: anything left of it goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _kernel_status(page) -> str:
    """The status bar's "<kernel> | <status>" for the notebook ("No Kernel | Initializing" while it loads)."""
    item = page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')
    return item.first.inner_text().strip() if item.count() else ""


def _wait_for_kernel(page, timeout: float = 60) -> None:
    """Until the notebook's xrpyc kernel is idle; picks the xrpyc kernel if JupyterLab asks which one.

    Not the toolbar's execution indicator: it says idle before the notebook has a kernel at all, and Run All
    then runs nothing (or asks for a kernel).
    """
    deadline = time.monotonic() + timeout
    while _kernel_status(page) != "xrpyc | Idle":
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            select = dialog.locator("select")
            if select.count():
                select.first.select_option(label="xrpyc")
            dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the xrpyc kernel is not idle after {timeout} s: {_kernel_status(page)!r}")
        time.sleep(0.1)


def _prompts(page) -> list[str]:
    cells = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt")
    return [text.strip() for text in cells.all_inner_texts()]


def _until(page, ready, what: str, timeout: float = 60) -> None:
    """Until ready() is true; fails early if the notebook stops running before (a cell's error aborts the rest):
    no cell running or queued and the kernel idle, for a second (not a moment between two cells)."""
    deadline = time.monotonic() + timeout
    stopped_since = None
    while not ready():
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            raise AssertionError(f"a dialog while waiting for {what}: {dialog.first.inner_text()!r}")
        if "[*]:" in _prompts(page) or _kernel_status(page) != "xrpyc | Idle":
            stopped_since = None
        elif stopped_since is None:
            stopped_since = time.monotonic()
        elif time.monotonic() - stopped_since > 1 and not ready():
            raise AssertionError(f"the notebook stopped running before {what}: prompts {_prompts(page)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s: prompts {_prompts(page)}")
        time.sleep(0.1)


def _menu(page, menu: str, command: str) -> None:
    """Clicks menu > item, the item given by its JupyterLab command."""
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]:not(.lm-mod-disabled)').click()


def _run_all_cells(page) -> None:
    """Run > Run All Cells (JupyterLab 4's command runmenu:run-all); until the cells are queued."""
    _menu(page, "Run", "runmenu:run-all")
    deadline = time.monotonic() + 20
    while not any(prompt != "[ ]:" for prompt in _prompts(page)):
        if time.monotonic() > deadline:
            raise AssertionError(f"Run All Cells queued no cell: prompts {_prompts(page)}")
        time.sleep(0.1)


def _errors(page) -> list[str]:
    """Error outputs: rendered as stderr, as are the kernel's own notices ("xrpyc: started a private device ...")."""
    stderr = page.locator(".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [text for text in stderr.all_inner_texts() if not text.startswith("xrpyc: ")]


def _hide_left_sidebar(page) -> None:
    """Collapse the file browser: the notebook gets the whole width."""
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()
        page.locator("#jp-left-stack").wait_for(state="hidden", timeout=5_000)


@dataclass(frozen=True)
class Example:
    """A notebook and what to look for in it; cells are found by a piece of their source."""

    notebook: str
    printing: str  # a cell that prints...
    printed: str  # ...this
    during: str  # the cell that runs while the background video plays
    video: str = '$video("device"'  # the cell whose output plays the device's live view
    image: str | None = None  # a cell whose result is an image
    live_view: str | None = None  # a cell that shows the device's live view in its own output while it runs
    errors: tuple[str, ...] = ()  # what the cells tagged raises-exception print, one each
    screenshot: Path | None = None  # saved with XRPYC_SCREENSHOT=1, taken while the video plays...
    top: str = ""  # ...with this cell's output at the top...
    shot_after: str = ""  # ...once the cell that runs meanwhile has printed this
    viewport: tuple[int, int] = (1280, 900)


NOTEBOOKS = [
    Example(
        "01-getting-started.ipynb",
        printing='print(f"tick {i}")',
        printed="done",
        image="picture = Image.new(",
        during='print("the video plays on',
        errors=("ZeroDivisionError: division by zero",),
        screenshot=ROOT / "docs" / "screenshot-getting-started.png",
        top="picture = Image.new(",
        shot_after="this cell runs 1",
        viewport=(1280, 1110),
    ),
    Example(
        "03-live-camera.ipynb",
        printing='print("running on the device"',
        printed="running on the device 2",
        live_view='print("running on the device"',
        during="time.sleep(3)",
    ),
]

# Counts the distinct pictures an output area shows from now on, whenever they change (not only when the test
# polls, which a loaded machine delays): a hash of each <img> src, kept in the page.
COUNT_FRAMES = """area => {
    const seen = new Set();
    const record = () => {
        const src = area.querySelector("img")?.getAttribute("src") || "";
        let hash = 2166136261;
        for (let i = 0; i < src.length; i++) hash = Math.imul(hash ^ src.charCodeAt(i), 16777619);
        if (src) seen.add(`${src.length}:${hash >>> 0}`);
    };
    record();
    new MutationObserver(record).observe(area, {subtree: true, childList: true, attributes: true});
    window.xrpycFrames = seen;
}"""


@dataclass
class Session:
    lab: Lab
    browser: object  # playwright's Browser


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """JupyterLab and Chromium, started once for the module's notebooks."""
    from playwright.sync_api import sync_playwright

    workdir = tmp_path_factory.mktemp("browser")
    with jupyterlab(workdir) as lab, chromium(workdir) as devtools, sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(devtools)
        try:
            yield Session(lab, browser)
        finally:
            with contextlib.suppress(Exception):
                browser.close()


def _cell(page, source: str):
    return page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has_text=source)


def _done(cell) -> bool:
    return bool(re.fullmatch(r"\[\d+\]:", cell.locator(".jp-InputArea-prompt").inner_text().strip()))


def _run_example(page, example: Example, screenshot: Path) -> None:
    _run_all_cells(page)

    # (a) text a cell printed on the device.
    printed = _cell(page, example.printing).locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']"
    )
    _until(page, lambda: example.printed in " ".join(printed.all_inner_texts()), "printed text")

    # (b) an image the device made, decoded by the browser.
    if example.image:
        image = _cell(page, example.image).locator(".jp-OutputArea-output img")
        _until(page, lambda: image.count() and IMAGE_SRC.match(image.first.get_attribute("src") or ""), "image")
        _until(page, lambda: image.first.evaluate("img => img.complete && img.naturalWidth > 0"), "decoded image")

    # (c) the background video: a JPEG in the $video("device") cell's output, changing while the next cell
    # runs. Frames are counted in the page until that cell is done (then $video.stop() comes); the screenshot
    # once the readout line shows the frame rate and that cell has printed.
    video_cell, during = _cell(page, example.video), _cell(page, example.during)
    video = video_cell.locator(".jp-OutputArea-output img")
    _until(page, lambda: video.count() and JPEG_SRC.match(video.first.get_attribute("src") or ""), "video image")
    video_cell.locator(".jp-OutputArea").first.evaluate(COUNT_FRAMES)
    started, readout = time.monotonic(), False
    while not _done(during) and time.monotonic() - started < 10:
        readout = readout or "fps shown" in video_cell.locator(".jp-OutputArea").inner_text()
        if readout and example.screenshot and not screenshot.exists():
            if example.shot_after in " ".join(during.locator(".jp-OutputArea").all_inner_texts()):
                top = _cell(page, example.top).locator(".jp-Cell-outputWrapper").first
                top.evaluate("output => output.scrollIntoView({block: 'start'})")
                page.screenshot(path=str(screenshot))
        time.sleep(0.1)
    distinct = page.evaluate("window.xrpycFrames.size")
    elapsed = time.monotonic() - started
    assert distinct >= 3, f"{distinct} distinct frames in {elapsed:.1f} s"
    assert readout, "the video's readout line never showed its frame rate while the next cell ran"
    assert screenshot.exists() or not example.screenshot, f"{example.shot_after!r} never printed during the video"

    # (d) the device's live view in a running cell's own output.
    if example.live_view:
        view = _cell(page, example.live_view).locator(".jp-OutputArea-output img")
        _until(page, lambda: view.count() and JPEG_SRC.match(view.first.get_attribute("src") or ""), "live view")

    # The notebook runs to the end; only the cells meant to fail do.
    _until(page, lambda: re.fullmatch(r"\[\d+\]:", _prompts(page)[-1]), "end of the notebook", timeout=30)
    prompts = _prompts(page)
    assert all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts), prompts
    errors = _errors(page)
    assert len(errors) == len(example.errors), errors
    for expected, error in zip(example.errors, errors):
        assert expected in error, errors


@contextlib.contextmanager
def _open_notebook(session: Session, notebook: str, tmp_path: Path, viewport: tuple[int, int] = (1280, 900)):
    """A page with `notebook` open, its xrpyc kernel idle, the file browser collapsed; on a failure, what the page
    and JupyterLab showed is printed. The page is closed and the kernels shut down afterwards: the next test gets
    the machine to itself."""
    lab = session.lab
    width, height = viewport
    context = session.browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()
    try:
        page.set_default_timeout(30_000)
        # A workspace of its own: JupyterLab's default one would reopen the notebooks of the tests before.
        workspace = notebook.removesuffix(".ipynb")
        page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{notebook}?token={lab.token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        _wait_for_kernel(page)
        _hide_left_sidebar(page)
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"screenshot at the failure: {tmp_path / 'failure.png'}; cells' prompts: {_prompts(page)}")
            outputs = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-OutputArea").all_inner_texts()
            print("cells' outputs:", *(text[:2000] for text in outputs), sep="\n")
        print(f"JupyterLab's log ({lab.log}) ends with:\n{_tail(lab.log)}")
        raise
    finally:
        with contextlib.suppress(Exception):
            context.close()
        lab.shut_down_kernels()


def _put_notebook(lab: Lab, name: str, sources: list[str]) -> None:
    """A new notebook of code cells for the xrpyc kernel, in JupyterLab's root."""
    cells = [{"id": f"cell-{i}", "cell_type": "code", "source": source, "metadata": {}, "outputs": [],
              "execution_count": None} for i, source in enumerate(sources)]  # fmt: skip
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "xrpyc", "display_name": "xrpyc"}},
                "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    lab.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook})


def _keep_screenshot(taken: Path, kept: Path | None) -> None:
    """Into docs/ with XRPYC_SCREENSHOT=1 (opt-in: a test run must not change the repository)."""
    if kept and os.environ.get("XRPYC_SCREENSHOT"):
        kept.parent.mkdir(exist_ok=True)
        shutil.copyfile(taken, kept)


@pytest.mark.parametrize("example", NOTEBOOKS, ids=[e.notebook.removesuffix(".ipynb") for e in NOTEBOOKS])
def test_example_in_jupyterlab(example: Example, session: Session, tmp_path: Path) -> None:
    screenshot = tmp_path / "screenshot.png"
    with _open_notebook(session, example.notebook, tmp_path, example.viewport) as page:
        _run_example(page, example, screenshot)
    _keep_screenshot(screenshot, example.screenshot)


# A device's output that runs script wherever a frontend lets it: each way records itself in window.xrpycRan.
RAN = "(window.xrpycRan = (window.xrpycRan || []).concat('{}'))"
# Two outputs: a frontend shows one type of each, the richest (JupyterLab ranks javascript above HTML).
HOSTILE_OUTPUTS = (
    {"application/javascript": RAN.format("javascript")},
    {"text/html": f"<b>kept</b><img src=x onerror=\"{RAN.format('onerror')}\"><script>{RAN.format('script')}</script>"},
)
HOSTILE_CELL = (
    "class Hostile:\n"
    "    def __init__(self, bundle): self.bundle = bundle\n"
    "    def _repr_mimebundle_(self, include=None, exclude=None): return self.bundle\n"
    f"for bundle in {HOSTILE_OUTPUTS!r}: display(Hostile(bundle))"
)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_device_scripts_run_only_from_a_trusted_device(trusted: bool, session: Session, tmp_path: Path) -> None:
    """JupyterLab runs a kernel's scripts: from an untrusted device none arrive; a trusted one's do (which shows
    that the test would see them)."""
    name = f"hostile-{'trusted' if trusted else 'untrusted'}.ipynb"
    with stock_rpyc_classic() as port:
        connect = f'$connect("127.0.0.1:{port}"{", trusted=True" if trusted else ""})'
        _put_notebook(session.lab, name, [connect, HOSTILE_CELL, "'the end'"])
        with _open_notebook(session, name, tmp_path) as page:
            _run_all_cells(page)
            _until(page, lambda: all(re.fullmatch(r"\[\d+\]:", p) for p in _prompts(page)), "end of the notebook")
            kept = _cell(page, "class Hostile").locator(".jp-OutputArea-output b")
            _until(page, lambda: kept.count() and kept.first.inner_text() == "kept", "the device's HTML")
            expected = {"javascript", "onerror", "script"} if trusted else set()
            # The image's error comes when its load fails: give it time.
            _until(page, lambda: set(page.evaluate("window.xrpycRan || []")) == expected, f"scripts run: {expected}",
                   timeout=10)  # fmt: skip
            time.sleep(1)  # nothing more comes
            assert set(page.evaluate("window.xrpycRan || []")) == expected


def _shoot(page, cells: list, path: Path) -> None:
    """A screenshot of the notebook from the first of `cells` to the end of the last (a README picture: small)."""
    cells[0].evaluate("cell => cell.scrollIntoView({block: 'start'})")
    first, last = cells[0].bounding_box(), cells[-1].bounding_box()
    bottom = min(last["y"] + last["height"], page.viewport_size["height"])
    page.screenshot(path=str(path), clip={"x": first["x"], "y": first["y"], "width": first["width"],
                                          "height": bottom - first["y"]})  # fmt: skip


# The widget cells: a slider, a loop that prints each value it reads (until the value has been still for 2 s
# after a change; at most 60 s), and the device moving the slider.
SLIDER_CELL = "import ipywidgets as w\ns = w.IntSlider(value=3, min=0, max=100, description='threshold')\ns"
LOOP_CELL = """import time
seen, changed = s.value, None
print("the loop reads", seen, flush=True)
started = time.time()
while time.time() - started < 60 and (changed is None or time.time() - changed < 2):
    if s.value != seen:
        seen, changed = s.value, time.time()
        print("the loop reads", seen, flush=True)
    time.sleep(0.01)"""
MOVE_CELL = "s.value = 7"


@pytest.fixture(params=["ipywidgets", "fallback"])
def widget_device(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A stock rpyc device with ipywidgets (this venv's Python) or without (pyenv's 3.8: xrpyc's own controls):
    which, and its port."""
    from test_kernelspec import device_python

    program = BIN / "rpyc_classic" if request.param == "ipywidgets" else device_python("3.8")
    with stock_rpyc_classic(program) as port:
        yield request.param, port


def test_a_slider_drives_the_devices_loop(widget_device: tuple[str, int], session: Session, tmp_path: Path) -> None:
    """JupyterLab's widget manager draws the device's slider; dragging it with the mouse changes what a running
    cell's loop on the device reads, and the device setting its value moves the drawn slider."""
    kind, port = widget_device
    name = f"widgets-{kind}.ipynb"
    _put_notebook(session.lab, name, [f'$connect("127.0.0.1:{port}")', SLIDER_CELL, LOOP_CELL, MOVE_CELL])
    with _open_notebook(session, name, tmp_path, viewport=(1000, 720)) as page:
        _run_all_cells(page)
        slider_cell, loop_cell = _cell(page, "w.IntSlider("), _cell(page, "the loop reads")
        move_cell = _cell(page, MOVE_CELL)
        slider = slider_cell.locator(".jp-OutputArea-output .widget-hslider")
        _until(page, lambda: slider.count() > 0 or "Error displaying widget" in slider_cell.inner_text(),
               "the slider drawn")  # fmt: skip
        # The widget manager drew it: no error in its place, no text stand-in (the widget's text/plain).
        assert "Error displaying widget" not in slider_cell.inner_text()
        assert slider_cell.locator(".jp-OutputArea-output").count() == 1
        assert slider_cell.locator(".jp-OutputArea-output[data-mime-type='text/plain']").count() == 0
        assert "IntSlider(" not in slider_cell.locator(".jp-OutputArea").inner_text()
        readout, handle = slider.locator(".widget-readout"), slider.locator(".noUi-handle")
        assert slider.locator(".widget-label").inner_text().strip() == "threshold"
        assert readout.inner_text().strip() == "3"

        def printed() -> list[int]:
            text = " ".join(loop_cell.locator(".jp-OutputArea").all_inner_texts())
            return [int(value) for value in re.findall(r"the loop reads (\d+)", text)]

        _until(page, lambda: printed() == [3], "the loop's first value")
        # Drag the handle to the right, as a hand would: down, several moves, up.
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        start = x
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 60, y, steps=8)
        page.mouse.up()
        dragged = int(readout.inner_text().strip())
        assert dragged > 3, f"the slider did not move: {dragged}"
        _until(page, lambda: printed()[-1:] == [dragged], f"the loop reading {dragged}: {printed()}", timeout=30)
        screenshot = tmp_path / "widgets.png"
        _shoot(page, [slider_cell, loop_cell], screenshot)

        # The device sets it: the drawn slider follows, handle and readout.
        _until(page, lambda: _done(move_cell), "the device's move", timeout=90)
        _until(page, lambda: readout.inner_text().strip() == "7", "the slider at 7", timeout=20)
        _until(page, lambda: handle.bounding_box()["x"] + handle.bounding_box()["width"] / 2 < start + 30,
               "the handle back near the start")  # fmt: skip
        assert _errors(page) == []
    if kind == "ipywidgets":
        _keep_screenshot(screenshot, ROOT / "docs" / "screenshot-widgets.png")


ON_ALL_CELL = """$on(all)
import os, time
for step in range(3):
    print(f"step {step} in process {os.getpid()}", flush=True)
    time.sleep(0.3)"""


def test_on_all_shows_an_area_per_device(session: Session, tmp_path: Path) -> None:
    """An $on(all) cell over two xrpyc-devices: each device's output in its own labelled area, side by side in
    time (both areas exist while they run), each with its own process's lines."""
    with xrpyc_device() as left, xrpyc_device() as right:
        cells = [f'$connect("127.0.0.1:{left}", name="left")', f'$connect("127.0.0.1:{right}", name="right")',
                 "$devices()", ON_ALL_CELL]  # fmt: skip
        _put_notebook(session.lab, "boards.ipynb", cells)
        with _open_notebook(session, "boards.ipynb", tmp_path, viewport=(1000, 720)) as page:
            _run_all_cells(page)
            on_cell = _cell(page, "$on(all)")
            _until(page, lambda: _done(on_cell), "the $on cell's end")
            areas = on_cell.locator(".jp-OutputArea-output[data-mime-type='text/html']")
            _until(page, lambda: areas.count() == 2 and "running" not in " ".join(areas.all_inner_texts()),
                   "both areas done", timeout=10)  # fmt: skip
            shown = {}
            for text in areas.all_inner_texts():
                label, *lines = text.strip().splitlines()
                shown[label.split()[0]] = (label, lines)
            assert set(shown) == {"left", "right"}, shown
            pids = set()
            for name, port in (("left", left), ("right", right)):
                label, lines = shown[name]
                assert f"127.0.0.1:{port}" in label and "ok" in label, label
                assert [re.sub(r"\d+$", "N", line) for line in lines] == [f"step {i} in process N" for i in range(3)]
                pids.add(lines[0].split()[-1])
            assert len(pids) == 2, "both areas show the same device"
            assert _errors(page) == []
            screenshot = tmp_path / "boards.png"
            _shoot(page, [_cell(page, "$devices()"), on_cell], screenshot)
    _keep_screenshot(screenshot, ROOT / "docs" / "screenshot-boards.png")
