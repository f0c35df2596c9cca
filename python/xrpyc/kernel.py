"""Entry points of the kernel, called by the C++ interpreter (xrpyc/xinterpreter.cpp).

Each method answers one Jupyter request with the reply content as JSON text.
kernel_info is answered from here; everything else goes to the Shell. The
Shell's modules (rpyc and the rest: tens of milliseconds and megabytes) are
imported in the background from the kernel's start, and the default device is
connected to there too, while xeus opens its sockets and the client waits for
kernel_info: the first cell finds both ready.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from . import __version__
from .comms import Comms
from .frontend import Frontend
from .parentwatch import watch_parent

if TYPE_CHECKING:
    from .history import History
    from .shell import Shell

HISTORY_OPERATIONS = ("store", "tail", "range", "search")

BANNER = f"xrpyc {__version__}: Python cells on a remote device over rpyc. $help() lists the $ commands."
# language_info.version is the device's Python, which may differ from the kernel's (a MaixPy3 board has 3.8).
# Before the kernel has connected (it connects as it starts, when the device is there) it is unknown: ""
# (what nbconvert then writes into the notebook), and the banner says so.
NOT_CONNECTED = "language_info.version names the device's Python once the kernel has connected to it."
README = "https://pypi.org/project/xrpyc/"  # pyproject.toml's [project.urls]: the README, $ commands included


class Kernel:
    def __init__(self, native: Any) -> None:
        # Everything published goes through it: `native` is the module xrpyc._kernel.
        self.frontend = Frontend(native)
        # Widgets' comms (xrpyc/xcomms.cpp registers them with xeus when the kernel is made).
        self.comms = Comms(self.frontend)
        self._shell: Shell | None = None
        self._history: History | None = None
        # The shell and the history are made once, by the first thread that needs them.
        self._making = threading.RLock()
        threading.Thread(target=self._prepare, name="xrpyc-prepare", daemon=True).start()
        watch_parent(self._orphaned)

    @property
    def shell(self) -> Shell:
        with self._making:
            if self._shell is None:
                from .shell import Shell

                self._shell = Shell(self.frontend, self.history_store, self.comms)
            return self._shell

    @property
    def history_store(self) -> History:
        with self._making:
            if self._history is None:
                from .history import History

                self._history = History()
            return self._history

    def _prepare(self) -> None:
        """What the first cell needs, made before it comes: the shell's imports, a connection."""
        try:
            from . import session

            session.preload()  # also when nothing listens yet: a private device is connected to by the first cell
            self.shell.connections.connect_ahead()
        except Exception:
            pass  # the first cell makes them again, and says what fails

    def history(self, operation: str, *args: Any) -> str:
        """history_request and the storing of inputs (xrpyc/xhistory.cpp): see history.py."""
        if operation not in HISTORY_OPERATIONS:
            raise ValueError(f"unknown history operation {operation!r}")
        return getattr(self.history_store, operation)(*args)

    def execute(
        self,
        execution_count: int,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: str,
        allow_stdin: bool,
    ) -> str:
        return self.shell.execute(execution_count, code, silent, store_history, user_expressions, allow_stdin)

    def complete(self, code: str, cursor_pos: int) -> str:
        return self.shell.complete(code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> str:
        return self.shell.inspect(code, cursor_pos, detail_level)

    def is_complete(self, code: str) -> str:
        return self.shell.is_complete(code)

    def interrupt(self, during_request: bool) -> bool:
        """SIGINT; True asks C++ to raise KeyboardInterrupt here (during a request only)."""
        return self._shell.interrupt(during_request) if self._shell is not None else True

    def kernel_info(self) -> str:
        device = self._shell.connections.current_device() if self._shell is not None else None
        python = device.python if device is not None else ""
        where = f"Cells run on Python {python} at {device.address}." if device is not None and python else None
        help_links = [{"text": "xrpyc README ($ commands)", "url": README}]
        if python:
            major_minor = ".".join(python.split(".")[:2])
            help_links.append({"text": f"Python {major_minor}", "url": f"https://docs.python.org/{major_minor}/"})
        return json.dumps(
            {
                "status": "ok",
                "implementation": "xrpyc",
                "implementation_version": __version__,
                "language_info": {
                    "name": "python",
                    "version": python,
                    "mimetype": "text/x-python",
                    "file_extension": ".py",
                    "pygments_lexer": "python3",
                    "codemirror_mode": {"name": "python", "version": 3},
                    "nbconvert_exporter": "python",
                },
                "banner": f"{BANNER}\n{where or NOT_CONNECTED}",
                "debugger": False,
                "help_links": help_links,
            }
        )

    def _orphaned(self) -> None:
        """The Jupyter server that started us is gone (parentwatch.py): stop the private device; we exit next."""
        shell = self._shell
        if shell is not None and shell.connections.private_device is not None:
            shell.connections.private_device.stop()

    def shutdown(self) -> str:
        if self._shell is not None:
            self._shell.shutdown()
        if self._history is not None:
            self._history.close()
        return "{}"
