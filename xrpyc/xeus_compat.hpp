// Everything that depends on the xeus major version lives here, so that one
// source tree can build against Debian's xeus 2.4 and, later, conda-forge's
// xeus >= 5 with xeus-zmq.
#ifndef XRPYC_XEUS_COMPAT_HPP
#define XRPYC_XEUS_COMPAT_HPP

#include <memory>
#include <string>

#include "xeus/xeus.hpp"
#include "xeus/xeus_context.hpp"
#include "xeus/xhistory_manager.hpp"
#include "xeus/xinterpreter.hpp"
#include "xeus/xkernel.hpp"
#include "xeus/xkernel_configuration.hpp"

#if XEUS_VERSION_MAJOR == 2
#include "xeus/xserver_zmq.hpp"
#else
#error "xrpyc supports xeus 2.x so far; xeus >= 5 (xeus-zmq) support is tracked separately"
#endif

namespace xrpyc::compat
{
    // The ZMQ context that the kernel and the background publisher share
    // (the in-process endpoint of xeus' IOPub forwarder lives in it).
    inline std::unique_ptr<xeus::xcontext> make_context()
    {
        return xeus::make_context<zmq::context_t>();
    }

    inline zmq::context_t& zmq_context(xeus::xcontext& context)
    {
        return context.get_wrapped_context<zmq::context_t>();
    }

    // A kernel that serves the Jupyter protocol over ZMQ. Invalid UTF-8 in
    // published text is replaced instead of throwing, so device output can
    // never kill a reply.
    inline std::unique_ptr<xeus::xkernel> make_kernel(const xeus::xconfiguration& config,
                                                      std::unique_ptr<xeus::xcontext> context,
                                                      std::unique_ptr<xeus::xinterpreter> interpreter,
                                                      std::unique_ptr<xeus::xhistory_manager> history)
    {
        return std::make_unique<xeus::xkernel>(config,
                                               xeus::get_user_name(),
                                               std::move(context),
                                               std::move(interpreter),
                                               xeus::make_xserver_zmq,
                                               std::move(history),
                                               nullptr,
                                               xeus::make_null_debugger,
                                               nl::json::object(),
                                               nl::json::error_handler_t::replace);
    }
}

#endif
