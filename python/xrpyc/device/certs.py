"""Make a self-signed TLS certificate for an xrpyc-device (a classroom needs no CA).

    python -m xrpyc.device.certs --name lab-board-3 --ip 192.168.1.23 --out certs/

writes certs/lab-board-3.pem (the certificate: give it to kernels, which trust it
with $connect(host, tls="lab-board-3.pem") or "cafile" in the devices file) and
certs/lab-board-3.key (the private key: it stays on the device, with --keyfile).
Uses the openssl command (Debian's openssl package, present on most systems).
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path


def make_certificate(name: str, ips: list[str], out: Path, days: int = 825) -> tuple[Path, Path]:
    """Write NAME.pem and NAME.key in `out`; returns their paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is missing (Debian: apt-get install openssl)")
    for ip in ips:
        ipaddress.ip_address(ip)  # ValueError for a typo, before openssl says something obscure
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / f"{name}.pem", out / f"{name}.key"
    names = ",".join([f"DNS:{name}", *(f"IP:{ip}" for ip in ips)])
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={names}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xrpyc.device.certs", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the device's host name (goes in the certificate)")
    parser.add_argument("--ip", action="append", default=[], help="an IP address kernels use for it (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for NAME.pem and NAME.key")
    parser.add_argument("--days", type=int, default=825, help="validity (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        cert, key = make_certificate(args.name, args.ip, args.out, args.days)
    except (RuntimeError, ValueError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or error
        print(f"xrpyc.device.certs: {detail}", file=sys.stderr)
        return 1
    print(f"certificate: {cert}\nprivate key: {key} (keep it on the device)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
