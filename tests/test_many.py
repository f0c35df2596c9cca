"""Many kernels on one device, and what a kernel leaves behind when it goes."""

from __future__ import annotations

import contextlib

import psutil
from kernel_client import RunningKernel, kernel
from servers import free_port, stock_rpyc_classic


def device_state(port: int) -> tuple[int, list[str]]:
    """(threads, xrpyc agents) in the device process, seen from a plain rpyc connection."""
    import rpyc

    conn = rpyc.classic.connect("127.0.0.1", port)
    try:
        threads = conn.modules.threading.active_count() - 1  # less this connection's own thread
        agents = conn.eval("sorted(__import__('sys').modules.get('_xrpyc_agents').agents) "
                           "if '_xrpyc_agents' in __import__('sys').modules else []")
        return threads, list(agents)
    finally:
        conn.close()


def collect(running: RunningKernel, msg_id: str) -> tuple[str, str | None]:
    """(stdout, text/plain result) of request `msg_id`, read up to its idle status."""
    stdout, result = [], None
    while True:
        msg = running.kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            stdout.append(content["text"])
        elif kind == "execute_result":
            result = content["data"]["text/plain"]
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(stdout), result


def test_eight_kernels_at_once_on_one_device() -> None:
    with stock_rpyc_classic() as port, contextlib.ExitStack() as stack:
        kernels = [stack.enter_context(kernel(port)) for _ in range(8)]
        # All eight run at once (separate kernel processes); replies are collected after.
        ids = [k.kc.execute(f"me = {i}\nfor i in range(2000):\n    print(me, i)\nme") for i, k in enumerate(kernels)]
        for index, (running, msg_id) in enumerate(zip(kernels, ids)):
            stdout, result = collect(running, msg_id)
            assert result == str(index)
            assert stdout == "".join(f"{index} {i}\n" for i in range(2000))


def test_shutdown_leaves_nothing_on_the_device() -> None:
    with stock_rpyc_classic() as port:
        baseline_threads, _ = device_state(port)
        with kernel(port) as running:
            running.run("import threading\nx = [1] * 1000")
            threads, agents = device_state(port)
            assert len(agents) == 1 and threads > baseline_threads
        threads, agents = device_state(port)
        assert agents == [] and threads == baseline_threads


def test_restart_starts_clean_and_leaves_one_namespace() -> None:
    with stock_rpyc_classic() as port, kernel(port) as running:
        running.run("before_restart = 1")
        running.km.restart_kernel(now=False)
        running.kc.wait_for_ready(timeout=60)
        assert running.run("'before_restart' in globals()").result == "False"
        _, agents = device_state(port)
        assert len(agents) == 1  # the old kernel's namespace went with it


def test_shutdown_stops_the_private_device_without_zombies() -> None:
    with kernel(XRPYC_DEVICE=f"127.0.0.1:{free_port()}") as running:
        running.run("pass")
        kernel_process = psutil.Process(running.pid)
        children = kernel_process.children(recursive=True)
        assert children
    # Stopped and reaped: no process, not even a zombie, is left.
    assert not any(psutil.pid_exists(child.pid) for child in children)
    assert not psutil.pid_exists(kernel_process.pid) or kernel_process.status() != psutil.STATUS_ZOMBIE
