"""Named connections: several devices from one notebook.

`$connect("host", name="left")` adds a named connection beside the others;
`$use("left")` sends plain cells there, `$devices()` lists the connections,
`$disconnect("left")` closes one. The unnamed connection (the default device,
or an unnamed `$connect`) stays in connections.py, as it was before names
existed; it is called DEFAULT here. Each named connection has a namespace of
its own on its device (its own key), kept across reconnects.

Names are the user's, but they end up in labels of HTML output ($on areas,
progress bars, video captions): they are checked here and escaped wherever
they are shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cellparse import ALL
from .errors import CommandError
from .sanitize import shown

if TYPE_CHECKING:
    from .address import Address
    from .connections import Connections
    from .deadline import Attempt
    from .security import Credentials
    from .session import Device

DEFAULT = "default"  # the unnamed connection, in $use, $on, $devices and on=
NAME_MAX = 64  # characters of a name: it is a label, not a text


def name_problem(name: Any) -> str:
    """Why `name` cannot name a connection ("" when it can)."""
    if type(name) is not str:
        return f"a name must be a string, not {name!r}"
    if not name or len(name) > NAME_MAX:
        return f"a name has 1 to {NAME_MAX} characters"
    if not name.isprintable() or name != name.strip():
        return f"the name {name!r} has control characters or spaces around it"
    if name in (DEFAULT, "all"):
        return f'"{name}" is reserved ({DEFAULT}: the unnamed connection; all: every device)'
    return ""


@dataclass(eq=False)
class Board:
    """A named connection: where it goes, and its device while connected."""

    name: str
    address: Address
    credentials: Credentials
    key: str  # this kernel's namespace on the device
    device: Device | None = None


class Boards:
    """The named connections of one kernel, and which connection plain cells use."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self.named: dict[str, Board] = {}
        self.current = DEFAULT  # where plain cells run ($use)

    def add(self, name: str, address: Address, timeout: float, credentials: Credentials) -> Device:
        """Connect `name` to `address`, with a fresh namespace there ($connect with name=)."""
        problem = name_problem(name)
        if problem:
            raise CommandError(f"$connect: {problem}")
        if name in self.named:
            raise CommandError(
                f"$connect: {name!r} already names the connection to {self.named[name].address}; "
                f'$disconnect("{name}") first, or choose another name'
            )
        key = os.urandom(16).hex()
        device = self._connections.open_device(address, key, timeout, credentials)
        self.named[name] = Board(name, address, device.credentials, key, device)
        return device

    def board(self, name: Any, command: str) -> Board:
        """The named connection, or a CommandError that lists the names there are."""
        board = self.named.get(name) if type(name) is str else None
        if board is None:
            raise CommandError(f"{command}: no device named {name!r}. {self.names_text()}")
        return board

    def names_text(self) -> str:
        names = ", ".join(repr(name) for name in (DEFAULT, *self.named))
        return f"Devices: {names} ($devices() lists them)."

    def remove(self, name: str) -> Board:
        """Close the named connection and drop this kernel's namespace on its device."""
        board = self.board(name, "$disconnect")
        del self.named[name]
        if board.device is not None:
            board.device.close(forget=True)
        if self.current == name:
            self.current = DEFAULT
        return board

    def ensure(self, board: Board, attempt: Attempt | None = None) -> tuple[Device, str]:
        """The board's device, reconnected to the same namespace when the connection was lost;
        with a notice to show when the device restarted meanwhile (its variables are gone).

        From any thread ($on connects in each device's own); `attempt`, when given, is the
        attempt an interrupt cancels.
        """
        device = self.live(board)
        if device is not None:
            return device, ""
        self.drop(board)
        device = self._connections.open_device(board.address, board.key, credentials=board.credentials, attempt=attempt)
        board.device = device
        notice = "" if device.resumed else (
            f"xrpyc: reconnected to {board.name} ({board.address}). The device restarted: this kernel's "
            "namespace there is new, and variables from before are gone.\n"
        )  # fmt: skip
        return device, notice

    @staticmethod
    def live(board: Board) -> Device | None:
        """The board's device if its connection is up (no round trip: see Device.alive)."""
        device = board.device
        return device if device is not None and not device.closed and device.alive() else None

    @staticmethod
    def drop(board: Board) -> None:
        """Let go of a lost connection (the namespace stays on the device for a reconnect)."""
        if board.device is not None:
            board.device.close()
            board.device = None

    def targets(self, names: tuple, command: str) -> list[str]:
        """The connection names that `names` ("left", DEFAULT, all) choose, each once, in order."""
        if not names:
            raise CommandError(f'{command}: name the devices, as in {command}("left", "right") or {command}(all)')
        chosen: list[str] = []
        for name in names:
            if name is ALL:
                chosen += self.everything()
            elif name == DEFAULT:
                chosen.append(DEFAULT)
            else:
                chosen.append(self.board(name, command).name)
        return list(dict.fromkeys(chosen))

    def everything(self) -> list[str]:
        """What `all` means: every connection $devices() lists."""
        connections = self._connections
        default = [DEFAULT] if connections.device is not None or connections.explicit or not self.named else []
        return default + list(self.named)

    def describe(self) -> str:
        """$devices(): one line per connection: name, address, state, Python; `*` marks where plain cells run."""
        connections = self._connections
        rows = []
        for name in self.everything():
            if name == DEFAULT:
                device, address = connections.device, connections.address
            else:
                board = self.named[name]
                device, address = board.device, board.address
            if device is None:
                state = "not connected"
            elif device.closed or not device.alive():
                state = "lost (the next cell reconnects)"
            else:
                state = "connected" + (", trusted" if device.credentials.trusted else "")
            python = (device.python or "?") if device is not None else ""
            rows.append(("*" if name == self.current else " ", shown(name), str(address), state, python))
        header = (" ", "name", "address", "state", "Python")
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
        return "".join(
            f"{mark} {name:<{widths[1]}}  {address:<{widths[2]}}  {state:<{widths[3]}}  {python}".rstrip() + "\n"
            for mark, name, address, state, python in (header, *rows)
        )

    def close_all(self) -> None:
        for board in self.named.values():
            if board.device is not None:
                board.device.close(forget=True)
        self.named.clear()
        self.current = DEFAULT
