// The publishing functions of xrpyc._kernel (xpublish.cpp), which
// python/xrpyc/kernel.py gets as `native`.
#ifndef XRPYC_XPUBLISH_HPP
#define XRPYC_XPUBLISH_HPP

#include "pybind11/pybind11.h"

namespace xrpyc
{
    // Add stream, display_data, ..., input_request and cancel_input to `m`.
    void define_publishing(pybind11::module_& m);
}

#endif
