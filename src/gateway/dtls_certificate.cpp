// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/dtls_certificate.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "turnbridge/gateway/random.hpp"

#include <stdexcept>
#include <cstring>
#include <strings.h>

namespace turnbridge::gateway {

void DtlsCertificate::KeyFree::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
void DtlsCertificate::CertFree::operator()(X509* c) const { X509_free(c); }

std::shared_ptr<const DtlsCertificate> DtlsCertificate::generate() {
    auto c = std::make_shared<DtlsCertificate>();
    c->key_.reset(EVP_EC_gen("P-256"));
    if (!c->key_) throw std::runtime_error("DTLS certificate: EC P-256 key generation failed");
    c->cert_.reset(X509_new());
    X509* x = c->cert_.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(random_value<std::uint32_t>(random_bytes) >> 1));
    X509_gmtime_adj(X509_getm_notBefore(x), -24 * 3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("turnbridge"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, c->key_.get());
    if (X509_sign(x, c->key_.get(), EVP_sha256()) <= 0) throw std::runtime_error("DTLS certificate: signing failed");
    c->fingerprint_ = *certificate_fingerprint(x, "sha-256");
    return c;
}

std::optional<std::string> certificate_fingerprint(X509* cert, std::string_view name) {
    const EVP_MD* md = nullptr;
    auto is = [&](const char* s) { return name.size() == strlen(s) && strncasecmp(name.data(), s, name.size()) == 0; };
    if (is("sha-256")) md = EVP_sha256();
    else if (is("sha-1")) md = EVP_sha1();
    else if (is("sha-384")) md = EVP_sha384();
    else if (is("sha-512")) md = EVP_sha512();
    if (!md || !cert) return std::nullopt;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, md, digest, &n) != 1) return std::nullopt;
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        if (i) out += ':';
        out += fmt::format("{:02X}", digest[i]);
    }
    return out;
}

}  // namespace turnbridge::gateway
