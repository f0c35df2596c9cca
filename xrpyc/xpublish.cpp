// What Python needs from the C++ side (functions of the module xrpyc._kernel)
// to publish IOPub messages (stream, display_data, update_display_data,
// clear_output, execute_result, error) through xeus, from the main thread, and
// display messages from any thread; and to ask the frontend for input.

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pybind11/pybind11.h"
#include "pybind11/stl.h"
#include "xeus/xinput.hpp"
#include "xeus/xinterpreter.hpp"

#include "xbackground.hpp"
#include "xcomms.hpp"
#include "xpublish.hpp"
#include "xstdin.hpp"

namespace nl = nlohmann;
namespace py = pybind11;

namespace
{
    // Dicts cross the boundary as JSON text: Python's json module does the
    // conversion in one call, and no pybind11<->nlohmann glue is needed.
    nl::json parse(const std::string& text)
    {
        return text.empty() ? nl::json::object() : nl::json::parse(text);
    }

    xeus::xinterpreter& interpreter()
    {
        return xeus::get_interpreter();
    }
}

void xrpyc::define_publishing(py::module_& m)
{

    m.def("stream", [](const std::string& name, const std::string& text) {
        interpreter().publish_stream(name, text);
    }, py::arg("name"), py::arg("text"));

    m.def("display_data", [](const std::string& data, const std::string& metadata, const std::string& transient) {
        interpreter().display_data(parse(data), parse(metadata), parse(transient));
    }, py::arg("data"), py::arg("metadata") = "", py::arg("transient") = "");

    m.def("update_display_data", [](const std::string& data, const std::string& metadata, const std::string& transient) {
        interpreter().update_display_data(parse(data), parse(metadata), parse(transient));
    }, py::arg("data"), py::arg("metadata") = "", py::arg("transient") = "");

    m.def("clear_output", [](bool wait) {
        interpreter().clear_output(wait);
    }, py::arg("wait") = false);

    m.def("execute_result", [](int execution_count, const std::string& data, const std::string& metadata) {
        interpreter().publish_execution_result(execution_count, parse(data), parse(metadata));
    }, py::arg("execution_count"), py::arg("data"), py::arg("metadata") = "");

    m.def("error", [](const std::string& ename, const std::string& evalue, const std::vector<std::string>& traceback) {
        interpreter().publish_execution_error(ename, evalue, traceback);
    }, py::arg("ename"), py::arg("evalue"), py::arg("traceback"));

    m.def("parent_header", []() {
        return interpreter().parent_header().dump();
    }, "The header of the request being handled, as JSON (for publish_from_thread).");

    m.def("publish_from_thread", [](const std::string& msg_type, const std::string& parent_header,
                                    const std::string& content) {
        return xrpyc::publish_from_thread(msg_type, parse(parent_header), parse(content));
    }, py::arg("msg_type"), py::arg("parent_header"), py::arg("content"),
       "Publish an IOPub message from any thread, as a reply to `parent_header`; false after shutdown.");

    m.def("input_request", [](const std::string& prompt, bool password) {
        // The wait is the user's: other threads (video) need the GIL meanwhile.
        py::gil_scoped_release release;
        return xeus::blocking_input_request(prompt, password);
    }, py::arg("prompt"), py::arg("password"),
       "Ask the frontend for a line of input (stdin channel) and wait for it; main thread only.");

    m.def("cancel_input", [](const std::string& value) {
        return xrpyc::cancel_input(value);
    }, py::arg("value"), "End a pending input_request as if the frontend had answered `value` (any thread).");

    xrpyc::define_comm_functions(m);
}
