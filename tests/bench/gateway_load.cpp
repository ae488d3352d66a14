// SPDX-License-Identifier: Apache-2.0
// Gateway media load for tests/bench/gateway_bench.py: N gateway::CallMedia in ONE thread, each
// between two in-process peers, driven by 20 ms ticks in real time.
//   browser: ICE check with USE-CANDIDATE, DTLS client (its own certificate, the gateway's
//            fingerprint pinned), SRTP; every tick one 20 ms frame of a tone (Opus, 48 kHz, as a
//            browser encodes it; or PCMU with --mode pcmu), and a consent check every 5 s
//            (RFC 7675 §5.1); unprotects and keeps what the gateway sends it.
//   trunk:   every tick one PCMU RTP packet of another tone; keeps what the gateway sends it.
// All calls are set up first (offer/answer, ICE, DTLS handshake). Then per tick: the peers make
// their packets (peer time), every CallMedia gets its browser datagram, its trunk datagram and
// on_tick (gateway time), the peers take the output (peer time). Times are this thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), so other processes on the core do not count; the gateway's wall time
// per tick is reported beside it. A tick is late when the gateway's CPU time in it exceeds 20 ms.
//
// Every call is checked afterwards (exit 1 if one is broken): still Connected, no SRTP
// authentication failure at either end, nothing dropped, exactly one packet per tick at each peer
// with contiguous sequence numbers, every consent check answered, and each peer hears the other's
// tone within 2 % (tones differ between neighbouring calls, so crossed calls fail too).
//
// --fault breaks something on purpose, so that the bench can show these checks fail: `srtp`
// flips a bit in every 50th SRTP packet on its way to the browser, `tone` has each trunk play its
// neighbour's tone (crossed calls), `tick` skips call 0's on_tick every 100th tick.
//
// Usage: gateway_load --calls N [--seconds S] [--warmup-ticks W] [--mode opus|pcmu] [--cpu K]
//                     [--fault srtp|tone|tick] [--max-wall S] [--dump-ticks FILE]
// A run that cannot keep up (a busy machine) stops after --max-wall seconds of ticks (default
// 3 x --seconds + 5) and says so ("cut_short"); the checks then count the ticks that ran.
// Output: one JSON object on stdout.
#include <opus/opus.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../unit/gateway/tone.hpp"
#include "turnbridge/base/json.hpp"
#include "turnbridge/gateway/call_media.hpp"
#include "turnbridge/gateway/demux.hpp"
#include "turnbridge/stun/message.hpp"

namespace {

using namespace turnbridge;
using namespace turnbridge::gateway;
using turnbridge::gateway::test::dominant_frequency;
using turnbridge::gateway::test::sine;
using Clock = std::chrono::steady_clock;

constexpr auto kTick = std::chrono::milliseconds(20);
constexpr std::size_t kTones = 8;
constexpr long kConsentTicks = 250;      // a consent check every 5 s per call
constexpr std::size_t kKeepFrames = 30;  // the last 0.6 s each peer heard, for the tone check
constexpr std::size_t kSkipFrames = 5;   // of which the first ones prime the check's Opus decoder
constexpr std::size_t kMaxKeptPayload = 400;
constexpr double kTolerance = 0.02;
constexpr double kAmplitude = 8000;
constexpr std::uint8_t kOpusPt = 111, kPcmuPt = 0;  // as in the browser offer below

// Multiples of 50 Hz: whole periods in 20 ms, so one frame repeats seamlessly.
double browser_tone(std::size_t call) { return 1000 + 50.0 * static_cast<double>(call % kTones); }
double trunk_tone(std::size_t call) { return 400 + 50.0 * static_cast<double>(call % kTones); }

double thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "gateway_load: %s\n", why.c_str());
    std::exit(2);
}

Endpoint endpoint(int net, std::size_t i, int port) {
    return *Endpoint::parse("10." + std::to_string(net) + "." + std::to_string(i >> 8 & 255) + "." +
                            std::to_string(i & 255) + ":" + std::to_string(port));
}

std::string attribute(const std::string& sdp, const std::string& name) {
    const auto at = sdp.find("a=" + name + ":");
    if (at == std::string::npos) return {};
    const auto from = at + name.size() + 3;
    return sdp.substr(from, sdp.find("\r\n", from) - from);
}

// What a browser offers (Chrome's lines that matter to us); PCMU only for a passthrough call.
std::string browser_offer(const IceCredentials& ice, const std::string& fingerprint, bool pcmu) {
    return std::string("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n") +
           (pcmu ? "m=audio 9 UDP/TLS/RTP/SAVPF 0 126\r\n" : "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 110 126\r\n") +
           "c=IN IP4 0.0.0.0\r\na=ice-ufrag:" + ice.ufrag + "\r\na=ice-pwd:" + ice.pwd +
           "\r\na=fingerprint:sha-256 " + fingerprint + "\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n" +
           (pcmu ? "" : "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n") +
           "a=rtpmap:0 PCMU/8000\r\n" + (pcmu ? "" : "a=rtpmap:110 telephone-event/48000\r\n") +
           "a=rtpmap:126 telephone-event/8000\r\n";
}

std::string trunk_answer(const Endpoint& trunk) {
    const auto ip = trunk.ip.to_string();
    return "v=0\r\no=trunk 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
           std::to_string(trunk.port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
}

// RFC 8445 §7.2.2: the browser (controlling) checks the pair; USE-CANDIDATE nominates it.
std::vector<std::uint8_t> ice_check(const IceCredentials& gateway, const IceCredentials& browser, bool nominate,
                                    std::size_t call) {
    std::vector<std::uint8_t> buf(256);
    stun::TransactionId tid{};
    std::memcpy(tid.data(), &call, sizeof call);
    tid[11] = nominate ? 1 : 2;
    stun::MessageBuilder b(buf, stun::method::Binding, stun::Class::Request, tid);
    b.add_string(stun::attr::Username, gateway.ufrag + ":" + browser.ufrag);
    b.add_u32(stun::attr::Priority, 1853824767);
    const std::uint8_t tie[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    b.add(stun::attr::IceControlling, tie);
    if (nominate) b.add(stun::attr::UseCandidate, {});
    b.add_message_integrity({reinterpret_cast<const std::uint8_t*>(gateway.pwd.data()), gateway.pwd.size()});
    b.add_fingerprint();
    if (!b.ok()) die("cannot build an ICE check");
    buf.resize(b.size());
    return buf;
}

struct Options {
    std::size_t calls = 10;
    double seconds = 10;
    long warmup = 25;
    bool pcmu = false;
    int cpu = -1;
    std::string fault;
    double max_wall = 0;
    std::string dump;  // --dump-ticks FILE: gateway CPU ms of every measured tick, one a line
};

// Pieces every call shares: certificates and the tones, made once.
struct Shared {
    bool pcmu = false;
    std::string fault;
    std::shared_ptr<const DtlsCertificate> gateway_cert = DtlsCertificate::generate();
    std::shared_ptr<const DtlsCertificate> browser_cert = DtlsCertificate::generate();
    std::array<std::array<std::int16_t, 960>, kTones> browser_pcm{};  // one 20 ms frame at 48 kHz
    std::array<std::array<std::uint8_t, kFrameSamples>, kTones> browser_pcmu{}, trunk_pcmu{};
    // Each tone's Opus frame of this tick: an encoder per tone, as a browser's microphone would be.
    std::array<OpusEncoder*, kTones> encoders{};
    std::array<std::array<std::uint8_t, kMaxKeptPayload>, kTones> opus{};
    std::array<std::size_t, kTones> opus_size{};

    explicit Shared(bool g711) : pcmu(g711) {
        for (std::size_t t = 0; t < kTones; ++t) {
            const auto b48 = sine(browser_tone(t), 48000, 960, kAmplitude);
            std::copy(b48.begin(), b48.end(), browser_pcm[t].begin());
            g711_encode(G711Law::Pcmu, sine(browser_tone(t), 8000, kFrameSamples, kAmplitude), browser_pcmu[t]);
            g711_encode(G711Law::Pcmu, sine(trunk_tone(t), 8000, kFrameSamples, kAmplitude), trunk_pcmu[t]);
            int err = 0;
            encoders[t] = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
            if (err != OPUS_OK) die("opus_encoder_create failed");
            opus_encoder_ctl(encoders[t], OPUS_SET_BITRATE(32000));  // Chrome's default for mono voice
            opus_encoder_ctl(encoders[t], OPUS_SET_INBAND_FEC(1));
            opus_encoder_ctl(encoders[t], OPUS_SET_PACKET_LOSS_PERC(5));
        }
    }
    ~Shared() {
        for (auto* e : encoders) opus_encoder_destroy(e);
    }
    void encode_tick() {
        if (pcmu) return;
        for (std::size_t t = 0; t < kTones; ++t) {
            const int n = opus_encode(encoders[t], browser_pcm[t].data(), 960, opus[t].data(), kMaxKeptPayload);
            if (n <= 0) die("opus_encode failed");
            opus_size[t] = static_cast<std::size_t>(n);
        }
    }
    std::span<const std::uint8_t> browser_frame(std::size_t call) const {
        const auto t = call % kTones;
        if (pcmu) return browser_pcmu[t];
        return {opus[t].data(), opus_size[t]};
    }
};

// One call: the gateway's CallMedia, its browser and its trunk.
struct Call {
    std::size_t index = 0;
    Endpoint browser, trunk;  // the peers
    std::unique_ptr<CallMedia> media;
    MediaOutput out;
    // Browser.
    IceCredentials ice, gateway_ice;
    std::unique_ptr<DtlsSrtpEndpoint> dtls;
    std::vector<Datagram> flight;
    std::vector<std::uint8_t> consent_check;
    std::uint16_t seq = 1000;
    std::uint32_t timestamp = 5000, ssrc = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> to_gateway{};
    std::size_t to_gateway_size = 0;
    std::array<std::uint8_t, kMaxMediaDatagram> rx{};
    // Trunk.
    std::uint16_t trunk_seq = 7000;
    std::uint32_t trunk_timestamp = 90000;
    std::array<std::uint8_t, kRtpHeaderSize + kFrameSamples> trunk_to_gateway{};
    // What the peers received: payloads at the browser, samples at the trunk (rings).
    std::array<std::array<std::uint8_t, kMaxKeptPayload>, kKeepFrames> browser_heard{};
    std::array<std::size_t, kKeepFrames> browser_heard_size{};
    std::array<std::int16_t, kKeepFrames * kFrameSamples> trunk_heard{};
    std::uint64_t browser_packets = 0, trunk_packets = 0, consent_sent = 0, consent_answers = 0;
    std::uint64_t auth_failures = 0, sequence_gaps = 0, unexpected = 0, srtp_seen = 0;
    std::optional<std::uint16_t> browser_last_seq, trunk_last_seq;

    void browser_receive(std::span<const std::uint8_t> bytes, std::uint8_t pt, bool corrupt) {
        std::memcpy(rx.data(), bytes.data(), bytes.size());
        if (corrupt) rx[bytes.size() - 1] ^= 1;  // --fault srtp: the tag no longer matches
        const auto n = dtls->srtp()->unprotect_rtp(rx, bytes.size());
        if (!n) {
            ++auth_failures;
            return;
        }
        const auto p = RtpPacket::parse({rx.data(), *n});
        if (!p || p->header.payload_type != pt || p->payload.size() > kMaxKeptPayload) {
            ++unexpected;
            return;
        }
        if (browser_last_seq && p->header.sequence != static_cast<std::uint16_t>(*browser_last_seq + 1)) ++sequence_gaps;
        browser_last_seq = p->header.sequence;
        const auto slot = browser_packets++ % kKeepFrames;
        std::copy(p->payload.begin(), p->payload.end(), browser_heard[slot].begin());
        browser_heard_size[slot] = p->payload.size();
    }

    void trunk_receive(const MediaPacket& m) {
        const auto p = RtpPacket::parse(m.bytes());
        if (!(m.to == trunk) || !p || p->header.payload_type != kPcmuPt || p->payload.size() != kFrameSamples) {
            ++unexpected;
            return;
        }
        if (trunk_last_seq && p->header.sequence != static_cast<std::uint16_t>(*trunk_last_seq + 1)) ++sequence_gaps;
        trunk_last_seq = p->header.sequence;
        const auto slot = trunk_packets++ % kKeepFrames;
        g711_decode(G711Law::Pcmu, p->payload, std::span(trunk_heard).subspan(slot * kFrameSamples, kFrameSamples));
    }

    // The peers take what the gateway sent them.
    void deliver(Time now, std::uint8_t browser_pt, bool fault_srtp = false) {
        for (std::size_t i = 0; i < out.size(); ++i) {
            const MediaPacket& p = out[i];
            if (p.leg == MediaLeg::Trunk) {
                trunk_receive(p);
                continue;
            }
            if (!(p.to == browser)) {
                ++unexpected;
                continue;
            }
            switch (classify(p.bytes())) {
            case PacketKind::Stun: {
                const auto m = stun::Message::parse(p.bytes());
                if (m && m->cls() == stun::Class::Success) ++consent_answers;
                else ++unexpected;
                break;
            }
            case PacketKind::Dtls: dtls->on_datagram(now, p.bytes(), flight); break;
            case PacketKind::Rtp:
                if (dtls->srtp()) browser_receive(p.bytes(), browser_pt, fault_srtp && ++srtp_seen % 50 == 7);
                else ++unexpected;
                break;
            default: ++unexpected;
            }
        }
        out.clear();
    }

    // Offer/answer (outbound call: browser offer, trunk answer), ICE nomination, DTLS handshake.
    void connect(const Shared& s, std::uint8_t browser_pt) {
        CallMediaConfig config;
        config.certificate = s.gateway_cert;
        config.browser_address = *Endpoint::parse("127.0.0.1:" + std::to_string(22000 + index % 1000));
        config.trunk_address = *Endpoint::parse("127.0.0.2:" + std::to_string(22000 + index % 1000));
        media = std::make_unique<CallMedia>(std::move(config));
        ice = make_ice_credentials(random_bytes);
        ssrc = random_value<std::uint32_t>(random_bytes);
        const auto why = [&](const std::string& what) { die("call " + std::to_string(index) + ": " + what); };
        if (!media->map_offer(true, browser_offer(ice, s.browser_cert->fingerprint_sha256(), s.pcmu)))
            why("the browser offer was refused");
        const auto answer = media->map_answer(false, trunk_answer(trunk));
        if (!answer) why("the trunk answer was refused");
        gateway_ice = {attribute(*answer, "ice-ufrag"), attribute(*answer, "ice-pwd")};
        const auto fingerprint = attribute(*answer, "fingerprint");
        if (attribute(*answer, "setup") != "passive" || fingerprint.rfind("sha-256 ", 0) != 0)
            why("unexpected answer:\n" + *answer);
        dtls = std::make_unique<DtlsSrtpEndpoint>(s.browser_cert, DtlsRole::Client, "sha-256", fingerprint.substr(8));
        consent_check = ice_check(gateway_ice, ice, false, index);
        const Time now = Clock::now();
        media->on_browser_datagram(now, browser, ice_check(gateway_ice, ice, true, index), out);
        deliver(now, browser_pt);
        dtls->start(now, flight);
        for (int round = 0; round < 20 && !flight.empty(); ++round) {
            auto f = std::move(flight);
            flight.clear();
            for (const auto& d : f) {
                media->on_browser_datagram(now, browser, d, out);
                deliver(now, browser_pt);
            }
        }
        if (media->state() != CallMedia::State::Connected || dtls->state() != DtlsSrtpEndpoint::State::Connected)
            why("not connected after the handshake: " + media->failure() + dtls->failure());
        const std::string codecs = s.pcmu ? "PCMU/PCMU" : "opus/PCMU";
        if (media->codec_names() != codecs) why("codecs " + media->codec_names() + ", expected " + codecs);
        consent_answers = 0;
        unexpected = 0;
    }

    // This tick's datagrams from both peers.
    void make_packets(const Shared& s, std::uint8_t browser_pt) {
        const auto frame = s.browser_frame(index);
        write_rtp_header({false, browser_pt, seq++, timestamp, ssrc}, to_gateway);
        std::memcpy(to_gateway.data() + kRtpHeaderSize, frame.data(), frame.size());
        const auto n = dtls->srtp()->protect_rtp(to_gateway, kRtpHeaderSize + frame.size());
        if (!n) die("the browser cannot protect its RTP");
        to_gateway_size = *n;
        timestamp += s.pcmu ? kFrameSamples : kOpusFrameTicks;
        write_rtp_header({false, kPcmuPt, trunk_seq++, trunk_timestamp, 0x77000000u + static_cast<std::uint32_t>(index)},
                         trunk_to_gateway);
        const auto& t = s.trunk_pcmu[(index + (s.fault == "tone")) % kTones];
        std::copy(t.begin(), t.end(), trunk_to_gateway.begin() + kRtpHeaderSize);
        trunk_timestamp += kFrameSamples;
    }

    // The gateway's work for one tick: what a worker thread does for this call every 20 ms.
    void gateway_tick(Time now, bool consent_due, bool skip_tick) {
        if (consent_due) media->on_browser_datagram(now, browser, consent_check, out);
        media->on_browser_datagram(now, browser, {to_gateway.data(), to_gateway_size}, out);
        media->on_trunk_datagram(now, trunk, trunk_to_gateway, out);
        if (!skip_tick) media->on_tick(now, out);
    }

    // The tone each peer heard in its last frames (8 kHz samples).
    std::vector<double> heard_at_browser(bool pcmu) const {
        std::vector<double> pcm;
        OpusDecoder* dec = nullptr;
        if (!pcmu) {
            int err = 0;
            dec = opus_decoder_create(8000, 1, &err);  // the check only needs the band below 4 kHz
            if (err != OPUS_OK) die("opus_decoder_create failed");
        }
        std::array<std::int16_t, 960> frame{};
        for (std::size_t k = 0; k < kKeepFrames; ++k) {
            const auto slot = (browser_packets + k) % kKeepFrames;
            const auto payload = std::span(browser_heard[slot]).first(browser_heard_size[slot]);
            int n = static_cast<int>(payload.size());
            if (pcmu) g711_decode(G711Law::Pcmu, payload, std::span(frame).first(payload.size()));
            else n = opus_decode(dec, payload.data(), static_cast<opus_int32>(payload.size()), frame.data(), 960, 0);
            if (k >= kSkipFrames && n > 0) pcm.insert(pcm.end(), frame.begin(), frame.begin() + n);
        }
        if (dec) opus_decoder_destroy(dec);
        return pcm;
    }
    std::vector<double> heard_at_trunk() const {
        std::vector<double> pcm;
        for (std::size_t k = kSkipFrames; k < kKeepFrames; ++k) {
            const auto slot = (trunk_packets + k) % kKeepFrames;
            pcm.insert(pcm.end(), trunk_heard.begin() + static_cast<long>(slot * kFrameSamples),
                       trunk_heard.begin() + static_cast<long>((slot + 1) * kFrameSamples));
        }
        return pcm;
    }
};

struct Series {
    std::vector<double> v;
    double mean() const {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? 0 : s / static_cast<double>(v.size());
    }
    double quantile(double q) const {
        if (v.empty()) return 0;
        auto c = v;
        std::sort(c.begin(), c.end());
        return c[std::min(c.size() - 1, static_cast<std::size_t>(q * static_cast<double>(c.size())))];
    }
    long over(double limit) const { return std::count_if(v.begin(), v.end(), [&](double x) { return x > limit; }); }
    std::string json() const {
        char b[200];
        std::snprintf(b, sizeof b, "{\"mean\": %.4f, \"p50\": %.4f, \"p99\": %.4f, \"max\": %.4f}", mean(),
                      quantile(0.5), quantile(0.99), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
        return b;
    }
};

std::string json_string(const std::string& s) {
    std::string o;
    turnbridge::append_json_string(o, s);  // the project's one JSON string escaper
    return o;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--calls") o.calls = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--seconds") o.seconds = std::atof(v.c_str());
        else if (a == "--warmup-ticks") o.warmup = std::atol(v.c_str());
        else if (a == "--mode" && (v == "opus" || v == "pcmu")) o.pcmu = v == "pcmu";
        else if (a == "--cpu") o.cpu = std::atoi(v.c_str());
        else if (a == "--fault" && (v == "srtp" || v == "tone" || v == "tick")) o.fault = v;
        else if (a == "--max-wall") o.max_wall = std::atof(v.c_str());
        else if (a == "--dump-ticks") o.dump = v;
        else die("usage: gateway_load --calls N [--seconds S] [--warmup-ticks W] [--mode opus|pcmu] [--cpu K] "
                 "[--fault srtp|tone|tick] [--max-wall S] [--dump-ticks FILE]");
    }
    if (argc % 2 == 0 || o.calls < 1 || o.calls > 20000 || o.seconds <= 0 || o.seconds > 120 || o.warmup < 0)
        die("bad arguments (--calls 1..20000, --seconds up to 120)");
    if (o.max_wall <= 0) o.max_wall = 3 * o.seconds + 5;
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity to CPU " + std::to_string(o.cpu));
    }
    Shared shared(o.pcmu);
    shared.fault = o.fault;
    const std::uint8_t browser_pt = o.pcmu ? kPcmuPt : kOpusPt;

    const auto setup_start = Clock::now();
    const double setup_cpu_start = thread_cpu_ms();
    std::vector<Call> calls(o.calls);
    for (std::size_t i = 0; i < calls.size(); ++i) {
        calls[i].index = i;
        calls[i].browser = endpoint(2, i, 50000);
        calls[i].trunk = endpoint(3, i, 40000);
        calls[i].connect(shared, browser_pt);
    }
    const double setup_cpu_ms = thread_cpu_ms() - setup_cpu_start, setup_wall_ms = ms_since(setup_start);

    long measured = std::lround(o.seconds * 50), total = o.warmup + measured;
    bool cut_short = false;
    const auto wall_limit = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.max_wall));
    Series gateway_cpu, gateway_wall, peer_cpu, gateway_cpu_alone;  // alone: ticks not preempted
    rusage tick_ru0{}, tick_ru1{};
    long behind = 0;
    rusage ru0{}, ru1{};
    const auto start = Clock::now();
    for (long tick = 0; tick < total; ++tick) {
        if (Clock::now() - start > wall_limit) {
            cut_short = true;
            total = tick;
            measured = std::max(0L, tick - o.warmup);
            break;
        }
        const auto deadline = start + tick * kTick;
        if (Clock::now() > deadline + kTick) ++behind;  // the previous tick ran over its 20 ms
        std::this_thread::sleep_until(deadline);
        if (tick == o.warmup) getrusage(RUSAGE_THREAD, &ru0);
        const Time now = deadline;  // virtual time: exactly 20 ms per tick
        const double p0 = thread_cpu_ms();
        shared.encode_tick();
        for (auto& c : calls) c.make_packets(shared, browser_pt);
        getrusage(RUSAGE_THREAD, &tick_ru0);
        const double g0 = thread_cpu_ms();
        const auto w0 = Clock::now();
        for (auto& c : calls) {
            const bool consent_due = (tick + static_cast<long>(c.index) * 7) % kConsentTicks == 0;
            c.consent_sent += consent_due;
            c.gateway_tick(now, consent_due, o.fault == "tick" && c.index == 0 && tick % 100 == 50);
        }
        const double gateway_ms = thread_cpu_ms() - g0, gateway_wall_ms = ms_since(w0);
        const double p1 = thread_cpu_ms();
        getrusage(RUSAGE_THREAD, &tick_ru1);
        for (auto& c : calls) c.deliver(now, browser_pt, o.fault == "srtp");
        const double peer_ms = (g0 - p0) + (thread_cpu_ms() - p1);
        if (tick >= o.warmup) {
            gateway_cpu.v.push_back(gateway_ms);
            gateway_wall.v.push_back(gateway_wall_ms);
            peer_cpu.v.push_back(peer_ms);
            // Another process took the core in the middle of the gateway's work: its cache
            // misses afterwards are the machine's load, not the gateway's cost.
            if (tick_ru1.ru_nivcsw == tick_ru0.ru_nivcsw) gateway_cpu_alone.v.push_back(gateway_ms);
        }
    }
    getrusage(RUSAGE_THREAD, &ru1);
    if (!o.dump.empty()) {
        if (FILE* f = std::fopen(o.dump.c_str(), "w")) {
            for (double ms : gateway_cpu.v) std::fprintf(f, "%.4f\n", ms);
            std::fclose(f);
        }
    }
    const double run_wall_s = std::chrono::duration<double>(Clock::now() - start).count();

    // Correctness of every call.
    long bad = 0, auth_failures = 0, dropped = 0, gaps = 0, unexpected = 0, missing = 0, consent_missing = 0;
    double worst_browser = 0, worst_trunk = 0;
    std::string first_error;
    for (const auto& c : calls) {
        const auto& st = c.media->stats();
        const double at_browser = dominant_frequency(c.heard_at_browser(o.pcmu), 8000, 2000);
        const double at_trunk = dominant_frequency(c.heard_at_trunk(), 8000, 2000);
        const double dev_browser = std::abs(at_browser - trunk_tone(c.index)) / trunk_tone(c.index);
        const double dev_trunk = std::abs(at_trunk - browser_tone(c.index)) / browser_tone(c.index);
        worst_browser = std::max(worst_browser, dev_browser);
        worst_trunk = std::max(worst_trunk, dev_trunk);
        const long miss = std::labs(total - static_cast<long>(c.browser_packets)) +
                          std::labs(total - static_cast<long>(c.trunk_packets));
        auth_failures += static_cast<long>(c.auth_failures);
        dropped += st.dropped;
        gaps += static_cast<long>(c.sequence_gaps);
        unexpected += static_cast<long>(c.unexpected);
        missing += miss;
        consent_missing += static_cast<long>(c.consent_sent - c.consent_answers);
        const bool ok = c.media->state() == CallMedia::State::Connected && c.auth_failures == 0 && st.dropped == 0 &&
                        c.sequence_gaps == 0 && c.unexpected == 0 && miss == 0 && c.consent_answers == c.consent_sent &&
                        dev_browser <= kTolerance && dev_trunk <= kTolerance;
        if (!ok && bad++ == 0) {
            char b[400];
            std::snprintf(b, sizeof b,
                          "call %zu: state %d (%s), browser heard %.0f Hz (trunk sent %.0f), trunk heard %.0f Hz "
                          "(browser sent %.0f), packets at browser %llu and trunk %llu of %ld, auth failures %llu, "
                          "dropped %u, gaps %llu, unexpected %llu, consent %llu/%llu",
                          c.index, static_cast<int>(c.media->state()), c.media->failure().c_str(), at_browser,
                          trunk_tone(c.index), at_trunk, browser_tone(c.index),
                          static_cast<unsigned long long>(c.browser_packets), static_cast<unsigned long long>(c.trunk_packets),
                          total, static_cast<unsigned long long>(c.auth_failures), st.dropped,
                          static_cast<unsigned long long>(c.sequence_gaps), static_cast<unsigned long long>(c.unexpected),
                          static_cast<unsigned long long>(c.consent_answers), static_cast<unsigned long long>(c.consent_sent));
            first_error = b;
        }
    }

    const double per_call_ms = gateway_cpu.mean() / static_cast<double>(o.calls);
    const auto profile = calls[0].dtls->profile();
    const char* srtp = !profile ? "none" : *profile == SrtpProfile::AeadAes128Gcm ? "AEAD_AES_128_GCM" : "AES128_CM_HMAC_SHA1_80";
    std::printf("{\"mode\": \"%s\", \"fault\": \"%s\", \"calls\": %zu, \"cpu\": %d, \"warmup_ticks\": %ld, \"ticks\": %ld, \"cut_short\": %s, \"srtp_profile\": \"%s\", "
                "\"setup_cpu_ms\": %.1f, \"setup_wall_ms\": %.1f, \"run_wall_s\": %.3f,\n"
                " \"gateway_cpu_ms_per_tick\": %s,\n \"gateway_wall_ms_per_tick\": %s,\n"
                " \"peer_cpu_ms_per_tick\": %s,\n \"gateway_cpu_ms_per_tick_not_preempted\": %s, \"ticks_not_preempted\": %zu, "
                "\"late_ticks_not_preempted\": %ld,\n"
                " \"late_ticks\": %ld, \"late_wall_ticks\": %ld, \"behind_schedule_ticks\": %ld, "
                "\"involuntary_switches\": %ld, \"voluntary_switches\": %ld,\n"
                " \"gateway_us_per_call_tick\": %.3f, \"gateway_core_pct_per_call\": %.4f,\n"
                " \"check\": {\"calls_bad\": %ld, \"srtp_auth_failures\": %ld, \"gateway_dropped\": %ld, "
                "\"sequence_gaps\": %ld, \"unexpected_packets\": %ld, \"missing_packets\": %ld, "
                "\"unanswered_consent_checks\": %ld, \"worst_browser_tone_error_pct\": %.2f, "
                "\"worst_trunk_tone_error_pct\": %.2f, \"first_error\": %s}}\n",
                o.pcmu ? "pcmu" : "opus", o.fault.c_str(), o.calls, o.cpu, o.warmup, measured, cut_short ? "true" : "false", srtp, setup_cpu_ms, setup_wall_ms, run_wall_s,
                gateway_cpu.json().c_str(), gateway_wall.json().c_str(), peer_cpu.json().c_str(), gateway_cpu_alone.json().c_str(),
                gateway_cpu_alone.v.size(), gateway_cpu_alone.over(20), gateway_cpu.over(20),
                gateway_wall.over(20), behind, ru1.ru_nivcsw - ru0.ru_nivcsw, ru1.ru_nvcsw - ru0.ru_nvcsw,
                per_call_ms * 1000, per_call_ms / 20 * 100, bad, auth_failures, dropped, gaps, unexpected, missing,
                consent_missing, worst_browser * 100, worst_trunk * 100, json_string(first_error).c_str());
    return bad == 0 ? 0 : 1;
}
