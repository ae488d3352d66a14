// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the STUN codec and every accessor on whatever parses.
#include <cstddef>
#include <cstdint>

#include "turnbridge/stun/integrity.hpp"
#include "turnbridge/stun/message.hpp"

using namespace turnbridge::stun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Bytes bytes(data, size);
    (void)looks_like_stun(bytes);
    auto m = Message::parse(bytes);
    if (!m) return 0;
    for (const auto& a : m->attributes()) {
        if (a.offset + a.length > size) __builtin_trap();  // every attribute lies inside the input
        (void)m->get_xor_address(a);
    }
    (void)m->get_string(attr::Username);
    (void)m->get_u32(attr::Lifetime);
    (void)m->get_address(attr::MappedAddress);
    (void)m->get_error_code();
    const std::uint8_t key[16] = {1};
    (void)check_message_integrity(*m, key);
    (void)check_message_integrity_sha256(*m, key);
    (void)check_fingerprint(*m);
    return 0;
}
