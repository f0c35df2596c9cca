#include "xstdin.hpp"

#include <mutex>

#include "xeus/xguid.hpp"
#include "xeus/xkernel.hpp"
#include "xeus/xmessage.hpp"

namespace xrpyc
{
    namespace
    {
        std::mutex instance_mutex;
        input_canceller* instance = nullptr;

        // The stdin socket is bound on the connection file's address; a
        // wildcard one is reached on loopback.
        std::string reachable(const std::string& ip)
        {
            return (ip == "*" || ip == "0.0.0.0") ? "127.0.0.1" : ip;
        }
    }

    input_canceller::input_canceller(zmq::context_t& context, const compat::kernel_configuration& config)
        : m_context(context)
        , m_end_point(compat::end_point(config.m_transport, reachable(config.m_ip), config.m_stdin_port))
        , m_signer(config.m_signature_scheme, config.m_key)
        , m_session_id(std::string(xeus::new_xguid()))
    {
        std::lock_guard<std::mutex> lock(instance_mutex);
        instance = this;
    }

    input_canceller::~input_canceller()
    {
        std::lock_guard<std::mutex> lock(instance_mutex);
        instance = nullptr;
    }

    void input_canceller::send(const std::string& value)
    {
        // A socket per cancel: interrupts during input() are rare, and a
        // DEALER kept connected would receive nothing but would hold a peer
        // slot on the kernel's ROUTER.
        zmq::socket_t socket(m_context, zmq::socket_type::dealer);
        socket.set(zmq::sockopt::linger, 1000);
        socket.connect(m_end_point);
        zmq::multipart_t msg = wire::message({},
                                             m_signer,
                                             xeus::make_header("input_reply", xeus::get_user_name(), m_session_id),
                                             nl::json::object(),
                                             nl::json::object(),
                                             nl::json{{"status", "ok"}, {"value", value}});
        msg.send(socket);
    }

    bool cancel_input(const std::string& value)
    {
        std::lock_guard<std::mutex> lock(instance_mutex);
        if (instance == nullptr)
        {
            return false;
        }
        instance->send(value);
        return true;
    }
}
