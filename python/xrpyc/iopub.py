"""Display messages from background threads (live video), through the C++ side.

The kernel's main thread publishes through xeus directly (`native.stream`,
`native.display_data`, ...). Other threads must not touch that socket: they
go through `native.publish_from_thread`, which has a socket of its own
(xrpyc/xbackground.cpp).
"""

from __future__ import annotations

import json
from typing import Any


class ThreadPublisher:
    """Publishes display messages from any thread, as output of the request
    that was being handled when it was made (the cell that started a video)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._parent_header = native.parent_header()

    def display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._publish("display_data", data, metadata, transient)

    def update_display_data(self, data: dict, metadata: dict, transient: dict) -> None:
        self._publish("update_display_data", data, metadata, transient)

    def _publish(self, msg_type: str, data: dict, metadata: dict, transient: dict) -> None:
        content = json.dumps({"data": data, "metadata": metadata, "transient": transient})
        self._native.publish_from_thread(msg_type, self._parent_header, content)
