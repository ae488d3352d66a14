// SPDX-License-Identifier: Apache-2.0
// The turnbridge command line: serve, check-config, --help, --version (turnbridge(8)).
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <unistd.h>

#include "turnbridge/accounting/report_cli.hpp"
#include "turnbridge/config/config.hpp"
#include "turnbridge/app/app.hpp"
#include "turnbridge/app/privileges.hpp"
#include "turnbridge/io/tls_context.hpp"

namespace {

using namespace turnbridge;

constexpr const char* kDefaultConfig = "/etc/turnbridge/turnbridge.toml";

// Exit statuses.
constexpr int kOk = 0;
constexpr int kUsage = 2;      // unknown option or missing argument
constexpr int kBadConfig = 2;  // the configuration does not load or validate

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: turnbridge [-c FILE]          serve (FILE defaults to %s)\n"
                 "       turnbridge check-config FILE  validate FILE and exit\n"
                 "       turnbridge report [OPTIONS]   usage from the accounting database (report --help)\n"
                 "       turnbridge --help | --version\n"
                 "\n"
                 "STUN/TURN relay server (RFC 8489, RFC 8656). Runs in the foreground and logs to\n"
                 "standard error; \"ready\" is logged once every listener is up.\n"
                 "\n"
                 "options:\n"
                 "  -c, --config FILE   the configuration file (TOML, see turnbridge.toml(5))\n"
                 "  -h, --help          print this help and exit\n"
                 "  -V, --version       print the version and exit\n"
                 "\n"
                 "signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads FILE.\n"
                 "exit status: 0 ok, 1 startup failed (e.g. a listener cannot be bound),\n"
                 "             2 bad usage or invalid configuration\n",
                 kDefaultConfig);
}

int usage_error(const std::string& what) {
    std::fprintf(stderr, "turnbridge: %s\n", what.c_str());
    usage(stderr);
    return kUsage;
}

// Loads and validates; on failure prints the one-line reason to stderr.
std::shared_ptr<const config::Config> load(const std::string& path) {
    auto loaded = config::load_file(path);
    if (auto* err = std::get_if<config::ConfigError>(&loaded)) {
        std::fprintf(stderr, "%s\n", err->to_string().c_str());
        return nullptr;
    }
    return std::get<std::shared_ptr<const config::Config>>(loaded);
}

int check_config(const std::string& path) {
    auto cfg = load(path);
    if (!cfg) return kBadConfig;
    // The certificate and key are part of the configuration: check them as the server would.
    if (!cfg->tls_listen.empty()) {
        auto tls = io::load_tls_context(cfg->tls_cert, cfg->tls_key);
        if (auto* why = std::get_if<io::TlsError>(&tls)) {
            std::fprintf(stderr, "%s: %s\n", path.c_str(), why->to_string().c_str());
            return kBadConfig;
        }
    }
    // Who it would run as: the account exists, and root does not serve the world by accident.
    if (const std::string why = app::check_identity(*cfg, geteuid()); !why.empty()) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), why.c_str());
        return kBadConfig;
    }
    std::printf("%s: OK\n", path.c_str());
    return kOk;
}

int serve(const std::string& path) {
    auto cfg = load(path);
    if (!cfg) return kBadConfig;
    // A client that resets its TCP/TLS connection must not kill the process on the next write.
    std::signal(SIGPIPE, SIG_IGN);
    app::App app(std::move(cfg));
    return app.run();
}

}  // namespace

int main(int argc, char** argv) {
    // `turnbridge report ...` has its own options (turnbridge(8), REPORT).
    if (argc >= 2 && std::string_view(argv[1]) == "report") return accounting::run_report(argc - 1, argv + 1);
    std::string config_path;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return kOk;
        }
        if (arg == "-V" || arg == "--version") {
            std::printf("turnbridge %s\n", TURNBRIDGE_VERSION);
            return kOk;
        }
        if (arg == "check-config") {
            if (i + 1 >= argc) return usage_error("check-config needs a FILE");
            if (i + 2 < argc) return usage_error("unexpected argument '" + std::string(argv[i + 2]) + "'");
            return check_config(argv[i + 1]);
        }
        if (arg == "-c" || arg == "--config") {
            if (i + 1 >= argc) return usage_error(std::string(arg) + " needs a FILE");
            config_path = argv[++i];
            continue;
        }
        if (arg.starts_with("--config=")) {
            config_path = arg.substr(9);
            continue;
        }
        return usage_error((arg.starts_with("-") ? "unknown option '" : "unexpected argument '") + std::string(arg) +
                           "'");
    }
    return serve(config_path.empty() ? kDefaultConfig : config_path);
}
