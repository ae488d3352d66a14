// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/tls_session.hpp"

#include <climits>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "turnbridge/base/address.hpp"

namespace turnbridge::io {
namespace {

std::string drain_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

int clamp_int(std::size_t n) { return n > INT_MAX ? INT_MAX : static_cast<int>(n); }

}  // namespace

TlsSession::TlsSession(SSL_CTX* ctx, const std::string& server_name) : TlsSession(ctx) {
    if (ssl_ == nullptr) return;
    SSL_set_connect_state(ssl_);
    const bool literal = IpAddress::parse(server_name).has_value();
    bool ok = literal || SSL_set_tlsext_host_name(ssl_, server_name.c_str()) == 1;
    if (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        ok = ok && (literal ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                            : X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0)) == 1;
    }
    if (!ok) {
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
}

TlsSession::TlsSession(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) return;
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (rbio_ == nullptr || wbio_ == nullptr) {
        BIO_free(rbio_);
        BIO_free(wbio_);
        SSL_free(ssl_);
        ssl_ = nullptr;
        return;
    }
    // An empty input BIO means "need more" (retry), not end of stream.
    BIO_set_mem_eof_return(rbio_, -1);
    BIO_set_mem_eof_return(wbio_, -1);
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() {
    if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
}

bool TlsSession::established() const { return ssl_ != nullptr && SSL_is_init_finished(ssl_); }

void TlsSession::feed(std::span<const std::uint8_t> ciphertext) {
    // A memory BIO grows as needed, so the write takes everything.
    while (!ciphertext.empty()) {
        const int n = BIO_write(rbio_, ciphertext.data(), clamp_int(ciphertext.size()));
        if (n <= 0) break;
        ciphertext = ciphertext.subspan(static_cast<std::size_t>(n));
    }
}

TlsSession::ReadResult TlsSession::read(std::span<std::uint8_t> out, std::size_t& n, std::size_t& record_bytes) {
    ERR_clear_error();
    // Without read-ahead OpenSSL takes exactly one record's bytes from the BIO per record it
    // decrypts, so what left rbio_ is that record's size on the wire.
    const bool was_established = established();
    const std::size_t before = BIO_ctrl_pending(rbio_);
    const int r = SSL_read(ssl_, out.data(), clamp_int(out.size()));
    carried_ += before - BIO_ctrl_pending(rbio_);
    if (!was_established) carried_ = 0;  // handshake bytes are nobody's relayed data
    if (r > 0) {
        n = static_cast<std::size_t>(r);
        record_bytes = carried_ >= n ? carried_ : n;  // never less than the plaintext it gave
        carried_ = 0;
        return ReadResult::Data;
    }
    switch (SSL_get_error(ssl_, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:  // cannot happen with a memory BIO; treat as "more input"
            return ReadResult::NeedMore;
        case SSL_ERROR_ZERO_RETURN:  // close_notify
            return ReadResult::Closed;
        default:
            error_ = drain_errors();
            // A client that rejected the server's certificate: say why (expired, unknown CA, name).
            if (const long v = SSL_get_verify_result(ssl_); !SSL_is_server(ssl_) && v != X509_V_OK)
                error_ += fmt::format(" ({})", X509_verify_cert_error_string(v));
            return ReadResult::Error;
    }
}

bool TlsSession::write(std::span<const std::uint8_t> plaintext) {
    if (!established() || plaintext.empty()) return established();
    ERR_clear_error();
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write writes all or fails; the memory BIO
    // never blocks.
    const int r = SSL_write(ssl_, plaintext.data(), clamp_int(plaintext.size()));
    if (r > 0) return true;
    error_ = drain_errors();
    return false;
}

std::size_t TlsSession::pending() const { return ssl_ == nullptr ? 0 : BIO_ctrl_pending(wbio_); }

std::size_t TlsSession::take(std::span<std::uint8_t> out) {
    const int n = BIO_read(wbio_, out.data(), clamp_int(out.size()));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace turnbridge::io
