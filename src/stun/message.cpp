// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/stun/message.hpp"

#include <cstring>

namespace turnbridge::stun {
namespace {

std::uint16_t load16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t load32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}
void store16(std::uint8_t* p, std::uint16_t v) { p[0] = static_cast<std::uint8_t>(v >> 8); p[1] = static_cast<std::uint8_t>(v); }
void store32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24); p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8); p[3] = static_cast<std::uint8_t>(v);
}
constexpr std::size_t padded(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

constexpr Error kMalformed{StunCode::BadRequest, 0, "malformed STUN message"};

}  // namespace

bool looks_like_stun(Bytes b) {
    // RFC 8489 §5: top two bits zero, length a multiple of 4, magic cookie present.
    return b.size() >= kHeaderSize && (b[0] & 0xC0) == 0 && (load16(&b[2]) & 3) == 0 &&
           load32(&b[4]) == kMagicCookie;
}

Result<Message> Message::parse(Bytes b) {
    if (!looks_like_stun(b)) return kMalformed;
    const std::size_t length = load16(&b[2]);
    if (kHeaderSize + length != b.size()) return kMalformed;  // datagram must be exactly the message
    Message m;
    m.bytes_ = b;
    const std::uint16_t type = load16(&b[0]);
    m.method_ = static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
    m.cls_ = static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
    std::memcpy(m.tid_.data(), &b[8], 12);
    bool after_integrity = false, after_fingerprint = false;
    for (std::size_t pos = kHeaderSize; pos < b.size();) {
        if (b.size() - pos < 4) return kMalformed;
        const std::uint16_t t = load16(&b[pos]);
        const std::size_t len = load16(&b[pos + 2]);
        if (pos + 4 + len > b.size()) return kMalformed;
        // RFC 8489 §14.7: FINGERPRINT is last. §14.5: after MESSAGE-INTEGRITY only
        // MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count; the rest is ignored.
        if (after_fingerprint) return kMalformed;
        const bool counts = !after_integrity || t == attr::MessageIntegritySha256 || t == attr::Fingerprint;
        if (counts) {
            if (m.count_ == kMaxAttributes) return kMalformed;
            m.attrs_[m.count_++] = Attribute{t, static_cast<std::uint16_t>(pos + 4), static_cast<std::uint16_t>(len)};
        }
        if (t == attr::MessageIntegrity || t == attr::MessageIntegritySha256) after_integrity = true;
        if (t == attr::Fingerprint) after_fingerprint = true;
        pos += 4 + padded(len);
        if (pos > b.size()) return kMalformed;  // the last attribute's padding must be present
    }
    return m;
}

const Attribute* Message::find(std::uint16_t type) const {
    for (std::size_t i = 0; i < count_; ++i)
        if (attrs_[i].type == type) return &attrs_[i];
    return nullptr;
}

std::optional<Bytes> Message::get(std::uint16_t type) const {
    if (const auto* a = find(type)) return value(*a);
    return std::nullopt;
}

std::optional<std::string_view> Message::get_string(std::uint16_t type) const {
    auto v = get(type);
    if (!v) return std::nullopt;
    return std::string_view(reinterpret_cast<const char*>(v->data()), v->size());
}

std::optional<std::uint32_t> Message::get_u32(std::uint16_t type) const {
    auto v = get(type);
    if (!v || v->size() != 4) return std::nullopt;
    return load32(v->data());
}

namespace {
// RFC 8489 §14.1/§14.2: family, port, address; XOR with the cookie (and transaction ID for V6).
std::optional<Endpoint> decode_address(Bytes v, bool xored, const TransactionId& tid) {
    if (v.size() < 4) return std::nullopt;
    Endpoint ep;
    const std::uint8_t family = v[1];
    std::uint16_t port = load16(&v[2]);
    if (xored) port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
    ep.port = port;
    std::uint8_t mask[16];
    store32(mask, kMagicCookie);
    std::memcpy(mask + 4, tid.data(), 12);
    if (family == 0x01 && v.size() == 8) {
        ep.ip.family = Family::V4;
        for (int i = 0; i < 4; ++i) ep.ip.bytes[i] = static_cast<std::uint8_t>(v[4 + i] ^ (xored ? mask[i] : 0));
        return ep;
    }
    if (family == 0x02 && v.size() == 20) {
        ep.ip.family = Family::V6;
        for (int i = 0; i < 16; ++i) ep.ip.bytes[i] = static_cast<std::uint8_t>(v[4 + i] ^ (xored ? mask[i] : 0));
        return ep;
    }
    return std::nullopt;
}
}  // namespace

std::optional<Endpoint> Message::get_xor_address(std::uint16_t type) const {
    if (const auto* a = find(type)) return get_xor_address(*a);
    return std::nullopt;
}
std::optional<Endpoint> Message::get_xor_address(const Attribute& a) const {
    return decode_address(value(a), true, tid_);
}
std::optional<Endpoint> Message::get_address(std::uint16_t type) const {
    auto v = get(type);
    if (!v) return std::nullopt;
    return decode_address(*v, false, tid_);
}

std::optional<std::uint16_t> Message::get_error_code() const {
    auto v = get(attr::ErrorCode);
    if (!v || v->size() < 4) return std::nullopt;
    return static_cast<std::uint16_t>(((*v)[2] & 0x07) * 100 + (*v)[3]);
}

MessageBuilder::MessageBuilder(MutableBytes buffer, std::uint16_t method, Class cls, const TransactionId& tid)
    : buf_(buffer) {
    if (buf_.size() < kHeaderSize) {
        ok_ = false;
        return;
    }
    store16(&buf_[0], message_type(method, cls));
    store16(&buf_[2], 0);
    store32(&buf_[4], kMagicCookie);
    std::memcpy(&buf_[8], tid.data(), 12);
    size_ = kHeaderSize;
}

void MessageBuilder::set_length(std::size_t body_length) { store16(&buf_[2], static_cast<std::uint16_t>(body_length)); }

std::uint8_t* MessageBuilder::reserve(std::uint16_t type, std::size_t length) {
    if (!ok_ || length > 0xFFFF || size_ + 4 + padded(length) > buf_.size()) {
        ok_ = false;
        return nullptr;
    }
    std::uint8_t* p = &buf_[size_];
    store16(p, type);
    store16(p + 2, static_cast<std::uint16_t>(length));
    std::memset(p + 4, 0, padded(length));
    size_ += 4 + padded(length);
    set_length(size_ - kHeaderSize);
    return p + 4;
}

void MessageBuilder::add(std::uint16_t type, Bytes value) {
    if (auto* p = reserve(type, value.size()); p && !value.empty()) std::memcpy(p, value.data(), value.size());
}

void MessageBuilder::add_string(std::uint16_t type, std::string_view value) {
    add(type, Bytes(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
}

void MessageBuilder::add_u32(std::uint16_t type, std::uint32_t value) {
    if (auto* p = reserve(type, 4)) store32(p, value);
}

void MessageBuilder::add_xor_address(std::uint16_t type, const Endpoint& ep) {
    const bool v4 = ep.ip.family == Family::V4;
    auto* p = reserve(type, v4 ? 8 : 20);
    if (!p) return;
    p[0] = 0;
    p[1] = v4 ? 0x01 : 0x02;
    store16(p + 2, static_cast<std::uint16_t>(ep.port ^ (kMagicCookie >> 16)));
    std::uint8_t mask[16];
    store32(mask, kMagicCookie);
    std::memcpy(mask + 4, &buf_[8], 12);
    for (std::size_t i = 0; i < ep.ip.size(); ++i) p[4 + i] = static_cast<std::uint8_t>(ep.ip.bytes[i] ^ mask[i]);
}

void MessageBuilder::add_address(std::uint16_t type, const Endpoint& ep) {
    const bool v4 = ep.ip.family == Family::V4;
    auto* p = reserve(type, v4 ? 8 : 20);
    if (!p) return;
    p[0] = 0;
    p[1] = v4 ? 0x01 : 0x02;
    store16(p + 2, ep.port);
    std::memcpy(p + 4, ep.ip.bytes.data(), ep.ip.size());
}

void MessageBuilder::add_error_code(std::uint16_t code, std::string_view reason) {
    // RFC 8489 §14.8: class in the low 3 bits of byte 2, number in byte 3; reason < 128 chars.
    if (reason.size() > 127) reason = reason.substr(0, 127);
    auto* p = reserve(attr::ErrorCode, 4 + reason.size());
    if (!p) return;
    p[2] = static_cast<std::uint8_t>(code / 100);
    p[3] = static_cast<std::uint8_t>(code % 100);
    std::memcpy(p + 4, reason.data(), reason.size());
}

void MessageBuilder::add_unknown_attributes(std::span<const std::uint16_t> types) {
    auto* p = reserve(attr::UnknownAttributes, types.size() * 2);
    if (!p) return;
    for (std::size_t i = 0; i < types.size(); ++i) store16(p + 2 * i, types[i]);
}

}  // namespace turnbridge::stun
