"""The core paths against an emulated armv7l Debian device: Debian's Python and rpyc 5.x under qemu.

Run alone with `pytest -m armhf`. The device is ../shared/fixtures/armhf-device (built once, cached).
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator

import pytest
from kernel_client import RunningKernel, kernel
from servers import FIXTURES, start_ready_server, stop
from test_completion import complete, inspect
from test_input import SLOW_ANSWER, run_with_stdin, texts
from test_interrupt import assert_interrupted, interrupt_after_start

pytestmark = pytest.mark.armhf
ARMHF = FIXTURES / "armhf-device"


@pytest.fixture(scope="module")
def armhf_kernel() -> Iterator[RunningKernel]:
    if not ARMHF.exists():
        pytest.skip(f"{ARMHF} is not there (it comes with the project's shared fixtures)")
    build = subprocess.run([str(ARMHF), "build"], capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        pytest.fail(f"armhf-device build failed:\n{build.stdout}\n{build.stderr}")
    process, port = start_ready_server([str(ARMHF), "run", "--port", "0"])
    try:
        with kernel(port) as running:
            yield running
    finally:
        stop(process)


def test_device_is_armv7l_with_rpyc5(armhf_kernel: RunningKernel) -> None:
    info = armhf_kernel.run("$device()").stream()
    assert "armv7l" in info and re.search(r"^rpyc +5\.", info, re.MULTILINE), info


def test_execute_result_and_persistence(armhf_kernel: RunningKernel) -> None:
    armhf_kernel.run("import platform\nmachine = platform.machine()")
    assert armhf_kernel.run("machine").result == "'armv7l'"


def test_streamed_output_in_order(armhf_kernel: RunningKernel) -> None:
    result = armhf_kernel.run("import sys\nfor i in range(3000):\n    print(i)\nprint('end', file=sys.stderr)")
    assert result.stream() == "".join(f"{i}\n" for i in range(3000))
    assert result.stream("stderr") == "end\n"


def test_error_with_device_traceback(armhf_kernel: RunningKernel) -> None:
    result = armhf_kernel.run("def f():\n    return {}['missing']\nf()")
    assert result.error["ename"] == "KeyError"
    trace = "\n".join(result.error["traceback"])
    assert "line 2, in f" in trace and "rpyc" not in trace


def test_syntax_error_from_the_device(armhf_kernel: RunningKernel) -> None:
    assert armhf_kernel.run("x = = 1").error["ename"] == "SyntaxError"


def test_interrupt(armhf_kernel: RunningKernel) -> None:
    armhf_kernel.run("kept = 'yes'")
    content, latency, _ = interrupt_after_start(armhf_kernel, "print('started')\nwhile True:\n    pass")
    assert_interrupted(content)
    assert latency < 1.0
    assert armhf_kernel.run("kept").result == "'yes'"


def test_input_answered_late(armhf_kernel: RunningKernel) -> None:
    """Past the device's 30 s sync_request_timeout, on a board's own rpyc 5.x."""
    reply, outputs, _ = run_with_stdin(
        armhf_kernel,
        "print(input('slow> ') * 2)",
        lambda _m: threading.Timer(SLOW_ANSWER, armhf_kernel.kc.input, ("ab",)).start(),
        timeout=SLOW_ANSWER + 30,
    )
    assert reply["status"] == "ok" and texts(outputs) == "abab\n", (reply, outputs)


def test_image_round_trip(armhf_kernel: RunningKernel) -> None:
    code = (
        "from PIL import Image\nimport io\nimage = Image.new('RGB', (64, 48), (255, 0, 0))\n"
        "buffer = io.BytesIO()\nimage.save(buffer, 'PNG')\ndata = buffer.getvalue()\n"
        "Image.open(io.BytesIO(data)).size, data[:4]"
    )
    assert armhf_kernel.run(code).result == "((64, 48), b'\\x89PNG')"


def test_completion_and_inspection(armhf_kernel: RunningKernel) -> None:
    armhf_kernel.run("import os\ndef greet(name):\n    'Greets.'\n    return name")
    assert complete(armhf_kernel, "os.path.jo")["matches"] == ["join"]
    assert "greet(name)" in inspect(armhf_kernel, "greet(")["data"]["text/plain"]
    (page,) = armhf_kernel.run("greet??").reply["content"]["payload"]
    assert "return name" in page["data"]["text/plain"]


def test_magics_and_shell_commands(armhf_kernel: RunningKernel) -> None:
    from test_magics import TIME_REPORT, TIMEIT_REPORT

    # (qemu-user runs the commands' host binaries: `uname -m` would say x86_64.)
    assert armhf_kernel.run("lines = !echo one; echo two\nlines").result == "['one', 'two']"
    assert TIME_REPORT.fullmatch(armhf_kernel.run("%time 1").stream())
    assert TIMEIT_REPORT.fullmatch(armhf_kernel.run("%timeit -n1 -r2 pass").stream())
