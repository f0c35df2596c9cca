// history_request: answered from python/xrpyc/history.py's store (SQLite, as
// IPython's), not from xeus' in-memory manager, whose entries are malformed in
// 2.4.1 and which forgets everything when the kernel restarts.
#ifndef XRPYC_XHISTORY_HPP
#define XRPYC_XHISTORY_HPP

#include <string>

#include "nlohmann/json.hpp"
#include "xeus/xhistory_manager.hpp"

#include "xinterpreter.hpp"

namespace xrpyc
{
    class history_manager : public xeus::xhistory_manager
    {
    public:
        // Each request goes to the Python kernel's history(), found through
        // `owner` on each call: it exists only once xeus configured `owner`.
        explicit history_manager(const interpreter& owner);

    private:
        void configure_impl() override;
        void store_inputs_impl(int session, int line_num, const std::string& input,
                               const std::string& output) override;
        nl::json get_tail_impl(int n, bool raw, bool output) const override;
        nl::json get_range_impl(int session, int start, int stop, bool raw, bool output) const override;
        nl::json search_impl(const std::string& pattern, bool raw, bool output, int n, bool unique) const override;

        template <class... Args>
        nl::json request(const char* method, Args&&... args) const;

        const interpreter& m_owner;
    };
}

#endif
