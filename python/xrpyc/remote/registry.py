"""What a device process keeps for all its xrpyc kernels, whatever their xrpyc version: one module, NAME.

Its `agents` are the kernels' agents by kernel key: a kernel that reconnects
(after a network drop, or after abandoning a cell stuck in a blocking call)
finds its agent, and so its namespace, there. comms.py keeps the widgets'
comms in it, agent.py the live view's state, and xrpyc-device's worker its
main thread (device/worker.py).
"""

import sys
import types
from typing import Any

NAME = "_xrpyc_agents"


def shared() -> Any:
    """The registry module, made on first use."""
    module = sys.modules.get(NAME)
    if module is None:
        module = types.ModuleType(NAME, "xrpyc kernels' agents on this device, by kernel key")
        module.agents = {}
        module = sys.modules.setdefault(NAME, module)
    return module
