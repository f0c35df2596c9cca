from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel_client import RunningKernel, kernel
from servers import stock_rpyc_classic, xrpyc_device


@pytest.fixture(scope="session", autouse=True)
def _private_history(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Kernels started by the tests keep their history apart from the user's."""
    os.environ["XRPYC_HISTORY"] = str(tmp_path_factory.mktemp("history") / "history.sqlite")


@pytest.fixture(scope="session")
def stock_device() -> Iterator[int]:
    """Port of a stock `rpyc_classic` server shared by the session's tests."""
    with stock_rpyc_classic() as port:
        yield port


@pytest.fixture(scope="session")
def device() -> Iterator[int]:
    """Port of an `xrpyc-device` shared by the session's tests."""
    with xrpyc_device() as port:
        yield port


@pytest.fixture(scope="module")
def shared_kernel(stock_device: int) -> Iterator[RunningKernel]:
    """One kernel on the stock device for a module's tests that do not need a fresh one."""
    with kernel(stock_device) as running:
        yield running


@pytest.fixture
def fresh_kernel(stock_device: int) -> Iterator[RunningKernel]:
    with kernel(stock_device) as running:
        yield running
