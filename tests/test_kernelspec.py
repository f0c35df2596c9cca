"""The kernelspec and kernel_info: logos, the protocol version, help links, and language_info.version, which is
the device's Python (a MaixPy3 board runs 3.8 while the kernel runs 3.11), once a cell has connected."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from kernel_client import RunningKernel, kernel
from PIL import Image
from servers import free_port, stock_rpyc_classic

from xrpyc import kernel as xrpyc_kernel

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "xrpyc"
PYENV = Path.home() / ".pyenv" / "versions"
CACHE = Path.home() / ".cache" / "xrpyc-device-pythons"


def kernel_info(running: RunningKernel) -> dict:
    running.kc.kernel_info()
    return running.kc.get_shell_msg(timeout=30)["content"]


def test_the_kernelspec_has_its_logos_and_protocol_version(stock_device: int) -> None:
    spec = json.loads((SPEC_DIR / "kernel.json").read_text())
    with kernel(stock_device) as running:
        assert spec["kernel_protocol_version"] == kernel_info(running)["protocol_version"]
    for size in (32, 64):
        with Image.open(SPEC_DIR / f"logo-{size}x{size}.png") as logo:
            assert logo.size == (size, size) and logo.format == "PNG"
    svg = ElementTree.parse(SPEC_DIR / "logo-svg.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox") == "0 0 64 64"


def test_before_a_device_answers_the_version_is_unknown_and_the_banner_says_so() -> None:
    with kernel(free_port()) as running:  # nothing there: the kernel cannot connect ahead of a cell
        info = kernel_info(running)
        assert info["language_info"]["version"] == ""
        assert xrpyc_kernel.NOT_CONNECTED in info["banner"]
        assert info["help_links"] == [{"text": "xrpyc README ($ commands)", "url": xrpyc_kernel.README}]
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert xrpyc_kernel.README == urls["Documentation"]


def device_python(minor: str) -> Path:
    """A venv of pyenv's CPython `minor` with this kernel's rpyc (cached); skips without that Python or the index."""
    found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"), reverse=True)
    if not found:
        pytest.skip(f"no CPython {minor} in {PYENV}")
    import rpyc

    target = CACHE / f"{found[0].parent.parent.name}-rpyc-{rpyc.__version__}"
    if not (target / "bin" / "rpyc_classic").exists():
        subprocess.run([str(found[0]), "-m", "venv", "--clear", str(target)], check=True, timeout=300)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", f"rpyc=={rpyc.__version__}"]
        installed = subprocess.run(pip, capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            pytest.skip(f"rpyc {rpyc.__version__} for Python {minor}: {installed.stderr[-300:]}")
    return target / "bin" / "rpyc_classic"


@contextlib.contextmanager
def board_like_device(minor: str = "3.8") -> Iterator[int]:
    """A stock rpyc classic server on another Python, as on a MaixPy3 board (3.8)."""
    with stock_rpyc_classic(device_python(minor)) as port:
        yield port


def test_after_a_cell_language_info_is_the_devices_python() -> None:
    with board_like_device() as port, kernel(port) as running:
        device_version = running.run("import platform; platform.python_version()").result.strip("'")
        assert device_version.startswith("3.8.") and device_version != "{}.{}.{}".format(*sys.version_info[:3])
        info = kernel_info(running)
        assert info["language_info"]["version"] == device_version
        assert f"Cells run on Python {device_version} at 127.0.0.1:{port}." in info["banner"]
        assert {"text": "Python 3.8", "url": "https://docs.python.org/3.8/"} in info["help_links"]


def test_a_device_that_lies_about_its_version_gets_none() -> None:
    """Its answer goes into notebook metadata and a link: anything but a version number is dropped."""
    lie = "<img src=x onerror=alert(1)>" * 1000
    # The device's installed agent module, its connect() replaced by one that answers with that lie for the version.
    plant = (
        "import sys\n"
        "agent = sys.modules[type(next(iter(sys.modules['_xrpyc_agents'].agents.values()))).__module__]\n"
        "_real = agent.connect\n"
        f"agent.connect = lambda *args: _real(*args)[:7] + ({lie!r},)"
    )
    with board_like_device() as port, kernel(port) as running:
        assert running.run(plant).status == "ok"
        assert running.run(f'$connect("127.0.0.1:{port}")').status == "ok"  # a new connection asks again
        info = kernel_info(running)
        assert info["language_info"]["version"] == "" and xrpyc_kernel.NOT_CONNECTED in info["banner"]
        assert len(info["help_links"]) == 1
