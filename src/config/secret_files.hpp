// SPDX-License-Identifier: Apache-2.0
#pragma once
// Secrets outside the configuration file (issue 16): any string key KEY may be written as
// KEY_file = "PATH", and the file's content (one trailing line end dropped) becomes KEY's value.
// A relative PATH is looked up in $CREDENTIALS_DIRECTORY first (systemd's LoadCredential=),
// then next to the configuration file. Private to src/config.
#include <filesystem>

#include "toml_reader.hpp"

namespace turnbridge::config::detail {

// Replaces every KEY_file entry of `root` (nested tables too) with KEY. Fails naming the
// KEY_file key when the file is missing, unreadable, not a regular file, or over 64 KiB, and
// when KEY is given as well.
void resolve_secret_files(toml::table& root, const std::filesystem::path& config_dir, const Reader& r);

}  // namespace turnbridge::config::detail
