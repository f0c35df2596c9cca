// Publishing IOPub messages from threads other than the main one (live video
// runs in a background thread). xeus publishes through a ZMQ socket that its
// main thread owns, and ZMQ sockets must not be shared between threads, so
// this publisher has a socket of its own, connected to the in-process
// endpoint that xeus' IOPub forwarder binds, and signs with the session key.
#ifndef XRPYC_XBACKGROUND_HPP
#define XRPYC_XBACKGROUND_HPP

#include <mutex>
#include <string>

#include "nlohmann/json.hpp"
#include "zmq.hpp"

#include "xeus_compat.hpp"
#include "xwire.hpp"

namespace nl = nlohmann;

namespace xrpyc
{
    class background_publisher
    {
    public:
        // The one instance lives in main(): while it does, publish_from_thread works.
        background_publisher(zmq::context_t& context, const compat::kernel_configuration& config);
        ~background_publisher();
        background_publisher(const background_publisher&) = delete;
        background_publisher& operator=(const background_publisher&) = delete;

        void publish(const std::string& msg_type, nl::json parent_header, nl::json content);

    private:
        zmq::socket_t m_socket;
        wire::signer m_signer;
        std::string m_session_id;
        std::string m_user_name;
    };

    // Thread-safe; false when no publisher exists (before start, after shutdown).
    bool publish_from_thread(const std::string& msg_type, nl::json parent_header, nl::json content);
}

#endif
