"""Kernels sharing one xrpyc-device with a token: each kernel's cells run in a worker process of its own.

The attacks are what a kernel holding the device token could do while all
kernels' connections were threads of one process: reach another kernel's
namespace through the agents registry, push output or a prompt into its cell.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psutil
import rpyc
from kernel_client import RunningKernel, kernel
from servers import device_process
from test_interrupt import assert_interrupted, interrupt_after_start
from xrpyc.address import Address
from xrpyc.deadline import Attempt
from xrpyc.device.certs import make_certificate
from xrpyc.security import Credentials

from xrpyc import link, session

TOKEN = "workers-test-token"

SNOOP = (
    "import sys\nm = sys.modules.get('_xrpyc_agents')\n"
    "[a.namespace.get('secret') for a in m.agents.values()] if m else []"
)
GC_SNOOP = "import gc\nany(o == 'b-' + 'only' for o in gc.get_objects() if isinstance(o, str))"
# Through the registry, into every other agent's running cell: output and an input() prompt.
INJECT = (
    "import sys, threading\nm = sys.modules.get('_xrpyc_agents')\nhits = 0\n"
    "for a in [a for a in m.agents.values() if a.namespace is not globals()] if m else []:\n"
    "    try:\n"
    "        a._send((('stdout', 'INJECTED-BY-A\\n'),))\n"
    "        hits += 1\n"
    "    except Exception:\n"
    "        pass\n"
    "    try:\n"
    "        threading.Thread(target=a._ask, args=('INJECTED-PROMPT', True), daemon=True).start()\n"
    "    except Exception:\n"
    "        pass\n"
    "hits"
)


def workers(process: subprocess.Popen) -> list[psutil.Process]:
    """The device's processes that serve connections (the zygote has no TCP socket)."""
    found = []
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and child.net_connections("tcp"):
                found.append(child)
    return found


def pid(running: RunningKernel) -> int:
    return int(running.run("import os\nos.getpid()").result)


def test_a_kernel_cannot_reach_another_kernels_namespace() -> None:
    with device_process("--token", TOKEN) as (port, _), kernel(port, XRPYC_TOKEN=TOKEN) as a:
        with kernel(port, XRPYC_TOKEN=TOKEN) as b:
            b.run("secret = 'b-' + 'only'")
            assert b.run(SNOOP).result == "['b-only']"  # B sees its own
            assert a.run(SNOOP).result == "[None]"  # only A's own agent
            assert a.run(GC_SNOOP).result == "False"
            assert pid(a) != pid(b)


def test_a_new_kernels_worker_starts_with_the_agent_compiled_by_the_zygote() -> None:
    # Compiling the device-side modules costs 20-30 ms on a PC, over 100 ms on a board: once per device,
    # not per kernel.
    with device_process("--token", TOKEN) as (port, _):
        address = Address.parse(f"127.0.0.1:{port}")
        attempt = Attempt(10)
        conn = link.open_connection(address, attempt, Credentials(token=TOKEN), uuid.uuid4().hex)
        try:
            found = conn.eval(session._INSTALLED.format(package=session.agent_package(), digest=session.agent_digest()))
            assert found is not None, "the new worker had to compile the agent again"
        finally:
            conn.close()
            attempt.finish()


def test_a_kernel_cannot_write_into_another_kernels_cell() -> None:
    with device_process("--token", TOKEN) as (port, _), kernel(port, XRPYC_TOKEN=TOKEN) as a:
        with kernel(port, XRPYC_TOKEN=TOKEN) as b:
            a.run("1")
            outcome: dict = {}
            victim = threading.Thread(
                target=lambda: outcome.update(b=b.run("import time\nprint('b starts')\ntime.sleep(3)\nprint('b ends')"))
            )
            victim.start()
            time.sleep(1.0)
            hits = a.run(INJECT).result
            victim.join(30)
            result = outcome["b"]
            assert result.status == "ok"
            assert result.stream() == "b starts\nb ends\n"
            assert not result.of_type("input_request")
            assert hits == "0"  # only A's own agent was there


def test_interrupts_and_a_namespace_that_survives_an_abandoned_cell() -> None:
    with device_process("--token", TOKEN) as (port, _), kernel(port, XRPYC_TOKEN=TOKEN) as b:
        b.run("kept = 'still here'")
        before = pid(b)
        content, _, _ = interrupt_after_start(b, "print('started')\nwhile True:\n    pass")
        assert_interrupted(content)
        content, _, _ = interrupt_after_start(b, "import time\nprint('started')\ntime.sleep(600)")
        assert_interrupted(content)
        assert b.run("kept").result == "'still here'"
        assert pid(b) == before


def test_a_departed_kernels_worker_and_slot_are_freed() -> None:
    with device_process("--token", TOKEN, "--max-connections", "2") as (port, process):
        with kernel(port, XRPYC_TOKEN=TOKEN) as b:
            b.run("import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()")
            content, _, _ = interrupt_after_start(b, "import time\nprint('started')\ntime.sleep(600)")
            assert_interrupted(content)
            assert b.run("1").result == "1"
            worker = pid(b)
            assert worker != process.pid and psutil.pid_exists(worker)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(worker) and psutil.Process(worker).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the worker of a departed kernel still runs"
            time.sleep(0.1)
        # Both of B's slots are free again: a new kernel with its two connections gets in.
        with kernel(port, XRPYC_TOKEN=TOKEN) as c:
            assert c.run("1").result == "1"
            assert workers(process) and all(w.pid != worker for w in workers(process))


def read_one_frame(port: int, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while b"\xff\xd9" not in data.partition(b"\xff\xd8")[2]:
            chunk = sock.recv(65536)
            assert chunk, "the MJPEG stream ended before a frame"
            data += chunk
        return data


def test_display_show_in_a_worker_reaches_the_live_view() -> None:
    with device_process("--token", TOKEN, "--mjpeg-port", "auto") as (port, _), kernel(port, XRPYC_TOKEN=TOKEN) as b:
        info = b.run("$device()").stream()
        assert "live view" in info
        view = int(info.split("live view")[1].split(":")[-1].strip(" /\n").split("/")[0])
        b.run("from PIL import Image\nfrom xrpyc.device import display\n"
              "display.show(Image.new('RGB', (64, 48), (255, 0, 0)))")  # fmt: skip
        assert read_one_frame(view)


def test_a_stock_rpyc_client_still_works_without_a_token() -> None:
    with device_process() as (port, _):
        first, second = rpyc.classic.connect("127.0.0.1", port), rpyc.classic.connect("127.0.0.1", port)
        try:
            assert first.eval("1 + 1") == 2
            first.execute("x = 5")
            assert first.eval("x") == 5
            # One trust domain without a token: both connections are served by one process.
            assert first.modules.os.getpid() == second.modules.os.getpid()
        finally:
            first.close()
            second.close()


def test_a_kernel_that_sends_no_session_is_still_served() -> None:
    """Kernels from before sessions prove the token over the whole challenge and send no session."""
    import hashlib
    import hmac

    from rpyc.core.stream import SocketStream
    from rpyc.utils.factory import connect_stream

    with device_process("--token", TOKEN) as (port, _):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        challenge = sock.recv(256)  # the whole line: the device waits for our answer
        assert challenge.startswith(b"XRPYC-AUTH2 ") and challenge.endswith(b"\n")
        offer = challenge[len(b"XRPYC-AUTH2 ") :].strip()
        proof = hmac.new(TOKEN.encode(), b"kernel:" + offer, hashlib.sha256).hexdigest().encode()
        sock.sendall(proof + b" " + b"ab" * 16 + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            reply += sock.recv(1)
        assert reply.startswith(b"XRPYC-OK ")
        conn = connect_stream(SocketStream(sock))
        try:
            assert conn.root.eval("6 * 7") == 42
        finally:
            conn.close()


def test_over_tls_each_kernel_has_its_worker_and_large_messages_pass_the_relay(tmp_path: Path) -> None:
    # The certificate command itself is tested in test_security.py.
    cert, key = make_certificate("localhost", ["127.0.0.1"], tmp_path)
    connect = f'$connect("127.0.0.1", {{port}}, token="{TOKEN}", tls="{cert}")\n'
    with device_process("--certfile", str(cert), "--keyfile", str(key), "--token", TOKEN) as (port, process):
        with kernel(port) as a, kernel(port) as b:
            b.run(connect.format(port=port) + "secret = 'b-' + 'only'")
            assert a.run(connect.format(port=port) + SNOOP).result == "[None]"
            assert pid(a) != pid(b) and process.pid not in (pid(a), pid(b))
            big = b.run("data = bytes(range(256)) * 20000\nprint(len(data.hex()))\nlen(data)")
            assert big.stream() == "10240000\n" and big.result == "5120000"
            content, _, _ = interrupt_after_start(b, "print('started')\nwhile True:\n    pass")
            assert_interrupted(content)
            assert b.run("secret").result == "'b-only'"
