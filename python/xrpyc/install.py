"""Install the xrpyc kernelspec: `python -m xrpyc.install [--user | --sys-prefix | --prefix P]`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

KERNEL_NAME = "xrpyc"


def kernel_executable() -> Path:
    """The `xrpyc` executable of this environment (next to its python), else the one on PATH."""
    candidate = Path(sys.prefix) / "bin" / "xrpyc"
    if candidate.is_file():
        return candidate
    found = shutil.which("xrpyc")
    if found is None:
        raise SystemExit(
            f"xrpyc.install: no 'xrpyc' executable in {candidate.parent} or on PATH; build it first (make)."
        )
    return Path(found).resolve()


def kernel_json(executable: Path, display_name: str) -> dict:
    return {
        # An absolute path: Jupyter servers started without this environment
        # on PATH (JupyterHub, `.venv/bin/jupyter lab`) still find the kernel.
        "argv": [str(executable), "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install(
    user: bool = False, prefix: str | None = None, name: str = KERNEL_NAME, display_name: str = "xrpyc"
) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        spec_dir.mkdir()
        spec = kernel_json(kernel_executable(), display_name)
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in resources.files("xrpyc").joinpath("resources").iterdir():
            if logo.name.startswith("logo-"):
                (spec_dir / logo.name).write_bytes(logo.read_bytes())
        return KernelSpecManager().install_kernel_spec(str(spec_dir), name, user=user, prefix=prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xrpyc.install", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true", help=f"install into this environment ({sys.prefix})")
    where.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    parser.add_argument("--name", default=KERNEL_NAME, help="kernelspec name (default: %(default)s)")
    parser.add_argument("--display-name", default="xrpyc", help="name shown in the kernel picker")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    path = install(user=args.user, prefix=prefix, name=args.name, display_name=args.display_name)
    print(f"Installed kernelspec {args.name} in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
