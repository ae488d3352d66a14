// SPDX-License-Identifier: Apache-2.0
#pragma once
// One INVITE dialog (RFC 3261 §12), either side: its identifiers, route set, remote target and
// CSeq spaces; builds in-dialog requests (BYE, re-INVITE, ACK for a 2xx) and checks incoming
// ones, including re-INVITE glare (§14).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "turnbridge/sip/message.hpp"

namespace turnbridge::sip {

// Where our requests say they come from: the Via sent-by and transport of the flow they leave on.
struct LocalAddress {
    std::string transport = "UDP";    // Via transport: UDP, TCP, TLS, WS, WSS
    std::string sent_by;              // "192.0.2.1:5060" or a WebSocket host name
    std::string contact;              // our Contact value, "<sip:turnbridge@192.0.2.1:5060>"
    std::string call_id_prefix = {};  // before the Call-IDs we make: the worker's mark (sip::Placement)
};

class Dialog {
public:
    enum class State { Early, Confirmed, Terminated };

    // §12.1.2: a UAC dialog from the INVITE we sent and a 1xx-with-tag or 2xx; nullopt without a To tag.
    static std::optional<Dialog> from_uac(const Message& invite, const Message& response, LocalAddress local);
    // §12.1.1: a UAS dialog from the INVITE we received, answered with `local_tag`. Fails
    // (400) when the INVITE has no usable Contact, which §8.1.1.8 requires.
    static Result<Dialog> from_uas(const Message& invite, std::string_view local_tag, LocalAddress local);

    State state() const { return state_; }
    bool is_uac() const { return uac_; }
    const std::string& call_id() const { return call_id_; }
    const std::string& local_tag() const { return local_tag_; }
    const std::string& remote_tag() const { return remote_tag_; }
    const std::string& remote_target() const { return remote_target_; }
    const std::vector<std::string>& route_set() const { return route_set_; }
    std::uint32_t local_cseq() const { return local_cseq_; }

    // Dialog matching (§12.2.1.2, §12.2.2): Call-ID and both tags.
    bool matches(const Message& m) const;

    // §12.2.1.1: a request inside the dialog with the next local CSeq (BYE, re-INVITE, INFO...).
    // A re-INVITE carries our Contact (a target refresh); BYE ends the dialog here (§15.1.1).
    Message make_request(std::string_view method, const Random& random);
    // §13.2.2.4: the ACK for a 2xx, with the INVITE's CSeq number and a new branch.
    Message make_ack(std::uint32_t invite_cseq, const Random& random, std::string_view sdp = {}) const;

    // A response to one of our requests in this dialog: early -> confirmed on a 2xx (route set
    // and target from the 2xx, §13.2.2.4), terminated on an error to the initial INVITE or a
    // 481/408 to anything (§12.2.1.2).
    void on_response(const Message& response);
    // A request from the peer in this dialog. Returns the error to answer with: 500 for a
    // CSeq out of order (§12.2.2), 491 for re-INVITE glare, 500 + Retry-After while our answer
    // to its previous INVITE is pending (§14.2). BYE terminates; INVITE refreshes the target.
    std::optional<Error> on_request(const Message& request);
    // The UAS sent a 2xx for the initial INVITE (confirmed) or a final for a re-INVITE.
    void on_final_sent(int status);
    void terminate() { state_ = State::Terminated; }

private:
    Dialog() = default;
    void apply_request_uri_and_route(Message& m) const;

    State state_ = State::Early;
    bool uac_ = false;
    std::string call_id_, local_tag_, remote_tag_;
    std::string local_header_, remote_header_;   // From/To values with their tags
    std::string remote_target_;
    std::vector<std::string> route_set_;
    std::uint32_t local_cseq_ = 0;
    std::optional<std::uint32_t> remote_cseq_;
    LocalAddress local_;
    bool our_invite_pending_ = false;     // a re-INVITE of ours awaits its final response
    bool their_invite_pending_ = false;   // an INVITE of theirs awaits our final response
};

}  // namespace turnbridge::sip
