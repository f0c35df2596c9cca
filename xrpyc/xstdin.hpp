// input() on the device asks the notebook through xeus' stdin channel, and
// xeus waits for the answer in a blocking receive (2.4.1: xserver_zmq's
// send_stdin). An interrupt must end that wait, or a frontend that never
// answers holds the kernel forever: this sends the kernel an input_reply of
// its own, signed with the session key, over a socket connected to the stdin
// port, so that the receive returns and Python sees the interrupt.
#ifndef XRPYC_XSTDIN_HPP
#define XRPYC_XSTDIN_HPP

#include <memory>
#include <string>

#include "xeus/xauthentication.hpp"
#include "xeus/xkernel_configuration.hpp"
#include "zmq.hpp"

namespace xrpyc
{
    class input_canceller
    {
    public:
        // The one instance lives in main(): while it does, cancel_input works.
        input_canceller(zmq::context_t& context, const xeus::xconfiguration& config);
        ~input_canceller();
        input_canceller(const input_canceller&) = delete;
        input_canceller& operator=(const input_canceller&) = delete;

        void send(const std::string& value);

    private:
        zmq::context_t& m_context;
        std::string m_end_point;
        std::unique_ptr<xeus::xauthentication> p_auth;
        std::string m_session_id;
    };

    // Answer the pending input request with `value`, from any thread; false
    // when no canceller exists.
    bool cancel_input(const std::string& value);
}

#endif
