// Reading requests off the kernel's shell, control and stdin sockets. Anyone
// who can reach a port may send any frames, so a message is checked in the
// order that costs an attacker without the key nothing: its frames are
// counted, its signature checked (before any JSON is parsed), then refused if
// its signature was seen before (a replay), and only then parsed and checked
// for the fields that the kernel reads. xeus' own reader (2.4 and xeus-zmq up
// to 4.0) pops frames without counting them (SIGABRT or SIGSEGV on a short
// message) and parses JSON before it checks the signature.
#ifndef XRPYC_XREADER_HPP
#define XRPYC_XREADER_HPP

#include <optional>
#include <string>

#include "xeus/xmessage.hpp"
#include "zmq_addon.hpp"

#include "xreplay.hpp"
#include "xwire.hpp"

namespace xrpyc
{
    class request_reader
    {
    public:
        request_reader(const std::string& signature_scheme, const std::string& key);

        // The request in `frames`, or nothing when it is malformed,
        // unsigned, wrongly signed or replayed: then one line on stderr says
        // why, naming `channel` but nothing of the message. Not thread-safe:
        // one thread (the kernel's main one) reads all channels.
        std::optional<xeus::xmessage> read(const zmq::multipart_t& frames, const char* channel);

    private:
        wire::signer m_signer;
        replay_guard m_replays;
    };
}

#endif
