// SPDX-License-Identifier: Apache-2.0
#pragma once
// STUN message codec (RFC 8489 §5, §14): a bounds-checked parsed view and a builder that writes
// into a caller's buffer. Neither allocates on the heap.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "turnbridge/base/address.hpp"
#include "turnbridge/base/result.hpp"

namespace turnbridge::stun {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;
using TransactionId = std::array<std::uint8_t, 12>;

constexpr std::uint32_t kMagicCookie = 0x2112A442;  // RFC 8489 §5
constexpr std::size_t kHeaderSize = 20;
constexpr std::size_t kMaxAttributes = 48;          // more than any real message carries

enum class Class : std::uint8_t { Request = 0, Indication = 1, Success = 2, Error = 3 };

namespace method {  // RFC 8489 §18.2, RFC 8656 §17
constexpr std::uint16_t Binding = 0x001, Allocate = 0x003, Refresh = 0x004, Send = 0x006,
                        Data = 0x007, CreatePermission = 0x008, ChannelBind = 0x009;
}

namespace attr {  // RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16.1
constexpr std::uint16_t MappedAddress = 0x0001, Username = 0x0006, MessageIntegrity = 0x0008,
    ErrorCode = 0x0009, UnknownAttributes = 0x000A, ChannelNumber = 0x000C, Lifetime = 0x000D,
    XorPeerAddress = 0x0012, Data = 0x0013, Realm = 0x0014, Nonce = 0x0015,
    XorRelayedAddress = 0x0016, RequestedAddressFamily = 0x0017, EvenPort = 0x0018,
    RequestedTransport = 0x0019, DontFragment = 0x001A, MessageIntegritySha256 = 0x001C,
    PasswordAlgorithm = 0x001D, Userhash = 0x001E, XorMappedAddress = 0x0020,
    ReservationToken = 0x0022, Priority = 0x0024, UseCandidate = 0x0025,
    AdditionalAddressFamily = 0x8000, AddressErrorCode = 0x8001, PasswordAlgorithms = 0x8002,
    AlternateDomain = 0x8003, Icmp = 0x8004, Software = 0x8022, AlternateServer = 0x8023,
    Fingerprint = 0x8028, IceControlled = 0x8029, IceControlling = 0x802A;
// RFC 8489 §14: 0x0000-0x7FFF must be understood or the request fails with 420.
constexpr bool comprehension_required(std::uint16_t type) { return type < 0x8000; }
}  // namespace attr

// RFC 8489 §14.12 password algorithm numbers.
namespace password_algorithm {
constexpr std::uint16_t Md5 = 0x0001, Sha256 = 0x0002;
}

// RFC 8489 §6: method and class packed into the 14-bit type.
constexpr std::uint16_t message_type(std::uint16_t method, Class c) {
    const auto cls = static_cast<std::uint16_t>(c);
    return static_cast<std::uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                                      ((method & 0x0F80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7));
}

// Cheap test used to demultiplex STUN from ChannelData and media (RFC 8656 §12, RFC 7983).
bool looks_like_stun(Bytes bytes);

struct Attribute {
    std::uint16_t type = 0;
    std::uint16_t offset = 0;  // of the value, from the start of the message
    std::uint16_t length = 0;  // of the value, without padding
};

class Message {
public:
    // Validates the header (§5), the length, and that every attribute lies within bounds.
    // Fails with BadRequest; callers drop such datagrams without an answer.
    static Result<Message> parse(Bytes bytes);

    std::uint16_t method() const { return method_; }
    Class cls() const { return cls_; }
    const TransactionId& transaction_id() const { return tid_; }
    Bytes bytes() const { return bytes_; }

    // Attributes as they appear; those after MESSAGE-INTEGRITY other than
    // MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored (RFC 8489 §14.5) and not listed.
    std::span<const Attribute> attributes() const { return {attrs_.data(), count_}; }
    const Attribute* find(std::uint16_t type) const;  // first occurrence
    Bytes value(const Attribute& a) const { return bytes_.subspan(a.offset, a.length); }
    std::optional<Bytes> get(std::uint16_t type) const;
    std::optional<std::string_view> get_string(std::uint16_t type) const;
    std::optional<std::uint32_t> get_u32(std::uint16_t type) const;  // value of exactly 4 bytes
    // XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS (RFC 8489 §14.2).
    std::optional<Endpoint> get_xor_address(std::uint16_t type) const;
    std::optional<Endpoint> get_xor_address(const Attribute& a) const;
    std::optional<Endpoint> get_address(std::uint16_t type) const;  // MAPPED-ADDRESS (§14.1)
    // ERROR-CODE (§14.8): the code, e.g. 401.
    std::optional<std::uint16_t> get_error_code() const;

private:
    Bytes bytes_;
    std::uint16_t method_ = 0;
    Class cls_ = Class::Request;
    TransactionId tid_{};
    std::array<Attribute, kMaxAttributes> attrs_{};
    std::size_t count_ = 0;
};

// Builds a message in place. Every add_* pads to 4 bytes and keeps the header length current.
// If the buffer is too small the builder latches !ok() and further adds do nothing.
class MessageBuilder {
public:
    MessageBuilder(MutableBytes buffer, std::uint16_t method, Class cls, const TransactionId& tid);

    void add(std::uint16_t type, Bytes value);
    void add_string(std::uint16_t type, std::string_view value);
    void add_u32(std::uint16_t type, std::uint32_t value);
    void add_xor_address(std::uint16_t type, const Endpoint& ep);
    // RFC 8489 §14.1 layout, not XORed: MAPPED-ADDRESS and ALTERNATE-SERVER (§14.15).
    void add_address(std::uint16_t type, const Endpoint& ep);
    void add_error_code(std::uint16_t code, std::string_view reason);
    void add_error_code(StunCode code, std::string_view reason) {
        add_error_code(static_cast<std::uint16_t>(code), reason);
    }
    void add_unknown_attributes(std::span<const std::uint16_t> types);
    void add_message_integrity(Bytes key);         // HMAC-SHA1 (§14.5)
    void add_message_integrity_sha256(Bytes key);  // HMAC-SHA256, 32 bytes (§14.6)
    void add_fingerprint();                        // CRC-32 ^ 0x5354554e (§14.7)

    bool ok() const { return ok_; }
    std::size_t size() const { return size_; }
    Bytes bytes() const { return {buf_.data(), size_}; }

private:
    std::uint8_t* reserve(std::uint16_t type, std::size_t length);
    void set_length(std::size_t body_length);
    MutableBytes buf_;
    std::size_t size_ = 0;
    bool ok_ = true;
};

}  // namespace turnbridge::stun
