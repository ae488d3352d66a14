// SPDX-License-Identifier: Apache-2.0
#pragma once
// The client side of SIP over TLS toward trunks (RFC 3261 §26.2, RFC 5630): one SSL_CTX per
// (trunk_ca, trunk_tls_verify) pair, TLS 1.2+, peer certificates checked against trunk_ca or the
// system CA store. The session itself (SNI, host name check) is a client TlsSession carried by
// SipTcpConnection.
#include <filesystem>
#include <string>
#include <variant>

#include "turnbridge/io/tls_context.hpp"

namespace turnbridge::gateway::host {

// `key` names the config key for messages: realm."X".gateway.trunk_ca.
std::variant<io::TlsContextPtr, io::TlsError> load_trunk_tls_context(const std::filesystem::path& ca, bool verify,
                                                             const std::string& key);

}  // namespace turnbridge::gateway::host
