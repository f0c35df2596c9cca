// xrpyc: a Jupyter kernel whose cells run on a remote Python device over rpyc.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "pybind11/embed.h"

#include "xbackground.hpp"
#include "xeus_compat.hpp"
#include "xhistory.hpp"
#include "xinterpreter.hpp"
#include "xinterrupt.hpp"
#include "xruntime.hpp"
#include "xstdin.hpp"

namespace
{
    std::string connection_file(int argc, char* argv[])
    {
        for (int i = 1; i + 1 < argc; ++i)
        {
            if (std::strcmp(argv[i], "-f") == 0 || std::strcmp(argv[i], "--connection-file") == 0)
            {
                return argv[i + 1];
            }
        }
        return {};
    }
}

int main(int argc, char* argv[])
{
    std::string file = connection_file(argc, argv);
    if (file.empty())
    {
        std::cerr << "usage: xrpyc -f CONNECTION_FILE\n"
                     "Started by Jupyter through the 'xrpyc' kernelspec "
                     "(python -m xrpyc.install)." << std::endl;
        return 2;
    }

    xeus::xconfiguration config;
    try
    {
        config = xeus::load_configuration(file);
    }
    catch (std::exception& e)
    {
        std::ifstream readable(file);
        std::cerr << "xrpyc: cannot use the connection file " << file << ": "
                  << (readable ? e.what() : std::strerror(errno)) << std::endl;
        return 2;
    }

    // Before any thread exists, so that every thread inherits the mask.
    xrpyc::block_interrupt_signal();
    auto python = xrpyc::start_python();

    try
    {
        auto interpreter = std::make_unique<xrpyc::interpreter>();
        xrpyc::interpreter* raw = interpreter.get();
        // xrpyc_native publishes through xeus::get_interpreter().
        xeus::register_interpreter(raw);
        auto context = xrpyc::compat::make_context();
        zmq::context_t& zmq_context = xrpyc::compat::zmq_context(*context);
        auto history = std::make_unique<xrpyc::history_manager>(*raw);
        auto kernel = xrpyc::compat::make_kernel(std::move(config), std::move(context), std::move(interpreter),
                                                 std::move(history));
        // Declared after the kernel: its socket closes before the kernel's
        // ZMQ context does. The kernel's own configuration: with xeus >= 6
        // the connection file may leave the ports for the kernel to choose.
        const xrpyc::compat::kernel_configuration& kernel_config = kernel->get_config();
        xrpyc::background_publisher background(zmq_context, kernel_config);
        xrpyc::input_canceller canceller(zmq_context, kernel_config);
        xrpyc::start_interrupt_watcher([raw](bool during_request) { return raw->on_interrupt(during_request); });
        // The main thread waits in xeus' poll loop without the GIL; every
        // request handler takes it back (xinterpreter.cpp).
        pybind11::gil_scoped_release release;
        xrpyc::compat::mute_start_banner();
        kernel->start();
    }
    catch (std::exception& e)
    {
        std::cerr << "xrpyc: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
