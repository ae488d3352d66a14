// SPDX-License-Identifier: Apache-2.0
#pragma once
// The libuv side of StreamGuard's write bounds, shared by every stream connection: measure the
// stream's unsent bytes, stop reading above the soft bound (a peer that does not read what we
// send cannot make us queue more: issue 11's 113-144 MiB), read again below it.
#include <cstdint>
#include <uv.h>

#include "turnbridge/io/stream_guard.hpp"

namespace turnbridge::io {

inline std::uint64_t now_ms(const uv_stream_t* s) { return uv_now(s->loop); }

// After a write or a completed write. False: over the hard bound (or reading could not
// restart); the caller closes the connection.
inline bool apply_back_pressure(uv_stream_t* s, StreamGuard& g, uv_alloc_cb alloc, uv_read_cb read) {
    switch (g.on_queue(now_ms(s), uv_stream_get_write_queue_size(s))) {
        case StreamGuard::Flow::Keep: return true;
        case StreamGuard::Flow::Pause: uv_read_stop(s); return true;
        case StreamGuard::Flow::Resume: {
            const int err = uv_read_start(s, alloc, read);
            return err == 0 || err == UV_EALREADY;
        }
        case StreamGuard::Flow::Close: return false;
    }
    return true;
}

}  // namespace turnbridge::io
