#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// G.722 (HD voice) toward a trunk that offers only G.722 (issue 14), end to end: headless
// Chromium runs pages/gateway_call.html (JsSIP, relay-only ICE through turnbridge's TURN) and
// calls out through turnbridge to a sipp trunk whose SDP answer has G722/8000 only (PT 9, RFC 3551
// §4.5.2) and which echoes RTP (-rtp_echo). The gateway is set to codecs = ["opus", "g722", ...].
// The page's microphone plays 880 Hz and 5 kHz together: 5 kHz is beyond G.711's 4 kHz, so
// hearing it shows the call is wideband end to end.
//   Browser -> trunk: the RTP tap in front of sipp sees only PT 9, 160 bytes per 20 ms, 160 ticks
//   apart; an independent G.722 decoder (build/tests/unit/gateway/g722_tool) hears both tones in
//   it at 16 kHz (2 %).
//   Trunk -> browser: sipp's echo of that G.722 is decoded by the gateway and re-encoded as Opus:
//   the page hears both tones back (WebAudio, 2 %).
// The offer to the trunk lists G722 first; the call record says opus/G722.
// Loopback only; free ports; only our own PIDs are killed.
// interop-timeout: 90
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriples, freeRange, gatewayTurnbridge, REALM, REPO } = require('./harness');
const { dominantHz, openTap, UAS_SCENARIO, runSipp, sippExit, within, fmtHz } = require('./gateway_call_test');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');

const PAGE_TONE_HZ = 880;
const HIGH_TONE_HZ = 5000;   // above G.711's band
const OUT_NUMBER = '+15557000';
const TOTAL_MS = 80000;
const G722_TOOL = path.join(REPO, 'build', 'tests', 'unit', 'gateway', 'g722_tool');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

// The shared trunk UAS with its SDP answer changed to G.722 only (and the offer's telephone-event).
function g722Scenario() {
  const xml = fs.readFileSync(UAS_SCENARIO, 'utf8');
  const out = xml.replace('m=audio [$rtpport] RTP/AVP 0 [$tept]\na=rtpmap:0 PCMU/8000',
    'm=audio [$rtpport] RTP/AVP 9 [$tept]\na=rtpmap:9 G722/8000');
  if (out === xml) throw new Error(`${UAS_SCENARIO}: its SDP answer changed, update this test`);
  return out;
}

// The strongest frequency of `x` between `lo` and `hi` Hz (Goertzel, 5 Hz steps), with its power
// and that of PAGE_TONE_HZ in dB.
function bandPeak(x, rate, lo, hi) {
  const power = (f) => {
    const c = 2 * Math.cos((2 * Math.PI * f) / rate);
    let s1 = 0;
    let s2 = 0;
    for (const v of x) { const s0 = v + c * s1 - s2; s2 = s1; s1 = s0; }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
  };
  let best = { hz: lo, p: -1 };
  for (let f = lo; f < hi; f += 5) { const p = power(f); if (p > best.p) best = { hz: f, p }; }
  return { hz: best.hz, db: 10 * Math.log10(best.p), refDb: 10 * Math.log10(power(PAGE_TONE_HZ)) };
}

// The gateway's RTP toward the trunk: payload types, sizes, timestamp steps and the G.722 bytes.
function trunkAudio(tap) {
  const pts = new Map();
  const sizes = new Set();
  const steps = new Set();
  const g722 = [];
  let last = null;
  for (const { buf } of tap.toTrunk) {
    if (buf.length < 12 || (buf[0] >> 6) !== 2) continue;
    const pt = buf[1] & 0x7f;
    pts.set(pt, (pts.get(pt) || 0) + 1);
    if (pt !== 9) continue;
    const payload = buf.subarray(12 + 4 * (buf[0] & 0x0f));
    sizes.add(payload.length);
    const ts = buf.readUInt32BE(4);
    if (last !== null) steps.add((ts - last) >>> 0);
    last = ts;
    g722.push(payload);
  }
  return { pts, sizes: [...sizes], steps: [...steps], g722: Buffer.concat(g722), packets: g722.length };
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, sippPort] = await freePorts(3, taken);
  const [tapPort, echoPort] = await freeTriples(2, taken);
  const mediaLo = await freeRange(taken, 100);

  const { work, wav } = toneWorkDir('gateway-g722-', [PAGE_TONE_HZ, HIGH_TONE_HZ]);
  workDir = work;
  const scenario = path.join(work, 'uas_g722.xml');
  fs.writeFileSync(scenario, g722Scenario());
  results.check('the independent G.722 decoder is built', fs.existsSync(G722_TOOL), G722_TOOL);

  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
codecs = ["opus", "g722", "pcmu", "pcma"]
`);
  serverDir = tb.dir;
  await tb.start();

  const tap = await openTap(cleanup, tapPort, echoPort);
  const sipps = childList(cleanup);
  const { browser, page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort });

  const sipp = runSipp(work, 'uas_g722', scenario, ['-i', '127.0.0.1', '-p', String(sippPort),
    '-mp', String(echoPort), '-rtp_echo', '-set', 'rtpport', String(tapPort), '-set', 'hangup_ms', '0'], sipps);
  await sleep(300);
  tap.reset();
  const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
  results.check('the call to the G.722-only trunk is answered', call.confirmed, JSON.stringify(call.ended));
  const media = await page.evaluate(() => gw.waitMedia(15000));
  results.check('ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
    `${media.connection}, track ${media.track}`);
  await sleep(1000);
  const heard = await page.evaluate(() => gw.measure(2400));
  const high = await page.evaluate((band) => gw.measure(2400, 8, band[0], band[1]), [4000, 8000]);
  const stats = await page.evaluate(() => gw.stats());
  results.check(`trunk -> browser: the page hears its ${PAGE_TONE_HZ} Hz tone back from the trunk's G.722 echo (2 %)`,
    within(heard.peakHz, PAGE_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB, `
    + `${stats.packetsReceived} packets received (${stats.codec})`);
  // The same tone through a G.711 trunk would be gone (a 4 kHz band): it must stand well above the noise.
  results.check(`trunk -> browser: and its ${HIGH_TONE_HZ} Hz tone (wideband: 2 %, within 20 dB of the other)`,
    within(high.peakHz, HIGH_TONE_HZ) && high.peakDb > heard.peakDb - 20,
    `${fmtHz(high.peakHz)} Hz at ${fmtHz(high.peakDb)} dB`);
  const ended = await page.evaluate(() => gw.hangup(5000));
  results.check('the page hangs up (BYE)', call.confirmed && ended && ended.originator === 'local', JSON.stringify(ended));
  const code = await sippExit(sipp, 8000);
  results.check('sipp saw the whole call (exit 0)', code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);

  const log = sipp.messages();
  const invite = (/INVITE sip:[^]*?\r?\n\r?\n([^]*?)(?:\r?\n\r?\n|-{5,})/m.exec(log) || [])[1] || '';
  const mline = (/m=audio \d+ RTP\/AVP [0-9 ]+/.exec(invite) || [''])[0];
  results.check('the offer to the trunk lists G722/8000 first (PT 9), then G.711',
    /RTP\/AVP 9 0 8 \d+$/.test(mline) && /a=rtpmap:9 G722\/8000/.test(invite), mline || "no INVITE in sipp's log");
  const answer = (/SIP\/2.0 200 OK[^]*?\r?\n\r?\n([^]*?)(?:\r?\n\r?\n|-{5,})/m.exec(log) || [])[1] || '';
  results.check("sipp's SDP answer says G722 only", /m=audio \d+ RTP\/AVP 9 \d+/.test(answer) && !/PCMU/.test(answer),
    (/m=audio.*/.exec(answer) || ['no answer'])[0]);

  const trunk = trunkAudio(tap);
  let trunkHz = 0;
  let trunkHigh = { hz: 0, db: -Infinity };
  if (fs.existsSync(G722_TOOL) && trunk.g722.length > 16000) {
    const pcm = execFileSync(G722_TOOL, ['decode'], { input: trunk.g722, maxBuffer: 64 << 20 });
    const samples = [];
    for (let i = 0; i + 1 < pcm.length; i += 2) samples.push(pcm.readInt16LE(i));
    const steady = samples.slice(-32000);
    trunkHz = dominantHz(steady, 16000);
    trunkHigh = bandPeak(steady.slice(-8000), 16000, 4000, 7500);
  }
  results.check(`browser -> trunk: only G.722 (PT 9), 160 bytes and 160 ticks per 20 ms, carrying ${PAGE_TONE_HZ} Hz at 16 kHz (2 %)`,
    trunk.packets > 50 && trunk.pts.size === 1 && JSON.stringify(trunk.sizes) === '[160]'
      && JSON.stringify(trunk.steps) === '[160]' && within(trunkHz, PAGE_TONE_HZ),
    `${trunk.packets} packets, payload types ${JSON.stringify([...trunk.pts])}, sizes ${trunk.sizes}, `
    + `steps ${trunk.steps}, ${fmtHz(trunkHz)} Hz`);
  results.check(`browser -> trunk: and ${HIGH_TONE_HZ} Hz (wideband, 2 %), as loud as ${PAGE_TONE_HZ} Hz within 10 dB`,
    within(trunkHigh.hz, HIGH_TONE_HZ) && Math.abs(trunkHigh.db - trunkHigh.refDb) <= 10,
    `${fmtHz(trunkHigh.hz)} Hz, ${fmtHz(trunkHigh.db - trunkHigh.refDb)} dB against ${PAGE_TONE_HZ} Hz`);

  await page.evaluate(() => gw.stop());
  await browser.close();
  await sleep(500);
  const record = fs.readFileSync(tb.logPath, 'utf8').split('\n').find((l) => l.includes('call record'));
  results.check('the call record names the codecs opus/G722', Boolean(record) && record.includes('opus/G722'),
    record || 'no call record in the log');
  results.check('turnbridge is still running', tb.alive());
  const exit = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', exit === 0, `exit ${exit}`);
}

runSuite('gateway_g722', TOTAL_MS, main, () => [workDir, serverDir]);
