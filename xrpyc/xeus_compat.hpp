// Everything that depends on the xeus major version lives here, so that one
// source tree can build against Debian's xeus 2.4 and, later, conda-forge's
// xeus >= 5 with xeus-zmq.
#ifndef XRPYC_XEUS_COMPAT_HPP
#define XRPYC_XEUS_COMPAT_HPP

#include <memory>
#include <string>

#include "xeus/xeus.hpp"
#include "xeus/xeus_context.hpp"
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
    // Build a kernel that serves the Jupyter protocol over ZMQ with the
    // connection file's configuration. Invalid UTF-8 in published text is
    // replaced instead of throwing, so device output can never kill a reply.
    inline std::unique_ptr<xeus::xkernel>
    make_kernel(const std::string& connection_file, std::unique_ptr<xeus::xinterpreter> interpreter)
    {
        xeus::xconfiguration config = xeus::load_configuration(connection_file);
        auto context = xeus::make_context<zmq::context_t>();
        return std::make_unique<xeus::xkernel>(config,
                                               xeus::get_user_name(),
                                               std::move(context),
                                               std::move(interpreter),
                                               xeus::make_xserver_zmq,
                                               xeus::make_in_memory_history_manager(),
                                               nullptr,
                                               xeus::make_null_debugger,
                                               nl::json::object(),
                                               nl::json::error_handler_t::replace);
    }
}

#endif
