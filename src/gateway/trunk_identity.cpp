// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/gateway/trunk_identity.hpp"

#include <algorithm>

namespace turnbridge::gateway {

sip::NumberPlan number_plan(const config::Gateway& gw) { return {gw.national_prefix, gw.national_digits}; }

const std::vector<std::string>* find_route(const config::Gateway& gw, const std::string& did) {
    if (auto it = gw.routes.find(did); it != gw.routes.end()) return &it->second;
    const auto plan = number_plan(gw);
    for (const auto& [number, users] : gw.routes)
        if (sip::same_number(number, did, plan)) return &users;
    return nullptr;
}

sip::TrunkAccount with_identity(const config::Gateway& gw, const sip::Message& invite, sip::TrunkAccount a) {
    const auto from = invite.from();
    return with_identity(gw, from ? sip::uri_user(from->uri) : std::string(), std::move(a));
}

sip::TrunkAccount with_identity(const config::Gateway& gw, std::string_view user, sip::TrunkAccount a) {
    const auto plan = number_plan(gw);
    if (std::any_of(gw.caller_ids.begin(), gw.caller_ids.end(),
                    [&](const std::string& id) { return sip::same_number(id, user, plan); }))
        a.caller_id = user;
    using I = sip::TrunkAccount::Identity;
    using C = config::Gateway::Identity;
    a.identity = gw.identity == C::Pai ? I::Pai : gw.identity == C::Rpid ? I::Rpid : I::From;
    a.user_phone = gw.user_phone;
    a.refer_to = gw.refer_to == config::Gateway::ReferTo::Tel ? sip::TrunkAccount::ReferTo::Tel
                                                              : sip::TrunkAccount::ReferTo::Sip;
    a.e164_plus = gw.e164_plus;
    a.tech_prefix = gw.tech_prefix;
    a.plan = plan;
    return a;
}

}  // namespace turnbridge::gateway
