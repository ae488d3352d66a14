// SPDX-License-Identifier: Apache-2.0
#pragma once
// The gateway's DTLS identity: one self-signed ECDSA P-256 certificate made at start and shared
// by every DTLS-SRTP endpoint; browsers pin it through a=fingerprint (RFC 8122 §5), so no CA.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace turnbridge::gateway {

class DtlsCertificate {
public:
    // Generates the key and a certificate valid from a day ago for 30 days (WebRTC does the same;
    // the peer never checks dates, only the fingerprint). Startup work: reads the wall clock.
    static std::shared_ptr<const DtlsCertificate> generate();

    EVP_PKEY* key() const { return key_.get(); }
    X509* cert() const { return cert_.get(); }
    // "AB:CD:..." uppercase, for a=fingerprint:sha-256.
    const std::string& fingerprint_sha256() const { return fingerprint_; }

private:
    struct KeyFree { void operator()(EVP_PKEY* k) const; };
    struct CertFree { void operator()(X509* c) const; };
    std::unique_ptr<EVP_PKEY, KeyFree> key_;
    std::unique_ptr<X509, CertFree> cert_;
    std::string fingerprint_;
};

// RFC 8122 §5 fingerprint of `cert` with the SDP's hash name ("sha-256", "sha-1", "sha-384",
// "sha-512"); nullopt for an unknown name.
std::optional<std::string> certificate_fingerprint(X509* cert, std::string_view sdp_hash_name);

}  // namespace turnbridge::gateway
