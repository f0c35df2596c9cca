"""input() and getpass() in cells on the device, answered through the notebook's stdin channel."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from kernel_client import RunningKernel, kernel
from servers import DEBIAN_RPYC_CLASSIC, stock_rpyc_classic, xrpyc_device


def run_with_stdin(
    running: RunningKernel, code: str, on_request: Callable[[dict[str, Any]], None], timeout: float = 30
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(reply content, output messages, input requests) of `code` run with allow_stdin."""
    requests: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    def stdin_hook(msg: dict[str, Any]) -> None:
        requests.append(msg["content"])
        on_request(msg)

    reply = running.kc.execute_interactive(
        code, allow_stdin=True, stdin_hook=stdin_hook, output_hook=messages.append, timeout=timeout
    )
    outputs = [m for m in messages if m["msg_type"] in ("stream", "execute_result", "error")]
    return reply["content"], outputs, requests


def texts(outputs: list[dict[str, Any]]) -> str:
    return "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")


def test_input_and_getpass_prompt_in_the_notebook(shared_kernel: RunningKernel) -> None:
    answers = iter(["Ada", "s3cret"])
    reply, outputs, requests = run_with_stdin(
        shared_kernel,
        "import getpass\nprint('before')\nname = input('Name? ')\npw = getpass.getpass()\nprint(name, len(pw))",
        lambda _msg: shared_kernel.kc.input(next(answers)),
    )
    assert reply["status"] == "ok", reply
    assert requests == [{"prompt": "Name? ", "password": False}, {"prompt": "Password: ", "password": True}]
    assert texts(outputs) == "before\nAda 6\n"
    # The answer lives on in the device's namespace.
    assert shared_kernel.run("name").result == "'Ada'"


def test_input_without_stdin_is_a_clear_error_not_a_hang(shared_kernel: RunningKernel) -> None:
    result = shared_kernel.run("input('x? ')", allow_stdin=False, timeout=10)
    assert result.error["ename"] == "StdinNotImplementedError"
    assert "does not support input requests" in result.error["evalue"]


def test_interrupt_while_waiting_for_input_keeps_the_session(shared_kernel: RunningKernel) -> None:
    shared_kernel.run("kept = 41")

    def interrupt_soon(_msg: dict[str, Any]) -> None:
        threading.Timer(0.3, shared_kernel.km.interrupt_kernel).start()

    reply, outputs, requests = run_with_stdin(
        shared_kernel,
        "try:\n    input('wait> ')\nexcept KeyboardInterrupt:\n    print('stopped')\n    raise",
        interrupt_soon,
    )
    assert requests == [{"prompt": "wait> ", "password": False}]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert texts(outputs) == "stopped\n"
    assert shared_kernel.run("kept + 1").result == "42"
    # The next prompt waits for its own answer: nothing of the interrupt is left over.
    reply, _, requests = run_with_stdin(shared_kernel, "input('again> ')", lambda _m: shared_kernel.kc.input("yes"))
    assert reply["status"] == "ok" and len(requests) == 1


def test_input_in_a_thread_of_the_cell_does_not_prompt(shared_kernel: RunningKernel) -> None:
    # Only a cell's own thread asks the notebook; others keep the device's console
    # (here: the server's stdin, at end of file).
    code = (
        "import threading\nresult = []\n"
        "def ask():\n"
        "    try:\n        result.append(input('thread> '))\n"
        "    except EOFError:\n        result.append('EOF')\n"
        "t = threading.Thread(target=ask); t.start(); t.join(5)\nresult"
    )
    reply, _, requests = run_with_stdin(shared_kernel, code, lambda _m: shared_kernel.kc.input("no"))
    assert reply["status"] == "ok" and requests == []


@pytest.mark.skipif(not DEBIAN_RPYC_CLASSIC.exists(), reason="Debian's python3-rpyc is not installed")
def test_input_on_an_rpyc5_device() -> None:
    with stock_rpyc_classic(DEBIAN_RPYC_CLASSIC) as port, kernel(port) as running:
        reply, outputs, _ = run_with_stdin(running, "print(input('5> ') * 2)", lambda _m: running.kc.input("ab"))
        assert reply["status"] == "ok" and texts(outputs) == "abab\n"


# Longer than rpyc's default sync_request_timeout (30 s), the device's side of
# the input() request: the answer must still arrive.
SLOW_ANSWER = 45


def test_input_waits_as_long_as_the_user_takes() -> None:
    """Answered after 45 s on each kind of device, and interrupted after 35 s: no hidden request timeout.

    All at once (each kernel waits on its own user), so the test takes 45 s, not 3 minutes.
    """
    with contextlib.ExitStack() as stack:
        ports = {
            "xrpyc-device": stack.enter_context(xrpyc_device()),
            "rpyc 6": stack.enter_context(stock_rpyc_classic()),
        }
        if DEBIAN_RPYC_CLASSIC.exists():
            ports["rpyc 5"] = stack.enter_context(stock_rpyc_classic(DEBIAN_RPYC_CLASSIC))
        kernels = {name: stack.enter_context(kernel(port)) for name, port in ports.items()}
        interrupted = stack.enter_context(kernel(ports["rpyc 6"]))
        outcomes: dict[str, Any] = {}

        def answer_late(name: str, running: RunningKernel) -> None:
            outcomes[name] = run_with_stdin(
                running,
                "print(input('slow> ') * 2)",
                lambda _m: threading.Timer(SLOW_ANSWER, running.kc.input, ("ab",)).start(),
                timeout=SLOW_ANSWER + 30,
            )

        def interrupt_late() -> None:
            outcomes["interrupted"] = run_with_stdin(
                interrupted,
                "input('never> ')",
                lambda _m: threading.Timer(SLOW_ANSWER - 10, interrupted.km.interrupt_kernel).start(),
                timeout=SLOW_ANSWER + 30,
            )

        threads = [threading.Thread(target=answer_late, args=item) for item in kernels.items()]
        threads.append(threading.Thread(target=interrupt_late))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SLOW_ANSWER + 60)
        for name in kernels:
            reply, outputs, _ = outcomes[name]
            assert reply["status"] == "ok", (name, reply, outputs)
            assert texts(outputs) == "abab\n", name
        reply, outputs, _ = outcomes["interrupted"]
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (reply, outputs)
        assert interrupted.run("1 + 1").result == "2"
