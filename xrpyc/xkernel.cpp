#include "xkernel.hpp"

#include <iostream>
#include <utility>

#include "nlohmann/json.hpp"
#include "xeus/xeus.hpp"

#include "xeus_compat.hpp"
#include "xserver.hpp"

#if XEUS_VERSION_MAJOR >= 5
#include "xeus-zmq/xserver_zmq.hpp"
#endif

namespace nl = nlohmann;

namespace xrpyc
{
    namespace
    {
        // Shell and control are polled by the thread that calls the kernel's
        // start(), the stdin answer is awaited in a blocking receive.
        std::unique_ptr<xeus::xserver> make_server(xeus::xcontext& context,
                                                   const xeus::xconfiguration& config,
                                                   nl::json::error_handler_t eh)
        {
#if XEUS_VERSION_MAJOR == 2
            return std::make_unique<server_zmq>(compat::zmq_context(context), config, eh);
#else
            return xeus::make_xserver_default(context, config, eh);
#endif
        }
    }

    std::unique_ptr<xeus::xkernel> make_kernel(xeus::xconfiguration config,
                                               std::unique_ptr<xeus::xcontext> context,
                                               std::unique_ptr<xeus::xinterpreter> interpreter,
                                               std::unique_ptr<xeus::xhistory_manager> history)
    {
        return std::make_unique<xeus::xkernel>(std::move(config),
                                               xeus::get_user_name(),
                                               std::move(context),
                                               std::move(interpreter),
                                               make_server,
                                               std::move(history),
                                               nullptr,
                                               xeus::make_null_debugger,
                                               nl::json::object(),
                                               nl::json::error_handler_t::replace);
    }

    void start_kernel(xeus::xkernel& kernel)
    {
#if XEUS_VERSION_MAJOR == 2
        // xeus 2.4 prints "Run with XEUS 2.4.1" to std::clog as the kernel
        // starts, and frontends show a kernel's stderr (jupyter console's
        // banner, nbconvert, the notebook server's log), where it reads like
        // news the user must act on. clog is muted until xrpyc's server starts
        // serving (server_zmq::start_impl unmutes it): only that line is lost.
        std::clog.setstate(std::ios::badbit);
#endif
        kernel.start();
    }
}
