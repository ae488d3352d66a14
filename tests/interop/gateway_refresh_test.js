#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Carrier refreshes (issue 13): headless Chromium + JsSIP (its session timers on, as by default),
// relay-only through turnbridge's TURN, calls a sipp trunk that echoes RTP through an RtpTap.
//   1. pages/gateway_refresh_uas.xml: the trunk refreshes three ways (an SDP-less re-INVITE, an
//      SDP-less UPDATE, a same-version re-INVITE), each answered 2xx within 200 ms (sipp's rtd);
//      the page gets no re-INVITE and still hears its tone (2 %). Then carrier hold (sendonly,
//      answered recvonly) and resume, and a new RTP port (a second tap) that the gateway follows.
//   2. pages/gateway_expiry_uas.xml: the trunk is the refresher and never refreshes: BYE both
//      ways before Session-Expires, end reason session-expired in the call record.
//   3. pages/gateway_refresher_uas.xml: refresher=uac: the gateway refreshes (UPDATE) twice.
//   4. pages/gateway_late_offer_uac.xml: the trunk calls a routed DID with an INVITE without SDP;
//      the page auto-answers, the gateway's offer is in the 200 and sipp's answer in the ACK. The
//      tap that answer names records the page's tone in PCMU; then sipp plays 1 kHz and the page
//      hears it.
//   5. pages/gateway_early_media_uas.xml: a reliable 183 with SDP (RFC 3262): the gateway's INVITE
//      said Supported: 100rel and its PRACK carries the right RAck (sipp checks both); the page
//      hears sipp's announcement before the 200, whose SDP names another port, which the gateway
//      follows (the tap there gets the page's tone).
//   6. pages/gateway_100rel_uac.xml: the trunk's INVITE requires 100rel: the gateway's 180 is
//      reliable (sipp checks Require and RSeq, PRACKs it and gets 200), the page answers.
// interop-timeout: 260
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriples, freeRange, gatewayTurnbridge, adminConfig, adminGet, USER,
  REALM } = require('./harness');
const { writeTonePcap, dominantHz, openTap, runSipp, sippExit, within, fmtHz } = require('./gateway_call_test');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');

const OUT_NUMBER = '+15557000';
const DID = '+15550123';   // routed to the page: the late offer
const PAGE_TONE_HZ = 880;
const TRUNK_TONE_HZ = 1000;
const EARLY_TONE_HZ = 700;   // the trunk's announcement in its 183
const TOTAL_MS = 250000;
const SHORT_SE = 6;        // the expiry scenario: BYE by 6 - min(32, 6/3) = 4 s after the answer
const REFRESH_SE = 4;      // the refresher=uac scenario: an UPDATE every 2 s
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pages = (name) => path.join(__dirname, 'pages', name);
// ONLY=4 (or ONLY=1,4) runs some sections, for a quick look while changing one.
const ONLY = process.env.ONLY ? process.env.ONLY.split(',') : null;
const section = (n) => !ONLY || ONLY.includes(String(n));
let workDir = null;
let serverDir = null;

// sipp's -trace_rtt file: one row per response time measured (ms), with its rtd number.
function rtds(dir, name) {
  const f = fs.readdirSync(dir).find((x) => x.startsWith(name) && x.endsWith('_rtt.csv'));
  if (!f) return [];
  const rows = fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').slice(1);
  return rows.map((r) => r.split(';')).map((c) => ({ ms: Number(c[1]), rtd: c[2] }));   // Date_ms;response_time_ms;rtd_no
}

async function until(pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await pred()) return true; await sleep(100); }
  return false;
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, adminPort, sippPort, uacPort] = await freePorts(5, taken);
  const [tapPort, tapPort2, echoPort, uacMediaPort] = await freeTriples(4, taken);
  const mediaLo = await freeRange(taken, 100);

  const { work, wav } = toneWorkDir('gateway-refresh-', PAGE_TONE_HZ);
  workDir = work;
  writeTonePcap(path.join(work, 'late_offer_tone.pcap'), TRUNK_TONE_HZ, 10);
  writeTonePcap(path.join(work, 'early_media_tone.pcap'), EARLY_TONE_HZ, 5);

  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
caller_id = "+15550100"
session_timers = true
min_se = 2
session_expires = 1800
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]

${adminConfig(adminPort, { flushInterval: 1 })}`);
  serverDir = tb.dir;
  await tb.start();

  const tap = await openTap(cleanup, tapPort, echoPort);
  const tap2 = await openTap(cleanup, tapPort2, echoPort);
  const sipps = childList(cleanup);
  const { browser, page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort,
    options: { sessionTimers: true }, registers: 'the page (JsSIP, session timers on) registers' });
  const pageEvents = async () => (await page.evaluate(() => gw.events())).slice(-12).join(' | ');
  const sippArgs = (extra) => ['-i', '127.0.0.1', '-p', String(sippPort), '-mp', String(echoPort), '-rtp_echo',
    '-trace_rtt', '-rtt_freq', '1', ...extra];

  // --- 1. refreshes three ways, then hold, resume and a new port ------------------------------
  if (section(1)) {
    const sipp = runSipp(work, 'refresh', pages('gateway_refresh_uas.xml'),
      sippArgs(['-set', 'rtpport', String(tapPort), '-set', 'rtpport2', String(tapPort2)]), sipps);
    await sleep(300);
    tap.reset();
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check('1: the call is answered with session timers (sipp checked Supported: timer, Session-Expires)',
      call.confirmed, `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('1: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}`);
    // The three refreshes are over once sipp logged the 200 to its CSeq 4 re-INVITE.
    const refreshed = await until(() => /CSeq: 4 INVITE/.test(sipp.messages().split('SIP/2.0 200').slice(1).join('')), 15000);
    const counts = await page.evaluate(() => gw.counts());
    results.check('1: the refreshes never reach the page (no re-INVITE, no UPDATE)', refreshed && counts.reinvites === 0
      && counts.updates === 0, `refreshes done ${refreshed}; ${JSON.stringify(counts)}; ${await pageEvents()}`);
    await sleep(500);
    const heard = await page.evaluate(() => gw.measure(2400));
    results.check(`1: after the refreshes the page still hears its ${PAGE_TONE_HZ} Hz tone through the trunk's echo (2 %)`,
      within(heard.peakHz, PAGE_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
    // Hold, resume, new port: sipp checks the directions of the answers; the page sees hold/unhold.
    const moved = await until(() => /CSeq: 7 INVITE/.test(sipp.messages().split('SIP/2.0 200').slice(1).join('')), 25000);
    const after = await page.evaluate(() => gw.counts());
    results.check("1: carrier hold and resume reach the page (two re-INVITEs), the new port does not", moved
      && after.reinvites === 2, `${JSON.stringify(after)}; ${await pageEvents()}`);
    tap2.reset();
    await sleep(500);
    const heard2 = await page.evaluate(() => gw.measure(2400));
    results.check(`1: the gateway follows the trunk's new RTP port and the page still hears its tone (2 %)`,
      within(heard2.peakHz, PAGE_TONE_HZ) && tap2.toTrunk.length > 50,
      `${fmtHz(heard2.peakHz)} Hz; ${tap2.toTrunk.length} datagrams to the new port`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(sipp, 8000);
    results.check('1: sipp saw every answer it expected (sendonly -> recvonly, offer in the 200, exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}; ${JSON.stringify(ended)}`);
    const times = rtds(work, 'gateway_refresh_uas');
    const slow = times.filter((t) => ['1', '2', '3'].includes(t.rtd) && !(t.ms < 200));
    results.check('1: each refresh answered 2xx within 200 ms (sipp rtd 1-3)', times.length >= 3 && slow.length === 0,
      JSON.stringify(times));
  }

  // --- 2. a trunk that stops refreshing ---------------------------------------------------
  if (section(2)) {
    const sipp = runSipp(work, 'expiry', pages('gateway_expiry_uas.xml'),
      sippArgs(['-set', 'rtpport', String(tapPort), '-set', 'se', String(SHORT_SE)]), sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    const t0 = Date.now();
    const ended = await page.evaluate(() => gw.waitEnded(15000));
    const took = Date.now() - t0;
    results.check(`2: no refresh within Session-Expires ${SHORT_SE} s: the page's session ends (BYE from the gateway)`,
      call.confirmed && ended && ended.originator === 'remote' && took < SHORT_SE * 1000,
      `${JSON.stringify(ended)} after ${took} ms`);
    const code = await sippExit(sipp, 8000);
    results.check('2: the trunk gets BYE too (sipp exit 0)', code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
    await sleep(2500);
    const calls = await adminGet(adminPort, '/api/v1/calls');
    results.check('2: the call record says end reason session-expired', /"end_reason":\s*"session-expired"/.test(calls.body),
      calls.body.slice(0, 300));
    results.check('2: the log says why', /session expired/.test(tb.logTail(400)), 'log tail');
  }

  // --- 3. refresher=uac: we refresh ------------------------------------------------------
  if (section(3)) {
    const sipp = runSipp(work, 'refresher', pages('gateway_refresher_uas.xml'),
      sippArgs(['-set', 'rtpport', String(tapPort), '-set', 'se', String(REFRESH_SE)]), sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    const ended = await page.evaluate(() => gw.waitEnded(20000));
    const code = await sippExit(sipp, 8000);
    results.check('3: refresher=uac: the gateway refreshes by UPDATE at half the interval, twice (sipp exit 0)',
      call.confirmed && code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
    const counts = await page.evaluate(() => gw.counts());
    results.check("3: the trunk hangs up afterwards; the page's session ends remote and saw no re-INVITE",
      ended && ended.originator === 'remote' && counts.reinvites === 0, `${JSON.stringify(ended)} ${JSON.stringify(counts)}`);
  }

  // --- 4. late offer inbound ----------------------------------------------------------------
  if (section(4)) {
    tap.reset();
    const sipp = runSipp(work, 'late_offer', pages('gateway_late_offer_uac.xml'),
      ['-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort),
        '-set', 'tapport', String(tapPort)], sipps);
    const answered = await page.evaluate(() => gw.waitIncoming(15000));
    results.check('4: an INVITE without SDP to the DID rings the page, which answers', answered.confirmed,
      `${JSON.stringify(answered.ended)}; ${await pageEvents()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('4: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}`);
    // sipp is quiet for 4 s after its ACK: what reaches the tap meanwhile is the page's tone.
    await sleep(2500);
    const trunk = tap.analyse(-1);
    const trunkHz = trunk.samples.length > 8000 ? dominantHz(trunk.samples.slice(-12000)) : 0;
    results.check(`4: the address in sipp's ACK gets the page's ${PAGE_TONE_HZ} Hz tone in PCMU at 20 ms (2 %)`,
      trunk.packets > 50 && within(trunkHz, PAGE_TONE_HZ) && JSON.stringify(trunk.sizes) === '[160]',
      `${trunk.packets} PCMU packets of ${trunk.sizes} bytes, ${fmtHz(trunkHz)} Hz; payload types ${JSON.stringify([...trunk.pts])}`);
    await sleep(3000);   // sipp plays its tone from 4 s after the ACK
    const heard = await page.evaluate(() => gw.measure(2400));
    results.check(`4: the page hears sipp's ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(heard.peakHz, TRUNK_TONE_HZ),
      `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
    const ended = await page.evaluate(() => gw.waitEnded(15000));
    results.check("4: sipp's BYE ends the page's session", answered.confirmed && ended && ended.originator === 'remote',
      JSON.stringify(ended));
    const code = await sippExit(sipp, 8000);
    results.check("4: sipp found our offer in the 200 (PCMU, telephone-event, sendrecv) and took its answer (exit 0)",
      code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }

  // --- 5. reliable early media (outbound) -----------------------------------------------------
  if (section(5)) {
    tap.reset();
    const sipp = runSipp(work, 'early_media', pages('gateway_early_media_uas.xml'),
      ['-i', '127.0.0.1', '-p', String(sippPort), '-mp', String(echoPort), '-set', 'rtpport', String(tapPort)], sipps);
    await sleep(300);
    const before = (await page.evaluate(() => gw.events())).length;
    const callP = page.evaluate((t) => gw.call(t, 20000), `sip:${OUT_NUMBER}@${REALM}`);
    const media = await page.evaluate(() => gw.waitMedia(10000));
    const early = await page.evaluate(() => gw.measure(2000));
    const confirmedYet = await page.evaluate((n) => gw.events().slice(n).some((e) => / confirmed$/.test(e)), before);
    results.check(`5: before the 200 the page hears the trunk's ${EARLY_TONE_HZ} Hz announcement from its reliable 183`,
      media.connection === 'connected' && within(early.peakHz, EARLY_TONE_HZ) && !confirmedYet,
      `${media.connection}; ${fmtHz(early.peakHz)} Hz at ${fmtHz(early.peakDb)} dB; confirmed already: ${confirmedYet}; ${await pageEvents()}`);
    const call = await callP;
    results.check('5: the 200 (SDP unlike the 183\'s) confirms the call', call.confirmed, `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    await sleep(2000);
    const trunk = tap.analyse(-1);
    const trunkHz = trunk.samples.length > 8000 ? dominantHz(trunk.samples.slice(-12000)) : 0;
    results.check(`5: the gateway follows the 200's new port: the page's ${PAGE_TONE_HZ} Hz tone goes there in PCMU (2 %)`,
      trunk.packets > 50 && within(trunkHz, PAGE_TONE_HZ), `${trunk.packets} PCMU packets, ${fmtHz(trunkHz)} Hz`);
    const counts = await page.evaluate(() => gw.counts());
    results.check('5: the differing 200 cost the page no renegotiation', counts.reinvites === 0 && counts.updates === 0,
      JSON.stringify(counts));
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(sipp, 8000);
    results.check('5: sipp found Supported: 100rel in the INVITE and RAck: 1 1 INVITE in the PRACK (exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}; ${JSON.stringify(ended)}`);
  }

  // --- 6. the trunk requires 100rel (inbound) ----------------------------------------------
  if (section(6)) {
    const sipp = runSipp(work, 'rel100', pages('gateway_100rel_uac.xml'),
      ['-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort)], sipps);
    const answered = await page.evaluate(() => gw.waitIncoming(15000));
    results.check('6: an INVITE with Require: 100rel rings the page, which answers', answered.confirmed,
      `${JSON.stringify(answered.ended)}; ${await pageEvents()}`);
    const ended = await page.evaluate(() => gw.waitEnded(15000));
    const code = await sippExit(sipp, 8000);
    results.check('6: sipp got a reliable 180 (Require: 100rel, RSeq), 200 for its PRACK, then the 200 (exit 0)',
      code === 0 && ended && ended.originator === 'remote', `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}; ${JSON.stringify(ended)}`);
  }

  await browser.close();
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
  if (code !== 0) console.log(tb.logTail());
}

runSuite('gateway_refresh', TOTAL_MS, main, () => [workDir, serverDir]);
