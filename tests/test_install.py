"""Kernelspecs: the one pip installs with the package, and those `python -m xrpyc.install` makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import servers
from jupyter_client.manager import start_new_kernel
from kernel_client import kernel


def xrpyc_install(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xrpyc.install", *args], capture_output=True, text=True, timeout=60)


def test_the_package_installs_a_kernelspec_that_survives_copying(
    tmp_path: Path, stock_device: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec pip installs runs `python -m xrpyc` ("python": jupyter_client's own interpreter), so a copy made
    with `jupyter kernelspec install --prefix` elsewhere starts the same kernel."""
    spec_dir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "xrpyc"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"] == ["python", "-m", "xrpyc", "-f", "{connection_file}"]
    assert spec["interrupt_mode"] == "signal" and spec["language"] == "python"
    assert (spec_dir / "logo-64x64.png").is_file()

    jupyter = Path(sys.executable).parent / "jupyter"
    copy = [str(jupyter), "kernelspec", "install", str(spec_dir), "--name", "copied", "--prefix", str(tmp_path)]
    done = subprocess.run(copy, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    with kernel(stock_device, kernel_name="copied") as running:
        result = running.run("import sys; sys.version_info[0]")
        assert result.status == "ok" and result.result == "3", result.reply


def test_a_classroom_kernelspec_runs_on_its_own_device(
    tmp_path: Path, stock_device: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = xrpyc_install("--prefix", str(tmp_path), "--name", "lab-board-3", "--display-name", "xrpyc: lab-board-3",
                         "--env", f"XRPYC_DEVICE=127.0.0.1:{stock_device}")
    assert done.returncode == 0, done.stderr
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "lab-board-3"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "xrpyc: lab-board-3"
    assert spec["env"] == {"XRPYC_DEVICE": f"127.0.0.1:{stock_device}"}
    assert spec["argv"] == [sys.executable, "-m", "xrpyc", "-f", "{connection_file}"]  # this environment's Python

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    monkeypatch.delenv("XRPYC_DEVICE", raising=False)  # the kernelspec's env says where to go
    km, kc = start_new_kernel(kernel_name="lab-board-3")
    try:
        messages: list[dict] = []
        kc.execute_interactive("$device()", output_hook=messages.append, timeout=60)
        text = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
        assert f"address     127.0.0.1:{stock_device}" in text, text
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    done = xrpyc_install("--uninstall", "--prefix", str(tmp_path), "--name", "lab-board-3")
    assert done.returncode == 0 and not spec_dir.exists()
    again = xrpyc_install("--uninstall", "--prefix", str(tmp_path), "--name", "lab-board-3")
    assert again.returncode != 0 and "no kernelspec 'lab-board-3'" in again.stderr


def test_bad_install_arguments_say_what_is_wrong(tmp_path: Path) -> None:
    done = xrpyc_install("--prefix", str(tmp_path), "--env", "NOT A PAIR")
    assert done.returncode == 2 and "expected NAME=VALUE" in done.stderr
    done = xrpyc_install("--user", "--prefix", str(tmp_path))
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_a_token_goes_into_a_private_file_not_into_kernel_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed under umask 000 (the worst case): kernel.json names a mode-600 token file and holds no token;
    a kernel from that spec works with `xrpyc-device --token-file`."""
    token = "classroom-s3cret"
    install = [sys.executable, "-m", "xrpyc.install", "--prefix", str(tmp_path), "--name", "guarded",
               "--env", f"XRPYC_TOKEN={token}"]  # fmt: skip
    done = subprocess.run(["sh", "-c", 'umask 000; exec "$@"', "sh", *install], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "guarded"
    assert token not in (spec_dir / "kernel.json").read_text()
    token_file = spec_dir / "token"
    assert json.loads((spec_dir / "kernel.json").read_text())["env"] == {"XRPYC_TOKEN_FILE": str(token_file)}
    assert token_file.read_text() == token + "\n" and token_file.stat().st_mode & 0o777 == 0o600
    assert spec_dir.stat().st_mode & 0o022 == 0

    device_token = tmp_path / "device-token"
    device_token.write_text(token + "\n")
    with servers.xrpyc_device(0, "--token-file", str(device_token)) as port:
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
        monkeypatch.setenv("XRPYC_DEVICE", f"127.0.0.1:{port}")
        monkeypatch.delenv("XRPYC_TOKEN", raising=False)
        km, kc = start_new_kernel(kernel_name="guarded")
        try:
            reply = kc.execute_interactive("6 * 7", timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    # Installed again (a new token): replaced, still private.
    done = subprocess.run([*install[:-1], "XRPYC_TOKEN=another"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and token_file.read_text() == "another\n"
    assert token_file.stat().st_mode & 0o777 == 0o600
