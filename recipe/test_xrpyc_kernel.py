"""Smoke test of an installed xrpyc: the kernelspec, then jupyter_kernel_test against a real device.

    python test_xrpyc_kernel.py

Run by the conda recipe's tests (recipe/recipe.yaml) in the test environment, and usable in any
environment where xrpyc is installed (`.venv/bin/python recipe/test_xrpyc_kernel.py`):

1. the kernelspec `xrpyc` is found by jupyter_client, lives in this environment
   (<sys.prefix>/share/jupyter/kernels/xrpyc) and its argv names an executable that exists;
2. an `xrpyc-device` is started on a free loopback port (`--port 0`; it prints
   `READY rpyc://HOST:PORT ...` once it listens) and jupyter_kernel_test's KernelTests run
   against the kernel with XRPYC_DEVICE pointing at it;
3. the device is stopped (SIGTERM, by its process id).

XRPYC_KERNEL_NAME=other tests another kernelspec (then step 1 does not require it to be in this
environment). Exit status 0 when everything passed.
"""

from __future__ import annotations

# jupyter_kernel_test reads its samples from class attributes.
# ruff: noqa: RUF012
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

KERNEL_NAME = os.environ.get("XRPYC_KERNEL_NAME", "xrpyc")
READY = re.compile(r"^READY rpyc://(?P<host>[^\s:]+):(?P<port>\d+)\b")
START_TIMEOUT = 60.0


def check_kernelspec() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    resource_dir = Path(spec.resource_dir).resolve()
    executable = Path(spec.argv[0].replace("{resource_dir}", str(resource_dir))).resolve()
    print(f"kernelspec {KERNEL_NAME}: {resource_dir}")
    print(f"  argv: {spec.argv}")
    print(f"  executable: {executable}")
    assert "{connection_file}" in spec.argv, spec.argv
    assert executable.is_file() and os.access(executable, os.X_OK), f"no executable kernel at {executable}"
    if "XRPYC_KERNEL_NAME" not in os.environ:
        expected = (Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME).resolve()
        assert resource_dir == expected, f"kernelspec in {resource_dir}, expected {expected}"
        assert (resource_dir / "kernel.json").is_file()


def device_command() -> list[str]:
    found = shutil.which("xrpyc-device")
    if found and Path(found).parent.resolve() == Path(sys.executable).parent.resolve():
        command = [found]
    else:  # the same package, run with this environment's Python
        command = [sys.executable, "-m", "xrpyc.device"]
    return [*command, "--host", "127.0.0.1", "--port", "0", "--mjpeg-port", "0"]


def start_device() -> tuple[subprocess.Popen, str]:
    """An xrpyc-device on a free loopback port; returns the process and its HOST:PORT."""
    command = device_command()
    print("starting:", " ".join(command), flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                stop_device(process)
                raise TimeoutError(f"xrpyc-device printed no READY line within {START_TIMEOUT:.0f} s")
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"xrpyc-device exited with status {process.wait()} before READY")
            print("device:", line.rstrip(), flush=True)
            match = READY.match(line)
            if match:
                break
    # Keep reading what it prints so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, f"{match['host']}:{match['port']}"


def stop_device(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def kernel_tests() -> type[unittest.TestCase]:
    import jupyter_kernel_test

    class XrpycSmokeTests(jupyter_kernel_test.KernelTests):
        kernel_name = KERNEL_NAME
        language_name = "python"
        file_extension = ".py"

        code_hello_world = "print('hello, world')"
        code_stderr = "import sys; print('test', file=sys.stderr)"
        code_generate_error = "raise ValueError('boom')"
        code_execute_result = [
            {"code": "6 * 7", "result": "42"},
            {"code": "'x' * 3", "result": "'xxx'"},
        ]
        completion_samples = [{"text": "isinst", "matches": {"isinstance"}}]
        complete_code_samples = ["1", "print('hello, world')", "$device()"]
        incomplete_code_samples = ["def f(x):", "x = (1,"]
        invalid_code_samples = ["1 = 2 = ", "$connect("]
        code_inspect_sample = "zip"
        code_page_something = "zip?"
        code_display_data = [
            {"code": "display('text')", "mime": "text/plain"},
            {"code": "from PIL import Image\ndisplay(Image.new('RGB', (8, 8)))", "mime": "image/png"},
        ]
        code_clear_output = "clear_output()"
        supported_history_operations = ("tail", "range", "search")
        code_history_pattern = "6 ?*"

    return XrpycSmokeTests


def main() -> int:
    check_kernelspec()
    with tempfile.TemporaryDirectory(prefix="xrpyc-smoke-") as tmp:
        # Nothing written to the home directory: connection files in tmp, history in memory.
        os.environ["JUPYTER_RUNTIME_DIR"] = tmp
        os.environ["XRPYC_HISTORY"] = ":memory:"
        device, address = start_device()
        try:
            os.environ["XRPYC_DEVICE"] = address
            suite = unittest.defaultTestLoader.loadTestsFromTestCase(kernel_tests())
            result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
        finally:
            stop_device(device)
    ran = result.testsRun - len(result.skipped)
    print(f"xrpyc smoke test: {ran} passed" if result.wasSuccessful() else "xrpyc smoke test: FAILED", flush=True)
    return 0 if result.wasSuccessful() and ran > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
