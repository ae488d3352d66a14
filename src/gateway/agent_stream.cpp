// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/agent_stream.hpp"

#include <algorithm>

#include "turnbridge/base/base64.hpp"
#include "turnbridge/base/json.hpp"
#include "turnbridge/base/json_reader.hpp"

namespace turnbridge::gateway {

std::string agent_sid(std::string_view prefix, const std::array<std::uint8_t, 16>& random) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s(prefix);
    for (const auto b : random) {
        s.push_back(kHex[b >> 4]);
        s.push_back(kHex[b & 0x0F]);
    }
    return s;
}

AgentStream::AgentStream(AgentStart start, AgentLimits limits)
    : start_(std::move(start)), limits_(limits),
      frame_(start_.format == config::AgentMediaFormat::L16 ? kL16Frame : kFrame),
      ring_(std::max<std::size_t>(limits.playout_frames, 1) * frame_) {}

// Twilio Media Streams: the first message, naming the protocol of the rest.
std::string AgentStream::connected() const {
    return JsonWriter().begin_object().key("event").value("connected").key("protocol").value("Call")
        .key("version").value("1.0.0").end_object().take();
}

std::string AgentStream::start(Time now) {
    started_ = now;
    JsonWriter j;
    j.begin_object().key("event").value("start").key("sequenceNumber").value(next_sequence());
    j.key("start").begin_object();
    j.key("accountSid").value(start_.account_sid).key("streamSid").value(start_.stream_sid);
    j.key("callSid").value(start_.call_sid);
    j.key("tracks").begin_array().value("inbound").end_array();
    j.key("customParameters").begin_object();
    for (const auto& [k, v] : start_.parameters) j.key(k).value(v);
    j.end_object();
    // Twilio's only format is mu-law; L16 is named as Plivo Audio Streams name it.
    const bool l16 = start_.format == config::AgentMediaFormat::L16;
    j.key("mediaFormat").begin_object().key("encoding").value(l16 ? "audio/x-l16" : "audio/x-mulaw");
    j.key("sampleRate").value(std::uint64_t{l16 ? 16000u : 8000u}).key("channels").value(std::uint64_t{1}).end_object();
    j.end_object();
    j.key("streamSid").value(start_.stream_sid).end_object();
    return j.take();
}

// sequenceNumber, chunk and timestamp are strings in Twilio's format; timestamp is the ms since
// the stream started.
std::string AgentStream::media(Time now, std::span<const std::uint8_t> audio) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count();
    JsonWriter j;
    j.begin_object().key("event").value("media").key("sequenceNumber").value(next_sequence());
    j.key("media").begin_object().key("track").value("inbound").key("chunk").value(std::to_string(++chunk_));
    j.key("timestamp").value(std::to_string(std::max<std::int64_t>(ms, 0)));
    j.key("payload").value(base64_encode(audio)).end_object();
    j.key("streamSid").value(start_.stream_sid).end_object();
    return j.take();
}

std::string AgentStream::dtmf(char digit) {
    const char d[2] = {digit, 0};
    JsonWriter j;
    j.begin_object().key("event").value("dtmf").key("streamSid").value(start_.stream_sid);
    j.key("sequenceNumber").value(next_sequence());
    j.key("dtmf").begin_object().key("track").value("inbound_track").key("digit").value(std::string_view(d, 1)).end_object();
    j.end_object();
    return j.take();
}

std::string AgentStream::stop() {
    JsonWriter j;
    j.begin_object().key("event").value("stop").key("sequenceNumber").value(next_sequence());
    j.key("streamSid").value(start_.stream_sid);
    j.key("stop").begin_object().key("accountSid").value(start_.account_sid).key("callSid").value(start_.call_sid).end_object();
    j.end_object();
    return j.take();
}

std::string AgentStream::mark_message(std::string_view name) {
    JsonWriter j;
    j.begin_object().key("event").value("mark").key("sequenceNumber").value(next_sequence());
    j.key("streamSid").value(start_.stream_sid);
    j.key("mark").begin_object().key("name").value(name).end_object().end_object();
    return j.take();
}

std::optional<AgentTransfer> AgentStream::on_message(std::string_view text, std::vector<std::string>& to_agent) {
    // Our messages nest two deep; a few levels more for extensions, no more.
    const auto msg = parse_json(text, JsonLimits{8, text.size()});
    const auto event = msg ? msg->text("event") : std::nullopt;
    if (!event) {
        ++counters_.bad_messages;
        return std::nullopt;
    }
    const JsonValue* body = msg->find(*event);   // media: {...}, mark: {...}
    if (*event == "media") {
        const auto payload = body != nullptr ? body->text("payload") : std::nullopt;
        const auto audio = payload ? base64_decode(*payload) : std::nullopt;
        // L16 is whole 16-bit samples: an odd byte count would shift every later sample.
        const bool torn = audio && start_.format == config::AgentMediaFormat::L16 && audio->size() % 2 != 0;
        if (!audio || torn) ++counters_.bad_messages;
        else on_media(*audio);
    } else if (*event == "mark") {
        const auto name = body != nullptr ? body->text("name") : std::nullopt;
        if (!name || name->size() > limits_.mark_name_bytes) ++counters_.bad_messages;
        else on_mark(std::string(*name), to_agent);
    } else if (*event == "clear") {
        on_clear(to_agent);
    } else if (*event == "transfer") {
        const auto to = msg->text("to");
        if (to && !to->empty() && to->size() <= limits_.transfer_to_bytes && transfers_ < limits_.transfers) {
            ++transfers_;
            return AgentTransfer{std::string(*to)};
        }
        ++counters_.bad_messages;
    } else {
        ++counters_.bad_messages;
    }
    return std::nullopt;
}

void AgentStream::on_media(std::span<const std::uint8_t> audio) {
    ++counters_.media_in;
    const std::size_t room = ring_.size() - size_;
    const std::size_t take = std::min(room, audio.size());
    if (take < audio.size()) {
        const std::size_t dropped = audio.size() - take;
        counters_.bytes_dropped += dropped;
        counters_.frames_dropped += (dropped + frame_ - 1) / frame_;
    }
    for (std::size_t i = 0; i < take; ++i) ring_[(head_ + size_ + i) % ring_.size()] = audio[i];
    size_ += take;
    enqueued_ += take;
}

void AgentStream::on_mark(std::string name, std::vector<std::string>& to_agent) {
    if (enqueued_ == played_) {   // nothing queued before it: it has played
        to_agent.push_back(mark_message(name));
        return;
    }
    if (marks_.size() >= limits_.pending_marks) {
        ++counters_.marks_dropped;
        return;
    }
    marks_.push_back(Mark{std::move(name), enqueued_});
}

// Barge-in: the queued audio is gone before the next tick; every pending mark comes back.
void AgentStream::on_clear(std::vector<std::string>& to_agent) {
    counters_.bytes_cleared += size_;
    head_ = size_ = 0;
    played_ = enqueued_;
    due_marks(to_agent);
}

void AgentStream::due_marks(std::vector<std::string>& to_agent) {
    while (!marks_.empty() && marks_.front().position <= played_) {
        to_agent.push_back(mark_message(marks_.front().name));
        marks_.pop_front();
    }
}

bool AgentStream::next_frame(std::span<std::uint8_t> frame, std::vector<std::string>& to_agent) {
    if (size_ == 0) return false;
    const std::size_t n = std::min({size_, frame_, frame.size()});
    for (std::size_t i = 0; i < n; ++i) frame[i] = ring_[(head_ + i) % ring_.size()];
    const bool l16 = start_.format == config::AgentMediaFormat::L16;
    std::fill(frame.begin() + static_cast<std::ptrdiff_t>(n), frame.end(), l16 ? std::uint8_t{0} : kSilence);
    head_ = (head_ + n) % ring_.size();
    size_ -= n;
    if (size_ == 0) head_ = 0;
    played_ += n;
    ++counters_.frames_played;
    due_marks(to_agent);
    return true;
}

}  // namespace turnbridge::gateway
