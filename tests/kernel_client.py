"""Driving the built kernel through jupyter_client, as a notebook frontend does."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from jupyter_client.manager import KernelManager, start_new_kernel

TIMEOUT = 60


@dataclass
class Result:
    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m["msg_type"] == msg_type]

    def stream(self, name: str = "stdout") -> str:
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == name)

    @property
    def result(self) -> str | None:
        results = self.of_type("execute_result")
        return results[-1]["data"]["text/plain"] if results else None

    @property
    def error(self) -> dict[str, Any]:
        (error,) = self.of_type("error")
        return error


@dataclass
class RunningKernel:
    km: KernelManager
    kc: Any

    def run(self, code: str, timeout: float = TIMEOUT, **options: Any) -> Result:
        messages: list[dict[str, Any]] = []
        reply = self.kc.execute_interactive(code, output_hook=messages.append, timeout=timeout, **options)
        return Result(reply, [m for m in messages if m["msg_type"] not in ("status", "execute_input")])

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid


@contextlib.contextmanager
def kernel(
    device_port: int | None = None,
    stderr: IO[str] | None = None,
    cwd: str | None = None,
    kernel_name: str = "xrpyc",
    **env: str,
) -> Iterator[RunningKernel]:
    """A running xrpyc kernel (of kernelspec `kernel_name`); XRPYC_DEVICE points at `device_port` when given,
    its stderr to `stderr`, its working directory (the notebook's) `cwd`."""
    environment = dict(os.environ, **env)
    if device_port is not None:
        environment["XRPYC_DEVICE"] = f"127.0.0.1:{device_port}"
    km, kc = start_new_kernel(kernel_name=kernel_name, env=environment, stderr=stderr, cwd=cwd)
    try:
        yield RunningKernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
