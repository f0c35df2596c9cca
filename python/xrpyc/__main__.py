"""The kernel: `python -m xrpyc -f CONNECTION_FILE`, as the kernelspec starts it.

The C++ kernel (xeus) is the extension module xrpyc._kernel; it runs in this
interpreter, so this environment's packages are the kernel's. Nothing is
imported before the kernel starts that could start a thread: SIGINT must be
blocked first (xrpyc/xinterrupt.cpp).
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m xrpyc -f CONNECTION_FILE\nStarted by Jupyter through the 'xrpyc' kernelspec."


def connection_file(argv: list[str]) -> str | None:
    """The value of -f/--connection-file (what Jupyter passes), else None."""
    for option, value in zip(argv, argv[1:]):
        if option in ("-f", "--connection-file"):
            return value
    return None


def main(argv: list[str] | None = None) -> int:
    file = connection_file(sys.argv[1:] if argv is None else argv)
    if file is None:
        print(USAGE, file=sys.stderr)
        return 2
    # `-m` puts the working directory (the notebook's) first on sys.path: a
    # notebook folder with an rpyc.py must not replace the kernel's modules.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    from xrpyc import _kernel

    return _kernel.launch(file)


if __name__ == "__main__":
    raise SystemExit(main())
