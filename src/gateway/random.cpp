// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/random.hpp"

#include <openssl/rand.h>

namespace turnbridge::gateway {

void random_bytes(std::span<std::uint8_t> out) {
    if (out.empty()) return;
    RAND_bytes(out.data(), static_cast<int>(out.size()));
}

}  // namespace turnbridge::gateway
