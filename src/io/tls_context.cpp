// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/tls_context.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <optional>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace turnbridge::io {
namespace {

// "library: reason" of the first queued OpenSSL error, the root cause (e.g. "PEM routines: no
// start line" before "SSL routines: PEM lib"); the queue is cleared for the next call.
std::string openssl_reason() {
    const unsigned long first = ERR_get_error();
    ERR_clear_error();
    if (first == 0) return "unknown error";
    const char* lib = ERR_lib_error_string(first);
    const char* reason = ERR_reason_error_string(first);
    if (reason != nullptr) return lib != nullptr ? fmt::format("{}: {}", lib, reason) : std::string(reason);
    char buf[256];
    ERR_error_string_n(first, buf, sizeof buf);
    return buf;
}

// OpenSSL reports a missing file as "system lib"; say which file and why ourselves.
std::optional<std::string> unreadable(const std::filesystem::path& file) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return fmt::format("cannot read {}: {}", file.string(), std::strerror(errno));
    std::fclose(f);
    return std::nullopt;
}

}  // namespace

std::string TlsError::to_string() const { return key + ": " + message; }

std::variant<TlsContextPtr, TlsError> load_tls_context(const std::filesystem::path& cert,
                                                       const std::filesystem::path& key) {
    constexpr const char* kCert = "server.tls_cert";
    constexpr const char* kKey = "server.tls_key";
    if (auto why = unreadable(cert)) return TlsError{kCert, *why};
    if (auto why = unreadable(key)) return TlsError{kKey, *why};
    ERR_clear_error();
    TlsContextPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx) return TlsError{kCert, fmt::format("cannot create a TLS context: {}", openssl_reason())};
    // TLS 1.2+ only (RFC 8656 §3.1 defers to RFC 7525/9325, which retire older versions).
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_NO_COMPRESSION);
    // Many mostly idle connections: give the read/write buffers back between records.
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
        return TlsError{kCert, fmt::format("cannot load the certificate chain {}: {}", cert.string(), openssl_reason())};
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
        return TlsError{kKey, fmt::format("cannot load the private key {}: {}", key.string(), openssl_reason())};
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
        return TlsError{kKey, fmt::format("the private key {} does not match the certificate {}: {}", key.string(),
                                          cert.string(), openssl_reason())};
    return ctx;
}

}  // namespace turnbridge::io
