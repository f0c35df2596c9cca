"""The live-camera example in real JupyterLab, in headless Chromium: text, images and live video render.

Starts JupyterLab on 127.0.0.1 (a free port, a token, a temporary copy of examples/ as its root, its own
settings and workspaces directories) and Debian's Chromium (headless, a new empty profile, a free DevTools
port), drives Chromium with Playwright over CDP, runs all cells of 03-live-camera.ipynb on the kernel's
private local device, checks that the `$video("device")` cell shows several distinct frames while the next
cell runs, and saves a screenshot of it to docs/screenshot-live-video.png (when it passes and XRPYC_SCREENSHOT=1).

    .venv/bin/python -m pytest -m browser tests/test_browser.py

Needs /usr/bin/chromium (Debian's `chromium`), jupyterlab and playwright (`pip install jupyterlab playwright`;
Playwright's own browser download is not needed). Everything started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from servers import free_port, stop

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOK = "03-live-camera.ipynb"
SCREENSHOT = ROOT / "docs" / "screenshot-live-video.png"
JPEG_SRC = re.compile(r"^(data:image/jpeg|blob:)")
VIEWPORT = {"width": 1280, "height": 900}
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
# No news, no update check: no toast over the notebook, no request out of the machine.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
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

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
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
    """Until ready() is true; fails at once if the notebook stops running before (a cell's error aborts the rest)."""
    deadline = time.monotonic() + timeout
    while not ready():
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            raise AssertionError(f"a dialog while waiting for {what}: {dialog.first.inner_text()!r}")
        if "[*]:" not in _prompts(page) and not ready():
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


def test_live_video_in_jupyterlab(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    screenshot = tmp_path / SCREENSHOT.name
    with jupyterlab(tmp_path) as lab, chromium(tmp_path) as devtools, sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(devtools)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            _wait_for_kernel(page)
            _hide_left_sidebar(page)
            _run_all_cells(page)

            cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
            printing = cells.filter(has_text='print("running on the device"')
            printed = printing.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
            video_cell = cells.filter(has_text='$video("device"')
            video = video_cell.locator(".jp-OutputArea-output img")
            sleeping = cells.filter(has_text="time.sleep(3)")

            # (a) the text a cell printed on the device (its 3 s loop runs before the video starts).
            _until(page, lambda: "running on the device 2" in " ".join(printed.all_inner_texts()), "printed text")
            # (b) the background video's image: a JPEG in the $video("device") cell's output.
            _until(page, lambda: video.count() and JPEG_SRC.match(video.get_attribute("src") or ""), "video image")
            # The printed lines at the top, the video cell below them.
            printed.first.evaluate("output => output.scrollIntoView({block: 'start'})")

            # (c) live: while the next cell sleeps 3 s, the image keeps changing. Sampled for 2 s or until that
            # cell is done (then $video.stop() comes); the screenshot once the readout line shows the frame rate.
            frames: list[str] = []
            started = time.monotonic()
            while time.monotonic() - started < 2.0:
                frames.append(hashlib.sha1(video.get_attribute("src").encode()).hexdigest())
                if not screenshot.exists() and "fps shown" in video_cell.locator(".jp-OutputArea").inner_text():
                    page.screenshot(path=str(screenshot))
                if re.fullmatch(r"\[\d+\]:", sleeping.locator(".jp-InputArea-prompt").inner_text().strip()):
                    break
                time.sleep(0.2)
            distinct = len(set(frames))
            elapsed = time.monotonic() - started
            assert distinct >= 3, f"{distinct} distinct frames in {len(frames)} samples over {elapsed:.1f} s"
            assert screenshot.exists(), "the video's readout line never showed its frame rate"

            # The notebook runs to the end without an error.
            _until(page, lambda: re.fullmatch(r"\[\d+\]:", _prompts(page)[-1]), "end of the notebook", timeout=30)
            prompts = _prompts(page)
            assert all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts), prompts
            assert not _errors(page), _errors(page)
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
                browser.close()
    if os.environ.get("XRPYC_SCREENSHOT"):  # opt-in: a test run must not change the repository
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, SCREENSHOT)
