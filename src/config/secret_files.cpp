// SPDX-License-Identifier: Apache-2.0
#include "secret_files.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace turnbridge::config::detail {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kSuffix = "_file";
constexpr std::uintmax_t kMaxSecretBytes = 64 * 1024;

fs::path locate(const std::string& written, const fs::path& config_dir) {
    const fs::path p(written);
    if (p.is_absolute()) return p;
    if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY"); creds && *creds) {
        std::error_code ec;
        const fs::path in_creds = fs::path(creds) / p;
        if (fs::exists(in_creds, ec)) return in_creds;
    }
    return config_dir / p;
}

std::string read_secret(const Field& f, const fs::path& config_dir, const Reader& r) {
    const std::string written = r.as_string(f);
    if (written.empty()) r.fail(f, "expected a file name, got an empty string");
    const fs::path path = locate(written, config_dir);
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) r.fail(f, fmt::format("cannot read \"{}\": no such file", path.string()));
    if (!fs::is_regular_file(st)) r.fail(f, fmt::format("\"{}\" is not a regular file", path.string()));
    if (fs::file_size(path, ec) > kMaxSecretBytes)
        r.fail(f, fmt::format("\"{}\" is larger than {} bytes", path.string(), kMaxSecretBytes));
    std::ifstream in(path, std::ios::binary);
    if (!in) r.fail(f, fmt::format("cannot read \"{}\": {}", path.string(), std::strerror(errno)));
    std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // `echo secret > file` and most editors end the file with a line end: it is not part of it.
    if (value.ends_with("\r\n")) value.resize(value.size() - 2);
    else if (value.ends_with('\n')) value.pop_back();
    return value;
}

void resolve(toml::table& t, const std::string& path, const fs::path& config_dir, const Reader& r) {
    std::vector<std::string> files;
    for (auto&& [k, v] : t) {
        const std::string name(k.str());
        if (auto* sub = v.as_table()) resolve(*sub, join_key(path, name), config_dir, r);
        else if (auto* list = v.as_array()) {   // arrays of tables: [[realm."X".gateway.trunks]]
            for (std::size_t i = 0; i < list->size(); ++i)
                if (auto* item = list->get(i)->as_table())
                    resolve(*item, fmt::format("{}[{}]", join_key(path, name), i), config_dir, r);
        }
        else if (name.size() > kSuffix.size() && name.ends_with(kSuffix)) files.push_back(name);
    }
    for (const auto& name : files) {
        const Field f{t.get(name), join_key(path, name), name};
        const std::string key = name.substr(0, name.size() - kSuffix.size());
        if (t.contains(key)) r.fail(f, fmt::format("{} is given too: use one of the two", join_key(path, key)));
        std::string value = read_secret(f, config_dir, r);
        t.erase(name);
        t.insert(key, std::move(value));
    }
}

}  // namespace

void resolve_secret_files(toml::table& root, const fs::path& config_dir, const Reader& r) {
    resolve(root, "", config_dir, r);
}

}  // namespace turnbridge::config::detail
