// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/host/sip_tls.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace turnbridge::gateway::host {
namespace {

std::string first_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

}  // namespace

std::variant<io::TlsContextPtr, io::TlsError> load_trunk_tls_context(const std::filesystem::path& ca, bool verify,
                                                             const std::string& key) {
    ERR_clear_error();
    io::TlsContextPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return io::TlsError{key, fmt::format("cannot create a TLS context: {}", first_error())};
    // TLS 1.2+ (RFC 9325 §3.1.1); no renegotiation, no compression.
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
    if (!verify) {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
        return ctx;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (ca.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
            return io::TlsError{key, fmt::format("cannot load the system CA store: {}", first_error())};
        return ctx;
    }
    if (std::FILE* f = std::fopen(ca.c_str(), "rb"); f == nullptr)
        return io::TlsError{key, fmt::format("cannot read {}: {}", ca.string(), std::strerror(errno))};
    else
        std::fclose(f);
    if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
        return io::TlsError{key, fmt::format("cannot load CA certificates from {}: {}", ca.string(), first_error())};
    return ctx;
}

}  // namespace turnbridge::gateway::host
