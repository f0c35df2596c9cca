"""Makes the device-side modules a package on the device, from their source texts (session._install).

The kernel sends this file's text to the device, whose Python runs it
(bytecode is not portable between Python versions), then calls install() with
the other modules' texts in the same call: they become the modules of a
private package, so they import each other like any code. Its name carries the
digest of what was sent (session.agent_package): it cannot clash with a
device's own packages, and a kernel of another xrpyc version installs its own
beside it. xrpyc-device's zygote runs install() in its own process
(session.keep_agent_compiled), so its workers start with the package.

Python 3.6 compatible; imports nothing from xrpyc.
"""

import sys
import types
from typing import Any, Callable, Sequence, Tuple

# What tracebacks and `obj??` show as these modules' file names on the device.
FILENAME = "<xrpyc-remote>/{}.py"


def install(package: str, digest: str, sources: Sequence[Tuple[str, str]]) -> Callable[..., Any]:
    """Compile and execute `sources` ((module name, source text), ..., each after those it imports) as the
    modules of `package` in sys.modules; returns its agent's connect().

    Once per device process: the package stays for the next kernels, which find
    it by name once its `digest` says it is complete (set last, so a kernel
    connecting meanwhile installs its own rather than using half of this one).
    """
    root = types.ModuleType(package, "xrpyc's device-side modules")
    root.__path__ = []  # a package: its modules' relative imports find each other in sys.modules
    made = [package]
    sys.modules[package] = root
    try:
        for name, source in sources:
            module = types.ModuleType(package + "." + name)
            module.__package__ = package
            # Before executing it: the modules after it (and Python 3.6's `from . import x`) look for it there.
            sys.modules[module.__name__] = module
            made.append(module.__name__)
            setattr(root, name, module)
            exec(compile(source, FILENAME.format(name), "exec"), module.__dict__)
    except BaseException:
        for name in made:
            sys.modules.pop(name, None)
        raise
    root.digest = digest
    return root.agent.connect
