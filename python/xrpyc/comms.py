"""Jupyter widgets' comms between the frontend and the device's widget objects.

The frontend's side arrives from xeus' comm manager (xrpyc/xcomms.cpp: on_open,
on_msg, on_close, in the kernel's main thread, also while a cell runs: see
between()) and goes to the device's agent over its second connection, which a
thread of the device serves while the cell runs (session.Device.comm_channel,
devicecomms.py). The device's side comes as payloads (kind, comm_id, target,
data JSON, metadata JSON, buffers): in a cell's output (main thread: published
through xeus' comms with the cell as parent) or, from the device's other
threads, on that second connection, in a thread of ours: comm_msg goes out at
once (a frontend.ThreadPublisher, as output of the last cell), the rest waits
for the main thread (xeus' comm registry is the main thread's). What an
untrusted device sends is checked first (widgettrust.py).
"""

from __future__ import annotations

import functools
import json
import queue
import sys
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from .sanitize import shown
from .widgettrust import model_allowed, safe_state

if TYPE_CHECKING:
    from .frontend import Frontend
    from .session import Device

CONTROL_TARGET = "jupyter.widget.control"
WIDGET_TARGET = "jupyter.widget"
KINDS = ("comm_open", "comm_msg", "comm_close")
NO_WIDGETS = {"method": "update_states", "states": {}, "buffer_paths": {}}


class Comms:
    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self.device_of: Callable[[], Device | None] = lambda: None  # the unnamed connection's device
        # As output of the last cell: messages from the device's other threads.
        self._replies = frontend.unparented
        # The devices' comms: comm id -> (the device that opened it, its model's name), what its messages are
        # checked by. Only that device may use or close it, and it is not opened again while open.
        self._opened: dict[str, tuple[Device, str]] = {}
        self._controls: set[str] = set()  # control comms the frontend opened
        self._lock = threading.Lock()
        self._outbox: deque[tuple[Device, tuple]] = deque()  # for the main thread
        self._to_device: queue.Queue[tuple[Device | None, tuple]] = queue.Queue()
        self._forwarder: threading.Thread | None = None
        self._linked: weakref.WeakSet[Device] = weakref.WeakSet()  # devices whose other threads reach us
        self._noted: set[str] = set()

    # -- from the frontend (xcomms.cpp, main thread) --------------------------------------------

    def on_open(self, comm_id: str, target: str, data: str, metadata: str, buffers: list[bytes]) -> None:
        if target == CONTROL_TARGET:
            self._controls.add(comm_id)
        self._forward(("open", comm_id, target, data, metadata, tuple(buffers)))

    def on_msg(self, comm_id: str, data: str, metadata: str, buffers: list[bytes]) -> None:
        if comm_id in self._controls and self.device_of() is None:
            # No device (yet): no widgets to restore. ipywidgets' frontend asks as the kernel starts.
            self.frontend.comm_send(comm_id, NO_WIDGETS, {})
            return
        self._forward(("msg", comm_id, "", data, metadata, tuple(buffers)))

    def on_close(self, comm_id: str, data: str, metadata: str, buffers: list[bytes]) -> None:
        self._controls.discard(comm_id)
        self._forward(("close", comm_id, "", data, metadata, tuple(buffers)))

    def _forward(self, message: tuple) -> None:
        # To the device that made the widget (a board in $use, or any other), else the current one: the
        # frontend's control comms, and a widget of the same device process after a reconnect.
        with self._lock:
            maker = self._opened.get(message[1], (None, ""))[0]
        self._queue_for_device(maker if maker is not None and not maker.closed else self.device_of(), message)

    def _queue_for_device(self, device: Device | None, message: tuple | None) -> None:
        """For the forwarding thread: `message` to `device`, or None only to link its other threads to us."""
        self._to_device.put((device, message))
        if self._forwarder is None:
            self._forwarder = threading.Thread(target=self._forward_all, name="xrpyc-comms", daemon=True)
            self._forwarder.start()

    def _forward_all(self) -> None:
        """Deliver the frontend's messages in order, without holding up the main thread."""
        while True:
            device, message = self._to_device.get()
            if device is None or device.closed:
                continue
            try:
                deliver = device.comm_channel(functools.partial(self._from_device_thread, device))
                if deliver is not None and message is not None:
                    deliver(*message)
            except Exception as error:
                print(f"xrpyc: a widget message did not reach {device.address}: {error}", file=sys.stderr)

    # -- from the device -----------------------------------------------------------------------

    def cell_started(self) -> None:
        """A cell starts (main thread): its header is the parent of what the device's threads send."""
        self._replies = self.frontend.thread_publisher()
        self.flush()

    def between(self) -> None:
        """While a cell runs (main thread, session.Device.run): the frontend's comm messages now."""
        self.frontend.serve_comms()
        self.flush()

    def from_device(self, device: Device, payload: Any) -> None:
        """A payload in a cell's output (main thread)."""
        if device not in self._linked:  # the device's other threads need the second connection: set it up
            self._linked.add(device)
            self._queue_for_device(device, None)
        self.flush()
        self._publish(device, payload)

    def _from_device_thread(self, device: Device, payload: Any) -> None:
        """A payload from one of the device's other threads (our thread serving the second connection)."""
        with self._lock:
            if self._outbox or not _is_payload(payload) or payload[0] != "comm_msg" or payload[5]:
                self._outbox.append((device, payload))
                return
            message = self._checked(device, payload)
        if message is not None:
            _, comm_id, _, data, _, _ = message
            self._replies.comm_msg(comm_id, data)

    def flush(self) -> None:
        """Publish what the device's other threads sent that needed the main thread (main thread)."""
        while True:
            with self._lock:
                if not self._outbox:
                    return
                device, payload = self._outbox.popleft()
            self._publish(device, payload)

    def _publish(self, device: Device, payload: Any) -> None:
        with self._lock:
            message = self._checked(device, payload)
        if message is None:
            return
        kind, comm_id, target, data, metadata, buffers = message
        if kind == "comm_open":
            self.frontend.comm_open(comm_id, target, data, metadata, buffers)
        elif kind == "comm_msg":
            self.frontend.comm_send(comm_id, data, metadata, buffers)
        else:
            self.frontend.comm_close(comm_id, data, metadata, buffers)
            with self._lock:
                self._opened.pop(comm_id, None)

    def made(self, device: Device, model_id: Any) -> bool:
        """Whether `device` opened the widget model `model_id` (and it passed _checked): what its views may show."""
        with self._lock:
            return self._made(device, model_id)

    def _made(self, device: Device, model_id: Any) -> bool:
        """made(), with the lock held."""
        return isinstance(model_id, str) and self._opened.get(model_id, (None, ""))[0] is device

    def _checked(self, device: Device, payload: Any) -> tuple | None:
        """The payload as it may reach the browser, or None (call with the lock held)."""
        if not _is_payload(payload):
            self._note(device, "a malformed widget message")
            return None
        kind, comm_id, target, data_text, metadata_text, buffers = payload
        try:
            data, metadata = json.loads(data_text), json.loads(metadata_text)
        except ValueError:
            data = metadata = None
        if not isinstance(data, dict) or not isinstance(metadata, dict):
            self._note(device, "a widget message that is not JSON objects")
            return None
        trusted = device.credentials.trusted
        removed: list[str] = []
        opened = self._opened.get(comm_id)
        own_views = functools.partial(self._made, device)  # what an Output widget of its may show
        if kind == "comm_open":
            state = data.get("state")
            if target != WIDGET_TARGET or (not trusted and not model_allowed(state)):
                # Noted once for every target (the device chooses it): its name is shown, never its terminal codes.
                self._note(device, "a widget of another kind than ipywidgets' own", f" ({shown(target[:60])})")
                return None
            if opened is not None:
                # Opened again, its messages would be checked as another model's (an HTML widget's as a slider's).
                self._note(device, "a widget opened again while open")
                return None
            model = str(state.get("_model_name")) if isinstance(state, dict) else ""
            self._opened[comm_id] = (device, model)
            if not trusted:
                data["state"] = safe_state(model, state, True, removed, own_views)
        elif comm_id not in self._controls and (opened is None or opened[0] is not device):
            # Another device's widget, or one nobody opened: not this device's to change or close.
            self._note(device, "a widget message to a widget it did not open")
            return None
        elif kind == "comm_msg" and not trusted:
            if data.get("method") in ("update", "echo_update") and isinstance(data.get("state"), dict):
                model = opened[1] if opened is not None else ""
                data["state"] = safe_state(model, data["state"], False, removed, own_views)
            elif data.get("method") == "update_states" and isinstance(data.get("states"), dict):
                data["states"] = self._own_states(device, data["states"], removed, own_views)
        for what in removed:
            self._note(device, what)
        return kind, comm_id, target, data, metadata, buffers

    def _own_states(
        self, device: Device, states: dict[str, Any], removed: list[str], own_views: Callable[[Any], bool]
    ) -> dict[str, Any]:
        """An update_states answer's entries for the widgets `device` opened, each as the model it opened,
        cleaned as that model (call with the lock held)."""
        own = {}
        for model_id, entry in states.items():
            state = entry.get("state") if isinstance(entry, dict) else None
            if not (
                model_allowed(state)
                and self._opened.get(model_id) == (device, entry.get("model_name"))
                and entry.get("model_name") == state.get("_model_name")
                and entry.get("model_module") == state.get("_model_module")
            ):
                self._note(device, "a widget state for a widget it did not open as such")
                continue
            own[model_id] = dict(entry, state=safe_state(entry["model_name"], state, True, removed, own_views))
        return own

    def _note(self, device: Device, what: str, detail: str = "") -> None:
        """Once per kind of thing, in the kernel's log: the widget still works, without it."""
        if what not in self._noted:
            self._noted.add(what)
            why = "" if device.credentials.trusted else " (not a trusted device)"
            print(f"xrpyc: removed {what}{detail} from {device.address}'s widgets{why}", file=sys.stderr)


def _is_payload(payload: Any) -> bool:
    """(kind, comm_id, target, data, metadata, buffers) of plain values (from the device: anything may come)."""
    return (
        type(payload) is tuple
        and len(payload) == 6
        and payload[0] in KINDS
        and all(type(text) is str for text in payload[1:5])
        and type(payload[5]) is tuple
        and all(type(buffer) is bytes for buffer in payload[5])
    )
