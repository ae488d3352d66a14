// SPDX-License-Identifier: Apache-2.0
#pragma once
// One call's Media Streams session with an AI voice agent (issue 17), without I/O: the JSON text
// messages of Twilio Media Streams v1 ("protocol":"Call","version":"1.0.0") toward the agent
// (connected, start, media every 20 ms, dtmf, mark, stop) and what the agent sends back (media,
// mark, clear, and turnbridge's extension {"event":"transfer","to":"..."}).
// The agent sends audio faster than real time: it waits in a bounded playout buffer
// (AgentLimits::playout_frames of 20 ms, config gateway.agent_playout_frames, default 500 = 10 s)
// that the host drains one 20 ms frame per tick (160 bytes of mu-law, or 640 of L16 when the
// agent takes config::AgentMediaFormat::L16, agent_audio.hpp); audio past the bound is dropped
// and counted, never buffered. A mark comes back when the audio queued before it has played, or
// when `clear` drops it (barge-in: the buffer empties before the next tick).
// Unreadable messages (not JSON, unknown events, media that is not base64) are counted and
// ignored, as Twilio does; the WebSocket decoder bounds the size of one message.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turnbridge/config/agent_url.hpp"

namespace turnbridge::gateway {

// What `start` tells the agent about the call.
struct AgentStart {
    std::string account_sid;   // "AC" + 32 hex digits (agent_sid())
    std::string call_sid;      // "CA" + 32 hex digits
    std::string stream_sid;    // "MZ" + 32 hex digits
    // start.customParameters, in order: from, to, realm, user, then the agent's static ones.
    std::vector<std::pair<std::string, std::string>> parameters;
    // start.mediaFormat and the media payloads both ways: mu-law 8 kHz, or L16 16 kHz.
    config::AgentMediaFormat format = config::AgentMediaFormat::Mulaw;
};

// A Twilio-style identifier: `prefix` and 32 lowercase hex digits of `random`.
std::string agent_sid(std::string_view prefix, const std::array<std::uint8_t, 16>& random);

struct AgentLimits {
    std::size_t playout_frames = 500;   // gateway.agent_playout_frames: 10 s of 20 ms frames
    std::size_t pending_marks = 64;     // marks waiting for their audio; more are dropped, counted
    // A hostile agent's words cost no more than these (each refusal counts as a bad message):
    std::size_t mark_name_bytes = 1024;   // a longer mark name (64 pending ones held 16 MiB)
    std::size_t transfer_to_bytes = 256;  // a longer transfer target (it goes into log lines)
    std::size_t transfers = 8;            // transfer requests per call; later ones are ignored
};

struct AgentCounters {
    std::uint64_t media_in = 0;        // agent media messages accepted
    std::uint64_t frames_played = 0;   // 20 ms frames taken by next_frame()
    std::uint64_t bytes_dropped = 0;   // agent audio over the playout bound
    std::uint64_t frames_dropped = 0;  // ... in 20 ms frames, rounded up per message
    std::uint64_t bytes_cleared = 0;   // flushed by `clear`
    std::uint64_t bad_messages = 0;    // not JSON, unknown event, missing field, bad base64, odd L16
    std::uint64_t marks_dropped = 0;   // over AgentLimits::pending_marks
};

// The agent's hand-over request (turnbridge's extension of the protocol).
struct AgentTransfer {
    std::string to;
};

class AgentStream {
public:
    using Time = std::chrono::steady_clock::time_point;
    static constexpr std::size_t kFrame = 160;   // 20 ms of mu-law at 8000 Hz
    static constexpr std::size_t kL16Frame = 640;   // 20 ms of L16 at 16000 Hz: 320 samples
    static constexpr std::uint8_t kSilence = 0xFF;   // mu-law zero (ITU-T G.711)

    AgentStream(AgentStart start, AgentLimits limits = {});

    // Toward the agent, in this order: connected(), start() once, then media()/dtmf() as the
    // call goes, stop() last. Each returns one text message.
    std::string connected() const;
    std::string start(Time now);   // media timestamps count from here
    std::string media(Time now, std::span<const std::uint8_t> audio);   // one inbound frame, in format
    std::string dtmf(char digit);   // '0'-'9', '*', '#', 'A'-'D'
    std::string stop();

    // One text message from the agent. Marks that are due (nothing queued before them, or
    // dropped by clear) are appended to `to_agent`. A transfer request is returned.
    std::optional<AgentTransfer> on_message(std::string_view text, std::vector<std::string>& to_agent);
    // The 20 ms tick: the next frame to play into `frame` (frame_bytes() long; a short tail
    // padded with silence); false when nothing is queued. Marks whose audio has now played go
    // to `to_agent`.
    bool next_frame(std::span<std::uint8_t> frame, std::vector<std::string>& to_agent);
    std::size_t frame_bytes() const { return frame_; }

    std::size_t queued_bytes() const { return size_; }
    std::size_t pending_marks() const { return marks_.size(); }
    const AgentCounters& counters() const { return counters_; }
    const AgentStart& info() const { return start_; }

private:
    struct Mark {
        std::string name;
        std::uint64_t position = 0;   // enqueued_ when it arrived: due once played_ reaches it
    };
    std::string next_sequence() { return std::to_string(++sequence_); }
    std::string mark_message(std::string_view name);
    void on_media(std::span<const std::uint8_t> audio);
    void on_mark(std::string name, std::vector<std::string>& to_agent);
    void on_clear(std::vector<std::string>& to_agent);
    void due_marks(std::vector<std::string>& to_agent);

    AgentStart start_;
    AgentLimits limits_;
    AgentCounters counters_;
    Time started_{};
    std::uint64_t sequence_ = 0;   // sequenceNumber of the last message sent
    std::uint64_t chunk_ = 0;      // media.chunk of the last media sent
    std::size_t frame_;            // kFrame or kL16Frame
    std::size_t transfers_ = 0;    // transfer requests taken (AgentLimits::transfers)
    // The playout ring: size_ bytes from head_, capacity playout_frames * frame_.
    std::vector<std::uint8_t> ring_;
    std::size_t head_ = 0, size_ = 0;
    std::uint64_t enqueued_ = 0, played_ = 0;   // bytes ever accepted / played or cleared
    std::deque<Mark> marks_;
};

}  // namespace turnbridge::gateway
