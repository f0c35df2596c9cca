#include "xcomms.hpp"

#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pybind11/stl.h"
#include "xeus/xinterpreter.hpp"

#include "xserver.hpp"

namespace nl = nlohmann;

namespace xrpyc
{
    namespace
    {
        const char* const TARGETS[] = {"jupyter.widget", "jupyter.widget.control"};

        // Comms open between the frontend and the device, by id. A comm closed
        // by the frontend is destroyed at the next change, not inside xeus'
        // call of its own close handler.
        std::map<std::string, std::unique_ptr<xeus::xcomm>> open_comms;
        std::vector<std::unique_ptr<xeus::xcomm>> closed_comms;
        // Never destroyed: it must outlive no interpreter (static destructors run after Python's end).
        py::object* python_handler = nullptr;

        py::list python_buffers(const xeus::buffer_sequence& buffers)
        {
            py::list list;
            for (const xeus::binary_buffer& buffer : buffers)
            {
                list.append(py::bytes(buffer.data(), buffer.size()));
            }
            return list;
        }

        xeus::buffer_sequence xeus_buffers(const std::vector<std::string>& buffers)
        {
            xeus::buffer_sequence sequence;
            for (const std::string& buffer : buffers)
            {
                sequence.emplace_back(buffer.begin(), buffer.end());
            }
            return sequence;
        }

        nl::json parse(const std::string& text)
        {
            return text.empty() ? nl::json::object() : nl::json::parse(text);
        }

        std::string field(const nl::json& content, const char* name)
        {
            auto position = content.find(name);
            return position == content.end() ? "{}" : position->dump();
        }

        // handler.<method>(comm_id, ...) for a message of the frontend's; a failure is logged, never thrown.
        void tell_python(const char* method, const std::string& comm_id, const xeus::xmessage& message,
                         const std::string* target = nullptr)
        {
            py::gil_scoped_acquire acquire;
            try
            {
                const nl::json& content = message.content();
                py::object call = python_handler->attr(method);
                std::string data = field(content, "data");
                std::string metadata = message.metadata().dump();
                if (target != nullptr)
                {
                    call(comm_id, *target, data, metadata, python_buffers(message.buffers()));
                }
                else
                {
                    call(comm_id, data, metadata, python_buffers(message.buffers()));
                }
            }
            catch (std::exception& e)
            {
                std::cerr << "xrpyc: comm " << method << " failed: " << e.what() << std::endl;
            }
        }

        xeus::xcomm& adopt(xeus::xcomm&& comm)
        {
            closed_comms.clear();
            std::string id = comm.id();
            auto& held = open_comms[id] = std::make_unique<xeus::xcomm>(std::move(comm));
            held->on_message([id](xeus::xmessage message) { tell_python("on_msg", id, message); });
            held->on_close([id](xeus::xmessage message) {
                auto position = open_comms.find(id);
                if (position != open_comms.end())
                {
                    closed_comms.push_back(std::move(position->second));
                    open_comms.erase(position);
                }
                tell_python("on_close", id, message);
            });
            return *held;
        }

        xeus::xcomm* find(const std::string& comm_id)
        {
            auto position = open_comms.find(comm_id);
            return position == open_comms.end() ? nullptr : position->second.get();
        }
    }

    void register_comm_targets(xeus::xcomm_manager& manager, py::object handler)
    {
        python_handler = new py::object(std::move(handler));
        for (const char* name : TARGETS)
        {
            std::string target = name;
            manager.register_comm_target(target, [target](xeus::xcomm&& comm, xeus::xmessage request) {
                xeus::xcomm& held = adopt(std::move(comm));
                tell_python("on_open", held.id(), request, &target);
            });
        }
    }

    void define_comm_functions(py::module_& module)
    {
        module.def("comm_open", [](const std::string& comm_id, const std::string& target, const std::string& data,
                                   const std::string& metadata, const std::vector<std::string>& buffers) {
            auto* known = xeus::get_interpreter().comm_manager().target(target);  // const since xeus 6
            if (known == nullptr || find(comm_id) != nullptr)
            {
                return false;
            }
            adopt(xeus::xcomm(known, xeus::xguid(comm_id))).open(parse(metadata), parse(data), xeus_buffers(buffers));
            return true;
        }, py::arg("comm_id"), py::arg("target"), py::arg("data"), py::arg("metadata"), py::arg("buffers"),
           "Open a comm to the frontend (main thread); false for an unknown target or a comm already open.");

        module.def("comm_send", [](const std::string& comm_id, const std::string& data, const std::string& metadata,
                                   const std::vector<std::string>& buffers) {
            xeus::xcomm* comm = find(comm_id);
            if (comm != nullptr)
            {
                comm->send(parse(metadata), parse(data), xeus_buffers(buffers));
            }
            return comm != nullptr;
        }, py::arg("comm_id"), py::arg("data"), py::arg("metadata"), py::arg("buffers"),
           "Send a comm_msg on an open comm (main thread); false when it is not open.");

        module.def("comm_close", [](const std::string& comm_id, const std::string& data, const std::string& metadata,
                                    const std::vector<std::string>& buffers) {
            auto position = open_comms.find(comm_id);
            if (position == open_comms.end())
            {
                return false;
            }
            std::unique_ptr<xeus::xcomm> comm = std::move(position->second);
            open_comms.erase(position);
            comm->close(parse(metadata), parse(data), xeus_buffers(buffers));
            return true;
        }, py::arg("comm_id"), py::arg("data"), py::arg("metadata"), py::arg("buffers"),
           "Close an open comm (main thread); false when it is not open.");

        module.def("serve_comms", []() { serve_comm_requests(); },
           "Handle the comm messages waiting on shell now, while a request runs (main thread); "
           "other requests keep their turn.");
    }
}
