// SPDX-License-Identifier: Apache-2.0
// The outbox read and emptied by the fleet shipper (outbox.hpp), on a connection of its own.
#include <fmt/format.h>

#include "sqlite_store.hpp"
#include "turnbridge/accounting/outbox.hpp"

namespace turnbridge::accounting::sqlite {
namespace {

class SqliteOutbox final : public Outbox {
public:
    explicit SqliteOutbox(std::string file) : file_(std::move(file)) {
        if (sqlite3_open_v2(file_.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
            throw SqliteError(db_ ? sqlite3_errmsg(db_) : "cannot open");
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, 5000);  // the control thread's writes are short
        read_ = prepare(fmt::format("SELECT seq, allocation, account, username, realm, client, transport, relay, "
                                    "start_ms, end_ms, peers, end_reason, written_ms, started, {} FROM outbox "
                                    "ORDER BY seq LIMIT ?1",
                                    counter_columns("{}")));
        erase_ = prepare("DELETE FROM outbox WHERE seq <= ?1");
        rows_ = prepare("SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM outbox");
        // A call erased locally (none are today) is skipped by the join and erased with the rest.
        // The server migrated the file (schema 6: the trunk column) before the shipper opens it.
        read_calls_ = prepare(fmt::format("SELECT o.seq, {}, {}, c.trunk FROM call_outbox o JOIN calls c ON c.id = o.call "
                                          "ORDER BY o.seq LIMIT ?1",
                                          prefixed(kCallColumns), prefixed(call_quality_columns())));
        erase_calls_ = prepare("DELETE FROM call_outbox WHERE seq <= ?1");
    }
    ~SqliteOutbox() override {
        for (auto* s : {read_, erase_, rows_, read_calls_, erase_calls_}) sqlite3_finalize(s);
        sqlite3_close(db_);
    }

    std::vector<OutboxRow> read(std::size_t limit) override {
        std::vector<OutboxRow> out;
        Query q(db_, read_);
        q.bind(1, static_cast<std::int64_t>(limit));
        while (q.step()) {
            OutboxRow row;
            row.seq = q.int64(0);
            auto& r = row.record;
            r.id = q.text(1), r.account = q.text(2), r.username = q.text(3), r.realm = q.text(4);
            r.client = q.text(5), r.transport = q.text(6), r.relay = q.text(7);
            r.start_ms = q.int64(8), r.end_ms = q.int64(9), r.peers = static_cast<std::uint32_t>(q.int64(10));
            r.end_reason = q.text(11);
            row.written_ms = q.int64(12);
            row.started = q.int64(13) != 0;
            q.read_traffic(14, r.traffic);
            out.push_back(std::move(row));
        }
        return out;
    }

    void erase_through(std::int64_t seq) override {
        Query q(db_, erase_);
        q.bind(1, seq).step();
    }

    std::vector<OutboxCall> read_calls(std::size_t limit) override {
        std::vector<OutboxCall> out;
        Query q(db_, read_calls_);
        q.bind(1, static_cast<std::int64_t>(limit));
        while (q.step()) out.push_back(OutboxCall{q.int64(0), read_call(q, 1, true, true)});
        return out;
    }

    void erase_calls_through(std::int64_t seq) override {
        Query q(db_, erase_calls_);
        q.bind(1, seq).step();
    }

    std::uint64_t rows() override {
        Query q(db_, rows_);
        return q.step() ? q.uint64(0) : 0;
    }

private:
    // "a, b" -> "c.a, c.b"
    static std::string prefixed(std::string_view columns) {
        std::string out = "c.";
        for (char ch : columns) {
            out += ch;
            if (ch == ' ') out += "c.";
        }
        return out;
    }

    sqlite3_stmt* prepare(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK)
            throw SqliteError(sqlite3_errmsg(db_));
        return s;
    }

    std::string file_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* read_ = nullptr;
    sqlite3_stmt* erase_ = nullptr;
    sqlite3_stmt* rows_ = nullptr;
    sqlite3_stmt* read_calls_ = nullptr;
    sqlite3_stmt* erase_calls_ = nullptr;
};

}  // namespace
}  // namespace turnbridge::accounting::sqlite

namespace turnbridge::accounting {

std::unique_ptr<Outbox> Outbox::open(const std::filesystem::path& file) {
    try {
        return std::make_unique<sqlite::SqliteOutbox>(file.string());
    } catch (const sqlite::SqliteError& e) {
        throw std::runtime_error(fmt::format("{}: {}", file.string(), e.what()));
    }
}

}  // namespace turnbridge::accounting
