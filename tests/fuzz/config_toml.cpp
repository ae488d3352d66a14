// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the config loader must turn any text into a config or one error, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "turnbridge/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = turnbridge::config::load_string(text, "/fuzz/turnbridge.toml");
    if (auto* e = std::get_if<turnbridge::config::ConfigError>(&r)) {
        if (e->to_string().empty()) __builtin_trap();
    }
    return 0;
}
