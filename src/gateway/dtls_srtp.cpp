// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/dtls_srtp.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <strings.h>

namespace turnbridge::gateway {

// OpenSSL state plus the datagram BIO's view of the current call.
struct DtlsSrtpEndpoint::Impl {
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    std::size_t mtu = 1200;
    std::string fingerprint_algorithm, fingerprint;
    std::string verify_error;
    // The BIO's view of one call into OpenSSL:
    std::span<const std::uint8_t> input;   // the datagram being fed, consumed by one read
    std::vector<Datagram>* out = nullptr;
    bool wrote = false;
    // RFC 6347 §4.2.4.1 back-off, handed to OpenSSL through DTLS_set_timer_cb.
    unsigned initial_us = 1000000, max_us = 60000000;

    ~Impl() {
        if (ssl) SSL_free(ssl);  // frees the BIO too
        if (ctx) SSL_CTX_free(ctx);
    }
};

namespace {

using Impl = DtlsSrtpEndpoint::Impl;

Impl* impl_of(BIO* b) { return static_cast<Impl*>(BIO_get_data(b)); }

// Each BIO_write from OpenSSL's DTLS layer is one datagram: a single record, or during the
// handshake several records that OpenSSL's buffering BIO packed within the MTU. Records never
// straddle datagrams (RFC 6347 §4.1.1).
int bio_write(BIO* b, const char* data, int len) {
    Impl* im = impl_of(b);
    if (im->out) im->out->emplace_back(reinterpret_cast<const std::uint8_t*>(data),
                                       reinterpret_cast<const std::uint8_t*>(data) + len);
    im->wrote = true;
    return len;
}

// One datagram per read: DTLS reads whole datagrams (RFC 6347 §4.1.1).
int bio_read(BIO* b, char* buf, int len) {
    Impl* im = impl_of(b);
    BIO_clear_retry_flags(b);
    if (im->input.empty()) {
        BIO_set_retry_read(b);
        return -1;
    }
    const auto n = std::min<std::size_t>(im->input.size(), static_cast<std::size_t>(len));
    std::memcpy(buf, im->input.data(), n);
    im->input = {};
    return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU: return static_cast<long>(impl_of(b)->mtu);
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: return 0;  // our MTU already counts datagram payload only
    default: return 0;  // PENDING, WPENDING, SET_NEXT_TIMEOUT, ...: nothing buffered, no sockets
    }
}

BIO_METHOD* datagram_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "turnbridge-dtls-datagram");
        BIO_meth_set_write(meth, bio_write);
        BIO_meth_set_read(meth, bio_read);
        BIO_meth_set_ctrl(meth, bio_ctrl);
        BIO_meth_set_create(meth, [](BIO* b) { BIO_set_init(b, 1); return 1; });
        return meth;
    }();
    return m;
}

// RFC 6347 §4.2.4.1: start at the configured timeout (1 s), double on each expiry, cap at 60 s.
unsigned int timer_cb(SSL* ssl, unsigned int previous_us) {
    const Impl* im = static_cast<const Impl*>(SSL_get_app_data(ssl));
    if (previous_us == 0) return im->initial_us;
    return previous_us >= im->max_us / 2 ? im->max_us : previous_us * 2;
}

// RFC 5763 §5: the certificate is self-signed; what counts is that it matches a=fingerprint.
int verify_cb(int, X509_STORE_CTX* store) {
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
    SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    Impl* im = static_cast<Impl*>(SSL_get_app_data(ssl));
    const auto fp = certificate_fingerprint(X509_STORE_CTX_get_current_cert(store), im->fingerprint_algorithm);
    if (!fp) {
        im->verify_error = "unsupported a=fingerprint hash " + im->fingerprint_algorithm;
        return 0;
    }
    if (fp->size() != im->fingerprint.size() || strncasecmp(fp->c_str(), im->fingerprint.c_str(), fp->size()) != 0) {
        im->verify_error = "peer certificate does not match a=fingerprint";
        return 0;
    }
    return 1;
}

std::string openssl_error() {
    char buf[256] = "no OpenSSL error";
    if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

}  // namespace

DtlsSrtpEndpoint::DtlsSrtpEndpoint(std::shared_ptr<const DtlsCertificate> cert, DtlsRole role,
                                   std::string remote_fingerprint_algorithm, std::string remote_fingerprint,
                                   DtlsOptions options)
    : impl_(std::make_unique<Impl>()), cert_(std::move(cert)), role_(role), options_(options) {
    Impl& im = *impl_;
    im.mtu = options_.mtu;
    im.initial_us = static_cast<unsigned>(std::chrono::microseconds(options_.initial_retransmit).count());
    im.max_us = static_cast<unsigned>(std::chrono::microseconds(options_.max_retransmit).count());
    im.fingerprint_algorithm = std::move(remote_fingerprint_algorithm);
    im.fingerprint = std::move(remote_fingerprint);
    im.ctx = SSL_CTX_new(DTLS_method());
    if (!im.ctx) { fail("SSL_CTX_new: " + openssl_error()); return; }
    SSL_CTX_set_min_proto_version(im.ctx, DTLS1_2_VERSION);  // RFC 8827 §6.5
    SSL_CTX_use_certificate(im.ctx, cert_->cert());
    SSL_CTX_use_PrivateKey(im.ctx, cert_->key());
    // RFC 5763 §5: both sides present certificates; the server must ask for the client's.
    SSL_CTX_set_verify(im.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_read_ahead(im.ctx, 1);
    // RFC 5764 §4.1.1 use_srtp; note the inverted convention: 0 means success.
    if (SSL_CTX_set_tlsext_use_srtp(im.ctx, "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM") != 0) {
        fail("use_srtp: " + openssl_error());
        return;
    }
    im.ssl = SSL_new(im.ctx);
    SSL_set_app_data(im.ssl, &im);
    BIO* bio = BIO_new(datagram_method());
    BIO_set_data(bio, &im);
    SSL_set_bio(im.ssl, bio, bio);
    SSL_set_options(im.ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(im.ssl, static_cast<long>(options_.mtu));
    DTLS_set_timer_cb(im.ssl, timer_cb);
    if (role_ == DtlsRole::Client) SSL_set_connect_state(im.ssl);
    else SSL_set_accept_state(im.ssl);
}

DtlsSrtpEndpoint::~DtlsSrtpEndpoint() = default;

void DtlsSrtpEndpoint::start(Time now, std::vector<Datagram>& out) {
    if (state_ != State::New) return;
    state_ = State::Handshaking;
    if (role_ == DtlsRole::Client) drive(now, out, false);
}

void DtlsSrtpEndpoint::on_datagram(Time now, std::span<const std::uint8_t> datagram, std::vector<Datagram>& out) {
    if (state_ == State::New) state_ = State::Handshaking;  // a server needs no start()
    if (state_ != State::Handshaking && state_ != State::Connected) return;
    impl_->input = datagram;
    drive(now, out, false);
    impl_->input = {};
}

void DtlsSrtpEndpoint::on_timer(Time now, std::vector<Datagram>& out) {
    if (state_ != State::Handshaking || !deadline_ || now < *deadline_) return;
    drive(now, out, true);
}

void DtlsSrtpEndpoint::drive(Time now, std::vector<Datagram>& out, bool timer) {
    Impl& im = *impl_;
    im.out = &out;
    im.wrote = false;
    if (timer) {
        // Retransmits the last flight if OpenSSL's own timer agrees it expired (see next_timeout).
        const int r = DTLSv1_handle_timeout(im.ssl);
        if (r < 0) fail("DTLS handshake timed out: " + openssl_error());
        else if (r > 0 && ++retransmits_ > options_.max_retransmits) fail("DTLS handshake timed out");
    } else if (state_ == State::Handshaking) {
        const int r = SSL_do_handshake(im.ssl);
        if (r == 1) {
            if (export_keys()) state_ = State::Connected;
        } else {
            const int err = SSL_get_error(im.ssl, r);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
                fail(im.verify_error.empty() ? "DTLS handshake: " + openssl_error() : im.verify_error);
        }
    } else {
        // Connected: alerts, close_notify, or a retransmitted final flight from the peer that
        // OpenSSL answers by retransmitting ours. WebRTC audio carries no DTLS application data.
        std::uint8_t sink[2048];
        int r;
        while ((r = SSL_read(im.ssl, sink, sizeof sink)) > 0) {}
        if (SSL_get_error(im.ssl, r) == SSL_ERROR_ZERO_RETURN) state_ = State::Closed;
    }
    im.out = nullptr;
    if (!timer && im.wrote) retransmits_ = 0;  // a new flight
    // Deviation: OpenSSL 3.0 times DTLS retransmissions with its own clock and offers no hook
    // for ours, so the deadline is "now + what OpenSSL says is left" (DTLSv1_get_timeout). With
    // the event loop's monotonic clock as `now` the two agree to within a loop iteration.
    deadline_.reset();
    timeval left{};
    if (state_ == State::Handshaking && DTLSv1_get_timeout(im.ssl, &left) == 1)
        deadline_ = now + std::chrono::seconds(left.tv_sec) + std::chrono::microseconds(left.tv_usec);
}

bool DtlsSrtpEndpoint::export_keys() {
    const SRTP_PROTECTION_PROFILE* p = SSL_get_selected_srtp_profile(impl_->ssl);
    if (!p) {
        fail("peer negotiated no SRTP profile (use_srtp, RFC 5764 §4.1.1)");
        return false;
    }
    std::size_t key = 16, salt = 14;  // RFC 5764 §4.1.2 SRTP_AES128_CM_HMAC_SHA1_80
    SrtpProfile profile = SrtpProfile::Aes128CmSha1_80;
    if (p->id == SRTP_AEAD_AES_128_GCM) {
        salt = 12;  // RFC 7714 §12
        profile = SrtpProfile::AeadAes128Gcm;
    } else if (p->id != SRTP_AES128_CM_SHA1_80) {
        fail(std::string("unexpected SRTP profile ") + p->name);
        return false;
    }
    // RFC 5764 §4.2: client key, server key, client salt, server salt.
    std::vector<std::uint8_t> m(2 * (key + salt));
    static constexpr char kLabel[] = "EXTRACTOR-dtls_srtp";
    if (SSL_export_keying_material(impl_->ssl, m.data(), m.size(), kLabel, sizeof kLabel - 1, nullptr, 0, 0) != 1) {
        fail("SSL_export_keying_material: " + openssl_error());
        return false;
    }
    const std::span<const std::uint8_t> all(m);
    const auto client_key = all.subspan(0, key), server_key = all.subspan(key, key);
    const auto client_salt = all.subspan(2 * key, salt), server_salt = all.subspan(2 * key + salt, salt);
    const bool client = role_ == DtlsRole::Client;
    SrtpKeys k{profile, client ? client_key : server_key, client ? client_salt : server_salt,
               client ? server_key : client_key, client ? server_salt : client_salt};
    srtp_ = SrtpSession::create(k);
    std::fill(m.begin(), m.end(), 0);
    if (!srtp_) {
        fail("libsrtp2 session setup failed");
        return false;
    }
    profile_ = profile;
    return true;
}

void DtlsSrtpEndpoint::fail(std::string why) {
    state_ = State::Failed;
    failure_ = std::move(why);
    deadline_.reset();
}

}  // namespace turnbridge::gateway
