"""Install or remove the xrpyc kernelspec.

    python -m xrpyc.install [--user | --sys-prefix | --prefix P] [--name N] [--display-name D] [--env K=V ...]
    python -m xrpyc.install --uninstall [--user | --sys-prefix | --prefix P] [--name N]

Several kernelspecs may point at different devices, as classrooms need:

    python -m xrpyc.install --user --name lab-board-3 --display-name "xrpyc: lab-board-3" \\
        --env XRPYC_DEVICE=192.168.1.23

`pip install` puts a kernelspec named xrpyc into the environment by itself
(CMakeLists.txt writes it with --write-spec).

A token given as --env XRPYC_TOKEN=... is not written into kernel.json, which
anyone who can list kernelspecs reads: it goes into a file `token` (mode 600)
next to it, and kernel.json sets XRPYC_TOKEN_FILE to that file's path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

KERNEL_NAME = "xrpyc"
# For the kernelspec shipped with the package (wheel, conda), whose Python is
# not known when it is built: jupyter_client replaces a bare "python" with its
# own sys.executable, as for ipykernel's, so the spec still works once copied
# (`jupyter kernelspec install`) and in clients that substitute nothing.
SHIPPED_PYTHON = "python"
TOKEN_FILE = "token"  # in the kernelspec's directory, when it has a token
# What xeus 2.4.1 speaks (its kernel_info reply's protocol_version; tests/test_kernelspec.py compares).
KERNEL_PROTOCOL_VERSION = "5.3"


def kernel_json(python: str, display_name: str, env: dict[str, str] | None = None) -> dict:
    spec = {
        # The kernel is the package's extension module, run by `python`: an
        # absolute path from `python -m xrpyc.install`, so that Jupyter servers
        # of another environment (JupyterHub, a system jupyter) use this one.
        "argv": [python, "-m", "xrpyc", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "kernel_protocol_version": KERNEL_PROTOCOL_VERSION,
        "metadata": {"debugger": False},
    }
    if env:
        spec["env"] = env
    return spec


def write_spec(spec_dir: Path, python: str, display_name: str, env: dict[str, str] | None = None) -> None:
    """kernel.json and the logos (32, 64, SVG) in `spec_dir`; env's XRPYC_TOKEN in a private file (module doc)."""
    spec_dir.mkdir(parents=True, exist_ok=True)
    # Whoever can write here can change the kernel's command line, or its token.
    spec_dir.chmod(spec_dir.stat().st_mode & ~0o022)
    env = dict(env or {})
    token = env.pop("XRPYC_TOKEN", None)
    if token is not None:
        token_file = spec_dir.resolve() / TOKEN_FILE
        _write_private(token_file, token + "\n")
        env["XRPYC_TOKEN_FILE"] = str(token_file)
    spec = kernel_json(python, display_name, env or None)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    for logo in resources.files("xrpyc").joinpath("resources").iterdir():
        if logo.name.startswith("logo-"):
            (spec_dir / logo.name).write_bytes(logo.read_bytes())


def _write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by its owner only, even when it existed before (or was a link)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as private:
        private.write(text)


def install(
    user: bool = False,
    prefix: str | None = None,
    name: str = KERNEL_NAME,
    display_name: str = "xrpyc",
    env: dict[str, str] | None = None,
) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    python = sys.executable
    public = {key: value for key, value in (env or {}).items() if key != "XRPYC_TOKEN"}
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        write_spec(spec_dir, python, display_name, public)
        path = KernelSpecManager().install_kernel_spec(str(spec_dir), name, user=user, prefix=prefix)
    if public != (env or {}):  # a token: written where it stays, so that kernel.json can name its path
        write_spec(Path(path), python, display_name, env)
    return path


def uninstall(user: bool = False, prefix: str | None = None, name: str = KERNEL_NAME) -> str:
    """Remove kernelspec `name` from the chosen place (or, with none chosen, wherever Jupyter finds it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    if user or prefix:
        spec_dir = Path(manager.user_kernel_dir if user else Path(prefix, "share", "jupyter", "kernels")) / name
        if not (spec_dir / "kernel.json").is_file():
            raise SystemExit(f"xrpyc.install: no kernelspec {name!r} in {spec_dir.parent}")
        shutil.rmtree(spec_dir)
        return str(spec_dir)
    try:
        return manager.remove_kernel_spec(name)
    except NoSuchKernel:
        raise SystemExit(f"xrpyc.install: no kernelspec {name!r} is installed") from None
    except PermissionError as error:
        raise SystemExit(f"xrpyc.install: cannot remove {error.filename}: permission denied") from None


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xrpyc.install", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true", help=f"install into this environment ({sys.prefix})")
    where.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    where.add_argument(
        "--write-spec", metavar="DIR", help="only write the kernelspec into DIR, run by Jupyter's own python"
    )
    parser.add_argument("--name", default=KERNEL_NAME, help="kernelspec name (default: %(default)s)")
    parser.add_argument("--display-name", default=None, help="name shown in the kernel picker (default: the name)")
    parser.add_argument(
        "--env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="NAME=VALUE",
        help="environment of the kernel, e.g. XRPYC_DEVICE=192.168.1.23 (repeatable)",
    )
    parser.add_argument("--uninstall", action="store_true", help="remove the kernelspec NAME instead")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    if args.uninstall:
        if args.write_spec:
            parser.error("--uninstall and --write-spec do not go together")
        print(f"Removed kernelspec {args.name} from {uninstall(user=args.user, prefix=prefix, name=args.name)}")
        return 0
    display_name = args.display_name or args.name
    env = dict(args.env) or None
    if args.write_spec:
        write_spec(Path(args.write_spec), SHIPPED_PYTHON, display_name, env)
        return 0
    path = install(user=args.user, prefix=prefix, name=args.name, display_name=display_name, env=env)
    print(f"Installed kernelspec {args.name} in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
