"""No orphans: a kernel whose Jupyter server was killed exits, and its private device with it.

A real `jupyter server` on loopback (with a token) starts the kernel through its REST API, as
JupyterLab does; a cell makes the kernel start its private device (nothing listens on the
default address). Then the server is killed with SIGKILL: it cannot shut its kernels down, so
only the kernel itself can notice (it watches JPY_PARENT_PID, as ipykernel does).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
from jupyter_client import BlockingKernelClient
from kernel_client import kernel
from servers import BIN, free_port, stop, wait_for_port

GONE_WITHIN = 30.0  # seconds; the kernel polls its parent every second


@contextlib.contextmanager
def jupyter_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, str, Path]]:
    """A `jupyter server` on 127.0.0.1; yields it, its URL, its token and its runtime directory."""
    port, token, runtime = free_port(), secrets.token_hex(16), tmp_path / "runtime"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        # Nothing listens there: the kernel's first cell starts its private device.
        "XRPYC_DEVICE": f"127.0.0.1:{free_port()}",
    }
    command = [str(BIN / "jupyter-server"), "--ip=127.0.0.1", f"--port={port}", "--no-browser", "--allow-root",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, server, timeout=60)
        yield server, f"http://127.0.0.1:{port}", token, runtime
    finally:
        stop(server)


def rest(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def gone(process: psutil.Process) -> bool:
    """Exited (a zombie waiting for a reaper counts: it runs nothing and holds no port)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process]) -> None:
    """All of `processes` exit within GONE_WITHIN seconds (else they are killed and the test fails)."""
    deadline = time.monotonic() + GONE_WITHIN
    left = processes
    while left and time.monotonic() < deadline:
        left = [process for process in left if not gone(process)]
        time.sleep(0.2)
    try:
        assert left == [], f"still running {GONE_WITHIN} s later: {left}"
    finally:
        for process in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def test_a_killed_server_leaves_no_kernel_and_no_private_device(tmp_path: Path) -> None:
    with jupyter_server(tmp_path) as (server, url, token, runtime):
        kernel_id = rest(f"{url}/api/kernels", token, "POST", {"name": "xrpyc"})["id"]
        client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive("import os\nos.getpid()", timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
        (kernel_process,) = psutil.Process(server.pid).children()
        assert rest(f"{url}/api/kernels/{kernel_id}", token)["name"] == "xrpyc"
        device = kernel_process.children(recursive=True)  # the private device, its zygote and this kernel's worker
        assert any("xrpyc.device" in " ".join(process.cmdline()) for process in device), device

        server.send_signal(signal.SIGKILL)
        server.wait()
        wait_gone([kernel_process, *device])


def test_a_killed_kernel_leaves_no_private_device() -> None:
    """The kernel itself killed (it can stop nothing): its device goes with it (PR_SET_PDEATHSIG)."""
    with kernel(XRPYC_DEVICE=f"127.0.0.1:{free_port()}") as running:
        assert running.run("pass").status == "ok"
        device = psutil.Process(running.pid).children(recursive=True)
        assert any("xrpyc.device" in " ".join(process.cmdline()) for process in device), device
        os.kill(running.pid, signal.SIGKILL)
        wait_gone(device)
