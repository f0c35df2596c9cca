#include "xinterrupt.hpp"

#include <atomic>
#include <csignal>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include "pybind11/pybind11.h"

namespace py = pybind11;

namespace xrpyc
{
    namespace
    {
        std::atomic<bool> executing{false};

        sigset_t interrupt_set()
        {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGINT);
            return set;
        }
    }

    void block_interrupt_signal()
    {
        sigset_t set = interrupt_set();
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }

    void start_interrupt_watcher(interrupt_handler handler)
    {
        std::thread([handler = std::move(handler)] {
            sigset_t set = interrupt_set();
            while (true)
            {
                int sig = 0;
                if (sigwait(&set, &sig) != 0 || sig != SIGINT)
                {
                    continue;
                }
                // Taking the GIL also forces a switch away from a main thread
                // busy in bytecode, so it notices a pending signal promptly.
                py::gil_scoped_acquire acquire;
                // Read with the GIL: the request may have ended meanwhile, and
                // a KeyboardInterrupt must not leak into the next one.
                bool during_request = executing.load();
                if (handler(during_request) && during_request)
                {
                    // Marks SIGINT as tripped: the main thread raises
                    // KeyboardInterrupt at its next check.
                    PyErr_SetInterrupt();
                }
            }
        }).detach();
    }

    void send_interrupt_signal()
    {
        // To the process, not this thread (where SIGINT is blocked): the
        // watcher's sigwait() takes it.
        kill(getpid(), SIGINT);
    }

    interruptible_scope::interruptible_scope()
    {
        executing.store(true);
    }

    interruptible_scope::~interruptible_scope()
    {
        executing.store(false);
        // An interrupt that arrived after the cell finished must not leak
        // into the next request: run Python's handler now and drop the error.
        if (PyErr_CheckSignals() != 0)
        {
            PyErr_Clear();
        }
    }
}
