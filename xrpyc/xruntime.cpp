#include "xruntime.hpp"

#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace xrpyc
{
    namespace
    {
        // The python3 of the prefix this executable is installed in, if any.
        fs::path prefix_python()
        {
            std::error_code ec;
            fs::path self = fs::canonical("/proc/self/exe", ec);
            if (ec)
            {
                return {};
            }
            fs::path candidate = self.parent_path() / "python3";
            return fs::exists(candidate, ec) ? candidate : fs::path();
        }
    }

    std::unique_ptr<pybind11::scoped_interpreter> start_python()
    {
        PyConfig config;
        PyConfig_InitPythonConfig(&config);
        config.parse_argv = 0;
        // Python's SIGINT handler must be installed: PyErr_SetInterrupt()
        // only raises KeyboardInterrupt when it is (see xinterrupt.cpp).
        config.install_signal_handlers = 1;
        fs::path python = prefix_python();
        if (!python.empty())
        {
            // Not canonicalised: a venv's python is a symlink, and getpath
            // finds pyvenv.cfg next to the link, not next to its target.
            PyConfig_SetBytesString(&config, &config.program_name, python.c_str());
        }
        return std::make_unique<pybind11::scoped_interpreter>(&config, 0, nullptr, false);
    }
}
