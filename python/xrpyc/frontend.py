"""What the kernel sends to the Jupyter frontend: the one caller of the C++ side's
publishing, comm and input functions (`native`: the module xrpyc._kernel, xrpyc/xpublish.cpp
and xrpyc/xcomms.cpp).

Callers give Python objects (dicts, str, bytes); the JSON text that crosses to
C++ is made here. The kernel's main thread publishes through xeus directly.
Other threads must not touch that socket: they publish through a
ThreadPublisher, which goes through `native.publish_from_thread`, a socket of
its own (xrpyc/xbackground.cpp).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# The parent header of a message that answers no request, as publish_from_thread takes it: JSON text.
NO_PARENT = "{}"


class Frontend:
    """IOPub, comms and stdin, from the kernel's main thread (except cancel_input and the
    ThreadPublishers, which any thread may use)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        # For any thread, as output of no request.
        self.unparented = ThreadPublisher(native, NO_PARENT)

    # -- IOPub -------------------------------------------------------------

    def stream(self, name: str, text: str) -> None:
        self._native.stream(name, text)

    def display_data(self, data: dict, metadata: dict | None = None, transient: dict | None = None) -> None:
        self._native.display_data(json.dumps(data), json.dumps(metadata or {}), json.dumps(transient or {}))

    def update_display_data(self, data: dict, metadata: dict | None = None, transient: dict | None = None) -> None:
        self._native.update_display_data(json.dumps(data), json.dumps(metadata or {}), json.dumps(transient or {}))

    def clear_output(self, wait: bool) -> None:
        self._native.clear_output(wait)

    def execute_result(self, execution_count: int, data: dict, metadata: dict | None = None) -> None:
        self._native.execute_result(execution_count, json.dumps(data), json.dumps(metadata or {}))

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self._native.error(ename, evalue, traceback)

    # -- comms (widgets, comms.py) -----------------------------------------

    def comm_open(self, comm_id: str, target: str, data: dict, metadata: dict, buffers: Sequence[bytes]) -> bool:
        """False for an unknown target or a comm already open."""
        return self._native.comm_open(comm_id, target, json.dumps(data), json.dumps(metadata), list(buffers))

    def comm_send(self, comm_id: str, data: dict, metadata: dict, buffers: Sequence[bytes] = ()) -> bool:
        """False when the comm is not open."""
        return self._native.comm_send(comm_id, json.dumps(data), json.dumps(metadata), list(buffers))

    def comm_close(self, comm_id: str, data: dict, metadata: dict, buffers: Sequence[bytes]) -> bool:
        """False when the comm is not open."""
        return self._native.comm_close(comm_id, json.dumps(data), json.dumps(metadata), list(buffers))

    def serve_comms(self) -> None:
        """Hand the frontend's comm messages waiting on shell to comms.py now, while a request runs."""
        self._native.serve_comms()

    # -- stdin -------------------------------------------------------------

    def input_request(self, prompt: str, password: bool) -> str:
        """Ask the frontend for a line and wait for it (the GIL is released meanwhile)."""
        return self._native.input_request(prompt, password)

    def cancel_input(self, value: str) -> bool:
        """End a pending input_request as if the frontend had answered `value` (any thread)."""
        return self._native.cancel_input(value)

    # -- from other threads ------------------------------------------------

    def thread_publisher(self) -> ThreadPublisher:
        """A publisher for any thread, whose messages are output of the request being handled now."""
        return ThreadPublisher(self._native, self._native.parent_header())


class ThreadPublisher:
    """Publishes from any thread, as output of one request (the cell that started a video, the last
    cell for widgets' messages from the device's other threads)."""

    def __init__(self, native: Any, parent_header: str) -> None:
        self._native = native
        # As C++ gave it (JSON text), passed back unread.
        self._parent_header = parent_header

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._publish("display_data", {"data": data, "metadata": metadata, "transient": transient})

    def update_display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._publish("update_display_data", {"data": data, "metadata": metadata, "transient": transient})

    def comm_msg(self, comm_id: str, data: dict) -> None:
        self._publish("comm_msg", {"comm_id": comm_id, "data": data})

    def _publish(self, msg_type: str, content: dict) -> None:
        self._native.publish_from_thread(msg_type, self._parent_header, json.dumps(content))
