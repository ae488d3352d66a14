// SPDX-License-Identifier: Apache-2.0
#pragma once
// The click-to-call page (issue 4) that every ws_listen/wss_listen address serves on GET /.
// Its source is src/net/click_to_call.html; scripts/embed_page.py turns it into a .cpp at build time.
#include <string_view>

namespace turnbridge::gateway::host {

extern const std::string_view kClickToCallPage;
// default-src 'none' plus the page's own inline script and style by SHA-256; the server
// appends connect-src for its WebSocket.
extern const std::string_view kClickToCallCsp;

}  // namespace turnbridge::gateway::host
