// The differences between xeus major versions, as version switches only, so
// that one source tree builds against Debian's xeus 2.4 (its own ZMQ server)
// and against xeus >= 5 with xeus-zmq (conda-forge's; tested with xeus 5.2 +
// xeus-zmq 3.1 and xeus 6.0 + xeus-zmq 4.0, cmake/build-against-xeus.sh).
// Which server a kernel gets (xrpyc's own for xeus 2.x) is xserver.hpp's.
#ifndef XRPYC_XEUS_COMPAT_HPP
#define XRPYC_XEUS_COMPAT_HPP

#include <memory>
#include <string>
#include <utility>

#include "nlohmann/json.hpp"
#include "xeus/xeus.hpp"
#include "xeus/xeus_context.hpp"
#include "xeus/xinterpreter.hpp"
#include "xeus/xkernel_configuration.hpp"
#include "zmq.hpp"

#if XEUS_VERSION_MAJOR == 2
#include "xeus/xmiddleware.hpp"
#elif XEUS_VERSION_MAJOR >= 5
#include "xeus-zmq/xmiddleware.hpp"
#include "xeus-zmq/xzmq_context.hpp"
#else
#error "xrpyc builds against xeus 2.x, or xeus >= 5 with xeus-zmq"
#endif

namespace xrpyc::compat
{
    namespace nl = nlohmann;

    // The configuration of a started kernel: its ports, key and
    // signature scheme (xkernel::get_config()). Since xeus 6, what a
    // connection file gives (xeus::xconfiguration) may be a registration
    // (handshake) instead, and the ports are known only once the kernel is.
#if XEUS_VERSION_MAJOR >= 6
    using kernel_configuration = xeus::xkernel_configuration;
#else
    using kernel_configuration = xeus::xconfiguration;
#endif

    // The ZMQ context that the kernel and xrpyc's own sockets share (the
    // in-process endpoint of xeus' IOPub forwarder lives in it).
    inline std::unique_ptr<xeus::xcontext> make_context()
    {
#if XEUS_VERSION_MAJOR == 2
        return xeus::make_context<zmq::context_t>();
#else
        return xeus::make_zmq_context();
#endif
    }

    inline zmq::context_t& zmq_context(xeus::xcontext& context)
    {
        return context.get_wrapped_context<zmq::context_t>();
    }

    // Where xeus' IOPub forwarder listens in process: messages published
    // there (PUB socket, same context) go out on the IOPub port.
    inline std::string publisher_end_point()
    {
        return xeus::get_publisher_end_point();
    }

    inline std::string end_point(const std::string& transport, const std::string& ip, const std::string& port)
    {
        return xeus::get_end_point(transport, ip, port);
    }

    // xeus::xinterpreter with the request handlers whose signatures changed
    // between versions turned into version-independent ones:
    //  - execute: returns the reply (xeus >= 5 wants it through a callback);
    //  - shutdown: xeus >= 6 wants the reply content, built here;
    //  - interrupt_request (control channel, interrupt_mode "message"; xeus
    //    >= 6 only): calls interrupt(), whose reply is built here.
    class interpreter_base : public xeus::xinterpreter
    {
    protected:
        virtual nl::json execute(int execution_counter,
                                 const std::string& code,
                                 bool silent,
                                 bool store_history,
                                 nl::json user_expressions,
                                 bool allow_stdin) = 0;
        virtual void shutdown() = 0;
        virtual void interrupt() = 0;

    private:
#if XEUS_VERSION_MAJOR == 2
        nl::json execute_request_impl(int execution_counter,
                                      const std::string& code,
                                      bool silent,
                                      bool store_history,
                                      nl::json user_expressions,
                                      bool allow_stdin) final
        {
            return execute(execution_counter, code, silent, store_history, std::move(user_expressions), allow_stdin);
        }
#else
        void execute_request_impl(send_reply_callback reply,
                                  int execution_counter,
                                  const std::string& code,
                                  xeus::execute_request_config config,
                                  nl::json user_expressions) final
        {
            reply(execute(execution_counter, code, config.silent, config.store_history,
                          std::move(user_expressions), config.allow_stdin));
        }
#endif

#if XEUS_VERSION_MAJOR >= 6
        nl::json shutdown_request_impl(bool restart) final
        {
            shutdown();
            return {{"status", "ok"}, {"restart", restart}};
        }

        nl::json interrupt_request_impl() final
        {
            interrupt();
            return {{"status", "ok"}};
        }
#else
        void shutdown_request_impl() final
        {
            shutdown();
        }
#endif
    };
}

#endif
