"""The manylinux wheel (`make wheel`, dist/) installs and runs where Debian's xeus, libzmq and OpenSSL are not.

It is installed into a clean venv of another CPython minor version than the development one (3.12 from pyenv),
and the protocol tests (test_conformance.py) run against that venv's kernel in a mount namespace where Debian's
libxeus and libzmq are /dev/null: the kernel can only use what the wheel brought. Debian's libcrypto and libssl
stay (the interpreter's own ssl and hashlib modules need them, as any Python's need some OpenSSL): the kernel
must map the wheel's renamed copy of libcrypto, and nothing of the system's but what Python itself loads.
Skipped when dist/ has no such wheel (`make test` does not build it; `make wheel` builds it and runs this).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from servers import stock_rpyc_classic

# pip fetches the wheel's dependencies (PyAV, Pillow, ...) from PyPI: more than the suite's 300 s on a cold cache.
pytestmark = [pytest.mark.wheel, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parent.parent
PYTHON = Path(os.environ.get("XRPYC_WHEEL_PYTHON", "/root/.pyenv/versions/3.12.1/bin/python3"))
SYSTEM_LIBS = Path("/usr/lib/x86_64-linux-gnu")
HIDDEN = ("libxeus.so*", "libzmq.so*")
TEST_DEPENDENCIES = ["pytest>=8", "pytest-timeout", "jupyter_kernel_test>=0.7"]
PIP_TIMEOUT = 600  # s: the wheel's dependencies come from PyPI

# Run by the venv's Python in the namespace: where the kernel's libraries come from, and how long a first cell takes.
PROBE = """
import json, time
from jupyter_client.manager import start_new_kernel
start = time.perf_counter()
km, kc = start_new_kernel(kernel_name="xrpyc")
try:
    reply = kc.execute_interactive("6 * 7", timeout=60, output_hook=lambda message: None)
    first_cell = time.perf_counter() - start
    with open(f"/proc/{km.provisioner.process.pid}/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if ".so" in line and ("xeus" in line or "zmq" in line
                       or "crypto" in line or "_kernel" in line)})
    with open(f"/proc/{km.provisioner.process.pid}/cmdline") as cmdline:
        argv = cmdline.read().split("\\0")[:-1]
    print(json.dumps({"reply": reply["content"], "first_cell": first_cell, "libs": libs, "argv": argv}))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""


def built_wheel() -> Path:
    version = subprocess.run([str(PYTHON), "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    wheels = sorted((REPO / "dist").glob(f"xrpyc-*-cp{version}-cp{version}-manylinux*_x86_64.whl"))
    if not wheels:
        pytest.skip(f"no cp{version} manylinux wheel in dist/: `make wheel` builds it")
    return wheels[-1]


def hiding(command: list[str]) -> list[str]:
    """`command` in a mount namespace of its own where Debian's xeus and zmq libraries are /dev/null."""
    hidden = sorted(path for pattern in HIDDEN for path in SYSTEM_LIBS.glob(pattern) if not path.is_symlink())
    assert hidden, f"none of {HIDDEN} in {SYSTEM_LIBS}"
    mounts = " && ".join(f"mount --bind /dev/null {shlex.quote(str(path))}" for path in hidden)
    return ["unshare", "--mount", "sh", "-c", f'{mounts} && exec "$0" "$@"', *command]


def test_the_wheel_passes_the_protocol_tests_without_debians_libraries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not PYTHON.exists():
        pytest.skip(f"no {PYTHON} (set XRPYC_WHEEL_PYTHON)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a mount namespace")
    wheel = built_wheel()
    venv = tmp_path / "venv"
    subprocess.run([str(PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *TEST_DEPENDENCIES], check=True, timeout=PIP_TIMEOUT)
    started = time.perf_counter()
    subprocess.run([*pip, str(wheel)], check=True, timeout=PIP_TIMEOUT)
    installed = time.perf_counter() - started

    # Only this venv's kernelspec (a user's own xrpyc spec would come first otherwise).
    env = dict(os.environ, JUPYTER_PATH=str(venv / "share" / "jupyter"), XRPYC_HISTORY=":memory:")
    env.pop("PYTHONPATH", None)
    with stock_rpyc_classic() as port:
        probe = subprocess.run(hiding([str(python), "-c", PROBE]), capture_output=True, text=True, timeout=120,
                               cwd=tmp_path, env=dict(env, XRPYC_DEVICE=f"127.0.0.1:{port}"))  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.splitlines()[-1])
    assert found["reply"]["status"] == "ok", found
    assert found["argv"][:3] == [str(python), "-m", "xrpyc"], found  # the shipped spec's "python": jupyter_client's
    # The kernel's xeus, libzmq and libcrypto are the wheel's (xrpyc.libs); of the system's, only the
    # libcrypto that Python's _ssl/_hashlib load (if the kernel imported them).
    libs = found["libs"]
    (module,) = [Path(lib) for lib in libs if Path(lib).name.startswith("_kernel.")]
    assert module.is_relative_to(venv), libs
    wheel_libs = module.parent.parent / "xrpyc.libs"
    for name in ("libxeus", "libzmq", "libcrypto"):
        assert [lib for lib in libs if Path(lib).name.startswith(name + "-") and Path(lib).parent == wheel_libs], libs
    assert all(Path(lib).name == "libcrypto.so.3" for lib in libs if lib.startswith(("/usr/", "/lib/"))), libs

    conformance = subprocess.run(
        hiding([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_conformance.py"]),
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )  # fmt: skip
    assert conformance.returncode == 0, conformance.stdout[-5000:] + conformance.stderr[-3000:]
    summary = conformance.stdout.strip().splitlines()[-1]
    size = wheel.stat().st_size / 1024
    with capsys.disabled():  # the figures the README quotes
        print(f"\n{wheel.name}: {size:.0f} KiB, pip install {installed:.1f} s, "
              f"first cell {found['first_cell'] * 1000:.0f} ms (Debian's libraries hidden); conformance: {summary}")
