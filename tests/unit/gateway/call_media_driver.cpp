// SPDX-License-Identifier: Apache-2.0
// Test tool for tests/interop/call_media_aiortc_test.py: one gateway::CallMedia on loopback UDP
// sockets (plain POSIX, bound to port 0), with a fake trunk inside that sends a 600 Hz PCMU
// tone and records what it gets. Reads the browser's offer on stdin up to a line "END", prints
// our answer and "END", runs for argv[1] seconds, then prints one "RESULT key=value..." line.
// argv[2] "pcmu" offers the browser G.711 only (no transcoding).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include "tone.hpp"
#include "turnbridge/gateway/call_media.hpp"
using namespace turnbridge;
using namespace turnbridge::gateway;
using turnbridge::gateway::test::dominant_frequency;
using turnbridge::gateway::test::sine;
using Clock = std::chrono::steady_clock;

int bind_udp(Endpoint& ep) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{}; a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (sockaddr*)&a, sizeof a);
    socklen_t l = sizeof a; getsockname(fd, (sockaddr*)&a, &l);
    ep = *Endpoint::parse("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
    return fd;
}
void send_to(int fd, const Endpoint& to, std::span<const std::uint8_t> b) {
    sockaddr_storage ss; unsigned n = to.to_sockaddr(ss);
    sendto(fd, b.data(), b.size(), 0, (sockaddr*)&ss, n);
}
int main(int argc, char** argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 4;
    Endpoint bl, tl, ft;
    int bfd = bind_udp(bl), tfd = bind_udp(tl), ffd = bind_udp(ft);
    CallMediaConfig c; c.certificate = DtlsCertificate::generate(); c.browser_address = bl; c.trunk_address = tl;
    if (argc > 2 && std::string(argv[2]) == "pcmu") c.codecs = {AudioCodec::Pcmu};
    CallMedia m(std::move(c));
    std::string offer, line;
    while (std::getline(std::cin, line) && line != "END") offer += line + "\r\n";
    auto trunk_offer = m.map_offer(true, offer);
    if (!trunk_offer) { std::cout << "OFFER REFUSED\nEND" << std::endl; return 1; }
    std::string trunk_answer = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
        std::to_string(ft.port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
    auto answer = m.map_answer(false, trunk_answer);
    if (!answer) { std::cout << "ANSWER REFUSED\nEND" << std::endl; return 1; }
    std::cout << *answer << "END" << std::endl;
    MediaOutput out;
    std::vector<double> heard;
    int events = 0, event_code = -1, event_duration = 0;
    auto start = Clock::now(), next = start;
    std::uint16_t tseq = 1; std::uint32_t tts = 0; std::size_t tframe = 0;
    std::uint8_t buf[2048];
    auto flush = [&] {
        for (std::size_t i = 0; i < out.size(); ++i)
            send_to(out[i].leg == MediaLeg::Browser ? bfd : tfd, out[i].to, out[i].bytes());
        out.clear();
    };
    while (Clock::now() - start < std::chrono::duration<double>(seconds)) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
        pollfd p[3] = {{bfd, POLLIN, 0}, {tfd, POLLIN, 0}, {ffd, POLLIN, 0}};
        poll(p, 3, wait > 0 ? (int)wait : 0);
        for (int k = 0; k < 3; ++k) {
            if (!(p[k].revents & POLLIN)) continue;
            sockaddr_storage ss; socklen_t sl = sizeof ss;
            ssize_t n = recvfrom(p[k].fd, buf, sizeof buf, 0, (sockaddr*)&ss, &sl);
            if (n <= 0) continue;
            auto from = *Endpoint::from_sockaddr((sockaddr*)&ss);
            std::span<const std::uint8_t> d(buf, (size_t)n);
            if (k == 0) m.on_browser_datagram(Clock::now(), from, d, out);
            else if (k == 1) m.on_trunk_datagram(Clock::now(), from, d, out);
            else if (auto r = RtpPacket::parse(d); r && r->header.payload_type == 0)
                for (auto b : r->payload) heard.push_back(ulaw_to_linear(b));
            else if (auto e = r ? parse_telephone_event(r->payload) : std::nullopt; e && r->header.payload_type == 101) {
                ++events;  // RFC 4733 at 8000 Hz from the browser's DTMF
                event_code = e->event;
                event_duration = std::max<int>(event_duration, e->duration);
            }
            flush();
        }
        if (Clock::now() >= next) {
            next += std::chrono::milliseconds(20);
            m.on_tick(Clock::now(), out);
            // The fake trunk: 600 Hz PCMU.
            std::uint8_t pkt[12 + 160];
            const auto pcm = sine(600, 8000, 160, 8000, tframe * 160);
            write_rtp_header({tframe == 0, 0, tseq++, tts, 0x12345678}, pkt);
            g711_encode(G711Law::Pcmu, pcm, std::span(pkt + 12, 160));
            tts += 160; ++tframe;
            send_to(ffd, tl, pkt);
            flush();
        }
    }
    std::vector<double> tail(heard.size() > 16000 ? heard.end() - 16000 : heard.begin(), heard.end());
    const double best_f = dominant_frequency(tail, 8000, 3900);
    double rms = 0; for (double v : tail) rms += v * v; rms = tail.empty() ? 0 : std::sqrt(rms / tail.size());
    const auto& s = m.stats();
    std::printf("RESULT state=%d codecs=%s selected=%s trunk_heard_hz=%.0f trunk_rms=%.0f trunk_samples=%zu "
                "browser_in=%llu browser_out=%llu trunk_in=%llu trunk_out=%llu dropped=%u trunk_events=%d "
                "trunk_event_code=%d trunk_event_duration=%d failure=%s\n",
                (int)m.state(), m.codec_names().c_str(), m.ice_selected() ? m.ice_selected()->to_string().c_str() : "-",
                best_f, rms, heard.size(), (unsigned long long)s.browser_in.packets,
                (unsigned long long)s.browser_out.packets, (unsigned long long)s.trunk_in.packets,
                (unsigned long long)s.trunk_out.packets, s.dropped, events, event_code, event_duration,
                m.failure().c_str());
    std::fflush(stdout);
}
