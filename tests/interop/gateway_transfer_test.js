#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Blind transfer toward a trunk (issue 14, RFC 3515). JsSIP in headless Chromium calls out
// through turnbridge to sipp, then session.refer()s the call:
//   sip / tel: sipp (the trunk) gets our REFER with Refer-To <sip:+15557001@trunk-host> (realm key
//     refer_to = "sip"), then, after a SIGHUP with refer_to = "tel", <tel:+15557001>, each with
//     Referred-By; it answers 202, sends NOTIFY 100 and 200 (sipfrag), then BYE: the page sees the
//     202, both NOTIFYs, and its call ending normally.
//   fallback: sipp answers the REFER 403; turnbridge calls +15557001 itself through the trunk
//     (the same sipp: a second call, which plays a 1000 Hz tone), BYEs the first trunk call, and
//     the page, NOTIFYed 200, hears the new target's tone (the target answers after 1 s; a second
//     REFER sent meanwhile gets 491).
//   hostile: a raw WebSocket client's REFERs without Refer-To or with a malformed one get 400, one
//     toward another domain 403, one outside a dialog 405 and one for an unknown dialog 481.
// interop-timeout: 90
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriple, freeRange, gatewayTurnbridge, USER, REALM } = require('./harness');
const { WsSip, request, status, isResponse, invite, dialogOf, rnd, SDP, xmlText } = require('./sip_ws');
const { writeTonePcap, runSipp, sippExit, within, fmtHz } = require('./gateway_call_test');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');

const OUT_NUMBER = '+15557000';
const TARGET = '+15557001';
const PAGE_TONE_HZ = 880;
const TARGET_TONE_HZ = 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// sipp's exit code; one still running after `ms` is killed (its port is needed next).
async function sippEnd(sipp, ms) {
  const code = await sippExit(sipp, ms);
  if (code === 'still running') { sipp.proc.kill('SIGKILL'); await sipp.done; }
  return code;
}
let workDir = null;
let serverDir = null;

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

const answer = (mediaPort) => `
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY
Content-Type: application/sdp
Content-Length: [len]

v=0
o=trunk 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio ${mediaPort} RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
a=sendrecv

]]></send>
  <recv request="ACK" crlf="true"/>`;

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

// A trunk that refuses REFER (403); the second call (to the target) plays `pcap` until the BYE.
function refusingScenario(pcap) {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="turnbridge transfer: trunk refuses REFER">
${remember}
  <nop test="target" next="target"/>
${answer(9)}
  <recv request="REFER"/>
${reply('403 Forbidden')}
  <recv request="BYE"/>
${reply('200 OK', 'end')}
  <label id="target"/>
  <pause milliseconds="1000"/>
${answer('[media_port]')}
  <nop><action><exec play_pcap_audio="${pcap}"/></action></nop>
  <recv request="BYE"/>
${ok}
  <label id="end"/>
</scenario>
`;
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, sippPort] = await freePorts(3, taken);
  const sippMedia = await freeTriple(taken);
  const mediaLo = await freeRange(taken, 100);
  const { work, wav } = toneWorkDir('gateway-transfer-', PAGE_TONE_HZ);
  workDir = work;
  const pcap = path.join(work, 'target.pcap');
  writeTonePcap(pcap, TARGET_TONE_HZ, 20);

  const gateway = (referTo) => `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
caller_id = "+15550100"
refer_to = "${referTo}"
`;
  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, gateway('sip'));
  serverDir = tb.dir;
  await tb.start();
  const sipps = childList(cleanup);
  const { page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort });
  const events = async () => (await page.evaluate(() => gw.events())).slice(-10).join(' | ');

  // --- the trunk takes the REFER: sip: and then tel: ---------------------------------------
  const variants = [
    { key: 'sip', referTo: `<sip:\\+15557001@127\\.0\\.0\\.1:${sippPort}>` },
    { key: 'tel', referTo: '<tel:\\+15557001>' },
  ];
  for (const v of variants) {
    if (v.key === 'tel') {
      fs.writeFileSync(tb.configPath, fs.readFileSync(tb.configPath, 'utf8').replace('refer_to = "sip"', 'refer_to = "tel"'));
      tb.proc.kill('SIGHUP');
      await sleep(800);
    }
    const sf = path.join(work, `accept_${v.key}.xml`);
    fs.writeFileSync(sf, acceptingScenario(v.referTo));
    const sipp = runSipp(work, `accept_${v.key}`, sf, ['-i', '127.0.0.1', '-p', String(sippPort)], sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check(`${v.key}: the page's call to the trunk is answered`, call.confirmed, `${JSON.stringify(call.ended)}; ${await events()}`);
    const seen = await page.evaluate((t) => gw.refer(t, 8000), `sip:${TARGET}@${REALM}`);
    results.check(`${v.key}: JsSIP refer() gets 202, then NOTIFY 100 Trying and 200 OK (sipfrag) from the trunk`,
      JSON.stringify(seen) === JSON.stringify(['response 202', 'notify 100', 'notify 200']), JSON.stringify(seen));
    const ended = await page.evaluate(() => gw.waitEnded(8000));
    results.check(`${v.key}: the trunk's BYE after the transfer ends the page's call normally`,
      ended && ended.originator === 'remote' && !ended.failed, JSON.stringify(ended));
    const code = await sippEnd(sipp, 8000);
    results.check(`${v.key}: sipp got REFER with Refer-To ${v.referTo.replace(/\\/g, '')} and Referred-By (exit 0)`,
      code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}\n${(/REFER [^]*?\r?\n\r?\n/.exec(sipp.messages()) || [''])[0]}`}`);
  }

  // --- the trunk refuses: turnbridge calls the target and the page hears it ----------------
  {
    const sf = path.join(work, 'refuse.xml');
    fs.writeFileSync(sf, refusingScenario(pcap));
    const sipp = runSipp(work, 'refuse', sf, ['-i', '127.0.0.1', '-p', String(sippPort), '-mp', String(sippMedia),
      '-m', '2', '-l', '4'], sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check('fallback: the page\'s call to the trunk is answered', call.confirmed, `${JSON.stringify(call.ended)}; ${await events()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('fallback: ICE and DTLS connected', media.connection === 'connected', JSON.stringify(media));
    const [seen, second] = await page.evaluate(async (t) => {
      const first = gw.refer(t, 10000);
      const second = gw.refer(t, 3000);   // while the first runs: the target answers after 1 s
      return [await first, await second];
    }, `sip:${TARGET}@${REALM}`);
    results.check('fallback: the trunk\'s 403 to our REFER becomes 202, NOTIFY 100, 180 and 200 as turnbridge calls the target',
      seen[0] === 'response 202' && seen[1] === 'notify 100' && seen[seen.length - 1] === 'notify 200', JSON.stringify(seen));
    results.check('fallback: a second REFER while the first one runs gets 491', JSON.stringify(second).includes('491'),
      JSON.stringify(second));
    await sleep(1200);
    const heard = await page.evaluate(() => gw.measure(2400));
    results.check(`fallback: the page now hears the new target's ${TARGET_TONE_HZ} Hz tone (2 %)`,
      within(heard.peakHz, TARGET_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    results.check('fallback: the page hangs up normally', ended && !ended.failed, JSON.stringify(ended));
    const code = await sippEnd(sipp, 8000);
    results.check('fallback: sipp saw the first call BYEd and the target called and BYEd (2 calls, exit 0)',
      code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }

  // --- hostile REFERs from a raw WebSocket client ----------------------------------------
  {
    const sf = path.join(work, 'hold.xml');
    fs.writeFileSync(sf, `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="turnbridge transfer: hold">
${remember}
${answer(9)}
  <recv request="BYE"/>
${ok}
</scenario>
`);
    const sipp = runSipp(work, 'hold', sf, ['-i', '127.0.0.1', '-p', String(sippPort)], sipps);
    await sleep(300);
    const c = new WsSip(`ws://127.0.0.1:${wsPort}/sip`);
    await c.open();
    cleanup.push(() => c.close());
    const inv = await invite(c, `sip:${OUT_NUMBER}@${REALM}`, SDP, 8000);
    const answered = status(inv.final) === 200;
    results.check('hostile: a raw client\'s call is answered', answered, inv.final ? inv.final.split('\r\n')[0] : 'none');
    if (answered) {
      const d = dialogOf(c, inv);
      d.ack();
      const to = /^To: (.*)$/mi.exec(inv.final)[1].trim();
      const target = /<([^>]+)>/.exec(/^Contact: (.*)$/mi.exec(inv.final)[1])[1];
      let cseq = 10;
      const refer = async (extra, { toHeader = to, callId = inv.callId } = {}) => {
        c.send(request({ method: 'REFER', uri: target, callId, cseq: ++cseq, fromTag: inv.fromTag, to: toHeader, extra }));
        return status(await c.wait(isResponse(callId, 'REFER'), 4000));
      };
      const cases = [
        ['no Refer-To', [], {}, 400],
        ['a malformed Refer-To', ['Refer-To: <sip:%zz@x>'], {}, 400],
        ['a Refer-To of another scheme', ['Refer-To: <http://example.com/>'], {}, 400],
        ['a Refer-To in another domain', [`Refer-To: <sip:${TARGET}@evil.example>`], {}, 403],
        ['a Refer-To that is no number', [`Refer-To: <sip:alice@${REALM}>`], {}, 403],
        ['a REFER outside any dialog', [`Refer-To: <sip:${TARGET}@${REALM}>`], { toHeader: `<sip:${OUT_NUMBER}@${REALM}>`, callId: rnd() }, 405],
        ['a REFER for an unknown dialog', [`Refer-To: <sip:${TARGET}@${REALM}>`], { toHeader: `<sip:${OUT_NUMBER}@${REALM}>;tag=nosuch`, callId: rnd() }, 481],
      ];
      for (const [name, extra, opts, want] of cases) {
        const got = await refer(extra, opts);
        results.check(`hostile: ${name} gets ${want}`, got === want, `${got}`);
      }
      c.send(request({ method: 'BYE', uri: target, callId: inv.callId, cseq: ++cseq, fromTag: inv.fromTag, to }));
      const bye = await c.wait(isResponse(inv.callId, 'BYE'), 4000);
      results.check('hostile: the call still ends with 200 to the BYE', status(bye) === 200, `${status(bye)}`);
    }
    const code = await sippEnd(sipp, 8000);
    results.check('hostile: no REFER reached the trunk (sipp exit 0)', code === 0, `exit ${code}: ${code === 0 ? '' : sipp.errors()}`);
  }
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

runSuite('gateway_transfer', 85000, main, () => [workDir, serverDir]);
