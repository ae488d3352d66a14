// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: whole call flows through gateway::SipRouter (sans-I/O). The input is a script:
// each step picks a message from a template (a browser's REGISTER, INVITE, CANCEL, ACK, BYE,
// OPTIONS over WebSocket, with the digest rounds done right or wrong; a trunk's INVITE to a routed
// DID with or without registered users, from the trunk or a stranger, its CANCEL, ACK, BYE, and
// responses on either leg to what the router sent), with fields taken from the input, or a timer
// step, a closed flow, a media failure. Every ended call goes to GatewayMedia::finish as in
// GatewayHost::call_ended, so that media which is not the gateway's (the pass-through of a call
// nobody can answer, issue 11) is handed to the real code that once cast it.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "turnbridge/base/log.hpp"
#include "turnbridge/gateway/host/gateway_media.hpp"
#include "turnbridge/gateway/sip_router.hpp"
#include "turnbridge/sip/digest.hpp"

using namespace turnbridge;
using namespace turnbridge::gateway;
using namespace turnbridge::gateway::host;
using namespace turnbridge::server;
using namespace std::chrono_literals;

namespace {

constexpr sip::TransportId kWs[] = {7, 8}, kTrunk = 9, kStranger = 11;
constexpr std::size_t kMaxSteps = 64;

class Reader {
public:
    Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
    bool empty() const { return i_ >= n_; }
    std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
    bool bit() { return byte() & 1; }
    template <class T> T pick(const std::vector<T>& v) { return v[byte() % v.size()]; }
    // A short field: up to 15 bytes of the input.
    std::string text() {
        const std::size_t len = byte() % 16;
        std::string s;
        for (std::size_t k = 0; k < len && i_ < n_; ++k) s.push_back(static_cast<char>(d_[i_++]));
        return s;
    }

private:
    const std::uint8_t* d_;
    std::size_t n_, i_ = 0;
};

// The gateway's media as the router sees it; map_* fails when the script says so.
struct FuzzMedia final : sip::MediaSdp {
    bool refuse = false;
    std::shared_ptr<bool> live = std::make_shared<bool>(true);   // false once its call ended or it is gone
    ~FuzzMedia() override { *live = false; }
    std::optional<std::string> map_offer(bool from_browser, const std::string& sdp) override {
        if (refuse) return std::nullopt;
        return (from_browser ? "v=0\r\ns=to-trunk\r\n" : "v=0\r\ns=to-browser\r\n") + std::to_string(sdp.size());
    }
    std::optional<std::string> map_answer(bool from_browser, const std::string& sdp) override {
        return map_offer(from_browser, sdp);
    }
};

const std::string kSdp =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

std::shared_ptr<config::Config> make_config() {
    auto c = std::make_shared<config::Config>();
    c->media_ip = IpAddress::parse("127.0.0.1");
    config::Realm r;
    r.name = "example.org";
    r.users = {{"alice", "wonderland"}, {"bob", "builder"}, {"nobody", "n0body"}};
    r.gateway.enabled = true;
    r.gateway.trunk = {"sip:127.0.0.1:5070", "127.0.0.1", 5070, config::SipTrunk::Transport::Udp};
    r.gateway.routes = {{"+15550123", {"alice"}}, {"+15550124", {"alice", "bob"}}, {"+15550199", {"nobody"}}};
    c->realms.emplace("example.org", r);
    return c;
}

struct Flow {
    std::string call_id, from_tag, to_tag, branch, uri, contact;
    std::uint32_t cseq = 1;
};

class Script {
public:
    explicit Script(Reader& in) : in_(in) {
        router_.on_call_ended([this](const CallSummary& s, sip::MediaSdp* m) {
            (void)s.end_reason.size();
            const auto summary = media_host_.finish(m);   // what GatewayHost::call_ended does
            if (!summary.codecs.empty()) __builtin_trap();  // not one of the gateway's calls
            if (auto* f = dynamic_cast<FuzzMedia*>(m)) *f->live = false;
        });
        std::vector<sip::Action> out;
        router_.start(now_, out);
        take(out);
    }
    ~Script() {
        std::vector<sip::Action> out;
        router_.stop(now_, out);
        take(out);
        media_host_.close();
    }

    void step() {
        switch (in_.byte() % 16) {
        case 0: browser_register(); break;
        case 1: browser_invite(); break;
        case 2: browser_in_dialog("CANCEL"); break;
        case 3: browser_in_dialog("ACK"); break;
        case 4: browser_in_dialog("BYE"); break;
        case 5: trunk_answers(); break;
        case 6: trunk_invite(); break;
        case 7: trunk_in_dialog(in_.pick<std::string>({"CANCEL", "ACK", "BYE", "OPTIONS"})); break;
        case 8: browser_answers(); break;
        case 9: options(); break;
        case 10: timer(); break;
        case 11: close_flow(); break;
        case 12: media_fails(); break;
        case 13: raw(); break;
        case 14: media_mode_ = in_.byte() % 4; break;
        default: timer(); break;
        }
    }

private:
    std::unique_ptr<sip::MediaSdp> make_media(const config::Realm& realm, bool outbound) {
        switch (media_mode_) {
        case 0: return nullptr;                              // no media ports
        case 1: return pass_through_media(realm, outbound);  // the router's own
        default: {
            auto m = std::make_unique<FuzzMedia>();
            m->refuse = media_mode_ == 3;
            medias_.emplace_back(m.get(), m->live);
            return m;
        }
        }
    }

    void feed(const SipFlow& f, const std::string& bytes) {
        std::vector<sip::Action> out;
        router_.on_message(now_, 1'700'000'000, f, bytes, out);
        take(out);
    }

    // Remembers what the router sent: the trunk's and browsers' INVITEs, the challenges.
    void take(std::vector<sip::Action>& out) {
        for (auto& a : out) {
            auto* s = std::get_if<sip::Send>(&a);
            if (s == nullptr) continue;
            auto m = sip::Message::parse(s->bytes);
            if (!m) continue;
            if (m->is_request()) {
                if (m->method() != "INVITE") continue;
                if (s->transport == kTrunk) {
                    trunk_out_.emplace(m->clone());
                } else {
                    browser_in_.emplace(m->clone());
                    browser_in_flow_ = s->transport;
                }
                continue;
            }
            if (m->status() == 401 || m->status() == 407) challenge_.emplace(m->clone());
            if (m->status() >= 200 && m->cseq_method() == "INVITE") (s->transport == kTrunk ? trunk_ : browser_).to_tag = m->to_tag();
        }
        out.clear();
    }

    SipFlow ws_flow() { return SipFlow{kWs[in_.bit()], true, true, true, *IpAddress::parse("192.0.2.7"), {}}; }
    SipFlow trunk_flow(bool stranger = false) {
        return stranger ? SipFlow{kStranger, false, false, false, *IpAddress::parse("198.51.100.1"), {}}
                        : SipFlow{kTrunk, false, false, false, *IpAddress::parse("127.0.0.1"), {}};
    }
    std::string branch() { return "z9hG4bK" + std::to_string(++n_) + "x"; }
    std::string user() { return in_.pick<std::string>({"alice", "bob", "nobody", "mallory"}); }

    // A browser request with the digest answer to the last challenge when the script wants one.
    std::string browser_request(const std::string& method, const std::string& uri, const std::string& who,
                                Flow& f, const std::string& body, bool authenticate) {
        std::string m = method + " " + uri + " SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=" + f.branch +
                        "\r\nMax-Forwards: 70\r\nFrom: <sip:" + who + "@example.org>;tag=" + f.from_tag +
                        "\r\nTo: <" + (method == "REGISTER" ? "sip:" + who + "@example.org" : uri) + ">" +
                        (f.to_tag.empty() ? "" : ";tag=" + f.to_tag) +
                        "\r\nCall-ID: " + f.call_id + "\r\nCSeq: " + std::to_string(f.cseq) + " " + method +
                        "\r\nContact: <sip:" + who + "@h.invalid;transport=ws>;expires=" +
                        std::to_string(in_.byte() % 4 == 0 ? 0 : 600) + "\r\n";
        if (authenticate && challenge_) {
            const std::string password = in_.bit() ? "wrong" : who == "alice" ? "wonderland" : "builder";
            auto a = sip::answer_challenge(*challenge_, method, uri, who, password, [this] { return ++n_; });
            if (a)
                m += std::string(a->header == sip::AuthHeader::Authorization ? "Authorization: " : "Proxy-Authorization: ") +
                     a->value + "\r\n";
        }
        if (!body.empty()) m += "Content-Type: application/sdp\r\n";
        return m + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }

    void browser_register() {
        Flow f{"reg" + std::to_string(n_++), "rt", "", branch(), "sip:example.org", ""};
        const auto who = user();
        const auto flow = ws_flow();
        feed(flow, browser_request("REGISTER", "sip:example.org", who, f, "", false));
        f.branch = branch();
        ++f.cseq;
        feed(flow, browser_request("REGISTER", "sip:example.org", who, f, "", true));
    }

    void browser_invite() {
        // One read per statement: the order of reads is the script's, whatever the compiler.
        const auto number = in_.pick<std::string>({"+15557001", "+15550123", "", "x"});
        const auto suffix = in_.text();
        browser_ = Flow{"inv" + std::to_string(n_++), "bt", "", branch(), "sip:" + number + suffix + "@example.org", ""};
        browser_who_ = user();
        browser_flow_ = ws_flow();
        const std::string body = in_.bit() ? kSdp : in_.text();
        feed(browser_flow_, browser_request("INVITE", browser_.uri, browser_who_, browser_, body, false));
        if (in_.bit()) return;   // never authenticated
        // RFC 3261 §17.1.1.3: the ACK of the 407 is in its transaction (same branch, its To tag).
        feed(browser_flow_, browser_request("ACK", browser_.uri, browser_who_, browser_, "", false));
        browser_.to_tag.clear();
        browser_.branch = branch();
        ++browser_.cseq;
        feed(browser_flow_, browser_request("INVITE", browser_.uri, browser_who_, browser_, body, true));
    }

    void browser_in_dialog(const std::string& method) {
        if (browser_.call_id.empty()) return;
        Flow f = browser_;
        if (method == "BYE" || (method == "ACK" && in_.bit())) {   // a 2xx's ACK is a new transaction
            f.branch = branch();
            if (method == "BYE") f.cseq = ++browser_.cseq;
        }
        if (method == "CANCEL") f.to_tag.clear();
        feed(browser_flow_, browser_request(method, browser_.uri, browser_who_, f, "", false));
    }

    // A response from the trunk to the INVITE the router sent it.
    void trunk_answers() {
        if (!trunk_out_) return;
        const int status = in_.pick<int>({100, 180, 183, 200, 200, 401, 407, 486, 487, 503, 603});
        auto r = sip::Message::response(*trunk_out_, status, {}, status == 100 ? "" : "trk" + std::to_string(in_.byte() % 2));
        if (status == 401 || status == 407)
            r.add_auth_header(status == 401 ? sip::AuthHeader::WwwAuthenticate : sip::AuthHeader::ProxyAuthenticate,
                              "Digest realm=\"trunk\", nonce=\"" + in_.text() + "\", algorithm=MD5");
        if (status >= 180) r.add_contact("<sip:+15557001@127.0.0.1:5070>");
        if ((status == 183 || status == 200) && in_.bit()) r.set_body("application/sdp", in_.bit() ? kSdp : in_.text());
        feed(trunk_flow(), r.serialize());
    }

    void trunk_invite() {
        const std::string did = in_.pick<std::string>({"+15550123", "+15550124", "+15550199", "+15559999"});
        trunk_ = Flow{"tin" + std::to_string(n_++), "tt", "", branch(), "sip:" + did + "@127.0.0.1:5062", ""};
        trunk_stranger_ = in_.byte() % 4 == 0;
        const std::string body = in_.bit() ? kSdp : "";
        feed(trunk_flow(trunk_stranger_), trunk_request("INVITE", trunk_, body));
    }

    std::string trunk_request(const std::string& method, const Flow& f, const std::string& body) {
        return method + " " + f.uri + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=" + f.branch +
               ";rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550111@127.0.0.1>;tag=" + f.from_tag +
               "\r\nTo: <" + f.uri + ">" + (f.to_tag.empty() ? "" : ";tag=" + f.to_tag) + "\r\nCall-ID: " + f.call_id +
               "\r\nCSeq: " + std::to_string(f.cseq) + " " + method + "\r\nContact: <sip:+15550111@127.0.0.1:5070>\r\n" +
               (body.empty() ? "" : "Content-Type: application/sdp\r\n") + "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    }

    void trunk_in_dialog(const std::string& method) {
        if (trunk_.call_id.empty()) return;
        Flow f = trunk_;
        if (method == "BYE" || method == "OPTIONS" || (method == "ACK" && in_.bit())) {
            f.branch = branch();
            if (method != "ACK") f.cseq = ++trunk_.cseq;
        }
        if (method == "CANCEL") f.to_tag.clear();
        feed(trunk_flow(trunk_stranger_), trunk_request(method, f, ""));
    }

    // A browser's answer to the INVITE the router forked to it (an inbound call).
    void browser_answers() {
        if (!browser_in_) return;
        const int status = in_.pick<int>({100, 180, 200, 200, 480, 486, 603});
        auto r = sip::Message::response(*browser_in_, status, {}, status == 100 ? "" : "brw" + std::to_string(in_.byte() % 2));
        if (status >= 180) r.add_contact("<sip:alice@h.invalid;transport=ws>");
        if (status == 200 && in_.bit()) r.set_body("application/sdp", in_.bit() ? kSdp : in_.text());
        const SipFlow flow{browser_in_flow_, true, true, true, *IpAddress::parse("192.0.2.7"), {}};
        feed(flow, r.serialize());
        if (status == 200 && in_.bit()) {   // the browser's ACK never comes from it; its BYE may
            Flow f{browser_in_->call_id(), r.to_tag(), browser_in_->from_tag(), branch(), "sip:turnbridge@gw.invalid", ""};
            f.cseq = 1;
            feed(flow, browser_request("BYE", f.uri, "alice", f, "", false));
        }
    }

    void options() {
        Flow f{"opt" + std::to_string(n_++), "ot", "", branch(), "sip:example.org", ""};
        if (in_.bit()) {
            const auto flow = ws_flow();
            feed(flow, browser_request("OPTIONS", f.uri, "alice", f, "", false));
        } else {
            feed(trunk_flow(in_.bit()), trunk_request("OPTIONS", f, ""));
        }
    }

    void timer() {
        static const std::vector<int> steps_ms = {0, 20, 500, 4000, 32000, 64000, 200000};
        now_ += std::chrono::milliseconds(in_.pick(steps_ms));
        std::vector<sip::Action> out;
        router_.on_timer(now_, out);
        take(out);
    }

    void close_flow() {
        std::vector<sip::Action> out;
        router_.on_flow_closed(now_, in_.pick<sip::TransportId>({kWs[0], kWs[1], kTrunk}), out);
        take(out);
    }

    void media_fails() {
        for (const auto& [m, live] : medias_) {
            if (!*live) continue;
            std::vector<sip::Action> out;
            router_.hang_up(now_, m, "media: fuzz", out);
            take(out);
            return;
        }
    }

    // Up to 255 bytes of the input as one message on a flow the script picks.
    void raw() {
        std::string bytes;
        const std::size_t len = in_.byte();
        for (std::size_t k = 0; k < len && !in_.empty(); ++k) bytes.push_back(static_cast<char>(in_.byte()));
        if (in_.bit()) feed(ws_flow(), bytes);
        else feed(trunk_flow(in_.bit()), bytes);
    }

    Reader& in_;
    std::shared_ptr<config::Config> cfg_ = make_config();
    turn::NonceMinter nonces_{std::array<std::uint8_t, 32>{7}, std::chrono::seconds(600)};
    // Never started: no socket, no loop use; its finish() is what the fuzz target checks.
    GatewayMedia media_host_{nullptr, *cfg_, nullptr, 0, nullptr};
    int media_mode_ = 2;
    // Owned by the router's calls; the flag says which still are.
    std::list<std::pair<const FuzzMedia*, std::shared_ptr<bool>>> medias_;
    std::uint64_t n_ = 0;
    sip::Time now_ = sip::Time{} + 100h;
    SipRouter router_{cfg_, nonces_, SipLocal{"127.0.0.1:5062", "gw.invalid"},
                      [this](const config::Realm& r, bool outbound) { return make_media(r, outbound); },
                      [](const config::Realm&, const Endpoint&) -> std::optional<TrunkFlowInfo> {
                          return TrunkFlowInfo{kTrunk, std::nullopt};
                      },
                      [this] { return ++n_; }};
    Flow browser_, trunk_;
    std::string browser_who_ = "alice";
    SipFlow browser_flow_{kWs[0], true, true, true, IpAddress{}, {}};
    bool trunk_stranger_ = false;
    std::optional<sip::Message> trunk_out_, browser_in_, challenge_;
    sip::TransportId browser_in_flow_ = kWs[0];
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Every call logs a few lines; thousands of runs a second would be all the fuzzer does.
    static const bool quiet = (log::set_level(log::Level::Error), true);
    (void)quiet;
    Reader in(data, size);
    Script script(in);
    for (std::size_t i = 0; i < kMaxSteps && !in.empty(); ++i) script.step();
    return 0;
}
