"""Attacks on the way a kernel reaches its device, each with what must hold (issue 13, items 4-7).

Another local user listening where the kernel looks, a device that skips the token, peers that hold
connection slots or guess tokens, peers that talk first or never stop: the kernel keeps its cells to
itself, says clearly what happened, and answers within the deadline it was given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
import rpyc
from kernel_client import kernel
from servers import BIN, device_process, free_port, stock_rpyc_classic, stop, tcp_service, xrpyc_device

TOKEN = "a-token-for-the-boundary-tests"


def private_device(kernel_pid: int) -> psutil.Process:
    """The kernel's private xrpyc-device: the dispatcher, not its forked zygote or workers (same command line)."""
    devices = [
        child
        for child in psutil.Process(kernel_pid).children(recursive=True)
        if "xrpyc.device" in " ".join(child.cmdline())
    ]
    (device,) = [process for process in devices if process.ppid() not in {other.pid for other in devices}]
    return device


def listening_ports(process: psutil.Process) -> set[int]:
    return {c.laddr.port for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def first_bytes(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1)
        with contextlib.suppress(TimeoutError):
            return sock.recv(64)
    return b""


# -- 4: the private device and the default address ------------------------------------------------


def test_the_private_device_runs_no_code_for_other_local_clients() -> None:
    with kernel(XRPYC_DEVICE=f"127.0.0.1:{free_port()}") as running:
        running.run("secret = 'only mine'")
        ports = listening_ports(private_device(running.pid))  # rpyc, and the MJPEG live view
        # Another local user's process, with rpyc and nothing else: no token, no cells.
        for port in ports:
            with pytest.raises((EOFError, ValueError, OSError)):
                conn = rpyc.classic.connect("127.0.0.1", port)
                conn._config["sync_request_timeout"] = 5
                conn.eval("1")
        assert any(first_bytes(port).startswith(b"XRPYC-AUTH2 ") for port in ports)
        assert running.run("secret").result == "'only mine'"


@contextlib.contextmanager
def server_of_another_user(port: int) -> Iterator[None]:
    """A stock rpyc server run by `nobody` on `port`, as a classmate's process would be."""
    if os.getuid() != 0:
        pytest.skip("needs root to run a server as another user")
    process = subprocess.Popen(
        [str(BIN / "rpyc_classic"), "--host", "127.0.0.1", "--port", str(port), "-q"],
        user="nobody",
        cwd="/",
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield
    finally:
        stop(process)


def test_a_device_of_another_user_on_the_chosen_address_gets_no_cells() -> None:
    port = free_port()
    with server_of_another_user(port), kernel(port) as running:
        refused = running.run("import os\nos.getuid()")
        assert refused.status == "error"
        assert "served by another user (nobody)" in refused.error["evalue"]
        # Chosen explicitly, it is the user's call.
        chosen = running.run(f'$connect("127.0.0.1:{port}")\nimport os\nos.getuid()')
        assert chosen.result == "65534"


def test_a_device_of_another_user_on_the_default_port_is_passed_over() -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 18812), timeout=0.5):
        pytest.skip("something listens on 127.0.0.1:18812 on this machine")
    with server_of_another_user(18812), kernel(XRPYC_DEVICE="") as running:
        first = running.run("import os\nos.getuid()")
        assert first.result == str(os.getuid())
        assert "served by another user, nobody" in first.stream()
        assert private_device(running.pid).pid


def test_the_first_cell_says_where_it_ran() -> None:
    with kernel(XRPYC_DEVICE="") as running:
        first = running.run("1")
        if "private xrpyc-device" not in first.stream():
            assert "the local default device at 127.0.0.1:18812" in first.stream()
        assert running.run("2").stream() == ""


# -- 5: a kernel with a token ---------------------------------------------------------------------


def test_a_kernel_with_a_token_refuses_a_device_that_does_not_ask_for_it() -> None:
    with stock_rpyc_classic() as port, kernel(port, XRPYC_TOKEN=TOKEN) as running:
        started = time.monotonic()
        refused = running.run("1")
        assert time.monotonic() - started < 4
        assert refused.status == "error"
        assert "did not ask for the token" in refused.error["evalue"]
        assert f'$connect("127.0.0.1:{port}", token="")' in refused.error["evalue"]
        assert running.run(f'$connect("127.0.0.1:{port}", token="")\n"without"').result == "'without'"


def fake_challenger(behaviour: str) -> tuple[socket.socket, threading.Thread]:
    """A service that asks for a token like an xrpyc-device but cannot prove it holds it."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.sendall(b"XRPYC-AUTH2 0123456789abcdef\n")
                conn.recv(256)
                conn.sendall(b"XRPYC-OK " + (b"0" * 64 if behaviour == "forged" else b"") + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_a_device_that_cannot_prove_the_token_gets_no_cells() -> None:
    server, _ = fake_challenger("forged")
    with server, kernel(server.getsockname()[1], XRPYC_TOKEN=TOKEN) as running:
        refused = running.run("1")
        assert refused.status == "error" and "could not prove" in refused.error["evalue"]


# -- 6: connection slots --------------------------------------------------------------------------


def test_interrupted_blocked_cells_give_their_slots_back() -> None:
    # One kernel uses two connections; the device serves 4.
    with device_process("--max-connections", "4") as (port, _):
        with kernel(port) as running:
            running.run("kept = 1")
            for _ in range(4):
                msg_id = running.kc.execute("import time\ntime.sleep(600)")
                time.sleep(0.5)
                running.km.interrupt_kernel()
                reply = running.kc.get_shell_msg(timeout=30)
                assert reply["parent_header"]["msg_id"] == msg_id
                assert reply["content"]["ename"] == "KeyboardInterrupt"
                time.sleep(1.0)  # the device notices the abandoned connection
                after = running.run("kept")
                assert after.result == "1", after.messages
        with kernel(port) as newcomer:
            assert newcomer.run("'served'").result == "'served'"


def test_silent_connections_hold_no_slot_and_are_closed() -> None:
    with device_process("--max-connections", "2") as (port, _):
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        try:
            with kernel(port) as running:
                assert running.run("'in'").result == "'in'"
            for sock in silent:
                sock.settimeout(10)
                assert sock.recv(1) == b""  # closed by the device within its 5 s handshake deadline
        finally:
            for sock in silent:
                sock.close()


def guess(port: int, attempt: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        first = sock.recv(256)
        if not first.startswith(b"XRPYC-AUTH2 "):
            return first
        sock.sendall(attempt.encode() + b" 00\n")
        return sock.recv(256)


def test_token_guessing_slows_down_and_says_so() -> None:
    with device_process("--token", TOKEN) as (port, _):
        answers = []
        started = time.monotonic()
        while time.monotonic() - started < 3:
            answers.append(guess(port, "0" * 64))
        denied = sum(answer.startswith(b"XRPYC-DENIED") for answer in answers)
        assert denied <= 10, f"{denied} guesses in 3 s"
        assert any(b"too many wrong tokens from 127.0.0.1" in answer for answer in answers)


def test_the_connection_limit_says_what_to_do() -> None:
    with device_process("--max-connections", "2") as (port, _), kernel(port) as first:
        assert first.run("1").result == "1"
        with kernel(port) as second:
            refused = second.run("1")
            assert refused.status == "error"
            assert "--max-connections" in refused.error["evalue"] and "shut down" in refused.error["evalue"]


# -- 7: peers that talk first, or too much --------------------------------------------------------

BANNERS = {
    "ssh banner": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
    "0xff flood": b"\xff" * 100_000,
    "4 GB frame": b"\xff\xff\xff\xf0\x00" + b"\x00" * 1000,
}


@pytest.mark.parametrize("payload", BANNERS.values(), ids=BANNERS.keys())
def test_connect_to_a_talking_peer_ends_at_its_deadline(payload: bytes, device: int) -> None:
    with tcp_service(lambda conn: conn.sendall(payload)) as port, kernel(device) as running:
        started = time.monotonic()
        result = running.run(f'$connect("127.0.0.1:{port}", timeout=2)')
        elapsed = time.monotonic() - started
        assert result.status == "error" and "127.0.0.1" in result.error["evalue"]
        assert elapsed < 10, elapsed  # the deadline is 2 s; generous for a loaded machine
        assert running.run("'still here'").result == "'still here'"


def test_interrupt_ends_a_hanging_connect(device: int) -> None:
    with tcp_service(lambda conn: conn.sendall(BANNERS["4 GB frame"])) as port, kernel(device) as running:
        running.run("kept = 'yes'")
        msg_id = running.kc.execute(f'$connect("127.0.0.1:{port}", timeout=60)')
        time.sleep(1.0)
        interrupted = time.monotonic()
        running.km.interrupt_kernel()
        reply = running.kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - interrupted < 5
        info = running.kc.kernel_info(reply=True, timeout=10)
        assert info["content"]["status"] == "ok"
        assert running.run("kept").result == "'yes'"


def test_a_device_flooding_a_connected_kernel_cannot_fill_its_memory(device: int) -> None:
    with xrpyc_device() as port, kernel(port) as running:
        before = psutil.Process(running.pid).memory_info().rss
        flood = running.run("'x' * (270 * 1024 * 1024)")
        assert flood.status == "error" and "more than the kernel takes" in flood.error["evalue"]
        assert psutil.Process(running.pid).memory_info().rss - before < 200 * 1024 * 1024
        assert running.run("'after'").result == "'after'"


def test_a_device_whose_agent_answers_wrongly_gets_a_clear_error() -> None:
    from xrpyc.session import agent_digest, agent_package

    with stock_rpyc_classic() as port:
        planter = rpyc.classic.connect("127.0.0.1", port)
        try:
            # Something on the device put a package of this xrpyc's name and digest there, whose agent's
            # connect() answers garbage.
            planter.execute(
                "import sys, types\n"
                f"package = sys.modules[{agent_package()!r}] = types.ModuleType({agent_package()!r})\n"
                f"package.digest = {agent_digest()!r}\n"
                "package.agent = types.ModuleType('agent')\n"
                "exec('def connect(*args):\\n return 42', vars(package.agent))"
            )
            with kernel(port) as running:
                result = running.run("1")
                assert result.status == "error" and "xrpyc agent answered int" in result.error["evalue"]
                assert running.kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"
        finally:
            planter.close()
