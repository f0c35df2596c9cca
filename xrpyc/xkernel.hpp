// The xeus kernel that xrpyc runs: xeus' xkernel with the ZMQ server for the
// xeus version it is built against (xrpyc's own for xeus 2.x, xserver.hpp;
// xeus-zmq's for xeus >= 5).
#ifndef XRPYC_XKERNEL_HPP
#define XRPYC_XKERNEL_HPP

#include <memory>

#include "xeus/xeus_context.hpp"
#include "xeus/xhistory_manager.hpp"
#include "xeus/xinterpreter.hpp"
#include "xeus/xkernel.hpp"
#include "xeus/xkernel_configuration.hpp"

namespace xrpyc
{
    // A kernel that serves the Jupyter protocol over ZMQ. Invalid UTF-8 in
    // published text is replaced instead of throwing, so device output can
    // never kill a reply.
    std::unique_ptr<xeus::xkernel> make_kernel(xeus::xconfiguration config,
                                               std::unique_ptr<xeus::xcontext> context,
                                               std::unique_ptr<xeus::xinterpreter> interpreter,
                                               std::unique_ptr<xeus::xhistory_manager> history);

    // Serves requests until a shutdown request (the xeus 2.x server then exits the process).
    void start_kernel(xeus::xkernel& kernel);
}

#endif
