#include "xhistory.hpp"

#include <utility>

#include "xcall.hpp"

namespace xrpyc
{
    history_manager::history_manager(const interpreter& owner)
        : m_owner(owner)
    {
    }

    void history_manager::configure_impl()
    {
    }

    void history_manager::store_inputs_impl(int /*session: xeus always passes 0*/, int line_num,
                                            const std::string& input, const std::string& /*output*/)
    {
        // The output, if any, was handed to the store by the cell itself.
        request("store", line_num, input);
    }

    nl::json history_manager::get_tail_impl(int n, bool raw, bool output) const
    {
        return request("tail", n, raw, output);
    }

    nl::json history_manager::get_range_impl(int session, int start, int stop, bool raw, bool output) const
    {
        return request("range", session, start, stop, raw, output);
    }

    nl::json history_manager::search_impl(const std::string& pattern, bool raw, bool output, int n,
                                          bool unique) const
    {
        return request("search", pattern, raw, output, n, unique);
    }

    template <class... Args>
    nl::json history_manager::request(const char* method, Args&&... args) const
    {
        py::gil_scoped_acquire acquire;
        nl::json reply = {{"status", "ok"}, {"history", nl::json::array()}};
        py::object kernel = m_owner.python_kernel();
        if (kernel)
        {
            call_json(kernel, reply, "history", method, std::forward<Args>(args)...);
        }
        return reply;
    }
}
