// SPDX-License-Identifier: Apache-2.0
#pragma once
// One TLS session on memory BIOs: the connection feeds it the ciphertext it reads and writes
// out the ciphertext it produces, so OpenSSL never touches the socket (sans-I/O, like the
// cores; libuv stays in charge of the fd). Server side for TURN over TLS and wss, client side
// toward TLS SIP trunks.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct bio_st BIO;

namespace turnbridge::io {

class TlsSession {
public:
    explicit TlsSession(SSL_CTX* ctx);
    // Client side toward `server_name` (a host name or an IP literal): SNI for names (RFC 6066
    // §3 allows no literals), and the name or address the certificate must carry (RFC 6125)
    // when `ctx` verifies peers. The first read() sends the ClientHello.
    TlsSession(SSL_CTX* ctx, const std::string& server_name);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    bool ok() const { return ssl_ != nullptr; }
    bool established() const;

    // Ciphertext read from the socket.
    void feed(std::span<const std::uint8_t> ciphertext);

    enum class ReadResult { Data, NeedMore, Closed, Error };
    // Decrypts into `out` (drives the handshake as needed); `n` is set on Data, and
    // `record_bytes` to the ciphertext that record took on the wire (header, body, tag).
    ReadResult read(std::span<std::uint8_t> out, std::size_t& n, std::size_t& record_bytes);

    // Encrypts `plaintext` (only once established); false on a TLS error.
    bool write(std::span<const std::uint8_t> plaintext);

    // Ciphertext waiting for the socket (handshake messages, records, alerts).
    std::size_t pending() const;
    std::size_t take(std::span<std::uint8_t> out);

    // Why the last read/write failed, for a debug line.
    const std::string& error() const { return error_; }

private:
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr;  // ciphertext in (owned by ssl_)
    BIO* wbio_ = nullptr;  // ciphertext out (owned by ssl_)
    std::string error_;
    // Ciphertext taken from rbio_ by reads that returned no data yet (a record split across
    // socket reads); it belongs to the record that completes it.
    std::size_t carried_ = 0;
};

}  // namespace turnbridge::io
