"""The example notebooks run headless against the local default device.

A notebook that needs hardware says so in its metadata, `"xrpyc": {"needs": "maixpy3-board"}`, and is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from servers import xrpyc_device

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.ipynb"))


@pytest.fixture(scope="module")
def device_with_live_view() -> Iterator[int]:
    """An xrpyc-device that also serves its MJPEG live view, as the default one does."""
    with xrpyc_device(0, "--mjpeg-port", "auto") as port:
        yield port


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, device_with_live_view: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    needs = nb.metadata.get("xrpyc", {}).get("needs")
    if needs:
        pytest.skip(f"{path.name} needs hardware: {needs} (its metadata xrpyc.needs); run it by hand with one")
    monkeypatch.setenv("XRPYC_DEVICE", f"127.0.0.1:{device_with_live_view}")
    # The kernel's working directory (the notebook's, for $download and $exec) is a new empty one: files a
    # notebook leaves there fail the test, and none land in the repository.
    NotebookClient(nb, kernel_name="xrpyc", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
    for cell in code_cells:
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert bool(errors) == ("raises-exception" in cell.metadata.get("tags", [])), cell.source
    assert not list(tmp_path.iterdir()), f"{path.name} left files in the notebook's directory"
