// SPDX-License-Identifier: Apache-2.0
#pragma once
// DTLS-SRTP endpoint (RFC 5763, RFC 5764) on OpenSSL without sockets: datagrams and a time go
// in, datagrams come out. Once the handshake is done, srtp() protects and unprotects media.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "turnbridge/gateway/browser_sdp.hpp"
#include "turnbridge/gateway/dtls_certificate.hpp"
#include "turnbridge/gateway/srtp_session.hpp"

namespace turnbridge::gateway {

using Time = std::chrono::steady_clock::time_point;
using Datagram = std::vector<std::uint8_t>;

struct DtlsOptions {
    std::size_t mtu = 1200;  // bytes per datagram, DTLS headers included (RFC 6347 §4.1.1.1)
    std::chrono::milliseconds initial_retransmit{1000};  // RFC 6347 §4.2.4.1
    std::chrono::milliseconds max_retransmit{60000};
    int max_retransmits = 7;  // then the handshake fails (OpenSSL also stops after 12)
};

class DtlsSrtpEndpoint {
public:
    enum class State : std::uint8_t { New, Handshaking, Connected, Failed, Closed };

    // `remote_fingerprint` and its algorithm come from the peer's a=fingerprint; the peer's
    // certificate must match it (RFC 8122 §5, RFC 5763 §5).
    DtlsSrtpEndpoint(std::shared_ptr<const DtlsCertificate> cert, DtlsRole role,
                     std::string remote_fingerprint_algorithm, std::string remote_fingerprint,
                     DtlsOptions options = {});
    ~DtlsSrtpEndpoint();
    DtlsSrtpEndpoint(const DtlsSrtpEndpoint&) = delete;
    DtlsSrtpEndpoint& operator=(const DtlsSrtpEndpoint&) = delete;

    // A client sends its ClientHello; a server just waits. Datagrams to send are appended to `out`.
    void start(Time now, std::vector<Datagram>& out);
    // One datagram the demux classified as DTLS (RFC 7983).
    void on_datagram(Time now, std::span<const std::uint8_t> datagram, std::vector<Datagram>& out);
    // Call at next_timeout(): retransmits the last flight with exponential back-off
    // (RFC 6347 §4.2.4.1). OpenSSL keeps its own clock for this; see drive().
    void on_timer(Time now, std::vector<Datagram>& out);
    std::optional<Time> next_timeout() const { return deadline_; }

    State state() const { return state_; }
    const std::string& failure() const { return failure_; }  // why Failed
    // Set once Connected.
    std::optional<SrtpProfile> profile() const { return profile_; }
    SrtpSession* srtp() { return srtp_ ? &*srtp_ : nullptr; }

    struct Impl;  // OpenSSL state and the datagram BIO

private:
    void drive(Time now, std::vector<Datagram>& out, bool timer);
    void fail(std::string why);
    bool export_keys();

    std::unique_ptr<Impl> impl_;
    std::shared_ptr<const DtlsCertificate> cert_;
    DtlsRole role_;
    DtlsOptions options_;
    State state_ = State::New;
    std::string failure_;
    std::optional<Time> deadline_;
    int retransmits_ = 0;
    std::optional<SrtpProfile> profile_;
    std::optional<SrtpSession> srtp_;
};

}  // namespace turnbridge::gateway
