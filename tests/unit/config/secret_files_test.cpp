// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "turnbridge/config/config.hpp"

using namespace turnbridge::config;
namespace fs = std::filesystem;

namespace {

// A folder of its own with a config path in it (the files are read next to it).
struct Dir {
    fs::path path;
    Dir() {
        char tmpl[] = "/tmp/turnbridge-secret-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~Dir() { fs::remove_all(path); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
    LoadResult load(const std::string& realm_lines) const {
        return load_string("[server]\nlisten = [\"127.0.0.1:3478\"]\ndefault_realm = \"r\"\n[realm.\"r\"]\n" +
                               realm_lines + "\n",
                           path / "turnbridge.toml");
    }
};

std::string error_of(const LoadResult& r) {
    auto* e = std::get_if<ConfigError>(&r);
    return e ? e->to_string() : "";
}

}  // namespace

TEST_CASE("KEY_file reads KEY's value from a file next to the config, without the trailing line end") {
    Dir d;
    d.write("rest", "s3cr3t\n");
    d.write("alice", "pass word\r\n");
    auto r = d.load("rest_secret_file = \"rest\"\nusers = { alice_file = \"alice\" }");
    REQUIRE(error_of(r) == "");
    const auto& realm = std::get<std::shared_ptr<const Config>>(r)->realms.at("r");
    CHECK(realm.rest_secret == "s3cr3t");
    CHECK(realm.users.at("alice") == "pass word");
}

TEST_CASE("KEY_file: a relative path is looked up in $CREDENTIALS_DIRECTORY first (systemd LoadCredential=)") {
    Dir d, creds;
    d.write("rest", "from-config-dir");
    creds.write("rest", "from-credentials");
    setenv("CREDENTIALS_DIRECTORY", creds.path.c_str(), 1);
    auto in_creds = d.load("rest_secret_file = \"rest\"");
    auto missing_there = d.load("rest_secret_file = \"other\"");
    d.write("other", "next-to-config");
    auto fallback = d.load("rest_secret_file = \"other\"");
    unsetenv("CREDENTIALS_DIRECTORY");
    REQUIRE(error_of(in_creds) == "");
    CHECK(std::get<std::shared_ptr<const Config>>(in_creds)->realms.at("r").rest_secret == "from-credentials");
    CHECK(error_of(missing_there).find("other\": no such file") != std::string::npos);
    REQUIRE(error_of(fallback) == "");
    CHECK(std::get<std::shared_ptr<const Config>>(fallback)->realms.at("r").rest_secret == "next-to-config");
}

TEST_CASE("KEY_file: the error names the key, its line and the missing file") {
    Dir d;
    const std::string e = error_of(d.load("rest_secret_file = \"nope\""));
    CHECK(e == (d.path / "turnbridge.toml").string() + ":5: realm.r.rest_secret_file: cannot read \"" +
                   (d.path / "nope").string() + "\": no such file");
}

TEST_CASE("KEY_file: refused with KEY given too, for a directory, and for an empty name") {
    Dir d;
    d.write("rest", "x");
    CHECK(error_of(d.load("rest_secret = \"a\"\nrest_secret_file = \"rest\"")).find("realm.r.rest_secret is given too") !=
          std::string::npos);
    CHECK(error_of(d.load("rest_secret_file = \"/tmp\"")).find("is not a regular file") != std::string::npos);
    CHECK(error_of(d.load("rest_secret_file = \"\"")).find("expected a file name") != std::string::npos);
}

TEST_CASE("KEY_file inside an array of tables: a trunk's trunk_password_file (issue 14)") {
    Dir d;
    d.write("uk", "tr0nk\n");
    const std::string gateway = "[realm.\"r\".gateway]\n[[realm.\"r\".gateway.trunks]]\nname = \"uk\"\n"
                                "trunk = \"sip:192.0.2.1\"\ntrunk_username = \"u\"\n";
    auto r = d.load("users = { a = \"b\" }\n" + gateway + "trunk_password_file = \"uk\"");
    REQUIRE(error_of(r) == "");
    const auto& realm = std::get<std::shared_ptr<const Config>>(r)->realms.at("r");
    REQUIRE(realm.trunks.size() == 1);
    CHECK(realm.trunks[0].gateway.trunk_password == "tr0nk");
    auto missing = d.load("users = { a = \"b\" }\n" + gateway + "trunk_password_file = \"nope\"");
    CHECK(error_of(missing).find("gateway.trunks[0].trunk_password_file") != std::string::npos);
}
