// SPDX-License-Identifier: Apache-2.0
// `turnbridge report`: reads the accounting store read-only (also while the server writes it)
// and prints usage rows (turnbridge(8), REPORT).
#include "turnbridge/accounting/report_cli.hpp"

#include <chrono>
#include <fmt/format.h>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "turnbridge/accounting/calls.hpp"
#include "turnbridge/accounting/pg_ledger.hpp"
#include "turnbridge/accounting/store.hpp"
#include "turnbridge/accounting/usage.hpp"
#include "turnbridge/config/config.hpp"

namespace turnbridge::accounting {
namespace {

namespace fs = std::filesystem;

// Exit statuses, as for the server (turnbridge(8)).
constexpr int kOk = 0;
constexpr int kFailed = 1;  // no database, or it cannot be read
constexpr int kUsage = 2;   // bad option or value, or an invalid configuration

constexpr const char* kDefaultConfig = "/etc/turnbridge/turnbridge.toml";

constexpr std::string_view kHelp =
    R"(usage: turnbridge report [-c FILE | --db FILE] [--user USER] [--realm REALM]
                         [--since TIME] [--until TIME] [--by GROUP | --calls]
                         [--format FORMAT]

Relayed traffic and gateway calls from the accounting database, per user, realm, day, hour
or allocation, or (--calls) one line per call. The database can be read while the server runs.

options:
  -c, --config FILE   the server's configuration: the database ([accounting] database)
                      and the prices (realm price_per_gb and currency) come from it
                      (default /etc/turnbridge/turnbridge.toml)
  --db FILE           read this database; without --config every cost is 0. A
                      postgresql:// URI or libpq conninfo reads a fleet's ledger
                      (with -c, a [fleet] configuration reads it too)
  --user USER         only this user (account); "" is the realm alone
  --realm REALM       only this realm
  --since TIME        from TIME on (inclusive)
  --until TIME        before TIME (exclusive)
  --by GROUP          user (default), realm, day, hour, allocation, node (fleet) or
                      trunk (gateway calls per realm and trunk; no relayed traffic)
  --calls             list gateway calls one by one (those that started in the window)
  --format FORMAT     table (default), json or csv
  -h, --help          print this help and exit

TIME is a UTC date (2026-11-01) or time (2026-11-01T12:00:00Z), unix seconds, or a time
ago: 7d, 12h, 30m, 90s. Except with --by allocation and --calls, the window is taken in whole
hours. A call counts in the row of the hour or day it started, all of its minutes with it.
exit status: 0 ok, 1 no database or it cannot be read, 2 bad usage or invalid configuration
)";

constexpr std::string_view kTimeForms =
    "a date (2026-11-01), a UTC time (2026-11-01T12:00:00Z), unix seconds or a time ago (7d, 12h, 30m, 90s)";

struct Options {
    std::optional<std::string> config, db, user, realm, since, until, by, format;
    bool help = false;
    bool calls = false;
};

// The option's slot, or nullptr for an unknown option.
std::optional<std::string>* slot(Options& o, std::string_view name) {
    if (name == "-c" || name == "--config") return &o.config;
    if (name == "--db") return &o.db;
    if (name == "--user") return &o.user;
    if (name == "--realm") return &o.realm;
    if (name == "--since") return &o.since;
    if (name == "--until") return &o.until;
    if (name == "--by") return &o.by;
    if (name == "--format") return &o.format;
    return nullptr;
}

// Fills `o` from "--name VALUE" and "--name=VALUE"; returns what is wrong, if anything.
std::optional<std::string> parse_options(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            o.help = true;
            continue;
        }
        if (arg == "--calls") {
            o.calls = true;
            continue;
        }
        const auto eq = arg.starts_with("--") ? arg.find('=') : std::string_view::npos;
        const std::string_view name = arg.substr(0, eq);
        if (name == "--calls") return "--calls: takes no value";
        auto* value = slot(o, name);
        if (value == nullptr) {
            if (!arg.starts_with("-")) return fmt::format("unexpected argument \"{}\"", arg);
            return fmt::format("unknown option {}", name);
        }
        if (eq != std::string_view::npos) {
            *value = std::string(arg.substr(eq + 1));
        } else if (i + 1 < argc) {
            *value = argv[++i];
        } else {
            return fmt::format("{} needs a value", name);
        }
    }
    if (o.config && o.config->empty()) return "--config: expected a file name, got \"\"";
    if (o.db && o.db->empty()) return "--db: expected a file name or a postgresql:// URI, got \"\"";
    return std::nullopt;
}

// The query the options ask for, or what is wrong with them.
std::optional<std::string> make_query(const Options& o, std::int64_t now_ms, UsageQuery& q, Format& format) {
    q.user = o.user;
    q.realm = o.realm;
    if (o.since && !(q.since_ms = parse_time(*o.since, now_ms)))
        return fmt::format("--since: expected {}, got \"{}\"", kTimeForms, *o.since);
    if (o.until && !(q.until_ms = parse_time(*o.until, now_ms)))
        return fmt::format("--until: expected {}, got \"{}\"", kTimeForms, *o.until);
    if (q.since_ms && q.until_ms && *q.until_ms <= *q.since_ms)
        return fmt::format("--until: expected a time after --since ({}), got \"{}\"", *o.since, *o.until);
    if (o.by && o.calls) return "--by: not with --calls (the listing has one row per call)";
    if (o.by) {
        auto by = parse_group_by(*o.by);
        if (!by) return fmt::format("--by: expected user, realm, day, hour, allocation, node or trunk, got \"{}\"", *o.by);
        q.by = *by;
    }
    if (o.format) {
        auto f = parse_format(*o.format);
        if (!f) return fmt::format("--format: expected table, json or csv, got \"{}\"", *o.format);
        format = *f;
    }
    return std::nullopt;
}

}  // namespace

int run_report(int argc, char** argv) { return run_report(argc, argv, std::cout, std::cerr); }

int run_report(int argc, char** argv, std::ostream& out, std::ostream& err) {
    const auto usage_error = [&](const std::string& what) {
        err << "turnbridge report: " << what << "\n(see turnbridge report --help)\n";
        return kUsage;
    };
    Options o;
    if (auto bad = parse_options(argc, argv, o)) return usage_error(*bad);
    if (o.help) {
        out << kHelp;
        return kOk;
    }
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count();
    UsageQuery q;
    Format format = Format::Table;
    if (auto bad = make_query(o, now_ms, q, format)) return usage_error(*bad);

    std::map<std::string, Prices> prices;
    fs::path database;
    std::string fleet;  // a PostgreSQL conninfo: the fleet ledger (issue 15)
    if (o.config || !o.db) {
        auto loaded = config::load_file(o.config.value_or(kDefaultConfig));
        if (auto* e = std::get_if<config::ConfigError>(&loaded)) {
            err << e->to_string() << "\n";
            return kUsage;
        }
        const auto& cfg = *std::get<std::shared_ptr<const config::Config>>(loaded);
        for (const auto& [name, realm] : cfg.realms) prices[name] = Prices{realm.price_per_gb, realm.currency};
        database = cfg.accounting.database;
        fleet = cfg.fleet.database;
    }
    if (o.db) database = *o.db, fleet.clear();
    if (o.db && PgLedger::is_conninfo(*o.db)) fleet = *o.db;
    std::error_code ec;
    if (fleet.empty() && !fs::exists(database, ec)) {
        err << "turnbridge report: no accounting database at " << database.string()
            << " (turnbridge creates it when it starts)\n";
        return kFailed;
    }
    try {
        auto store = fleet.empty() ? Store::open(database, false) : PgLedger::open_store(fleet);
        if (o.calls)
            out << format_calls(store->calls(CallQuery{q.user, q.realm, q.since_ms, q.until_ms, std::nullopt}), format);
        else
            out << format_usage(store->usage(q, prices), format, q.by);
    } catch (const std::exception& e) {
        err << "turnbridge report: " << e.what() << "\n";
        return kFailed;
    }
    return kOk;
}

}  // namespace turnbridge::accounting
