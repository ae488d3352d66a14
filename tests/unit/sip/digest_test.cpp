// SPDX-License-Identifier: Apache-2.0
// Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616).
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>

#include "samples.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/sip/digest.hpp"

using namespace turnbridge;
using namespace turnbridge::sip;
using namespace std::chrono_literals;

namespace {

turn::NonceMinter minter() {
    std::array<std::uint8_t, 32> key{};
    key[0] = 7;
    return turn::NonceMinter(key, 600s);
}

const IpAddress kBrowser = IpAddress::v4(198, 51, 100, 7);
const Time kT0 = Time{} + 1000h;

PasswordLookup users() {
    return [](std::string_view u) -> std::optional<std::string> {
        if (u == "alice") return std::string("wonderland");
        return std::nullopt;
    };
}

Random counter() {
    return [n = std::uint64_t{0x1234}]() mutable { return n++; };
}

// The browser's retry: the REGISTER again with the Authorization it computed.
Message authorized(const Message& challenge, std::string_view password, std::string_view user = "alice") {
    auto req = Message::parse(samples::kJsSipRegister);
    auto ans = answer_challenge(challenge, "REGISTER", "sip:example.org", user, password, counter());
    REQUIRE(ans);
    CHECK(ans->header == AuthHeader::Authorization);
    req->add_auth_header(ans->header, ans->value);
    return std::move(*Message::parse(req->serialize()));  // through the wire, as the server sees it
}

}  // namespace

TEST_CASE("the RFC 2617 §3.5 example response") {
    CHECK(digest_response({DigestAlgorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
                           "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "auth", "00000001", "0a4f113b"}) ==
          "6629fae49393a05397450978507c4ef1");
}

TEST_CASE("the RFC 7616 §3.9.1 examples, MD5 and SHA-256") {
    DigestInput in{DigestAlgorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
                   "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "auth", "00000001",
                   "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"};
    CHECK(digest_response(in) == "8ca523f5e9506fed4657c9700eebdbec");
    in.algorithm = DigestAlgorithm::Sha256;
    CHECK(digest_response(in) == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

TEST_CASE("the RFC 2069 form without qop: H(HA1:nonce:HA2)") {
    // Computed independently: md5("939e7578ed9e3c518a452acee763bce9:dcd98b7102dd2f0e8b11d0f600bfb0c093:39aff3a2bab6126f332b942af96d3366")
    CHECK(digest_response({DigestAlgorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
                           "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "", ""}) ==
          "670fd8c2df070c60b045671b8b24ff02");
}

TEST_CASE("Digest parameter lists parse with quotes, escapes and tokens") {
    auto p = parse_digest(
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\",nonce=\"dcd98b\", uri=\"/dir/index.html\", "
        "qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae4\", opaque=\"a\\\"b\"");
    REQUIRE(p);
    CHECK((*p)["username"] == "Mufasa");
    CHECK((*p)["nonce"] == "dcd98b");
    CHECK((*p)["qop"] == "auth");
    CHECK((*p)["nc"] == "00000001");
    CHECK((*p)["opaque"] == "a\"b");
    CHECK(parse_digest("DIGEST Realm=x")->at("realm") == "x");
    CHECK_FALSE(parse_digest("Basic dXNlcjpwYXNz"));
    CHECK_FALSE(parse_digest("Digest realm=\"unterminated"));
    CHECK_FALSE(parse_digest("Digest =x"));
    CHECK_FALSE(parse_digest("Digestive realm=x"));
}

TEST_CASE("a REGISTER without credentials is challenged and the answer is accepted (RFC 3261 §22.4)") {
    const auto nonces = minter();
    DigestServer server("example.org", nonces);
    auto req = Message::parse(samples::kJsSipRegister);
    CHECK(server.verify(*req, kT0, kBrowser, users()).verdict == DigestServer::Verdict::Missing);

    const auto challenge = server.challenge(*req, kT0, kBrowser, "totag");
    const auto wire = challenge.serialize();
    CAPTURE(wire);
    CHECK(wire.rfind("SIP/2.0 401 Unauthorized\r\n", 0) == 0);
    auto c = Message::parse(wire);
    REQUIRE(c);
    const auto www = c->auth_headers(AuthHeader::WwwAuthenticate);
    REQUIRE(www.size() == 1);
    auto params = parse_digest(www[0]);
    REQUIRE(params);
    CHECK((*params)["realm"] == "example.org");
    CHECK((*params)["qop"] == "auth");
    CHECK((*params)["algorithm"] == "MD5");
    CHECK(nonces.check((*params)["nonce"], kT0, kBrowser) == turn::NonceMinter::Check::Valid);

    SUBCASE("right password") {
        const auto check = server.verify(authorized(*c, "wonderland"), kT0 + 10s, kBrowser, users());
        CHECK(check.verdict == DigestServer::Verdict::Ok);
        CHECK(check.username == "alice");
    }
    SUBCASE("wrong password") {
        CHECK(server.verify(authorized(*c, "looking-glass"), kT0, kBrowser, users()).verdict ==
              DigestServer::Verdict::Forbidden);
    }
    SUBCASE("unknown user") {
        CHECK(server.verify(authorized(*c, "x", "mallory"), kT0, kBrowser, users()).verdict ==
              DigestServer::Verdict::Forbidden);
    }
    SUBCASE("the nonce is bound to the browser's address") {
        CHECK(server.verify(authorized(*c, "wonderland"), kT0, IpAddress::v4(203, 0, 113, 1), users()).verdict ==
              DigestServer::Verdict::Rejected);
    }
    SUBCASE("an expired nonce with the right password is stale, and the re-challenge says so (RFC 2617 §3.2.1)") {
        CHECK(server.verify(authorized(*c, "wonderland"), kT0 + 601s, kBrowser, users()).verdict ==
              DigestServer::Verdict::Stale);
        CHECK(server.challenge(*req, kT0, kBrowser, "t", true).auth_headers(AuthHeader::WwwAuthenticate)[0].find(
                  "stale=true") != std::string::npos);
    }
    SUBCASE("credentials for another realm count as none") {
        DigestServer other("other.org", nonces);
        CHECK(other.verify(authorized(*c, "wonderland"), kT0, kBrowser, users()).verdict == DigestServer::Verdict::Missing);
    }
}

TEST_CASE("credentials missing a required parameter are malformed") {
    const auto nonces = minter();
    DigestServer server("example.org", nonces);
    auto req = Message::parse(samples::kJsSipRegister);
    req->add_auth_header(AuthHeader::Authorization,
                         "Digest username=\"alice\", realm=\"example.org\", nonce=\"n\", uri=\"sip:example.org\"");
    CHECK(server.verify(*Message::parse(req->serialize()), kT0, kBrowser, users()).verdict ==
          DigestServer::Verdict::Malformed);
}

TEST_CASE("a trunk's 407 is answered with Proxy-Authorization and qop=auth (RFC 3261 §22.3)") {
    const std::string challenge =
        "SIP/2.0 407 Proxy Authentication Required\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
        "From: <sip:gw@127.0.0.1>;tag=a\r\nTo: <sip:+15550123@127.0.0.1>;tag=b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        "Proxy-Authenticate: Digest realm=\"trunk.example\", nonce=\"abc123\", opaque=\"op\", qop=\"auth,auth-int\", algorithm=MD5\r\n"
        "Content-Length: 0\r\n\r\n";
    auto r = Message::parse(challenge);
    REQUIRE(r);
    auto ans = answer_challenge(*r, "INVITE", "sip:+15550123@127.0.0.1:5070", "gw", "s3cret", counter(), 1);
    REQUIRE(ans);
    CHECK(ans->header == AuthHeader::ProxyAuthorization);
    auto p = parse_digest(ans->value);
    REQUIRE(p);
    CHECK((*p)["username"] == "gw");
    CHECK((*p)["realm"] == "trunk.example");
    CHECK((*p)["uri"] == "sip:+15550123@127.0.0.1:5070");
    CHECK((*p)["qop"] == "auth");
    CHECK((*p)["nc"] == "00000001");
    CHECK((*p)["cnonce"] == "0000000000001234");
    CHECK((*p)["opaque"] == "op");
    CHECK((*p)["response"] == digest_response({DigestAlgorithm::Md5, "gw", "trunk.example", "s3cret", "INVITE",
                                               "sip:+15550123@127.0.0.1:5070", "abc123", "auth", "00000001",
                                               "0000000000001234"}));
    SUBCASE("without qop the RFC 2069 form is sent, no cnonce") {
        std::string no_qop = challenge;
        no_qop.replace(no_qop.find(", qop=\"auth,auth-int\""), 21, "");
        auto a2 = answer_challenge(*Message::parse(no_qop), "INVITE", "sip:x@y", "gw", "s3cret", counter());
        REQUIRE(a2);
        CHECK(a2->value.find("cnonce") == std::string::npos);
        CHECK(a2->value.find("qop") == std::string::npos);
    }
    SUBCASE("an unknown algorithm is not answered") {
        std::string sess = challenge;
        sess.replace(sess.find("algorithm=MD5"), 13, "algorithm=MD5-sess");
        CHECK_FALSE(answer_challenge(*Message::parse(sess), "INVITE", "sip:x@y", "gw", "s3cret", counter()));
    }
}

TEST_CASE("browser passwords: static users first, then TURN REST API credentials") {
    config::Realm realm;
    realm.name = "example.org";
    realm.users = {{"test", "secret"}};
    realm.rest_secret = "rest-shared-secret";
    const std::int64_t now = 1'800'000'000;
    CHECK(realm_password(realm, "test", now) == "secret");
    CHECK_FALSE(realm_password(realm, "nobody", now));
    const std::string rest_user = std::to_string(now + 3600) + ":alice";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    HMAC(EVP_sha1(), realm.rest_secret.data(), static_cast<int>(realm.rest_secret.size()),
         reinterpret_cast<const unsigned char*>(rest_user.data()), rest_user.size(), mac, &n);
    unsigned char b64[64];
    const int len = EVP_EncodeBlock(b64, mac, static_cast<int>(n));
    CHECK(realm_password(realm, rest_user, now) == std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(len)));
    CHECK_FALSE(realm_password(realm, std::to_string(now - 1) + ":alice", now));   // expired
    CHECK_FALSE(realm_password(realm, "12ab:alice", now));
    realm.rest_secret.clear();
    CHECK_FALSE(realm_password(realm, rest_user, now));
}

TEST_CASE("a digest username stands for TURN's account; it registers under the account or its username") {
    config::Realm realm;
    realm.users = {{"123:bob", "pw"}, {"alice", "pw"}};
    realm.rest_secret = "s";
    CHECK(account_of(realm, "1800003600:alice") == "alice");
    CHECK(account_of(realm, "1800003600") == "");          // a bare expiry: the realm's, like TURN
    CHECK(account_of(realm, "123:bob") == "123:bob");      // a static user is itself
    CHECK(account_of(realm, "alice") == "alice");
    CHECK(user_of(realm, "1800003600:alice") == "alice");
    CHECK(user_of(realm, "1800003600") == "1800003600");
    CHECK(user_of(realm, "123:bob") == "123:bob");
}
