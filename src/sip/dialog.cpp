// SPDX-License-Identifier: Apache-2.0
#include "turnbridge/sip/dialog.hpp"

#include <algorithm>

namespace turnbridge::sip {
namespace {

// The first Contact's URI if it can be a Request-URI, else "".
std::string contact_uri(const Message& m) {
    const auto c = m.contacts();
    return c.empty() || !is_valid_uri(c[0].uri) ? std::string() : c[0].uri;
}

// The URI inside a Route value "<sip:p1.example.com;lr>;foo".
std::string route_uri(const std::string& route) {
    const auto open = route.find('<');
    const auto close = route.find('>', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos) return route;
    return route.substr(open + 1, close - open - 1);
}

bool is_loose(const std::string& route) {
    const auto uri = route_uri(route);
    return uri.find(";lr") != std::string::npos;
}

}  // namespace

std::optional<Dialog> Dialog::from_uac(const Message& invite, const Message& response, LocalAddress local) {
    if (response.to_tag().empty() || response.status() < 101 || response.status() >= 300) return std::nullopt;
    Dialog d;
    d.uac_ = true;
    d.local_ = std::move(local);
    d.call_id_ = invite.call_id();
    d.local_tag_ = invite.from_tag();
    d.remote_tag_ = response.to_tag();
    d.local_header_ = invite.from_header();
    d.remote_header_ = response.to_header();
    d.local_cseq_ = invite.cseq();
    d.remote_target_ = contact_uri(response);
    if (d.remote_target_.empty()) d.remote_target_ = invite.request_uri();  // a 1xx may lack Contact
    // §12.1.2: the route set is the response's Record-Route in reverse order.
    d.route_set_ = response.record_routes();
    std::reverse(d.route_set_.begin(), d.route_set_.end());
    d.our_invite_pending_ = response.status() < 200;
    d.state_ = response.status() < 200 ? State::Early : State::Confirmed;
    return d;
}

Result<Dialog> Dialog::from_uas(const Message& invite, std::string_view local_tag, LocalAddress local) {
    if (contact_uri(invite).empty()) return Error{Status::BadRequest, "missing or bad Contact"};
    Dialog d;
    d.local_ = std::move(local);
    d.call_id_ = invite.call_id();
    d.local_tag_ = std::string(local_tag);
    d.remote_tag_ = invite.from_tag();
    d.remote_header_ = invite.from_header();
    d.local_header_ = invite.to_header();
    if (invite.to_tag().empty()) d.local_header_ += ";tag=" + d.local_tag_;
    d.remote_cseq_ = invite.cseq();
    d.remote_target_ = contact_uri(invite);
    d.route_set_ = invite.record_routes();  // §12.1.1: in the request's order
    d.their_invite_pending_ = true;
    return d;
}

bool Dialog::matches(const Message& m) const {
    if (m.call_id() != call_id_) return false;
    // A peer's request names our tag in To; a response to ours names it in From.
    if (m.is_request()) return m.to_tag() == local_tag_ && m.from_tag() == remote_tag_;
    return m.from_tag() == local_tag_ && (m.to_tag() == remote_tag_ || state_ == State::Early);
}

void Dialog::apply_request_uri_and_route(Message& m) const {
    // §12.2.1.1: loose routing keeps the remote target as Request-URI; a strict first hop
    // (no ;lr) becomes the Request-URI and the target moves to the end of the Route list.
    if (route_set_.empty()) return;
    if (is_loose(route_set_.front())) {
        for (const auto& r : route_set_) m.add_route(r);
        return;
    }
    m.set_request_uri(route_uri(route_set_.front()));
    for (std::size_t i = 1; i < route_set_.size(); ++i) m.add_route(route_set_[i]);
    m.add_route("<" + remote_target_ + ">");
}

Message Dialog::make_request(std::string_view method, const Random& random) {
    ++local_cseq_;
    auto m = std::move(*Message::request(method, remote_target_));
    apply_request_uri_and_route(m);
    m.push_via(local_.transport, local_.sent_by, new_branch(random));
    m.set_from(local_header_);
    m.set_to(remote_header_);
    m.set_call_id(call_id_);
    m.set_cseq(local_cseq_, method);
    m.set_max_forwards(70);
    if (method == "INVITE" || method == "UPDATE") m.add_contact(local_.contact);  // a target refresh
    if (method == "INVITE") our_invite_pending_ = true;
    if (method == "BYE") state_ = State::Terminated;
    return m;
}

Message Dialog::make_ack(std::uint32_t invite_cseq, const Random& random, std::string_view sdp) const {
    auto m = std::move(*Message::request("ACK", remote_target_));
    apply_request_uri_and_route(m);
    m.push_via(local_.transport, local_.sent_by, new_branch(random));
    m.set_from(local_header_);
    m.set_to(remote_header_);
    m.set_call_id(call_id_);
    m.set_cseq(invite_cseq, "ACK");
    m.set_max_forwards(70);
    if (!sdp.empty()) m.set_body("application/sdp", sdp);
    return m;
}

void Dialog::on_response(const Message& r) {
    const int status = r.status();
    if (status == 481 || status == 408) {
        state_ = State::Terminated;  // §12.2.1.2: the dialog is gone at the peer
        return;
    }
    if (r.cseq_method() != "INVITE") return;
    const auto target = contact_uri(r);
    if (status < 200) {
        if (state_ == State::Early && !target.empty()) remote_target_ = target;
        return;
    }
    our_invite_pending_ = false;
    if (status >= 300) {
        if (state_ == State::Early) state_ = State::Terminated;  // a failed re-INVITE keeps the dialog (§14.1)
        return;
    }
    if (state_ == State::Early && uac_) {
        // §13.2.2.4: the 2xx fixes the route set; the 2xx's To tag is the dialog's remote tag.
        route_set_ = r.record_routes();
        std::reverse(route_set_.begin(), route_set_.end());
        remote_header_ = r.to_header();
        remote_tag_ = r.to_tag();
    }
    if (!target.empty()) remote_target_ = target;
    if (state_ == State::Early) state_ = State::Confirmed;
}

std::optional<Error> Dialog::on_request(const Message& r) {
    const auto method = r.method();
    if (method == "ACK" || method == "CANCEL") return std::nullopt;  // they reuse the INVITE's CSeq
    // §12.2.2: CSeq numbers only go up within a dialog.
    if (remote_cseq_ && r.cseq() <= *remote_cseq_) return Error{Status::ServerInternalError, "CSeq out of order"};
    remote_cseq_ = r.cseq();
    if (method == "INVITE") {
        if (our_invite_pending_) return Error{Status::RequestPending, "Request Pending"};  // §14.2 glare
        if (their_invite_pending_) return Error{Status::ServerInternalError, "previous INVITE still pending"};
        their_invite_pending_ = true;
    }
    if (method == "INVITE" || method == "UPDATE")
        if (auto target = contact_uri(r); !target.empty()) remote_target_ = target;
    if (method == "BYE") state_ = State::Terminated;
    return std::nullopt;
}

void Dialog::on_final_sent(int status) {
    their_invite_pending_ = false;
    if (state_ != State::Early) return;
    state_ = status >= 200 && status < 300 ? State::Confirmed : State::Terminated;
}

}  // namespace turnbridge::sip
