#include "xinterpreter.hpp"

#include <iostream>
#include <utility>
#include <vector>

#include "xinterrupt.hpp"

namespace xrpyc
{
    namespace
    {
        // Built by hand: xeus' create_error_reply swaps ename and evalue in
        // 2.4.1 and 5.2.8 (../shared/DESIGN.md, gotcha 4).
        nl::json error_reply(const std::string& ename, const std::string& evalue)
        {
            nl::json reply;
            reply["status"] = "error";
            reply["ename"] = ename;
            reply["evalue"] = evalue;
            reply["traceback"] = std::vector<std::string>{ename + ": " + evalue};
            return reply;
        }
    }

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
        m_kernel = kernel_module.attr("Kernel")(py::module_::import("xrpyc_native"));
    }

    template <class... Args>
    bool interpreter::call(nl::json& reply, const char* method, Args&&... args)
    {
        std::string ename;
        std::string evalue;
        try
        {
            py::object result = m_kernel.attr(method)(std::forward<Args>(args)...);
            reply = nl::json::parse(result.cast<std::string>());
            return true;
        }
        catch (py::error_already_set& e)
        {
            ename = py::str(e.type().attr("__name__")).cast<std::string>();
            evalue = py::str(e.value()).cast<std::string>();
        }
        catch (std::exception& e)
        {
            ename = "InternalError";
            evalue = e.what();
        }
        catch (...)
        {
            ename = "InternalError";
            evalue = "unknown C++ exception";
        }
        std::cerr << "xrpyc: " << method << " failed: " << ename << ": " << evalue << std::endl;
        reply.update(error_reply(ename, evalue));
        return false;
    }

    nl::json interpreter::execute_request_impl(int execution_counter,
                                               const std::string& code,
                                               bool silent,
                                               bool store_history,
                                               nl::json user_expressions,
                                               bool allow_stdin)
    {
        py::gil_scoped_acquire acquire;
        interruptible_scope interruptible;
        nl::json reply = nl::json::object();
        if (!call(reply, "execute", execution_counter, code, silent, store_history, user_expressions.dump(),
                  allow_stdin) && !silent)
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
        call(reply, "complete", code, cursor_pos);
        return reply;
    }

    nl::json interpreter::inspect_request_impl(const std::string& code, int cursor_pos, int detail_level)
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"found", false}, {"data", nl::json::object()}, {"metadata", nl::json::object()}};
        call(reply, "inspect", code, cursor_pos, detail_level);
        return reply;
    }

    nl::json interpreter::is_complete_request_impl(const std::string& code)
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"status", "unknown"}};
        call(reply, "is_complete", code);
        return reply;
    }

    nl::json interpreter::kernel_info_request_impl()
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = nl::json::object();
        call(reply, "kernel_info");
        return reply;
    }

    void interpreter::shutdown_request_impl()
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = nl::json::object();
        call(reply, "shutdown");
    }
}
