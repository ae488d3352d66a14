#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Transfers the trunk asks for (issue 14, RFC 3515 with turnbridge as the referee). sipp, as the
// trunk, calls a DID routed to USER; that page (JsSIP in headless Chromium, auto-answer) takes
// the call and hears sipp's 600 Hz tone. sipp then sends REFER in the dialog:
//   Refer-To <sip:bob@evil.example> gets 403 (outside the realm);
//   Refer-To <sip:bob@REALM> gets 202, and bob's page (a second page, registered as bob)
//   rings, auto-answers and hears the same tone while the trunk's dialog and RTP stay as they
//   were; USER's page gets a BYE; sipp gets NOTIFY 100 first and NOTIFY 200 (sipfrag) last.
// Then sipp sends BYE and bob's call ends. Also: an INVITE with Replaces naming no dialog of
// ours gets 481 (RFC 3891 §3).
// The same on an outbound call: USER's page calls out, sipp as the trunk's UAS answers with the
// tone and then sends REFER <sip:bob@REALM> in that dialog: 202, bob's page rings, answers and
// hears the tone, USER's page gets a BYE, sipp gets NOTIFY 100 ... 200 and its BYE ends bob's call.
// interop-timeout: 120
'use strict';
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriple, freeRange, gatewayTurnbridge, USER,
  REALM } = require('./harness');
const { writeTonePcap, runSipp, sippExit, within, fmtHz, uasAnswer } = require('./gateway_call_test');
const { ok } = require('./sipp_transfer');   // sipp's 200 to the request it just received
const { toneWorkDir, openBrowser, openPage } = require('./jssip_page');

const DID = '+15550123';
const OUT_NUMBER = '+15557000';
const BOB = 'bob';
const TRUNK_TONE_HZ = 600;
const PAGE_TONE_HZ = 880;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

// In-dialog requests from sipp (the UAC): our From with its tag, the To of the 200 (`to200`).
const inDialog = (method, cseq, extra) => `
  <send retrans="500"><![CDATA[
${method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [$to200]
[routes]
Call-ID: [call_id]
CSeq: ${cseq} ${method}
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
${extra}Content-Length: 0

]]></send>`;


function scenario(pcap, evilRefer, refer) {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="turnbridge transfer from the trunk">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=trunk 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
a=sendrecv

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to200"/>
    </action>
  </recv>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [$to200]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec play_pcap_audio="${pcap}"/></action></nop>
  <pause milliseconds="4000"/>
${inDialog('REFER', 2, `Refer-To: ${evilRefer}\r\nReferred-By: <sip:+15550199@[local_ip]>\r\n`)}
  <recv response="403"/>
${inDialog('REFER', 3, `Refer-To: ${refer}\r\nReferred-By: <sip:+15550199@[local_ip]>\r\n`)}
  <recv response="202"/>
  <label id="notify"/>
  <recv request="NOTIFY">
    <action>
      <ereg regexp="SIP/2.0 [0-9]+" search_in="body" check_it="true" assign_to="frag"/>
      <ereg regexp="SIP/2.0 [2-6][0-9][0-9]" search_in="body" check_it="false" assign_to="final"/>
      <log message="NOTIFY [$frag]"/>
    </action>
  </recv>
${ok}
  <nop test="final" next="done"/>
  <nop next="notify"/>
  <label id="done"/>
  <pause milliseconds="6000"/>
${inDialog('BYE', 4, '')}
  <recv response="200" crlf="true"/>
</scenario>
`;
}

// The outbound case: sipp is the trunk's UAS; it answers the gateway's INVITE with the tone, then
// REFERs the call to `refer` in that dialog (From/To of the INVITE swapped, RFC 3261 §12.2.1.1).
function outboundScenario(pcap, refer) {
  const inDialogUas = (method, cseq, extra) => `
  <send retrans="500"><![CDATA[
${method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$invto];tag=[pid]SIPpTag01[call_number]
To: [$invfrom]
Call-ID: [call_id]
CSeq: ${cseq} ${method}
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
${extra}Content-Length: 0

]]></send>`;
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="turnbridge transfer from the trunk, outbound call">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="invfrom"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="invto"/>
      <log message="call from [$invfrom] to [$invto]"/>
    </action>
  </recv>
${uasAnswer({ allow: true })}
  <nop><action><exec play_pcap_audio="${pcap}"/></action></nop>
  <pause milliseconds="3000"/>
${inDialogUas('REFER', 1, `Refer-To: ${refer}\r\nReferred-By: <sip:+15557000@[local_ip]>\r\n`)}
  <recv response="202"/>
  <label id="notify"/>
  <recv request="NOTIFY">
    <action>
      <ereg regexp="SIP/2.0 [0-9]+" search_in="body" check_it="true" assign_to="frag"/>
      <ereg regexp="SIP/2.0 [2-6][0-9][0-9]" search_in="body" check_it="false" assign_to="final"/>
      <log message="NOTIFY [$frag]"/>
    </action>
  </recv>
${ok}
  <nop test="final" next="done"/>
  <nop next="notify"/>
  <label id="done"/>
  <pause milliseconds="5000"/>
${inDialogUas('BYE', 2, '')}
  <recv response="200" crlf="true"/>
</scenario>
`;
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, uacPort] = await freePorts(3, taken);
  const uacMedia = await freeTriple(taken);
  const mediaLo = await freeRange(taken, 100);
  const { work, wav } = toneWorkDir('gateway-transfer2-', PAGE_TONE_HZ);
  workDir = work;
  const pcap = path.join(work, 'trunk.pcap');
  writeTonePcap(pcap, TRUNK_TONE_HZ, 24);

  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${uacPort};transport=udp"
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]
`);
  serverDir = tb.dir;
  await tb.start();
  await tb.addUser(BOB);   // the transfer target (the harness writes one user)

  const { browser, url } = await openBrowser(results, cleanup, { work, wav });
  const a = await openPage(browser, url, { tb, wsPort });
  const b = await openPage(browser, url, { tb, wsPort, user: BOB });
  results.check(`${USER}'s page and ${BOB}'s page register`, a.reg === 'registered' && b.reg === 'registered', `${a.reg}, ${b.reg}`);
  const events = async (p) => (await p.evaluate(() => gw.events())).slice(-8).join(' | ');

  const sipps = childList(cleanup);
  const sf = path.join(work, 'refer.xml');
  fs.writeFileSync(sf, scenario(pcap, '<sip:bob@evil.example>', `<sip:${BOB}@${REALM}>`));
  const sipp = runSipp(work, 'refer', sf, ['-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort),
    '-mp', String(uacMedia)], sipps);

  const first = await a.page.evaluate(() => gw.waitIncoming(15000));
  results.check(`the trunk's call to ${DID} is answered by ${USER}'s page`, first.confirmed, `${JSON.stringify(first.ended)}; ${await events(a.page)}`);
  const mediaA = await a.page.evaluate(() => gw.waitMedia(15000));
  results.check(`${USER}'s page: ICE and DTLS connected`, mediaA.connection === 'connected', JSON.stringify(mediaA));
  const heardA = await a.page.evaluate(() => gw.measure(1600));
  results.check(`${USER}'s page hears the trunk's ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(heardA.peakHz, TRUNK_TONE_HZ),
    `${fmtHz(heardA.peakHz)} Hz at ${fmtHz(heardA.peakDb)} dB`);

  // sipp REFERs after 4 s: bob's page rings and auto-answers.
  const second = await b.page.evaluate(() => gw.waitIncoming(20000));
  results.check(`after the trunk's REFER to sip:${BOB}@${REALM}, ${BOB}'s page is called and answers`, second.confirmed,
    `${JSON.stringify(second.ended)}; ${await events(b.page)}`);
  const mediaB = await b.page.evaluate(() => gw.waitMedia(15000));
  results.check(`${BOB}'s page: ICE and DTLS connected (new ICE credentials, new DTLS handshake)`, mediaB.connection === 'connected',
    JSON.stringify(mediaB));
  const heardB = await b.page.evaluate(() => gw.measure(2400));
  results.check(`${BOB}'s page hears the trunk's ${TRUNK_TONE_HZ} Hz tone on the same trunk dialog (2 %)`, within(heardB.peakHz, TRUNK_TONE_HZ),
    `${fmtHz(heardB.peakHz)} Hz at ${fmtHz(heardB.peakDb)} dB`);
  const endedA = await a.page.evaluate(() => gw.waitEnded(5000));
  results.check(`${USER}'s page, transferred away, gets a BYE`, endedA && endedA.originator === 'remote' && !endedA.failed,
    JSON.stringify(endedA));

  const code = await sippExit(sipp, 15000);
  if (code === 'still running') { sipp.proc.kill('SIGKILL'); await sipp.done; }
  const msgs = sipp.messages();
  const frags = [...msgs.matchAll(/^NOTIFY [^]*?\r?\n\r?\n(SIP\/2\.0 \d+)/gm)].map((m) => m[1].slice(8));
  results.check('sipp: 403 to the REFER outside the realm, 202 to the one to bob, then BYE answered (exit 0)', code === 0,
    `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  results.check('sipp got NOTIFY 100 first and NOTIFY 200 (message/sipfrag) last', frags[0] === '100' && frags[frags.length - 1] === '200',
    JSON.stringify(frags));
  const endedB = await b.page.evaluate(() => gw.waitEnded(5000));
  results.check(`the trunk's BYE ends ${BOB}'s call`, endedB && endedB.originator === 'remote' && !endedB.failed, JSON.stringify(endedB));

  // RFC 3891 §3: an INVITE with Replaces for a dialog we do not have.
  {
    const sock = dgram.createSocket('udp4');
    cleanup.push(() => { try { sock.close(); } catch { /* closed */ } });
    await new Promise((r) => sock.bind(uacPort, '127.0.0.1', r));
    const got = new Promise((resolve) => {
      sock.on('message', (m) => { const s = m.toString(); if (!/^SIP\/2\.0 1\d\d/.test(s)) resolve(s); });
      setTimeout(() => resolve(''), 4000);
    });
    const branch = `z9hG4bKrepl${Date.now()}`;
    const callId = `repl-${Date.now()}@127.0.0.1`;
    const inv = [`INVITE sip:${DID}@127.0.0.1:${sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${uacPort};branch=${branch}`,
      `From: <sip:+15550199@127.0.0.1:${uacPort}>;tag=r1`, `To: <sip:${DID}@127.0.0.1:${sipPort}>`,
      `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:trunk@127.0.0.1:${uacPort}>`,
      'Replaces: nosuch@127.0.0.1;to-tag=a;from-tag=b', 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n');
    sock.send(inv, sipPort, '127.0.0.1');
    const resp = await got;
    results.check('an INVITE with Replaces naming no dialog of ours gets 481 (RFC 3891 §3)', /^SIP\/2\.0 481/.test(resp),
      resp.split('\r\n')[0] || 'no answer');
    // RFC 3261 §17.1.1.3: ACK the 481, or its retransmissions reach the next sipp on this port.
    const to = (/^To:.*$/mi.exec(resp) || [`To: <sip:${DID}@127.0.0.1:${sipPort}>`])[0];
    const ack = [`ACK sip:${DID}@127.0.0.1:${sipPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${uacPort};branch=${branch}`,
      `From: <sip:+15550199@127.0.0.1:${uacPort}>;tag=r1`, to, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Max-Forwards: 70',
      'Content-Length: 0', '', ''].join('\r\n');
    await new Promise((r) => sock.send(ack, sipPort, '127.0.0.1', r));
    sock.close();
  }
  // Outbound: USER's page calls out; the trunk (sipp UAS at the trunk's port) REFERs it to bob.
  {
    const sf2 = path.join(work, 'refer_out.xml');
    fs.writeFileSync(sf2, outboundScenario(pcap, `<sip:${BOB}@${REALM}>`));
    const uas = runSipp(work, 'refer_out', sf2, ['-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMedia)], sipps);
    await sleep(400);
    // bob's page answered a call before: wait for a confirmation after this point.
    const bobSeen = (await b.page.evaluate(() => gw.events())).length;
    const out = await a.page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check(`outbound: ${USER}'s page calls ${OUT_NUMBER} through the trunk (sipp answers)`, out.confirmed,
      `${JSON.stringify(out.ended)}; ${await events(a.page)}`);
    const outMedia = await a.page.evaluate(() => gw.waitMedia(15000));
    const outHeard = outMedia.connection === 'connected' ? await a.page.evaluate(() => gw.measure(1600)) : { peakHz: 0, peakDb: 0 };
    results.check(`outbound: ${USER}'s page hears the trunk's ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(outHeard.peakHz, TRUNK_TONE_HZ),
      `${outMedia.connection}, ${fmtHz(outHeard.peakHz)} Hz at ${fmtHz(outHeard.peakDb)} dB`);
    let bobConfirmed = false;
    for (const until = Date.now() + 20000; Date.now() < until && !bobConfirmed;) {
      const ev = await b.page.evaluate(() => gw.events());
      bobConfirmed = ev.slice(bobSeen).some((e) => / confirmed$/.test(e));
      if (!bobConfirmed) await sleep(200);
    }
    results.check(`outbound: after the trunk's REFER to sip:${BOB}@${REALM}, ${BOB}'s page is called and answers`, bobConfirmed,
      await events(b.page));
    const media2 = bobConfirmed ? await b.page.evaluate(() => gw.waitMedia(15000)) : { connection: 'none' };
    const heard2 = media2.connection === 'connected' ? await b.page.evaluate(() => gw.measure(2000)) : { peakHz: 0, peakDb: 0 };
    results.check(`outbound: ${BOB}'s page hears the trunk's ${TRUNK_TONE_HZ} Hz tone on the same trunk dialog (2 %)`,
      within(heard2.peakHz, TRUNK_TONE_HZ), `${media2.connection}, ${fmtHz(heard2.peakHz)} Hz at ${fmtHz(heard2.peakDb)} dB`);
    const endedOut = await a.page.evaluate(() => gw.waitEnded(5000));
    results.check(`outbound: ${USER}'s page, transferred away, gets a BYE`, endedOut && endedOut.originator === 'remote' && !endedOut.failed,
      JSON.stringify(endedOut));
    const code2 = await sippExit(uas, 15000);
    if (code2 === 'still running') { uas.proc.kill('SIGKILL'); await uas.done; }
    const frags2 = [...uas.messages().matchAll(/^NOTIFY [^]*?\r?\n\r?\n(SIP\/2\.0 \d+)/gm)].map((m) => m[1].slice(8));
    results.check('outbound: sipp got 202, NOTIFY 100 first and 200 last, and its BYE was answered (exit 0)',
      code2 === 0 && frags2[0] === '100' && frags2[frags2.length - 1] === '200',
      `exit ${code2}${code2 === 0 ? '' : `: ${uas.errors()}`} ${JSON.stringify(frags2)}`);
    const endedBob = await b.page.evaluate(() => gw.waitEnded(5000));
    results.check(`outbound: the trunk's BYE ends ${BOB}'s call`, endedBob && endedBob.originator === 'remote' && !endedBob.failed,
      JSON.stringify(endedBob));
  }

  results.check('turnbridge is still running', tb.alive());
  const stop = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', stop === 0, `exit ${stop}`);
}

runSuite('gateway_transfer2', 115000, main, () => [workDir, serverDir]);
