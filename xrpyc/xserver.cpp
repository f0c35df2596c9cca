#include "xserver.hpp"

#if XEUS_VERSION_MAJOR == 2

#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>

#include "xeus/xguid.hpp"
#include "xeus/xkernel.hpp"
#include "xeus/xzmq_serializer.hpp"
#include "zmq_addon.hpp"

#include "xeus/xinterpreter.hpp"
#include "xwire.hpp"

namespace xrpyc
{
    namespace
    {
        // The server whose start_impl runs (serve_comm_requests).
        server_zmq* serving = nullptr;

        // The message is ours (taken by value); only its accessor is const.
        void pad_date(const xeus::xmessage_base& msg)
        {
            wire::pad_date(const_cast<nl::json&>(msg.header()));
        }

        // The next message on `socket` (waits for it), or nothing when the reader dropped it.
        std::optional<xeus::xmessage> receive(zmq::socket_t& socket, request_reader& reader, const char* channel)
        {
            zmq::multipart_t frames(socket);
            return reader.read(frames, channel);
        }
    }

    server_zmq::server_zmq(zmq::context_t& context, const xeus::xconfiguration& config, nl::json::error_handler_t eh)
        : xeus::xserver_zmq(context, config, eh)
        , m_reader(config.m_signature_scheme, config.m_key)
        , m_session_id(xeus::new_xguid())
    {
    }

    void server_zmq::send_shell_impl(xeus::xmessage msg)
    {
        pad_date(msg);
        xeus::xserver_zmq::send_shell_impl(std::move(msg));
    }

    void server_zmq::send_control_impl(xeus::xmessage msg)
    {
        pad_date(msg);
        xeus::xserver_zmq::send_control_impl(std::move(msg));
    }

    void server_zmq::send_stdin_impl(xeus::xmessage msg)
    {
        pad_date(msg);
        nl::json content = msg.content();
        if (msg.header().value("msg_type", "") == "input_request" && content.contains("pwd"))
        {
            content["password"] = content["pwd"];
            content.erase("pwd");
        }
        xeus::xmessage request(msg.identities(), msg.header(), msg.parent_header(), msg.metadata(),
                               std::move(content), std::move(msg).buffers());
        xeus::xzmq_serializer::serialize(std::move(request), *p_auth, m_error_handler).send(m_stdin);
        // Block until the answer: anything else that arrives meanwhile is
        // dropped, and the prompt keeps waiting (an interrupt ends the wait
        // with an input_reply of xrpyc's own, xstdin.cpp).
        while (true)
        {
            std::optional<xeus::xmessage> reply = receive(m_stdin, m_reader, "stdin");
            if (!reply)
            {
                continue;
            }
            auto value = reply->content().find("value");
            if (reply->header().value("msg_type", "") != "input_reply" || value == reply->content().end()
                || !value->is_string())
            {
                std::cerr << "xrpyc: dropped a message on the stdin channel: not an input_reply with a value"
                          << std::endl;
                continue;
            }
            xeus::xserver::notify_stdin_listener(std::move(*reply));
            return;
        }
    }

    void server_zmq::publish_impl(xeus::xpub_message msg, xeus::channel c)
    {
        pad_date(msg);
        xeus::xserver_zmq::publish_impl(std::move(msg), c);
    }

    void server_zmq::start_impl(xeus::xpub_message msg)
    {
        std::clog.clear();  // muted by start_kernel (xkernel.cpp) for xeus' "Run with XEUS" line, printed by now
        start_publisher_thread();
        start_heartbeat_thread();
        m_request_stop = false;
        serving = this;
        publish(std::move(msg), xeus::channel::SHELL);
        serve_requests();
        stop_channels();
        // As xeus' own server does: the kernel ends here.
        std::exit(0);
    }

    // xeus' poll loop, reading through the request reader: control first, and
    // no shell request after a shutdown.
    void server_zmq::serve_requests()
    {
        while (!m_request_stop)
        {
            try
            {
                if (!m_deferred.empty())
                {
                    xeus::xmessage request = std::move(m_deferred.front());
                    m_deferred.pop_front();
                    notify_shell_listener(std::move(request));
                    continue;
                }
                zmq::pollitem_t items[] = {{m_controller, 0, ZMQ_POLLIN, 0}, {m_shell, 0, ZMQ_POLLIN, 0}};
                zmq::poll(&items[0], 2, std::chrono::milliseconds(-1));
                if (items[0].revents & ZMQ_POLLIN)
                {
                    if (auto request = receive(m_controller, m_reader, "control"))
                    {
                        notify_control_listener(std::move(*request));
                    }
                }
                if (!m_request_stop && (items[1].revents & ZMQ_POLLIN))
                {
                    if (auto request = receive(m_shell, m_reader, "shell"))
                    {
                        notify_shell_listener(std::move(*request));
                    }
                }
            }
            catch (std::exception& e)
            {
                std::cerr << "xrpyc: " << e.what() << std::endl;
            }
        }
    }

    // Each comm request gets busy/idle statuses, as ipykernel gives every
    // request: ipywidgets' frontend sends a model's next change only after
    // the idle of its last one (its throttle), so without them a slider
    // dragged during a cell sent one value and then nothing. Then busy again
    // for the cell that runs: JupyterLab's kernel status (and the server's,
    // which culling reads) is the last status, whatever its parent.
    void server_zmq::serve_comms()
    {
        zmq::multipart_t frames;
        bool served = false;
        while (!m_request_stop && frames.recv(m_shell, ZMQ_DONTWAIT))
        {
            std::optional<xeus::xmessage> request = m_reader.read(frames, "shell");
            if (!request)
            {
                continue;
            }
            const std::string type = request->header().value("msg_type", "");
            if (type != "comm_msg" && type != "comm_open" && type != "comm_close")
            {
                m_deferred.push_back(std::move(*request));
                continue;
            }
            xeus::xcomm_manager& comms = xeus::get_interpreter().comm_manager();
            nl::json parent = request->header();
            publish_status(parent, "busy");
            try
            {
                if (type == "comm_msg")
                {
                    comms.comm_msg(std::move(*request));
                }
                else if (type == "comm_open")
                {
                    comms.comm_open(std::move(*request));
                }
                else
                {
                    comms.comm_close(std::move(*request));
                }
            }
            catch (std::exception& e)
            {
                std::cerr << "xrpyc: " << type << ": " << e.what() << std::endl;
            }
            publish_status(std::move(parent), "idle");
            served = true;
        }
        if (served)
        {
            publish_status(xeus::get_interpreter().parent_header(), "busy");
        }
    }

    // After an error with stop_on_error, xeus answers the requests queued
    // behind it with an error reply but no busy/idle status, and clients
    // wait for the idle one (jupyter_client's execute_interactive hangs,
    // JupyterLab's cell futures never end): publish them around each reply,
    // as ipykernel does.
    void server_zmq::abort_queue_impl(const listener& reply, long polling_interval)
    {
        zmq::multipart_t frames;
        while (true)
        {
            // Those serve_comms put aside first: they came before.
            std::optional<xeus::xmessage> request;
            if (!m_deferred.empty())
            {
                request = std::move(m_deferred.front());
                m_deferred.pop_front();
            }
            else if (frames.recv(m_shell, ZMQ_DONTWAIT))
            {
                request = m_reader.read(frames, "shell");
                if (!request)
                {
                    continue;
                }
            }
            else
            {
                break;
            }
            nl::json parent = request->header();
            publish_status(parent, "busy");
            try
            {
                reply(std::move(*request));
            }
            catch (std::exception& e)
            {
                std::cerr << "xrpyc: " << e.what() << std::endl;
            }
            publish_status(std::move(parent), "idle");
            std::this_thread::sleep_for(std::chrono::milliseconds(polling_interval));
        }
    }

    void serve_comm_requests()
    {
        if (serving != nullptr)
        {
            serving->serve_comms();
        }
    }

    void server_zmq::publish_status(nl::json parent, const char* state)
    {
        nl::json header = xeus::make_header("status", xeus::get_user_name(), m_session_id);
        publish_impl(xeus::xpub_message("kernel_core.xrpyc.status", std::move(header), std::move(parent),
                                        nl::json::object(), nl::json{{"execution_state", state}},
                                        xeus::buffer_sequence()),
                     xeus::channel::SHELL);
    }
}

#else

namespace xrpyc
{
    void serve_comm_requests()
    {
    }
}

#endif
