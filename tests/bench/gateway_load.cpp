// SPDX-License-Identifier: Apache-2.0
// Gateway media load for tests/bench/gateway_bench.py: N gateway::CallMedia in ONE thread, each
// between two in-process peers (gateway_peers.hpp, which gateway_server_load.cpp plays through a
// real server), driven by 20 ms ticks in real time.
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
#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gateway_peers.hpp"

namespace {

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace turnbridge::bench;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

Endpoint endpoint(int net, std::size_t i, int port) {
    return *Endpoint::parse("10." + std::to_string(net) + "." + std::to_string(i >> 8 & 255) + "." +
                            std::to_string(i & 255) + ":" + std::to_string(port));
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

// Pieces every call shares: the peers' tones and certificate, and the gateway's certificate.
struct Shared : PeerShared {
    std::string fault;
    std::shared_ptr<const DtlsCertificate> gateway_cert = DtlsCertificate::generate();
    using PeerShared::PeerShared;
};

// One call: the gateway's CallMedia between its browser and its trunk.
struct Call {
    std::size_t index = 0;
    Endpoint browser_at, trunk_at;  // the peers' addresses
    std::unique_ptr<CallMedia> media;
    MediaOutput out;
    BrowserPeer browser;
    TrunkPeer trunk;
    std::uint64_t consent_sent = 0;

    // The peers take what the gateway sent them.
    void deliver(Time now, const PeerShared& s, bool fault_srtp = false) {
        for (std::size_t i = 0; i < out.size(); ++i) {
            const MediaPacket& p = out[i];
            if (p.leg == MediaLeg::Trunk) {
                if (p.to == trunk_at) trunk.receive(s, p.bytes());
                else ++trunk.unexpected;
            } else if (p.to == browser_at) {
                browser.on_datagram(now, p.bytes(), s.browser_pt(), fault_srtp);
            } else {
                ++browser.unexpected;
            }
        }
        out.clear();
    }

    // Offer/answer (outbound call: browser offer, trunk answer), ICE nomination, DTLS handshake.
    void connect(const Shared& s) {
        browser.index = trunk.index = index;
        CallMediaConfig config;
        config.certificate = s.gateway_cert;
        config.browser_address = *Endpoint::parse("127.0.0.1:" + std::to_string(22000 + index % 1000));
        config.trunk_address = *Endpoint::parse("127.0.0.2:" + std::to_string(22000 + index % 1000));
        media = std::make_unique<CallMedia>(std::move(config));
        const auto why = [&](const std::string& what) { die("call " + std::to_string(index) + ": " + what); };
        if (!media->map_offer(true, browser.offer(s))) why("the browser offer was refused");
        const auto answer = media->map_answer(false, trunk_answer(trunk_at));
        if (!answer) why("the trunk answer was refused");
        if (const auto bad = browser.take_answer(s, *answer); !bad.empty()) why(bad);
        const Time now = Clock::now();
        media->on_browser_datagram(now, browser_at, browser.nomination(), out);
        deliver(now, s);
        browser.dtls->start(now, browser.flight);
        for (int round = 0; round < 20 && !browser.flight.empty(); ++round) {
            auto f = std::move(browser.flight);
            browser.flight.clear();
            for (const auto& d : f) {
                media->on_browser_datagram(now, browser_at, d, out);
                deliver(now, s);
            }
        }
        if (media->state() != CallMedia::State::Connected || !browser.connected())
            why("not connected after the handshake: " + media->failure() + browser.dtls->failure());
        const std::string codecs = s.pcmu ? "PCMU/PCMU" : "opus/PCMU";
        if (media->codec_names() != codecs) why("codecs " + media->codec_names() + ", expected " + codecs);
        browser.consent_answers = 0;
        browser.unexpected = 0;
    }

    // This tick's datagrams from both peers.
    void make_packets(const Shared& s) {
        browser.make_packet(s);
        trunk.make_packet(s, s.fault == "tone");
    }

    // The gateway's work for one tick: what a worker thread does for this call every 20 ms.
    void gateway_tick(Time now, bool consent_due, bool skip_tick) {
        if (consent_due) media->on_browser_datagram(now, browser_at, browser.consent_check, out);
        media->on_browser_datagram(now, browser_at, {browser.to_gateway.data(), browser.to_gateway_size}, out);
        media->on_trunk_datagram(now, trunk_at, trunk.to_gateway, out);
        if (!skip_tick) media->on_tick(now, out);
    }
};

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

    const auto setup_start = Clock::now();
    const double setup_cpu_start = thread_cpu_ms();
    std::vector<Call> calls(o.calls);
    for (std::size_t i = 0; i < calls.size(); ++i) {
        calls[i].index = i;
        calls[i].browser_at = endpoint(2, i, 50000);
        calls[i].trunk_at = endpoint(3, i, 40000);
        calls[i].connect(shared);
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
        for (auto& c : calls) c.make_packets(shared);
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
        for (auto& c : calls) c.deliver(now, shared, o.fault == "srtp");
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
        const double at_browser = c.browser.heard_hz(o.pcmu), at_trunk = c.trunk.heard_hz();
        const double dev_browser = tone_error(at_browser, trunk_tone(c.index));
        const double dev_trunk = tone_error(at_trunk, browser_tone(c.index));
        worst_browser = std::max(worst_browser, dev_browser);
        worst_trunk = std::max(worst_trunk, dev_trunk);
        const long miss = std::labs(total - static_cast<long>(c.browser.packets)) +
                          std::labs(total - static_cast<long>(c.trunk.packets));
        auth_failures += static_cast<long>(c.browser.auth_failures);
        dropped += st.dropped;
        gaps += static_cast<long>(c.browser.sequence_gaps + c.trunk.sequence_gaps);
        unexpected += static_cast<long>(c.browser.unexpected + c.trunk.unexpected);
        missing += miss;
        consent_missing += static_cast<long>(c.consent_sent - c.browser.consent_answers);
        const bool ok = c.media->state() == CallMedia::State::Connected && c.browser.auth_failures == 0 && st.dropped == 0 &&
                        c.browser.sequence_gaps + c.trunk.sequence_gaps == 0 && c.browser.unexpected + c.trunk.unexpected == 0 && miss == 0 && c.browser.consent_answers == c.consent_sent &&
                        dev_browser <= kTolerance && dev_trunk <= kTolerance;
        if (!ok && bad++ == 0) {
            char b[400];
            std::snprintf(b, sizeof b,
                          "call %zu: state %d (%s), browser heard %.0f Hz (trunk sent %.0f), trunk heard %.0f Hz "
                          "(browser sent %.0f), packets at browser %llu and trunk %llu of %ld, auth failures %llu, "
                          "dropped %u, gaps %llu, unexpected %llu, consent %llu/%llu",
                          c.index, static_cast<int>(c.media->state()), c.media->failure().c_str(), at_browser,
                          trunk_tone(c.index), at_trunk, browser_tone(c.index),
                          static_cast<unsigned long long>(c.browser.packets), static_cast<unsigned long long>(c.trunk.packets),
                          total, static_cast<unsigned long long>(c.browser.auth_failures), st.dropped,
                          static_cast<unsigned long long>(c.browser.sequence_gaps + c.trunk.sequence_gaps),
                          static_cast<unsigned long long>(c.browser.unexpected + c.trunk.unexpected),
                          static_cast<unsigned long long>(c.browser.consent_answers), static_cast<unsigned long long>(c.consent_sent));
            first_error = b;
        }
    }

    const double per_call_ms = gateway_cpu.mean() / static_cast<double>(o.calls);
    const auto profile = calls[0].browser.dtls->profile();
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
