// SPDX-License-Identifier: Apache-2.0
#pragma once
// What sip::Call's source files (call.cpp, call_failover.cpp, call_transfer.cpp) share.
#include <string>

#include "turnbridge/sip/dialog.hpp"
#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

// A new out-of-dialog INVITE from us: new Call-ID (with the worker's mark), From tag and branch.
Message new_invite(const std::string& ruri, const LocalAddress& local, const std::string& from, const std::string& to,
                   const std::string& sdp, const Random& random);
// "sip:alice@example.org;x" -> "alice"
std::string user_of(const std::string& uri);

}  // namespace turnbridge::sip
