// Jupyter comms (ipywidgets' "jupyter.widget" and "jupyter.widget.control")
// between the frontend and python/xrpyc/comms.py, through xeus' comm manager.
// C++ only carries messages: a comm the frontend opens, its messages and its
// close go to Python's handler as JSON text and bytes; Python opens, sends on
// and closes comms of its own (the device's widgets) with the functions that
// define_comm_functions adds to xrpyc._kernel. All of it in the main thread.
#ifndef XRPYC_XCOMMS_HPP
#define XRPYC_XCOMMS_HPP

#include "pybind11/pybind11.h"
#include "xeus/xcomm.hpp"

namespace xrpyc
{
    namespace py = pybind11;

    // `handler` (comms.Comms) gets on_open(comm_id, target, data, metadata,
    // buffers), on_msg(comm_id, data, metadata, buffers) and on_close(...);
    // the GIL is held.
    void register_comm_targets(xeus::xcomm_manager& manager, py::object handler);

    // comm_open, comm_send, comm_close and serve_comms for xrpyc._kernel.
    void define_comm_functions(py::module_& module);
}

#endif
