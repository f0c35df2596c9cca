"""The live-camera example in real JupyterLab, in headless Chromium: text, images and live video render.

Starts JupyterLab on 127.0.0.1 (a free port, a token, a temporary copy of examples/ as its root, its own
settings and workspaces directories) and Debian's Chromium (headless, a new empty profile, a free DevTools
port), drives Chromium with Playwright over CDP, runs all cells of 03-live-camera.ipynb on the kernel's
private local device, checks that the `$video("device")` cell shows several distinct frames while the next
cell runs, and saves a screenshot of it to docs/screenshot-live-video.png (only when the test passes).

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
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import free_port

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
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
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


def _wait_for_kernel(page, timeout: float = 60) -> None:
    """Until the notebook's kernel is idle; picks the xrpyc kernel if JupyterLab asks which one."""
    deadline = time.monotonic() + timeout
    indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            select = dialog.locator("select")
            if select.count():
                select.first.select_option(label="xrpyc")
            dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        elif indicator.count() and indicator.first.get_attribute("data-status") == "idle":
            return
        time.sleep(0.2)
    status = indicator.first.get_attribute("data-status") if indicator.count() else "no indicator"
    raise TimeoutError(f"the kernel is not idle after {timeout} s ({status})")


def _run_all_cells(page) -> None:
    """Run > Run All Cells, from the menu bar."""
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="notebook:run-all-cells"]').click()


def _image_src(image) -> str:
    return image.evaluate("img => img.src")


def test_live_video_in_jupyterlab(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    screenshot = tmp_path / SCREENSHOT.name
    with jupyterlab(tmp_path) as lab, chromium(tmp_path) as devtools, sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(devtools)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
            _wait_for_kernel(page)
            _run_all_cells(page)

            cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
            printing = cells.filter(has_text='print("running on the device"')
            video_cell = cells.filter(has_text='$video("device"')
            sleeping = cells.filter(has_text="time.sleep(3)")
            video = video_cell.locator(".jp-OutputArea-output img")

            # (a) the text a cell printed on the device.
            expect(printing.locator(".jp-OutputArea-output").first).to_contain_text(
                "running on the device 2", timeout=60_000
            )
            # (b) the background video's image, a JPEG in the notebook.
            expect(video).to_have_attribute("src", JPEG_SRC, timeout=60_000)
            video_cell.scroll_into_view_if_needed()
            page.evaluate("cell => cell.scrollIntoView({block: 'center'})", video_cell.element_handle())
            # (c) live: while the next cell sleeps, the image keeps changing.
            expect(sleeping.locator(".jp-InputArea-prompt")).to_contain_text("*", timeout=10_000)
            frames: list[str] = []
            started = time.monotonic()
            while time.monotonic() - started < 2.0:
                frames.append(hashlib.sha1(_image_src(video).encode()).hexdigest())
                if len(frames) == 4:
                    page.screenshot(path=str(screenshot))
                time.sleep(0.25)
            distinct = len(set(frames))
            assert distinct >= 3, f"{distinct} distinct frames in {len(frames)} samples over 2 s"
            assert screenshot.exists()

            # The notebook runs to the end without an error.
            expect(cells.last.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]:"), timeout=60_000)
            _wait_for_kernel(page)
            errors = page.locator('.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            assert errors.count() == 0, errors.all_inner_texts()
        finally:
            with contextlib.suppress(Exception):
                browser.close()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT)
