// SPDX-License-Identifier: Apache-2.0
#pragma once
// SIP messages in the shape JsSIP 3.10 sends over WebSocket (RFC 7118): a random ".invalid"
// Via host, transport WS, outbound/gruu Contact parameters. Hand-written after JsSIP's
// request builder; CRLF line ends as on the wire.
#include <string>

namespace turnbridge::sip::samples {

inline const std::string kJsSipRegister =
    "REGISTER sip:example.org SIP/2.0\r\n"
    "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=z9hG4bK9573563\r\n"
    "Max-Forwards: 69\r\n"
    "To: <sip:alice@example.org>\r\n"
    "From: \"Alice\" <sip:alice@example.org>;tag=m0dm2jo4vt\r\n"
    "Call-ID: 2a1h1c9f8tp46lmbqfmr4k\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws>;+sip.ice;reg-id=1;"
    "+sip.instance=\"<urn:uuid:4a9f3e1b-6d8c-4b0a-9e2c-7c2f6b9a1d3e>\";expires=600\r\n"
    "Expires: 600\r\n"
    "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n"
    "Supported: path,gruu,outbound\r\n"
    "User-Agent: JsSIP 3.10.0\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

inline const std::string kSdpOffer =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n";

inline std::string jssip_invite(const std::string& branch = "z9hG4bK5301394") {
    return "INVITE sip:+15550123@example.org SIP/2.0\r\n"
           "Via: SIP/2.0/WSS 3b5kq2ugmd6u.invalid;branch=" + branch + "\r\n"
           "Max-Forwards: 69\r\n"
           "To: <sip:+15550123@example.org>\r\n"
           "From: \"Alice\" <sip:alice@example.org>;tag=8fk2ra1dtq\r\n"
           "Call-ID: mvh2l0g3kcq1fo9tbhm5\r\n"
           "CSeq: 6215 INVITE\r\n"
           "Contact: <sip:kd3b3o1r@3b5kq2ugmd6u.invalid;transport=ws;ob>\r\n"
           "Content-Type: application/sdp\r\n"
           "Session-Expires: 90\r\n"
           "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n"
           "Supported: timer,ice,replaces,outbound\r\n"
           "User-Agent: JsSIP 3.10.0\r\n"
           "Content-Length: " + std::to_string(kSdpOffer.size()) + "\r\n"
           "\r\n" + kSdpOffer;
}

}  // namespace turnbridge::sip::samples
