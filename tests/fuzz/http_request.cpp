// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: bytes fed to RequestParser in chunks (sizes from the first byte), every
// complete request routed (token on or off) against a fake backend and serialized.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "../unit/admin/fake_backend.hpp"
#include "turnbridge/admin/http_request.hpp"
#include "turnbridge/admin/router.hpp"

using namespace turnbridge::admin;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t chunk = (data[0] & 0x3F) + 1;
    const bool with_token = data[0] & 0x40;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    testing::FakeBackend backend;
    backend.live_allocations = {testing::sample_allocation("a1", "alice")};
    RequestParser p;
    while (!in.empty()) {
        const auto n = std::min(chunk, in.size());
        p.feed(in.substr(0, n));
        in.remove_prefix(n);
        for (;;) {
            Request r;
            const auto st = p.next(r);
            if (st != RequestParser::Status::Ready) {
                if (st == RequestParser::Status::Error && p.error_status() == 0) std::abort();
                break;
            }
            if (r.path.empty() || r.path[0] != '/' || r.body.size() > kMaxBodyBytes || r.headers.size() > kMaxHeaders)
                std::abort();
            const auto resp = handle(r, backend, RouterConfig{with_token ? "t0ken" : "", 1793535296000});
            const auto wire = serialize(resp, r.keep_alive, r.method == "HEAD", 1793535296000);
            if (wire.rfind("HTTP/1.1 ", 0) != 0) std::abort();
        }
        if (p.error_status() != 0) break;
    }
    return 0;
}
