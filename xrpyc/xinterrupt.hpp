// SIGINT handling: Jupyter's "interrupt_mode: signal" sends SIGINT to the
// kernel. Instead of letting it kill the process (as xeus-python does), one
// thread waits for it and hands it to Python, which stops the code on the
// device, asks for a local KeyboardInterrupt, or (while idle) stops
// background video.
#ifndef XRPYC_XINTERRUPT_HPP
#define XRPYC_XINTERRUPT_HPP

#include <functional>

namespace xrpyc
{
    // Called with the GIL held when SIGINT arrives, with whether a request
    // is being handled; returns true to raise KeyboardInterrupt in the main
    // thread (honoured during a request only).
    using interrupt_handler = std::function<bool(bool)>;

    // Block SIGINT in the calling thread and every thread created after it.
    // Call first thing in main(), before xeus or Python start threads.
    void block_interrupt_signal();

    // Start the thread that sigwait()s for SIGINT.
    void start_interrupt_watcher(interrupt_handler handler);

    // Send this process SIGINT, as Jupyter does in interrupt_mode "signal":
    // an interrupt_request (control channel) then does what the signal does.
    void send_interrupt_signal();

    // While an instance lives, SIGINT raises KeyboardInterrupt in Python's
    // main thread. Construct and destroy it with the GIL held.
    class interruptible_scope
    {
    public:
        interruptible_scope();
        ~interruptible_scope();
        interruptible_scope(const interruptible_scope&) = delete;
        interruptible_scope& operator=(const interruptible_scope&) = delete;
    };
}

#endif
