// SPDX-License-Identifier: Apache-2.0
// sipp as a trunk that is transferred (RFC 3515 REFER), the scenario pieces gateway_transfer_test.js
// and gateway_sipjs_test.js share: sipp answers the browser's call (gateway_call_test's uasAnswer),
// takes a REFER whose Refer-To matches a regular expression, answers 202, sends NOTIFY 100 and 200
// (message/sipfrag) and then BYE, as a carrier that performs the transfer itself does.
'use strict';
const { xmlText } = require('./sip_ws');
const { uasAnswer } = require('./gateway_call_test');

// In-dialog requests from sipp as the UAS: From/To of the INVITE swapped (RFC 3261 §12.2.1.1).
const inDialog = (method, cseq, extra, body = '') => `
  <send retrans="500"><![CDATA[
${method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$invto];tag=[pid]SIPpTag01[call_number]
To: [$invfrom]
Call-ID: [call_id]
CSeq: ${cseq} ${method}
Max-Forwards: 70
Contact: <sip:trunk@[local_ip]:[local_port]>
${extra}Content-Length: [len]

${body}]]></send>
  <recv response="200"/>`;

const answer = (mediaPort) => '\n' + uasAnswer({ ip: '[local_ip]', port: mediaPort, allow: true });

// sipp's response to the request it just received; `next`: a label to go on at.
const reply = (statusLine, next = '') => `
  <send${next ? ` next="${next}"` : ''}><![CDATA[
SIP/2.0 ${statusLine}
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>`;
const ok = reply('200 OK');

const remember = `
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="invfrom"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="invto"/>
      <ereg regexp="^INVITE sip:[^@ ]*7001@" search_in="msg" check_it="false" assign_to="target"/>
      <!-- sipp refuses a variable referenced only once -->
      <log message="call from [$invfrom] to [$invto], target [$target]"/>
    </action>
  </recv>`;

// A trunk that takes the REFER: Refer-To must match `referTo` (a regular expression).
function acceptingScenario(referTo) {
  const frag = (s) => `SIP/2.0 ${s}\r\n`;
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="turnbridge transfer: trunk accepts REFER">
${remember}
${answer(9)}
  <recv request="REFER">
    <action>
      <ereg regexp="${xmlText(referTo)}" search_in="hdr" header="Refer-To:" check_it="true" assign_to="referto"/>
      <ereg regexp="sip:" search_in="hdr" header="Referred-By:" check_it="true" assign_to="referredby"/>
      <log message="Refer-To: [$referto] Referred-By: [$referredby]"/>
    </action>
  </recv>
${reply('202 Accepted')}
${inDialog('NOTIFY', 1, 'Event: refer\r\nSubscription-State: active;expires=60\r\nContent-Type: message/sipfrag;version=2.0\r\n', frag('100 Trying'))}
${inDialog('NOTIFY', 2, 'Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag;version=2.0\r\n', frag('200 OK'))}
${inDialog('BYE', 3, '')}
</scenario>
`;
}

module.exports = { inDialog, answer, reply, ok, remember, acceptingScenario };
