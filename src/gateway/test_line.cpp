// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/test_line.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/g711.hpp"
#include "turnbridge/gateway/sdp.hpp"
#include "turnbridge/gateway/telephone_event.hpp"
#include "turnbridge/sip/message.hpp"

namespace turnbridge::gateway {

namespace {

constexpr double kSampleRate = 8000.0;
constexpr double kToneHz = 1000.0;
constexpr double kToneLevel = 10000.0;   // about -10 dBFS
constexpr double kDtmfLevel = 7000.0;    // per frequency of the pair

// ITU-T Q.23 pairs for RFC 4733 §3.2 events 0-15: 0-9, *, #, A-D.
struct Pair {
    double low, high;
};
constexpr std::array<Pair, 16> kDtmf{{{941, 1336}, {697, 1209}, {697, 1336}, {697, 1477}, {770, 1209}, {770, 1336},
                                      {770, 1477}, {852, 1209}, {852, 1336}, {852, 1477}, {941, 1209}, {941, 1477},
                                      {697, 1633}, {770, 1633}, {852, 1633}, {941, 1633}}};

// The user part of a "sip:user@host..." Request-URI.
std::string_view dialled_user(std::string_view uri) {
    if (auto colon = uri.find(':'); colon != std::string_view::npos) uri.remove_prefix(colon + 1);
    const auto at = uri.find('@');
    return at == std::string_view::npos ? std::string_view{} : uri.substr(0, at);
}

}  // namespace

std::optional<TestNumber> test_number(std::string_view dialled) {
    if (dialled == "echo" || dialled == "9196") return TestNumber::Echo;
    if (dialled == "tone") return TestNumber::Tone;
    if (dialled == "dtmf") return TestNumber::Dtmf;
    return std::nullopt;
}

TestLine::TestLine(Endpoint sip, Endpoint rtp, std::uint32_t seed) : sip_(sip), rtp_(rtp), random_(seed | 1u) {
    calls_.reserve(kMaxCalls);
}

std::uint32_t TestLine::next_random() {
    // xorshift32: tags and SSRCs of a loopback test line need to differ, not to be secret.
    random_ ^= random_ << 13;
    random_ ^= random_ >> 17;
    random_ ^= random_ << 5;
    return random_;
}

TestLine::Call* TestLine::find(std::string_view call_id) {
    auto it = std::find_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.call_id == call_id; });
    return it == calls_.end() ? nullptr : &*it;
}

void TestLine::on_sip(Time now, const Endpoint& from, std::string_view bytes, std::vector<SipOut>& out) {
    auto parsed = sip::Message::parse(bytes);
    if (!parsed || !parsed->is_request() || parsed->validate()) return;   // responses: we send no requests
    const sip::Message& m = *parsed;
    const std::string method = m.method();
    auto respond = [&](int status, const Call* c) {
        auto r = sip::Message::response(m, status, {}, c != nullptr ? std::string_view(c->to_tag) : std::string_view{});
        out.push_back({from, r.serialize()});
    };
    if (method == "INVITE") return on_invite(now, from, m, out);
    if (method == "ACK") return;
    Call* c = find(m.call_id());
    if (method == "OPTIONS") return respond(200, c);
    if (method == "BYE") {
        if (c == nullptr) return respond(481, nullptr);
        respond(200, c);
        std::swap(*c, calls_.back());
        calls_.pop_back();
        return;
    }
    if (method == "CANCEL") return respond(c != nullptr ? 200 : 481, c);   // answered already: nothing to cancel
    if (method == "UPDATE") {
        if (c == nullptr) return respond(481, nullptr);
        auto r = sip::Message::response(m, 200, {}, c->to_tag);
        if (!m.body().empty()) r.set_body("application/sdp", c->answer_sdp);
        out.push_back({from, r.serialize()});
        return;
    }
    respond(501, c);
}

void TestLine::on_invite(Time now, const Endpoint& from, const sip::Message& m, std::vector<SipOut>& out) {
    Call* c = find(m.call_id());
    auto answer = [&](const Call& call) {
        auto r = sip::Message::response(m, 200, {}, call.to_tag);
        r.add_contact(fmt::format("<sip:{}@{}>", dialled_user(m.request_uri()), sip_.to_string()));
        r.set_body("application/sdp", call.answer_sdp);
        out.push_back({from, r.serialize()});
    };
    auto refuse = [&](int status) { out.push_back({from, sip::Message::response(m, status, {}, fmt::format("{:08x}", next_random())).serialize()}); };
    if (c != nullptr) return answer(*c);   // a retransmission, or a re-INVITE: the same answer
    const auto number = test_number(dialled_user(m.request_uri()));
    if (!number) return refuse(404);
    if (calls_.size() >= kMaxCalls) return refuse(486);
    auto offer = parse_sdp(m.body());
    if (!offer) return refuse(488);   // no SDP (late offer) or unreadable
    TrunkLocal local;
    local.address = rtp_;
    local.preference = {TrunkCodec::Pcmu, TrunkCodec::Pcma};   // G.711 only: no G.722 encoder here
    local.session_id = session_++;
    auto accepted = answer_trunk_offer(*offer, local);
    if (!accepted) return refuse(488);
    Call& call = calls_.emplace_back();
    call.call_id = m.call_id();
    call.to_tag = fmt::format("{:08x}", next_random());
    call.number = *number;
    call.answer_sdp = std::move(accepted->sdp);
    call.media = accepted->media;
    call.law = g711_law(call.media.codec).value_or(G711Law::Pcmu);
    call.last_rtp = now;
    call.ssrc = next_random();
    call.seq = static_cast<std::uint16_t>(next_random());
    call.timestamp = next_random();
    log::info("test line: {} answers call {}", dialled_user(m.request_uri()), call.call_id);
    answer(call);
}

void TestLine::emit(Call& c, std::span<const std::uint8_t> payload, std::vector<RtpOut>& out) {
    RtpHeader h;
    h.payload_type = c.media.payload_type;
    h.sequence = c.seq++;
    h.timestamp = c.timestamp;
    h.ssrc = c.ssrc;
    c.timestamp += static_cast<std::uint32_t>(kFrame);
    write_rtp_header(h, c.packet);
    const auto n = std::min(payload.size(), kFrame);
    std::copy_n(payload.begin(), n, c.packet.begin() + kRtpHeaderSize);
    out.push_back({c.media.remote, Bytes(c.packet.data(), kRtpHeaderSize + n)});
}

void TestLine::on_rtp(Time now, const Endpoint& from, Bytes datagram, std::vector<RtpOut>& out) {
    auto it = std::find_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.media.remote == from; });
    if (it == calls_.end()) return;
    auto p = RtpPacket::parse(datagram);
    if (!p) return;
    Call& c = *it;
    c.last_rtp = now;
    if (c.media.telephone_event && p->header.payload_type == *c.media.telephone_event) {
        // RFC 4733 §2.5.1.2: every packet of one event carries its start timestamp.
        auto ev = parse_telephone_event(p->payload);
        if (!ev || ev->event >= kDtmf.size() || c.last_event_ts == p->header.timestamp) return;
        c.last_event_ts = p->header.timestamp;
        if (c.number == TestNumber::Dtmf && c.digit_count < kDigitQueue) {
            c.digits[(c.digit_head + c.digit_count++) % kDigitQueue] = ev->event;
            log::debug("test line: call {} got digit event {}", c.call_id, ev->event);
        }
        return;
    }
    if (c.number != TestNumber::Echo || p->header.payload_type != c.media.payload_type) return;
    // Echo: keep this frame, send the one received kEchoFrames (0.5 s) ago, silence before that.
    auto& slot = c.echo[c.echo_count % kEchoFrames];
    std::array<std::uint8_t, kFrame> old = slot;
    if (c.echo_count < kEchoFrames) old.fill(c.law == G711Law::Pcmu ? 0xFF : 0xD5);
    const auto n = std::min(p->payload.size(), kFrame);
    std::copy_n(p->payload.begin(), n, slot.begin());
    std::fill(slot.begin() + static_cast<std::ptrdiff_t>(n), slot.end(), c.law == G711Law::Pcmu ? 0xFF : 0xD5);
    ++c.echo_count;
    emit(c, old, out);
}

void TestLine::tone_frame(Call& c, std::span<std::uint8_t> frame) {
    std::array<std::int16_t, kFrame> pcm{};
    for (auto& s : pcm)
        s = static_cast<std::int16_t>(kToneLevel * std::sin(2 * std::numbers::pi * kToneHz * static_cast<double>(c.sample++) / kSampleRate));
    g711_encode(c.law, pcm, frame);
}

void TestLine::dtmf_frame(Call& c, std::span<std::uint8_t> frame) {
    std::array<std::int16_t, kFrame> pcm{};
    if (c.playing_frame == 0 && c.digit_count > 0) {
        c.playing = c.digits[c.digit_head];
        c.digit_head = (c.digit_head + 1) % kDigitQueue;
        --c.digit_count;
        c.playing_frame = 1;
        c.sample = 0;
    }
    if (c.playing_frame != 0) {
        if (c.playing_frame <= kDigitFrames) {
            const auto pair = kDtmf[c.playing];
            for (auto& s : pcm) {
                const double t = static_cast<double>(c.sample++) / kSampleRate;
                s = static_cast<std::int16_t>(kDtmfLevel * (std::sin(2 * std::numbers::pi * pair.low * t) +
                                                            std::sin(2 * std::numbers::pi * pair.high * t)));
            }
        }
        if (++c.playing_frame > kDigitFrames + kGapFrames) c.playing_frame = 0;
    }
    g711_encode(c.law, pcm, frame);
}

void TestLine::on_tick(Time now, std::vector<RtpOut>& out) {
    std::erase_if(calls_, [&](const Call& c) {
        if (now - c.last_rtp < kIdle) return false;
        log::info("test line: call {} forgotten after {} s without RTP", c.call_id, kIdle.count());
        return true;
    });
    std::array<std::uint8_t, kFrame> frame{};
    for (auto& c : calls_) {
        if (c.number == TestNumber::Echo || !sends(c.media.direction)) continue;
        if (c.number == TestNumber::Tone) tone_frame(c, frame);
        else dtmf_frame(c, frame);
        emit(c, frame, out);
    }
}

}  // namespace turnbridge::gateway
