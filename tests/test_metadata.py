"""The package's metadata resolves on PyPI for every CPython it claims, and older ones are refused clearly.

This venv's pip resolves the source tree for each supported interpreter (`pip --python`: its tags and
markers, one pip release for all), as `pip install .` does: the build backend writes the metadata (no kernel
is built) and the dependencies resolve to wheels (`--only-binary :all:`, `--dry-run`: nothing is
installed). Interpreters come from pyenv or PATH; a missing one is skipped. This reaches the package
index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SUPPORTED = ("3.11", "3.12", "3.13")
REFUSED = ("3.9", "3.10")
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def interpreter(minor: str) -> str:
    """A CPython `minor`: pyenv's newest, else python3.X on PATH."""
    candidates = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"), reverse=True)
    found = str(candidates[0]) if candidates else shutil.which(f"python{minor}")
    if found is None:
        pytest.skip(f"no CPython {minor} here (in {PYENV} or python{minor} on PATH)")
    return found


def dry_run(
    report: Path, *, interpreter: str | None = None, python_version: str | None = None
) -> subprocess.CompletedProcess:
    """`pip install --dry-run` of the source tree, for `interpreter` or as if on `python_version`."""
    pip = [sys.executable, "-m", "pip", *(["--python", interpreter] if interpreter else [])]
    target = ["--python-version", python_version] if python_version else []
    command = [*pip, "install", *target, "--dry-run", "--ignore-installed", "--only-binary", ":all:", "--quiet",
               "--report", str(report), str(ROOT)]  # fmt: skip
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_NO_INPUT": "1"}
        )
    except subprocess.TimeoutExpired:
        pytest.skip("the package index did not answer within 10 minutes")


def test_the_metadata_names_what_the_kernel_imports() -> None:
    """numpy is imported by video.py itself (simplejpeg's YUV planes): declared, not left to simplejpeg's."""
    names = {canonicalize_name(Requirement(requirement).name) for requirement in PYPROJECT["dependencies"]}
    assert {"numpy", "av", "simplejpeg", "rpyc", "nh3", "pillow"} <= names
    assert "import numpy" in (ROOT / "python" / "xrpyc" / "video.py").read_text()
    assert PYPROJECT["requires-python"] == f">={SUPPORTED[0]}"
    classifiers = {
        c.rsplit(" :: ", 1)[-1]
        for c in PYPROJECT["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert classifiers == set(SUPPORTED)


@pytest.mark.parametrize("minor", SUPPORTED)
def test_the_dependencies_resolve_to_wheels(minor: str, tmp_path: Path) -> None:
    done = dry_run(tmp_path / "report.json", interpreter=interpreter(minor))
    if done.returncode != 0 and ("NewConnectionError" in done.stderr or "Temporary failure in name" in done.stderr):
        pytest.skip(f"the package index is unreachable: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    chosen = {canonicalize_name(item["metadata"]["name"]): item for item in report["install"]}
    assert {"xrpyc", "av", "numpy", "simplejpeg", "rpyc", "nh3", "pillow", "jupyter-client"} <= set(chosen)
    assert chosen["xrpyc"]["metadata"]["requires_python"] == f">={SUPPORTED[0]}"
    for name, item in chosen.items():
        if name != "xrpyc":
            assert item["download_info"]["url"].endswith(".whl"), (name, item["download_info"]["url"])


@pytest.mark.parametrize("minor", REFUSED)
def test_older_pythons_are_refused_with_a_clear_message(minor: str, tmp_path: Path) -> None:
    """As pip sees them: --python-version (this pip no longer runs on 3.9; an older one reports the first
    dependency it cannot find instead)."""
    done = dry_run(tmp_path / "report.json", python_version=minor)
    assert done.returncode != 0
    assert f"requires a different Python: {minor}." in done.stderr and f"not in '>={SUPPORTED[0]}'" in done.stderr, (
        done.stderr[-2000:]
    )
