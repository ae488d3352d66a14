// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/io/heap_trim.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace turnbridge::io {

void HeapTrim::trim(std::uint64_t now_ms) {
    if (closed_ == 0) return;
    closed_ = 0;
    last_ms_ = now_ms;
#if defined(__GLIBC__)
    malloc_trim(0);  // also releases free pages inside the heaps, not only at their top
#endif
}

}  // namespace turnbridge::io
