"""A device's credentials, from $connect's arguments, XRPYC_TOKEN, XRPYC_TOKEN_FILE, or the devices file.

XRPYC_TOKEN_FILE names a file whose first line is the token (keep it mode
600): unlike XRPYC_TOKEN, the token then appears in no kernel.json and no
process environment. `python -m xrpyc.install --env XRPYC_TOKEN=...` writes one.

The devices file is `xrpyc_devices.json` in Jupyter's config directory
(`jupyter --config-dir`), so that tokens stay out of notebooks:

    {"devices": {"192.168.1.20": {"token": "...", "tls": true, "cafile": "/path/board.pem"},
                 "lab-board-3:18812": {"token": "...", "trusted": true}}}

Keys are "host:port" or "host". Every field is optional. "trusted": the device's
output is shown as sent, scripts and all (sanitize.py); by default it is not.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .address import Address

DEVICES_FILE = "xrpyc_devices.json"


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    tls: bool = False
    cafile: str | None = None  # trust this certificate (a device's self-signed one) or CA; else the system's
    certfile: str | None = None  # a client certificate, for devices that require one
    keyfile: str | None = None
    trusted: bool = False  # its output may run script in the browser (sanitize.py)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


def devices_file() -> Path:
    # jupyter_core.paths.jupyter_config_dir() says the same, for 2.4 MiB of imports in the kernel.
    return Path(os.environ.get("JUPYTER_CONFIG_DIR") or Path.home() / ".jupyter") / DEVICES_FILE


def _entry(address: Address) -> dict[str, Any]:
    path = devices_file()
    try:
        devices = json.loads(path.read_text(encoding="utf-8")).get("devices", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    entry = devices.get(f"{address.host}:{address.port}") or devices.get(address.host) or {}
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: the entry for {address} must be an object")
    return entry


def _token_file() -> str | None:
    """The first line of the file XRPYC_TOKEN_FILE names, if it is set; ValueError when unreadable."""
    path = os.environ.get("XRPYC_TOKEN_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as token_file:
            mode = os.fstat(token_file.fileno()).st_mode
            token = token_file.readline().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the token file {path} (XRPYC_TOKEN_FILE): {error}") from None
    if mode & 0o077:
        print(f"xrpyc: warning: others can read the token file {path}; chmod 600 it", file=sys.stderr)
    return token or None


def lookup(
    address: Address, token: str | None = None, tls: bool | str | None = None, trusted: bool | None = None
) -> Credentials:
    """Credentials for `address`: explicit arguments first, then XRPYC_TOKEN, XRPYC_TOKEN_FILE, the devices file.

    `tls` may be True, or the path of a certificate to trust (a device's self-signed one).
    `token=""` says this device takes no token, whatever XRPYC_TOKEN or the file say.
    """
    entry = _entry(address)
    use_tls = entry.get("tls", False) if tls is None else bool(tls)
    cafile = tls if isinstance(tls, str) else entry.get("cafile")
    if trusted is None:
        trusted = entry.get("trusted", False)
        if not isinstance(trusted, bool):
            raise ValueError(f"{devices_file()}: \"trusted\" for {address} must be true or false")
    return Credentials(
        token=token if token is not None else os.environ.get("XRPYC_TOKEN") or _token_file() or entry.get("token"),
        tls=bool(use_tls or cafile),
        cafile=cafile,
        certfile=entry.get("certfile"),
        keyfile=entry.get("keyfile"),
        trusted=trusted,
    )
