// Jupyter messages on the wire, for the few that xrpyc sends itself on
// sockets of its own (xbackground.cpp, xstdin.cpp) and the requests it reads
// (xreader.cpp): frames and HMAC signature as the messaging spec gives them.
// xeus 2.x exposed its serializer and authentication; xeus-zmq keeps them
// private, so this small copy serves every xeus version alike.
#ifndef XRPYC_XWIRE_HPP
#define XRPYC_XWIRE_HPP

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nlohmann/json.hpp"
#include "zmq.hpp"
#include "zmq_addon.hpp"

namespace xrpyc::wire
{
    namespace nl = nlohmann;

    // Signs and verifies with the connection file's key and signature_scheme
    // ("hmac-sha256" and the like); an empty key means no signature.
    class signer
    {
    public:
        signer(const std::string& scheme, const std::string& key)
            : m_key(key)
        {
            if (m_key.empty())
            {
                return;
            }
            const std::string prefix = "hmac-";
            if (scheme.compare(0, prefix.size(), prefix) == 0)
            {
                p_digest = EVP_get_digestbyname(scheme.substr(prefix.size()).c_str());
            }
            if (p_digest == nullptr)
            {
                throw std::runtime_error("unsupported signature_scheme '" + scheme + "'");
            }
        }

        // False when the key is empty: messages are then neither signed nor checked.
        bool enabled() const
        {
            return p_digest != nullptr;
        }

        // The raw HMAC of the concatenated parts (empty without a key).
        std::string mac(const std::vector<std::string_view>& parts) const
        {
            if (p_digest == nullptr)
            {
                return {};
            }
            std::string data;
            std::size_t size = 0;
            for (std::string_view part : parts)
            {
                size += part.size();
            }
            data.reserve(size);
            for (std::string_view part : parts)
            {
                data += part;
            }
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned int length = 0;
            if (HMAC(p_digest, m_key.data(), static_cast<int>(m_key.size()),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length) == nullptr)
            {
                throw std::runtime_error("HMAC failed");
            }
            return std::string(reinterpret_cast<const char*>(mac), length);
        }

        // The signature frame: the HMAC in lower-case hex, as the spec has it.
        std::string sign(const std::vector<std::string_view>& parts) const
        {
            return hex(mac(parts));
        }

        // Whether `signature` is exactly the hex of `mac`, compared in constant
        // time. Exactly: a longer frame that starts with the right signature
        // (which xeus' own check accepts) is another message's signature.
        static bool verify(std::string_view signature, const std::string& mac)
        {
            const std::string expected = hex(mac);
            return signature.size() == expected.size()
                   && CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
        }

    private:
        static std::string hex(const std::string& bytes)
        {
            static const char digits[] = "0123456789abcdef";
            std::string result;
            result.reserve(2 * bytes.size());
            for (unsigned char byte : bytes)
            {
                result += digits[byte >> 4];
                result += digits[byte & 0xf];
            }
            return result;
        }

        std::string m_key;
        const EVP_MD* p_digest = nullptr;
    };

    // xeus writes a header's microseconds without their leading zeros
    // (".63593Z" for .063593 s, in every version up to 6.0.5), so clients read
    // one message in ten up to 0.9 s off: pad them.
    inline void pad_date(nl::json& header)
    {
        auto date = header.find("date");
        if (date == header.end() || !date->is_string())
        {
            return;
        }
        std::string text = date->get<std::string>();
        std::size_t dot = text.rfind('.');
        std::size_t zone = text.find_first_of("Z+-", dot == std::string::npos ? 0 : dot);
        if (dot == std::string::npos || zone == std::string::npos || zone - dot - 1 >= 6)
        {
            return;
        }
        text.insert(dot + 1, 6 - (zone - dot - 1), '0');
        *date = std::move(text);
    }

    // [identities..., "<IDS|MSG>", signature, header, parent_header,
    // metadata, content]; invalid UTF-8 in any of them is replaced (U+FFFD),
    // never thrown about. For IOPub, the topic is the one identity.
    inline zmq::multipart_t message(const std::vector<std::string>& identities,
                                    const signer& auth,
                                    nl::json header,
                                    const nl::json& parent_header,
                                    const nl::json& metadata,
                                    const nl::json& content)
    {
        auto dump = [](const nl::json& j) { return j.dump(-1, ' ', false, nl::json::error_handler_t::replace); };
        pad_date(header);
        std::vector<std::string> parts = {dump(header), dump(parent_header), dump(metadata), dump(content)};
        zmq::multipart_t wire;
        for (const std::string& identity : identities)
        {
            wire.addstr(identity);
        }
        wire.addstr("<IDS|MSG>");
        wire.addstr(auth.sign({parts[0], parts[1], parts[2], parts[3]}));
        for (std::string& part : parts)
        {
            wire.addstr(std::move(part));
        }
        return wire;
    }
}

#endif
