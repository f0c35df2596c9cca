// Refusing replayed messages: a signed message captured on the wire (or
// resent by anyone who saw it) is valid forever, so the kernel remembers the
// signatures it accepted and refuses a second one, as ipykernel does with its
// digest history of 2**16 signatures. ipykernel forgets a random tenth when
// it is full; this forgets the oldest, so the latest 2**16 are always known.
#ifndef XRPYC_XREPLAY_HPP
#define XRPYC_XREPLAY_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

namespace xrpyc
{
    class replay_guard
    {
    public:
        explicit replay_guard(std::size_t capacity = std::size_t(1) << 16)
            : m_capacity(capacity)
        {
        }

        // True the first time `mac` (a verified message's raw HMAC) is seen.
        // Memory stays bounded: about 32 bytes a signature (2 MiB for 2**16).
        bool first_time(const std::string& mac)
        {
            const fingerprint print = fingerprint_of(mac);
            if (!m_seen.insert(print).second)
            {
                return false;
            }
            if (m_order.size() < m_capacity)
            {
                m_order.push_back(print);
            }
            else
            {
                m_seen.erase(m_order[m_oldest]);
                m_order[m_oldest] = print;
                m_oldest = (m_oldest + 1) % m_capacity;
            }
            return true;
        }

    private:
        // The first 128 bits of the HMAC (every HMAC digest has at least
        // that many): without the key nobody can choose them, and two
        // messages share them by chance with odds of 2**-112 among 2**16.
        using fingerprint = std::array<std::uint64_t, 2>;

        struct fingerprint_hash
        {
            std::size_t operator()(const fingerprint& print) const noexcept
            {
                return static_cast<std::size_t>(print[0]);  // already uniformly distributed
            }
        };

        static fingerprint fingerprint_of(const std::string& mac)
        {
            fingerprint print{};
            std::memcpy(print.data(), mac.data(), std::min(sizeof(print), mac.size()));
            return print;
        }

        std::size_t m_capacity;
        std::unordered_set<fingerprint, fingerprint_hash> m_seen;
        std::vector<fingerprint> m_order;  // a ring once full; m_oldest is its next slot to reuse
        std::size_t m_oldest = 0;
    };
}

#endif
