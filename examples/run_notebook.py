"""Run a notebook headless with the xrpyc kernel and print its cells' outputs.

    .venv/bin/python examples/run_notebook.py examples/01-getting-started.ipynb
"""

from __future__ import annotations

import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient


def render(output: dict) -> str:
    kind = output["output_type"]
    if kind == "stream":
        return output["text"]
    if kind == "error":
        return "\n".join(output["traceback"]) + "\n"
    data = output.get("data", {})
    images = sorted(mime for mime in data if mime.startswith("image/"))
    if images:
        return f"<{', '.join(images)}>\n"
    if "text/plain" in data:
        return data["text/plain"] + "\n"
    return f"<{', '.join(sorted(data))}>\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--kernel", default="xrpyc")
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, kernel_name=args.kernel, timeout=120).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print(f"In [{cell.execution_count}]: " + cell.source.replace("\n", "\n       "))
        for output in cell.outputs:
            prefix = f"Out[{cell.execution_count}]: " if output["output_type"] == "execute_result" else ""
            sys.stdout.write(prefix + render(output))
        print()
    cells = sum(cell.cell_type == "code" for cell in nb.cells)
    print(f"{args.notebook}: {cells} cells ran in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
