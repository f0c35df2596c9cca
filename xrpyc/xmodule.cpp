// xrpyc: a Jupyter kernel whose cells run on a remote Python device over rpyc.
//
// The Python extension module `xrpyc._kernel`: `python -m xrpyc -f FILE`
// (python/xrpyc/__main__.py) calls launch(FILE), which runs the xeus kernel in
// this process until it is shut down. The same module gives Python what it
// needs from xeus to publish IOPub messages (xpublish.cpp). Python is the
// interpreter that started us, so its venv or conda prefix is used as it is.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "pybind11/pybind11.h"

#include "xbackground.hpp"
#include "xeus_compat.hpp"
#include "xhistory.hpp"
#include "xinterpreter.hpp"
#include "xinterrupt.hpp"
#include "xkernel.hpp"
#include "xpublish.hpp"
#include "xstdin.hpp"

namespace py = pybind11;

namespace
{
    // Runs the kernel described by the connection file `file` until a
    // shutdown request; returns the process's exit status.
    int launch(const std::string& file)
    {
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

        // Before any thread exists (xrpyc's __main__ starts none), so that
        // every thread inherits the mask and only the watcher takes SIGINT:
        // Python's own handler never runs, PyErr_SetInterrupt() raises.
        xrpyc::block_interrupt_signal();
        try
        {
            auto interpreter = std::make_unique<xrpyc::interpreter>();
            xrpyc::interpreter* raw = interpreter.get();
            // The publishing functions reach it through xeus::get_interpreter().
            xeus::register_interpreter(raw);
            auto context = xrpyc::compat::make_context();
            zmq::context_t& zmq_context = xrpyc::compat::zmq_context(*context);
            auto history = std::make_unique<xrpyc::history_manager>(*raw);
            auto kernel = xrpyc::make_kernel(std::move(config), std::move(context), std::move(interpreter),
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
            py::gil_scoped_release release;
            xrpyc::start_kernel(*kernel);
        }
        catch (std::exception& e)
        {
            std::cerr << "xrpyc: " << e.what() << std::endl;
            return 1;
        }
        return 0;
    }
}

PYBIND11_MODULE(_kernel, m)
{
    m.doc() = "The xrpyc kernel (C++ on xeus) and what Python publishes through it.";
    m.def("launch", &launch, py::arg("connection_file"),
          "Run the kernel on CONNECTION_FILE until it is shut down; returns the exit status "
          "(2: the connection file cannot be used, with one line on stderr).");
    xrpyc::define_publishing(m);
}
