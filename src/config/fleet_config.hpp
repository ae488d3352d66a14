// SPDX-License-Identifier: Apache-2.0
#pragma once
// [fleet]: many nodes on one PostgreSQL ledger (issue 15, turnbridge.toml(5)). Private to src/config.
#include "toml_reader.hpp"

namespace turnbridge::config::detail {

Fleet load_fleet(const Reader& r, const Field& f);

}  // namespace turnbridge::config::detail
