"""Jupyter comms on the device: what carries widgets' messages between their objects here and the notebook.

Shipped to the device as source text like agent.py (see __init__.py). Comm
messages leave as payloads (kind, comm_id, target, data JSON, metadata JSON,
buffers): from a thread that runs this kernel's cell, in order with its output
(the agent's output batches, kind "comm"); from any other thread (a widget's
handler, a camera loop the cell left running), over the kernel's second
connection (AgentComms.link). Messages from the notebook come in over that
second connection too (AgentComms.deliver), which another thread of the device
serves while a cell runs: they are handled in a thread of their own, so a
cell's loop reading `slider.value` sees a move in the browser.

Where ipywidgets is installed, the `comm` package's create_comm makes
DeviceComms (as ipykernel replaces it); elsewhere widgets.py has the
common controls. Comms and targets are process-wide (the registry module):
several kernels may share a device process, and each comm remembers the
kernel whose cell (or handler) made it.
"""

import json
import queue
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from . import registry
from .magics import _PatchingLoader

# The frontend's request for all widgets' states, and the answer (ipywidgets' control comm).
CONTROL_TARGET = "jupyter.widget.control"
Payload = Tuple[str, str, str, str, str, Tuple[bytes, ...]]


def _shared() -> Any:
    """Process-wide comm state, in the registry module."""
    module = registry.shared()
    if not hasattr(module, "comm_objects"):
        module.comm_objects = {}  # comm id -> object with receive(kind, data, metadata, buffers)
        module.comm_targets = {}  # target name -> open(owner, comm_id, data, buffers)
        module.comm_local = threading.local()  # .owner: the AgentComms whose message this thread handles
        module.last_comms = None  # the AgentComms of the kernel that ran a cell last
    return module


def note_cell(owner: "AgentComms") -> None:
    """A cell of `owner`'s kernel starts: threads it leaves running make comms for that kernel."""
    _shared().last_comms = owner


def current_owner() -> Optional["AgentComms"]:
    """The kernel a comm made now belongs to: the one whose message this thread handles, whose cell
    runs in this thread, or else the one that ran a cell last (a thread a cell left running)."""
    shared = _shared()
    owner = getattr(shared.comm_local, "owner", None)
    if owner is None:
        sink = getattr(sys.stdout, "targets", {}).get(threading.get_ident())  # agent._Router
        owner = getattr(sink, "comms", None)
    return owner or shared.last_comms


def _plain_buffers(buffers: Any) -> Tuple[bytes, ...]:
    return tuple(bytes(buffer) for buffer in buffers or ())


def _async(call: Callable[..., Any]) -> Callable[..., Any]:
    try:
        import rpyc

        return rpyc.async_(call)
    except (ImportError, TypeError):  # not a netref: in-process (unit tests)
        return call


class AgentComms:
    """One kernel's comms: `post` puts a payload in this kernel's running cell's output, if this thread
    runs it (False otherwise)."""

    def __init__(self, post: Callable[[Payload], bool]) -> None:
        self._post = post
        self._link = None  # type: Optional[Callable[..., Any]]
        self._inbox = queue.Queue()  # type: queue.Queue
        self._thread = None  # type: Optional[threading.Thread]

    def link(self, callback: Any) -> None:
        """The kernel's callback on its second connection: messages from threads that run no cell of its."""
        self._link = _async(callback)

    def send(self, kind: str, comm_id: str, target: str, data: Any, metadata: Any, buffers: Any) -> None:
        """A comm_open, comm_msg or comm_close to the notebook (any thread)."""
        payload = (
            kind,
            str(comm_id),
            str(target or ""),
            json.dumps(data or {}, default=repr),
            json.dumps(metadata or {}, default=repr),
            _plain_buffers(buffers),
        )
        if self._post(payload):
            return
        link = self._link
        if link is not None:
            try:
                link(payload)
            except Exception:
                self._link = None  # the kernel's connection is gone: it gets the widgets' state when it asks

    def deliver(self, kind: str, comm_id: str, target: str, data: str, metadata: str, buffers: Any) -> None:
        """A message from the notebook (on the kernel's second connection): queued, handled in order in a
        thread of this kernel's, so that a slow handler never holds up that connection."""
        self._inbox.put((str(kind), str(comm_id), str(target), str(data), str(metadata), _plain_buffers(buffers)))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="xrpyc-comms", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        shared = _shared()
        while True:
            kind, comm_id, target, data, metadata, buffers = self._inbox.get()
            shared.comm_local.owner = self
            try:
                _dispatch(self, kind, comm_id, target, json.loads(data), json.loads(metadata), list(buffers))
            except Exception:
                import traceback

                traceback.print_exc()  # the device's console: a widget handler's failure, as ipykernel logs it
            finally:
                shared.comm_local.owner = None


def _dispatch(owner: AgentComms, kind: str, comm_id: str, target: str, data: Any, metadata: Any, buffers: list) -> None:
    shared = _shared()
    here = shared.comm_objects.get(comm_id)
    if here is not None:
        here.receive(kind, data, metadata, buffers)
        if kind == "close":
            shared.comm_objects.pop(comm_id, None)
        return
    manager = _comm_manager()
    if kind == "open":
        opener = shared.comm_targets.get(target)
        if opener is not None:
            opener(owner, comm_id, data, buffers)
            return
        if manager is not None and target not in manager.targets and "ipywidgets" in sys.modules:
            sys.modules["ipywidgets"].register_comm_target()  # ipywidgets does it only under IPython
        if manager is not None and target in manager.targets:
            manager.comm_open(None, None, _message(comm_id, data, metadata, buffers, target))
        elif target == CONTROL_TARGET:
            shared.comm_objects[comm_id] = _NoWidgets(owner, comm_id)  # nothing made widgets yet
        else:
            owner.send("comm_close", comm_id, "", {}, {}, ())
    elif manager is not None:
        message = _message(comm_id, data, metadata, buffers)
        (manager.comm_msg if kind == "msg" else manager.comm_close)(None, None, message)


def _message(comm_id: str, data: Any, metadata: Any, buffers: list, target: str = "") -> Dict[str, Any]:
    """A message as the `comm` package's handlers read it (ipykernel's dict)."""
    content = {"comm_id": comm_id, "data": data}
    if target:
        content["target_name"] = target
    return {"content": content, "metadata": metadata, "buffers": buffers, "header": {}, "parent_header": {}}


class _NoWidgets:
    """The control comm of a device without widgets yet: the states of no widget."""

    def __init__(self, owner: AgentComms, comm_id: str) -> None:
        self._owner, self._id = owner, comm_id

    def receive(self, kind: str, data: Any, metadata: Any, buffers: list) -> None:
        if kind == "msg" and isinstance(data, dict) and data.get("method") == "request_states":
            reply = {"method": "update_states", "states": {}, "buffer_paths": {}}
            self._owner.send("comm_msg", self._id, "", reply, {}, ())


def _comm_manager() -> Any:
    """The `comm` package's manager, when something imported the package (ipywidgets)."""
    module = sys.modules.get("comm")
    return module.get_comm_manager() if module is not None and getattr(module, "_xrpyc", False) else None


def install_comm_factory() -> None:
    """Make the `comm` package create DeviceComms, now if it is imported, else when it is (once per process)."""
    if "comm" in sys.modules:
        _patch_comm(sys.modules["comm"])
    elif not any(type(finder).__name__ == "_CommHook" for finder in sys.meta_path):
        sys.meta_path.insert(0, _CommHook())


class _CommHook:
    """An import hook: patches the `comm` package as it is loaded."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "comm":
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, _patch_comm)
        return spec


def _patch_comm(module: Any) -> None:
    if getattr(module, "_xrpyc", False):
        return
    from comm.base_comm import BaseComm

    class DeviceComm(BaseComm):
        """A comm whose messages go to the kernel of the cell (or handler) that made it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._xrpyc_owner = current_owner()
            BaseComm.__init__(self, *args, **kwargs)

        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:  # fmt: skip
            owner = self._xrpyc_owner
            if owner is not None:
                owner.send(msg_type, self.comm_id, keys.get("target_name", ""), data, metadata, buffers)

    module.create_comm = DeviceComm
    module._xrpyc = True
