#include "xreader.hpp"

#include <iostream>
#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"

namespace nl = nlohmann;

namespace xrpyc
{
    namespace
    {
        const std::string_view delimiter = "<IDS|MSG>";
        // signature, header, parent_header, metadata, content; buffers may follow.
        constexpr std::size_t parts_after_delimiter = 5;

        std::string_view view(const zmq::message_t& frame)
        {
            return {frame.data<char>(), frame.size()};
        }

        // The frame's JSON when it is an object, else a discarded value (no exception).
        nl::json object_in(const zmq::message_t& frame)
        {
            nl::json parsed = nl::json::parse(frame.data<char>(), frame.data<char>() + frame.size(), nullptr, false);
            return parsed.is_object() ? parsed : nl::json(nl::json::value_t::discarded);
        }

        bool has_string(const nl::json& header, const char* field)
        {
            auto found = header.find(field);
            return found != header.end() && found->is_string() && !found->get_ref<const std::string&>().empty();
        }

        std::nullopt_t drop(const char* channel, const char* why, std::size_t frames)
        {
            std::cerr << "xrpyc: dropped a message on the " << channel << " channel: " << why << " (" << frames
                      << " frames)" << std::endl;
            return std::nullopt;
        }
    }

    request_reader::request_reader(const std::string& signature_scheme, const std::string& key)
        : m_signer(signature_scheme, key)
    {
    }

    std::optional<xeus::xmessage> request_reader::read(const zmq::multipart_t& frames, const char* channel)
    {
        const std::size_t count = frames.size();

        std::size_t start = 0;
        while (start < count && view(frames[start]) != delimiter)
        {
            ++start;
        }
        if (start == count)
        {
            return drop(channel, "no <IDS|MSG> delimiter", count);
        }
        if (count - start - 1 < parts_after_delimiter)
        {
            return drop(channel, "too few frames after the delimiter", count);
        }
        const zmq::message_t& signature = frames[start + 1];
        const zmq::message_t* part[] = {&frames[start + 2], &frames[start + 3], &frames[start + 4],
                                        &frames[start + 5]};  // header, parent_header, metadata, content

        if (m_signer.enabled())
        {
            const std::string mac = m_signer.mac({view(*part[0]), view(*part[1]), view(*part[2]), view(*part[3])});
            if (!wire::signer::verify(view(signature), mac))
            {
                return drop(channel, "missing or wrong signature", count);
            }
            if (!m_replays.first_time(mac))
            {
                return drop(channel, "replayed signature (a message seen before)", count);
            }
        }

        nl::json header = object_in(*part[0]);
        nl::json parent_header = object_in(*part[1]);
        nl::json metadata = object_in(*part[2]);
        nl::json content = object_in(*part[3]);
        if (header.is_discarded() || parent_header.is_discarded() || metadata.is_discarded() || content.is_discarded())
        {
            return drop(channel, "a header, metadata or content frame is not a JSON object", count);
        }
        if (!has_string(header, "msg_id") || !has_string(header, "msg_type"))
        {
            return drop(channel, "header without msg_id or msg_type", count);
        }

        xeus::xmessage::guid_list identities;
        for (std::size_t i = 0; i < start; ++i)
        {
            identities.emplace_back(view(frames[i]));
        }
        xeus::buffer_sequence buffers;
        for (std::size_t i = start + 1 + parts_after_delimiter; i < count; ++i)
        {
            const char* data = frames[i].data<char>();
            buffers.emplace_back(data, data + frames[i].size());
        }
        return xeus::xmessage(identities, std::move(header), std::move(parent_header), std::move(metadata),
                              std::move(content), std::move(buffers));
    }
}
