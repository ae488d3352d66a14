// SPDX-License-Identifier: Apache-2.0
#pragma once
// [streams]: connection and memory bounds on every stream listener (turnbridge.toml(5)).
// Private to src/config.
#include "toml_reader.hpp"

namespace turnbridge::config::detail {

Streams load_streams(const Reader& r, const Field& f);

}  // namespace turnbridge::config::detail
