#include "xinterpreter.hpp"

#include <iostream>

#include "xcall.hpp"
#include "xcomms.hpp"
#include "xinterrupt.hpp"

namespace xrpyc
{
    interpreter::~interpreter()
    {
        if (m_kernel && Py_IsInitialized())
        {
            py::gil_scoped_acquire acquire;
            m_kernel = py::object();
        }
    }

    bool interpreter::on_interrupt(bool during_request)
    {
        try
        {
            return m_kernel.attr("interrupt")(during_request).cast<bool>();
        }
        catch (std::exception& e)
        {
            std::cerr << "xrpyc: interrupt failed: " << e.what() << std::endl;
            return true;  // at least stop what runs in the kernel itself
        }
    }

    void interpreter::configure_impl()
    {
        py::gil_scoped_acquire acquire;
        py::object kernel_module = py::module_::import("xrpyc.kernel");
        m_kernel = kernel_module.attr("Kernel")(py::module_::import("xrpyc._kernel"));
        register_comm_targets(comm_manager(), m_kernel.attr("comms"));
    }

    nl::json interpreter::execute(int execution_counter,
                                  const std::string& code,
                                  bool silent,
                                  bool store_history,
                                  nl::json user_expressions,
                                  bool allow_stdin)
    {
        py::gil_scoped_acquire acquire;
        interruptible_scope interruptible;
        nl::json reply = nl::json::object();
        if (!call_json(m_kernel, reply, "execute", execution_counter, code, silent, store_history,
                       user_expressions.dump(), allow_stdin) && !silent)
        {
            // Python failed before it could publish the error itself: do it
            // here, so that "Run All" still stops at this cell.
            publish_execution_error(reply["ename"], reply["evalue"], reply["traceback"]);
        }
        return reply;
    }

    nl::json interpreter::complete_request_impl(const std::string& code, int cursor_pos)
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"matches", nl::json::array()},
                          {"cursor_start", cursor_pos},
                          {"cursor_end", cursor_pos},
                          {"metadata", nl::json::object()}};
        call_json(m_kernel, reply, "complete", code, cursor_pos);
        return reply;
    }

    nl::json interpreter::inspect_request_impl(const std::string& code, int cursor_pos, int detail_level)
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"found", false}, {"data", nl::json::object()}, {"metadata", nl::json::object()}};
        call_json(m_kernel, reply, "inspect", code, cursor_pos, detail_level);
        return reply;
    }

    nl::json interpreter::is_complete_request_impl(const std::string& code)
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"status", "unknown"}};
        call_json(m_kernel, reply, "is_complete", code);
        return reply;
    }

    nl::json interpreter::kernel_info_request_impl()
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = nl::json::object();
        call_json(m_kernel, reply, "kernel_info");
        return reply;
    }

    void interpreter::shutdown()
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = nl::json::object();
        call_json(m_kernel, reply, "shutdown");
    }

    void interpreter::interrupt()
    {
        // Handled by the SIGINT watcher, as in interrupt_mode "signal".
        send_interrupt_signal();
    }
}
