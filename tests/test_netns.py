"""A device behind a link that dies silently (Wi-Fi gone, cable pulled): no RST, no FIN, nothing.

The device runs in a network namespace made by the test, reached over a veth pair; taking the
device's end down drops every packet silently. Needs root and iproute2; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from kernel_client import RunningKernel, kernel
from servers import BIN, start_ready_server, stop
from xrpyc.link import LINK_TIMEOUT

pytestmark = pytest.mark.netns


def ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", "netns", "exec", namespace, "ip", *args] if namespace else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True)


class Link:
    """A network namespace with a device address, joined to this one by a veth pair."""

    def __init__(self) -> None:
        tag = os.getpid() % 250 + 1
        self.namespace = f"xrpyc-test-{os.getpid()}"
        self.host_end, self.device_end = f"xrh{os.getpid()}"[:15], f"xrd{os.getpid()}"[:15]
        self.host_ip, self.device_ip = f"10.251.{tag}.1", f"10.251.{tag}.2"

    def create(self) -> None:
        ip("netns", "add", self.namespace)
        ip("link", "set", "lo", "up", namespace=self.namespace)
        ip("link", "add", self.host_end, "type", "veth", "peer", "name", self.device_end)
        ip("link", "set", self.device_end, "netns", self.namespace)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_end)
        ip("addr", "add", f"{self.device_ip}/30", "dev", self.device_end, namespace=self.namespace)
        self.up(True)

    def up(self, on: bool) -> None:
        state = "up" if on else "down"
        ip("link", "set", self.host_end, state)
        ip("link", "set", self.device_end, state, namespace=self.namespace)

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


@contextlib.contextmanager
def linked_device(*options: str) -> Iterator[tuple[Link, int]]:
    """An xrpyc-device in a network namespace of its own, on a non-loopback address."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    link = Link()
    try:
        link.create()
    except subprocess.CalledProcessError as error:
        link.delete()
        pytest.skip(f"network namespaces are not available here: {error.stderr.decode().strip()}")
    process = None
    try:
        command = ["ip", "netns", "exec", link.namespace, str(BIN / "xrpyc-device"), "--host", link.device_ip,
                   "--port", "0", "--mjpeg-port", "0", *options]  # fmt: skip
        process, port = start_ready_server(command, host=link.device_ip)
        yield link, port
    finally:
        if process is not None:
            stop(process)
        link.delete()


@pytest.fixture
def device_behind_link() -> Iterator[tuple[Link, int]]:
    with linked_device("--allow-insecure") as linked:
        yield linked


def test_token_guarded_device_on_a_network_address() -> None:
    token = "netns-token"
    with linked_device("--token", token) as (link, port):
        address = f"{link.device_ip}:{port}"
        with kernel(XRPYC_DEVICE=address, XRPYC_TOKEN=token) as running:
            assert running.run("import socket\n'device side'").result == "'device side'"
        with kernel(XRPYC_DEVICE=address, XRPYC_TOKEN="") as running:
            assert "requires a token" in running.run("1").error["evalue"]


def wait_for_stream(running: RunningKernel, msg_id: str) -> None:
    while True:
        msg = running.kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return


def test_silently_dead_link_mid_cell_then_back(device_behind_link: tuple[Link, int]) -> None:
    link, port = device_behind_link
    with kernel(XRPYC_DEVICE=f"{link.device_ip}:{port}") as running:
        assert running.run("kept = 'yes'").status == "ok"
        msg_id = running.kc.execute("import time\nprint('running', flush=True)\ntime.sleep(120)")
        wait_for_stream(running, msg_id)
        link.up(False)
        cut = time.monotonic()
        reply = running.kc.get_shell_msg(timeout=LINK_TIMEOUT + 30)["content"]
        detected = time.monotonic() - cut
        print(f"dead link detected after {detected:.1f} s")
        assert reply["status"] == "error" and "lost" in reply["evalue"]
        assert detected < LINK_TIMEOUT + 10
        link.up(True)
        # The device never restarted: reconnecting finds this kernel's namespace.
        back = running.run("kept")
        assert back.result == "'yes'" and back.stream("stderr") == ""


def test_silently_dead_link_while_idle(device_behind_link: tuple[Link, int]) -> None:
    link, port = device_behind_link
    with kernel(XRPYC_DEVICE=f"{link.device_ip}:{port}") as running:
        running.run("kept = 1")
        link.up(False)
        started = time.monotonic()
        result = running.run("kept + 1", timeout=LINK_TIMEOUT + 30)
        assert result.status == "error" and "lost" in result.error["evalue"]
        assert time.monotonic() - started < LINK_TIMEOUT + 10
        link.up(True)
        assert running.run("kept + 1").result == "2"
