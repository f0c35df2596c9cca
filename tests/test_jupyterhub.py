"""A class on a real JupyterHub: three students, each with a board of their own, then the idle culler.

JupyterHub runs examples/classroom/jupyterhub_config.py (the file docs/classroom.md shows) as it is, plus a
second config file (TEST_CONFIG) that changes only what one Unix user on one test machine needs: DummyAuthenticator
and SimpleLocalProcessSpawner (all students are this user: no isolation between them, see docs/classroom.md),
`--allow-root` when that user is root, loopback ports, the proxy from build/node_modules (`make test` installs it
from npm), activity reported every second instead of every 5 minutes (the timeouts are seconds here), and a
service token for the test, which plays the teacher through the Hub's REST API. Each student's kernel is driven
as JupyterLab does: the single-user server's kernels REST API and its websocket, with that student's own API token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from jupyter_client.session import Session
from servers import BIN, device_process, free_port, stop
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "classroom" / "jupyterhub_config.py"
DOC = ROOT / "docs" / "classroom.md"
# JupyterHub's proxy: what `make test` installs from npm, else one on PATH (conda-forge's jupyterhub brings it).
LOCAL_PROXY = ROOT / "build" / "node_modules" / ".bin" / "configurable-http-proxy"
PROXY = str(LOCAL_PROXY) if LOCAL_PROXY.exists() else shutil.which("configurable-http-proxy")
STUDENTS = ("ada", "alan", "barbara")
# s: kernels are culled first (idle, no websocket), then servers; long enough for the cells below
KERNEL_IDLE_TIMEOUT, IDLE_TIMEOUT = 3, 10
DEADLINE = 45.0  # s for any one thing to happen (a server to start, the culler to come): "does not hang"


TEST_CONFIG = """\
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.Spawner.args = [*c.Spawner.args, *{args!r}]  # a root test machine: the one user is root
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
# Activity as it happens (servers report every 1 s, not 300), so that the culler sees the cells ran.
c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] = "1"
c.JupyterHub.last_activity_interval = 1
c.JupyterHub.services.append({{"name": "teacher", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{
        "name": "teacher",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens"],
        "services": ["teacher"],
    }}
)
"""


@dataclass
class Board:
    port: int
    process: subprocess.Popen
    token_file: Path


@contextlib.contextmanager
def student_boards(directory: Path) -> Iterator[dict[str, Board]]:
    """An `xrpyc-device` per student on loopback, each with its own token in a file of mode 600."""
    with contextlib.ExitStack() as stack:
        result = {}
        for name in STUDENTS:
            token_file = directory / f"{name}.token"
            token_file.write_text(secrets.token_urlsafe(32) + "\n")
            token_file.chmod(0o600)
            port, process = stack.enter_context(device_process("--token-file", str(token_file)))
            result[name] = Board(port, process, token_file)
        yield result


@dataclass
class Hub:
    url: str
    token: str
    process: subprocess.Popen

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs)


def wait_until(what: str, done: Any, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if result := done():
            return result
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not within {deadline} s")


@contextlib.contextmanager
def hub(directory: Path, boards: dict[str, Board]) -> Iterator[Hub]:
    """JupyterHub on loopback with the classroom config; stopped by PID at the end, with every process it
    started (proxy, services, single-user servers, kernels) that is still there."""
    classroom = directory / "classroom.json"
    students = {name: {"device": f"127.0.0.1:{b.port}", "token_file": str(b.token_file)} for name, b in boards.items()}
    timeouts = {"idle_timeout": IDLE_TIMEOUT, "kernel_idle_timeout": KERNEL_IDLE_TIMEOUT}
    classroom.write_text(json.dumps({**timeouts, "teachers": [], "students": students}))
    port, token = free_port(), secrets.token_hex(32)
    test_config = directory / "test_config.py"
    test_config.write_text(
        TEST_CONFIG.format(
            config=str(CONFIG),
            homes=str(directory / "home"),
            port=port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            proxy=PROXY,
            token=token,
            args=["--allow-root"] if os.geteuid() == 0 else [],
        )
    )
    # The Hub's own database, cookie secret and proxy token go to its working directory.
    env = dict(os.environ, XRPYC_CLASSROOM=str(classroom), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    with open(directory / "jupyterhub.log", "w") as log:
        process = subprocess.Popen(
            [str(BIN / "jupyterhub"), "-f", str(test_config)], cwd=directory, env=env, stdout=log, stderr=log
        )
    started = Hub(f"http://127.0.0.1:{port}", token, process)
    descendants: dict[int, psutil.Process] = {}
    try:
        wait_until("the Hub answers", lambda: process.poll() is not None or _answers(started))
        assert process.poll() is None, (directory / "jupyterhub.log").read_text()[-3000:]
        yield started
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            descendants = {p.pid: p for p in psutil.Process(process.pid).children(recursive=True)}
        stop(process, timeout=15)
        # Also what the students started that left the Hub's tree (a kernel whose server died is under PID 1).
        descendants.update((p.pid, p) for p in started_by_students(directory / "home"))
        for leftover in descendants.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()


def _answers(started: Hub) -> bool:
    with contextlib.suppress(requests.RequestException):
        return started.api("GET", "/").ok
    return False


def start_server(started: Hub, name: str) -> str:
    """Start `name`'s server through the Hub's REST API, wait until it is ready; returns an API token of theirs."""
    response = started.api("POST", f"/users/{name}/server")
    assert response.status_code in (201, 202), response.text
    wait_until(f"{name}'s server is ready", lambda: started.api("GET", f"/users/{name}").json()["servers"][""]["ready"])
    response = started.api("POST", f"/users/{name}/tokens", json={"note": "test_jupyterhub"})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def server_process(started: Hub, name: str) -> psutil.Process:
    """The single-user server of `name`, by the PID in its spawner's state."""
    return psutil.Process(started.api("GET", f"/users/{name}").json()["servers"][""]["state"]["pid"])


async def run_cells(url: str, token: str, kernel_id: str, *cells: str) -> list[tuple[str | None, str]]:
    """(text/plain result, stderr and error text) of each cell, run one after the other through one connection to
    the server's kernel websocket (as a notebook tab does)."""
    session = Session()
    request = HTTPRequest(
        f"{url.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels?session_id={session.session}",
        headers={"Authorization": f"token {token}"},
    )
    socket = await websocket_connect(request)
    outcomes = []
    try:
        for code in cells:
            message = session.msg("execute_request", {"code": code, "silent": False, "store_history": True})
            socket.write_message(json.dumps({**message, "channel": "shell"}, default=str))
            msg_id = message["header"]["msg_id"]
            result, error, replied, idle = None, [], False, False
            while not (replied and idle):
                raw = await asyncio.wait_for(socket.read_message(), DEADLINE)
                assert raw is not None, "the kernel websocket closed"
                reply = json.loads(raw)
                if reply["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = reply["msg_type"], reply["content"]
                if kind == "stream" and content["name"] == "stderr":
                    error.append(content["text"])
                elif kind == "execute_result":
                    result = content["data"]["text/plain"]
                elif kind == "error":
                    error.append(f"{content['ename']}: {content['evalue']}")
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
            outcomes.append((result, "".join(error)))
        return outcomes
    finally:
        socket.close()


def test_the_doc_shows_the_config_the_hub_runs() -> None:
    assert f"```python\n{CONFIG.read_text()}```" in DOC.read_text()


@pytest.mark.timeout(150)
@pytest.mark.skipif(PROXY is None, reason="no configurable-http-proxy: `make test` installs it from npm")
def test_each_student_runs_on_their_own_board_until_the_culler_stops_them(tmp_path: Path) -> None:
    with student_boards(tmp_path) as board_of, hub(tmp_path, board_of) as started:
        listed = {user["name"] for user in started.api("GET", "/users").json()}
        assert set(STUDENTS) <= listed  # from the class list: allowed_users

        # One student after the other, each from the start of their server to their last cell without a pause:
        # the idle timeouts here are seconds, and a student who waits is culled.
        servers: dict[str, psutil.Process] = {}
        kernels: dict[str, psutil.Process] = {}
        workers: dict[str, psutil.Process] = {}  # each student's worker process on their board
        for name in STUDENTS:
            token = start_server(started, name)
            servers[name] = server_process(started, name)
            url, auth = f"{started.url}/user/{name}", {"Authorization": f"token {token}"}
            response = requests.post(f"{url}/api/kernels", json={"name": "xrpyc"}, headers=auth, timeout=30)
            assert response.status_code == 201, response.text
            other = STUDENTS[(STUDENTS.index(name) + 1) % len(STUDENTS)]
            (pid, error), (_, refused), (pid_after, _) = asyncio.run(
                run_cells(
                    url,
                    token,
                    response.json()["id"],
                    "import os\nos.getpid()",
                    f'$connect("127.0.0.1:{board_of[other].port}")',
                    "os.getpid()",
                )
            )
            # The cell ran in a process of this student's board, from a kernel of this student's server.
            assert not error, error
            workers[name] = psutil.Process(int(pid))
            assert board_of[name].process.pid in {p.pid for p in workers[name].parents()}
            (kernels[name],) = servers[name].children()
            # Another student's board refuses this student's token, and the kernel stays on its own board.
            assert "refused the token" in refused
            assert pid_after == pid
            # Another student's server refuses this student's API token.
            foreign = requests.get(
                f"{started.url}/user/{other}/api/kernels", headers=auth, timeout=30, allow_redirects=False
            )
            assert foreign.status_code in (302, 403), foreign.status_code

        # Idle kernels are shut down by their servers, and the board workers that served them exit; then the culler
        # (a Hub service from the same config) stops the idle servers. Nothing is left: no kernel, no private device.
        for kind, processes in (("kernel", kernels), ("board worker", workers)):
            for name, process in processes.items():
                wait_until(f"{name}'s {kind} exits", lambda process=process: not _alive(process))
        wait_until(
            "the idle culler stopped every server",
            lambda: not any(started.api("GET", f"/users/{n}").json()["servers"] for n in STUDENTS),
        )
        for name, process in servers.items():
            wait_until(f"{name}'s server exits", lambda process=process: not _alive(process))
        assert not [" ".join(p.cmdline()) for p in started_by_students(tmp_path / "home")]


def _alive(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False


def started_by_students(homes: Path) -> list[psutil.Process]:
    """Processes still running with a student's home under `homes` (SimpleLocalProcessSpawner's HOME, which their
    kernels and private devices inherit), wherever they are in the process tree: an orphan is under PID 1."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if Path(process.environ().get("HOME", "/")).parent == homes and _alive(process):
                found.append(process)
    return found
