"""The errors a cell can end with, other than the user's own code's: each message is for users."""

from __future__ import annotations


class DeviceError(Exception):
    """A device could not be reached or stopped answering."""


class DeviceRefused(DeviceError):
    """Nothing listens at the address (connection refused)."""


class CommandError(Exception):
    """A `$` command that cannot run as written."""


class CellError(Exception):
    """The cell's code raised: on the device, or in the kernel's own Python ($exec)."""

    def __init__(self, ename: str, evalue: str, traceback: list[str]) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.traceback = ename, evalue, traceback
