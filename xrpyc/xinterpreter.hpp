// The xeus interpreter: forwards every request to python/xrpyc/kernel.py.
// Each *_impl takes the GIL, calls one Python method and converts its JSON
// answer; a catch ladder turns any failure into a well-formed reply so that
// nothing a user types can take the kernel down.
#ifndef XRPYC_XINTERPRETER_HPP
#define XRPYC_XINTERPRETER_HPP

#include <string>

#include "nlohmann/json.hpp"
#include "pybind11/pybind11.h"

#include "xeus_compat.hpp"

namespace nl = nlohmann;
namespace py = pybind11;

namespace xrpyc
{
    class interpreter : public compat::interpreter_base
    {
    public:
        interpreter() = default;
        ~interpreter() override;

        // SIGINT (see xinterrupt.hpp); the GIL is held.
        bool on_interrupt(bool during_request);

        // python/xrpyc/kernel.py's Kernel (None before configure); GIL held.
        py::object python_kernel() const { return m_kernel; }

    private:
        void configure_impl() override;

        // execute_request, shutdown_request and interrupt_request, whose
        // xeus signatures differ between versions (xeus_compat.hpp).
        nl::json execute(int execution_counter,
                         const std::string& code,
                         bool silent,
                         bool store_history,
                         nl::json user_expressions,
                         bool allow_stdin) override;
        void shutdown() override;
        void interrupt() override;

        nl::json complete_request_impl(const std::string& code, int cursor_pos) override;
        nl::json inspect_request_impl(const std::string& code, int cursor_pos, int detail_level) override;
        nl::json is_complete_request_impl(const std::string& code) override;
        nl::json kernel_info_request_impl() override;

        py::object m_kernel;
    };
}

#endif
