// SPDX-License-Identifier: Apache-2.0
#pragma once
// A libpq connection and its results, for pg_ledger.cpp and pg_store.cpp: with them, the only
// code that includes <libpq-fe.h>. Private to src/accounting.
#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "turnbridge/accounting/pg_ledger.hpp"

namespace turnbridge::accounting {

struct PgError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The schema of SIP location across nodes (pg_location.cpp), part of migration 2 in pg_ledger.cpp.
std::string location_schema_sql();

class PgResult {
public:
    explicit PgResult(PGresult* r) : r_(r, PQclear) {}
    PGresult* get() const { return r_.get(); }
    int rows() const { return PQntuples(r_.get()); }
    bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string text(int row, int col) const {
        return std::string(PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
    }

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class PgConn {
public:
    PgConn() = default;
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    ~PgConn() {
        if (c) PQfinish(c);
    }
    // libpq's conninfo or URI, with a short connect timeout, keepalives and a TCP user timeout
    // unless it sets them: a dead database must be noticed in seconds, not after the kernel's two
    // hours. `statement_timeout_ms` (0: none) bounds each query on the server too, for callers
    // that answer someone waiting (the admin API's fleet reads), not for the shipper's batches.
    bool open(const std::string& conninfo, std::string& error, int statement_timeout_ms = 0) {
        const std::string options =
            statement_timeout_ms > 0 ? "-c statement_timeout=" + std::to_string(statement_timeout_ms) : "";
        const char* keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                              "tcp_user_timeout", "application_name", "options", "dbname", nullptr};
        const char* values[] = {"3", "5", "2", "2", "5000", "turnbridge", options.c_str(), conninfo.c_str(), nullptr};
        c = PQconnectdbParams(keys, values, 1);
        if (c != nullptr && PQstatus(c) == CONNECTION_OK) {
            PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);  // "relation exists, skipping"
            return true;
        }
        error = c ? PQerrorMessage(c) : "out of memory";
        while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
        return false;
    }
    bool ok() const { return c != nullptr && PQstatus(c) == CONNECTION_OK; }
    PgResult exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        std::vector<const char*> p;
        p.reserve(params.size());
        for (const auto& s : params) p.push_back(s.c_str());
        return run(sql, p);
    }
    // The same with SQL NULLs (nullopt); always the extended protocol.
    PgResult exec_nullable(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
        std::vector<const char*> p;
        p.reserve(params.size());
        for (const auto& s : params) p.push_back(s ? s->c_str() : nullptr);
        PgResult r(PQexecParams(c, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0));
        return checked(std::move(r));
    }

private:
    PgResult run(const std::string& sql, const std::vector<const char*>& p) {
        // Without parameters, the simple protocol: a migration is several statements in one string.
        PgResult r(p.empty() ? PQexec(c, sql.c_str())
                             : PQexecParams(c, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr,
                                            nullptr, 0));
        return checked(std::move(r));
    }
    PgResult checked(PgResult r) {
        const auto status = PQresultStatus(r.get());
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            std::string e = PQerrorMessage(c);
            while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
            throw PgError(e.empty() ? "query failed" : e);
        }
        return r;
    }

    PGconn* c = nullptr;
};

}  // namespace turnbridge::accounting
