// The ZMQ server for xeus 2.x, which ships its own (xeus::xserver_zmq). It
// differs from xeus' in what it reads and in a few things it writes:
//  - every request on shell, control and stdin (and those drained after an
//    error, abort_queue) goes through xrpyc's request_reader (xreader.hpp):
//    malformed, unsigned and replayed messages are dropped with one line on
//    stderr, where xeus' reader aborted or crashed the kernel on a short one;
//  - while input() waits, only a valid input_reply answers it;
//  - messages' dates are written right (wire::pad_date), and input_request's
//    flag is named as the messaging spec (and xeus >= 5) names it:
//    "password", which JupyterLab and jupyter_client read (2.4 sends "pwd",
//    so a getpass() prompt showed what was typed);
//  - requests answered by abort_queue, and comm requests served while a
//    cell runs (serve_comms), get busy/idle statuses around them.
// xeus >= 5 keeps its sockets out of reach (xeus-zmq's xserver_zmq_impl):
// there the reader's checks come as a patch to xeus-zmq
// (cmake/xeus-zmq-request-checks.patch, applied by cmake/build-against-xeus.sh).
#ifndef XRPYC_XSERVER_HPP
#define XRPYC_XSERVER_HPP

#include "xeus/xeus.hpp"

#if XEUS_VERSION_MAJOR == 2

#include <deque>
#include <string>

#include "nlohmann/json.hpp"
#include "xeus/xkernel_configuration.hpp"
#include "xeus/xserver_zmq.hpp"
#include "zmq.hpp"

#include "xreader.hpp"

namespace xrpyc
{
    namespace nl = nlohmann;

    class server_zmq : public xeus::xserver_zmq
    {
    public:
        server_zmq(zmq::context_t& context, const xeus::xconfiguration& config, nl::json::error_handler_t eh);

    protected:
        void send_shell_impl(xeus::xmessage msg) override;
        void send_control_impl(xeus::xmessage msg) override;
        // Sends the input_request and waits for its input_reply.
        void send_stdin_impl(xeus::xmessage msg) override;
        void publish_impl(xeus::xpub_message msg, xeus::channel c) override;
        // Serves shell and control until a shutdown_request, then exits.
        void start_impl(xeus::xpub_message msg) override;
        void abort_queue_impl(const listener& reply, long polling_interval) override;

    public:
        // See serve_comm_requests.
        void serve_comms();

    private:
        void serve_requests();
        void publish_status(nl::json parent, const char* state);

        request_reader m_reader;
        std::string m_session_id;
        // Requests read by serve_comms while another one ran: served next, in order.
        std::deque<xeus::xmessage> m_deferred;
    };
}

#endif

namespace xrpyc
{
    // While a request runs (a cell waiting for its device), hand the comm
    // messages waiting on shell to xeus' comm manager now: a widget moved in
    // the browser reaches the running cell. Other requests wait their turn.
    // Main thread only; with xeus >= 5 (xeus-zmq's server) it does nothing.
    void serve_comm_requests();
}

#endif
