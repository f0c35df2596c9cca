"""The device-side half of xrpyc: the modules a kernel ships to a device as source text.

Nothing here is imported on a device: the kernel sends these files' text
(session.REMOTE_MODULES) and the device's Python makes them the modules of a
private package (loader.py), since bytecode is not portable between Python
versions and nothing of xrpyc needs to be installed on a board. So they import
only each other (relative imports) and the standard library, and stay
compatible with the oldest Python found on boards (3.6: no walrus, no
subscripted builtins in hints, no `from __future__ import annotations`).

The kernel imports some of them too, for its own side of a transfer (files.py),
for the magics' names (magics.py), for is_complete (agent.code_status), and
in unit tests.
"""
