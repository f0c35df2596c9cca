#include "xbackground.hpp"

#include "xeus/xguid.hpp"
#include "xeus/xkernel.hpp"
#include "xeus/xmessage.hpp"

namespace xrpyc
{
    namespace
    {
        std::mutex instance_mutex;
        background_publisher* instance = nullptr;
    }

    background_publisher::background_publisher(zmq::context_t& context, const compat::kernel_configuration& config)
        : m_socket(context, zmq::socket_type::pub)
        , m_signer(config.m_signature_scheme, config.m_key)
        , m_session_id(std::string(xeus::new_xguid()))
        , m_user_name(xeus::get_user_name())
    {
        // Never block process exit on messages nobody will read.
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(compat::publisher_end_point());
        std::lock_guard<std::mutex> lock(instance_mutex);
        instance = this;
    }

    background_publisher::~background_publisher()
    {
        std::lock_guard<std::mutex> lock(instance_mutex);
        instance = nullptr;
    }

    void background_publisher::publish(const std::string& msg_type, nl::json parent_header, nl::json content)
    {
        zmq::multipart_t msg = wire::message({"kernel_core.xrpyc." + msg_type},
                                             m_signer,
                                             xeus::make_header(msg_type, m_user_name, m_session_id),
                                             parent_header,
                                             nl::json::object(),
                                             content);
        msg.send(m_socket);
    }

    bool publish_from_thread(const std::string& msg_type, nl::json parent_header, nl::json content)
    {
        // One lock for the instance and its socket: the socket is used by
        // one thread at a time, and never after it is gone.
        std::lock_guard<std::mutex> lock(instance_mutex);
        if (instance == nullptr)
        {
            return false;
        }
        instance->publish(msg_type, std::move(parent_header), std::move(content));
        return true;
    }
}
