// SPDX-License-Identifier: Apache-2.0
#pragma once
// The server's TLS configuration (TURN over TLS, RFC 8656 §3.1): one SSL_CTX built from the PEM
// certificate chain and key, shared read-only by all workers. SIGHUP builds a new one for new
// connections; live connections keep theirs (SSL objects hold a reference to their SSL_CTX).
#include <filesystem>
#include <memory>
#include <string>
#include <variant>

typedef struct ssl_ctx_st SSL_CTX;

namespace turnbridge::io {

using TlsContextPtr = std::shared_ptr<SSL_CTX>;

struct TlsError {
    std::string key;      // the config key at fault: server.tls_cert or server.tls_key
    std::string message;  // one line naming the file and the reason
    std::string to_string() const;  // "KEY: MESSAGE"
};

// TLS 1.2 and later. Returns the context, or why the certificate or key cannot be used.
std::variant<TlsContextPtr, TlsError> load_tls_context(const std::filesystem::path& cert,
                                                       const std::filesystem::path& key);

}  // namespace turnbridge::io
