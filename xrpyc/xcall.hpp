// Calling python/xrpyc from a request handler: one catch ladder for all of
// them. Python answers with the reply content as JSON text; any failure
// (a Python exception, a C++ one, unparsable JSON) becomes an error reply's
// fields on top of the defaults the caller put in `reply`, so that nothing a
// user types can take the kernel down. Call with the GIL held.
#ifndef XRPYC_XCALL_HPP
#define XRPYC_XCALL_HPP

#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "pybind11/pybind11.h"

namespace xrpyc
{
    namespace nl = nlohmann;
    namespace py = pybind11;

    // Built by hand: xeus' create_error_reply swaps ename and evalue in
    // 2.4.1 and 5.2.8 (../shared/DESIGN.md, gotcha 4).
    inline nl::json error_reply(const std::string& ename, const std::string& evalue)
    {
        nl::json reply;
        reply["status"] = "error";
        reply["ename"] = ename;
        reply["evalue"] = evalue;
        reply["traceback"] = std::vector<std::string>{ename + ": " + evalue};
        return reply;
    }

    // reply = json(target.<method>(args...)); false (and an error reply) on failure.
    template <class... Args>
    bool call_json(py::handle target, nl::json& reply, const char* method, Args&&... args)
    {
        std::string ename;
        std::string evalue;
        try
        {
            py::object result = target.attr(method)(std::forward<Args>(args)...);
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
}

#endif
