"""xrpyc-device's guards against real kernels: tokens, TLS, limits, idle timeouts, safe defaults."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import pytest
from kernel_client import kernel
from servers import BIN, device_process, start_ready_server, stop
from xrpyc.address import Address

from xrpyc import security

TOKEN = "s3cret-classroom-token"


def guarded_device(*options: str) -> contextlib.AbstractContextManager[tuple[int, subprocess.Popen]]:
    """An xrpyc-device with `options`; yields its port and process (stderr captured for the log checks)."""
    return device_process("--log-level", "info", *options, stderr=subprocess.PIPE)


def device_log(process: subprocess.Popen) -> str:
    stop(process)
    return process.stderr.read()


def test_loopback_by_default_and_no_open_bind_without_auth() -> None:
    with guarded_device() as (port, _):
        assert port > 0
    refused = subprocess.run([str(BIN / "xrpyc-device"), "--host", "0.0.0.0", "--port", "0"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 2 and "refusing to serve 0.0.0.0 without authentication" in refused.stderr
    for allowed in (["--token", TOKEN], ["--allow-insecure"]):
        process, _ = start_ready_server([str(BIN / "xrpyc-device"), "--host", "0.0.0.0", "--port", "0",
                                         "--mjpeg-port", "0", *allowed], host="0.0.0.0")  # fmt: skip
        stop(process)


def test_token_accepted_refused_and_never_shown() -> None:
    with guarded_device("--token", TOKEN) as (port, process):
        with kernel(port, XRPYC_TOKEN=TOKEN) as good:
            assert good.run("41 + 1").result == "42"
            with kernel(port, XRPYC_TOKEN="wrong") as bad, kernel(port, XRPYC_TOKEN="") as missing:
                wrong = bad.run("1")
                assert wrong.status == "error" and "refused the token" in wrong.error["evalue"]
                absent = missing.run("1")
                assert absent.status == "error" and "requires a token" in absent.error["evalue"]
                # The refused clients did not disturb the working one.
                assert good.run("'still' + ' here'").result == "'still here'"
            explicit = good.run(f'$connect("127.0.0.1", {port}, token="{TOKEN}")\n6 * 7')
            assert explicit.result == "42" and TOKEN not in str(explicit.messages)
        log = device_log(process)
    assert "refused 127.0.0.1" in log and "wrong token" in log
    assert TOKEN not in log and "wrong" not in log.replace("wrong token", "")


def test_tls_with_a_generated_certificate(tmp_path: Path) -> None:
    made = subprocess.run(
        [str(BIN / "python"), "-m", "xrpyc.device.certs", "--name", "localhost", "--ip", "127.0.0.1",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / "localhost.pem", tmp_path / "localhost.key"
    with guarded_device("--certfile", str(cert), "--keyfile", str(key), "--token", TOKEN) as (port, _):
        with kernel(port) as running:
            trusted = running.run(f'$connect("127.0.0.1", {port}, token="{TOKEN}", tls="{cert}")\n"over tls"')
            assert trusted.result == "'over tls'", trusted.messages
            untrusted = running.run(f'$connect("127.0.0.1", {port}, token="{TOKEN}", tls=True)')
            assert "certificate is not trusted" in untrusted.error["evalue"]
            plain = running.run(f'$connect("127.0.0.1", {port}, token="{TOKEN}")')
            assert plain.status == "error"
            # The TLS connection still works after the failed attempts.
            assert running.run("'ok'").result == "'ok'"


def test_connection_limit_refuses_clearly_and_serves_others() -> None:
    # One kernel holds two connections (cells and interrupts).
    with guarded_device("--max-connections", "2") as (port, _), kernel(port) as first:
        assert first.run("1").result == "1"
        with kernel(port) as second:
            refused = second.run("1")
            assert refused.status == "error" and "busy" in refused.error["evalue"]
        assert first.run("2").result == "2"


def test_idle_connections_time_out_and_the_kernel_reconnects() -> None:
    with guarded_device("--idle-timeout", "1") as (port, _), kernel(port) as running:
        running.run("kept = 'yes'")
        time.sleep(2.5)
        result = running.run("kept")
        assert result.result == "'yes'" and result.stream("stderr") == ""


@pytest.mark.parametrize("options", [["--certfile", "/nonexistent.pem"], ["--keyfile", "k.pem"]])
def test_bad_security_options(options: list[str]) -> None:
    done = subprocess.run([str(BIN / "xrpyc-device"), "--port", "0", *options],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("xrpyc-device: ")


def test_token_file_for_kernel_and_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """XRPYC_TOKEN_FILE in the kernel against `xrpyc-device --token-file`: the token is in no command line."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with guarded_device("--token-file", str(token_file)) as (port, process):
        assert TOKEN not in Path(f"/proc/{process.pid}/cmdline").read_text()
        with kernel(port, XRPYC_TOKEN_FILE=str(token_file)) as good:
            assert good.run("41 + 1").result == "42"
        missing = tmp_path / "missing"
        with kernel(port, XRPYC_TOKEN_FILE=str(missing)) as bad:
            error = bad.run("1").error["evalue"]
            assert f"cannot read the token file {missing} (XRPYC_TOKEN_FILE)" in error, error
    # Readable by others: used, with a warning.
    token_file.chmod(0o644)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("XRPYC_TOKEN", raising=False)
        env.setenv("XRPYC_TOKEN_FILE", str(token_file))
        env.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))  # no devices file
        assert security.lookup(Address("127.0.0.1", 1)).token == TOKEN
        env.setenv("XRPYC_TOKEN", "from-the-environment")  # the variable comes first
        assert security.lookup(Address("127.0.0.1", 1)).token == "from-the-environment"
    assert f"others can read the token file {token_file}" in capsys.readouterr().err


def test_token_help_prefers_the_file() -> None:
    shown = subprocess.run([str(BIN / "xrpyc-device"), "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "prefer --token-file" in " ".join(shown.split())
