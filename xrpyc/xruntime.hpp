// Starting the embedded CPython so that it uses the environment xrpyc was
// installed into (a venv or conda prefix), not the one it was built against.
#ifndef XRPYC_XRUNTIME_HPP
#define XRPYC_XRUNTIME_HPP

#include <memory>

#include "pybind11/embed.h"

namespace xrpyc
{
    // Initialise Python. If `<prefix>/bin/python3` exists next to this
    // executable (`<prefix>/bin/xrpyc`), it becomes sys.executable, so that
    // pyvenv.cfg is honoured and sys.prefix/site-packages are the prefix's.
    std::unique_ptr<pybind11::scoped_interpreter> start_python();
}

#endif
