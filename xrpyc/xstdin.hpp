// input() on the device asks the notebook through xeus' stdin channel, and
// xeus waits for the answer in a blocking receive (xserver_zmq's send_stdin
// in 2.4; xserver_zmq_impl::send_stdin in xeus-zmq 3 and 4). An interrupt must end that wait, or a frontend that never
// answers holds the kernel forever: this sends the kernel an input_reply of
// its own, signed with the session key, over a socket connected to the stdin
// port, so that the receive returns and Python sees the interrupt.
#ifndef XRPYC_XSTDIN_HPP
#define XRPYC_XSTDIN_HPP

#include <string>

#include "zmq.hpp"

#include "xeus_compat.hpp"
#include "xwire.hpp"

namespace xrpyc
{
    class input_canceller
    {
    public:
        // The one instance lives in main(): while it does, cancel_input works.
        input_canceller(zmq::context_t& context, const compat::kernel_configuration& config);
        ~input_canceller();
        input_canceller(const input_canceller&) = delete;
        input_canceller& operator=(const input_canceller&) = delete;

        void send(const std::string& value);

    private:
        zmq::context_t& m_context;
        std::string m_end_point;
        wire::signer m_signer;
        std::string m_session_id;
    };

    // Answer the pending input request with `value`, from any thread; false
    // when no canceller exists.
    bool cancel_input(const std::string& value);
}

#endif
