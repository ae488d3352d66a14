#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Gateway mode end to end (issue 4) with real media: headless Chromium (Debian's
// /usr/bin/chromium via playwright-core) runs pages/gateway_call.html with JsSIP from npm,
// bundled for the browser by esbuild at test time; its fake microphone loops a WAV tone; ICE is
// relay-only through turnbridge's own TURN. The trunk is sipp (Debian sip-tester).
//   Outbound: sipp answers and echoes RTP (-rtp_echo). The page hears its own tone back
//   (WebAudio, within 2 %); the trunk leg carries PCMU of that frequency and the page's DTMF as
//   RFC 4733 events at 8000 Hz (seen by an RTP tap in front of sipp, below); BYE from the page
//   ends the trunk leg, BYE from sipp ends the page's session.
//   Inbound: sipp calls a routed DID and plays a PCMU tone from a pcap this test writes; the
//   page (registered, auto-answering) hears it.
//   The browser user's allocation is accounted with the call's bytes (admin API).
// The RTP tap: sipp's SDP names a UDP port of this process, which forwards each datagram to
// sipp's media port and sipp's echo back to the gateway, recording both directions.
// Loopback only (Chromium gets --host-resolver-rules); free ports; only our own PIDs are killed.
// interop-timeout: 170
'use strict';
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriples, freeRange, gatewayTurnbridge, adminConfig, adminGet, USER,
  REALM } = require('./harness');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');

const SIPP = '/usr/bin/sipp';
const DID = '+15550123';             // routed to USER: the inbound call
const OUT_NUMBER = '+15557000';      // any number: the outbound calls
const PAGE_TONE_HZ = 880;            // the page's fake microphone
const TRUNK_TONE_HZ = 600;           // what sipp plays on the inbound call
const DTMF_DIGITS = '159#';
const DTMF_MS = 200;                 // RFC 4733 duration at 8000 Hz: 1600
const TOTAL_MS = 160000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;  // this run's files: the WAV, the pcap, the bundle, sipp's scenarios and logs
let serverDir = null;  // turnbridge's config, certificate and log

// --- audio helpers -------------------------------------------------------------------------

const within = (hz, want) => Math.abs(hz - want) <= 0.02 * want;
const fmtHz = (x) => (typeof x === 'number' ? x.toFixed(1) : String(x));

// G.711 μ-law (ITU-T G.711), both ways, written out from the standard's segment rule.
function ulawDecode(u) {
  const x = ~u & 0xff;
  const t = (((x & 0x0f) << 3) + 0x84) << ((x & 0x70) >> 4);
  return x & 0x80 ? 0x84 - t : t - 0x84;
}
function ulawEncode(sample) {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

// Dominant frequency of 8 kHz samples (Goertzel power). A 5 Hz grid over 0.2 s blocks (their
// main lobe is ±5 Hz wide, so a tone between grid points is not missed), then 0.25 Hz steps
// around the winner over the whole signal.
function dominantHz(x, rate = 8000) {
  const power = (f, from, to) => {
    const c = 2 * Math.cos((2 * Math.PI * f) / rate);
    let s1 = 0;
    let s2 = 0;
    for (let i = from; i < to; i++) { const s0 = x[i] + c * s1 - s2; s2 = s1; s1 = s0; }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
  };
  const block = rate / 5;
  const blocked = (f) => {
    let sum = 0;
    for (let i = 0; i + block <= x.length; i += block) sum += power(f, i, i + block);
    return sum;
  };
  const argmax = (freqs, fn) => {
    let best = freqs[0];
    let bestP = -1;
    for (const f of freqs) { const p = fn(f); if (p > bestP) { best = f; bestP = p; } }
    return best;
  };
  const coarse = argmax(Array.from({ length: 760 }, (_, k) => 100 + 5 * k), blocked);
  return argmax(Array.from({ length: 41 }, (_, k) => coarse - 5 + 0.25 * k), (f) => power(f, 0, x.length));
}

// A pcap (Ethernet/IPv4/UDP) of `seconds` of RTP PCMU (PT 0) carrying a tone, 20 ms apart:
// sipp's play_pcap_audio replays it from its media port with the capture's pacing.
function writeTonePcap(file, hz, seconds) {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0); head.writeUInt16LE(2, 4); head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16); head.writeUInt32LE(1, 20);  // snaplen, DLT_EN10MB
  const parts = [head];
  const packets = seconds * 50;
  for (let k = 0; k < packets; k++) {
    const rtp = Buffer.alloc(12 + 160);
    rtp[0] = 0x80; rtp[1] = k === 0 ? 0x80 : 0x00;  // marker on the first packet
    rtp.writeUInt16BE(k & 0xffff, 2); rtp.writeUInt32BE(k * 160, 4); rtp.writeUInt32BE(0x5eed1e55, 8);
    for (let i = 0; i < 160; i++) rtp[12 + i] = ulawEncode(Math.round(8000 * Math.sin((2 * Math.PI * hz * (k * 160 + i)) / 8000)));
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(6000, 0); udp.writeUInt16BE(7000, 2); udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45; ip.writeUInt16BE(20 + 8 + rtp.length, 2); ip[8] = 64; ip[9] = 17;
    ip.set([127, 0, 0, 1], 12); ip.set([127, 0, 0, 1], 16);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    ip.writeUInt16BE(~sum & 0xffff, 10);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const frame = Buffer.concat([eth, ip, udp, rtp]);
    const rec = Buffer.alloc(16);
    const us = k * 20000;
    rec.writeUInt32LE(1700000000 + Math.floor(us / 1e6), 0); rec.writeUInt32LE(us % 1e6, 4);
    rec.writeUInt32LE(frame.length, 8); rec.writeUInt32LE(frame.length, 12);
    parts.push(rec, frame);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

// --- the RTP tap in front of sipp ---------------------------------------------------------

// An RtpTap listening on `port`, toward sipp's echo on `echoPort`, closed by `cleanup`.
async function openTap(cleanup, port, echoPort) {
  const tap = new RtpTap(port, echoPort);
  await tap.open();
  cleanup.push(() => tap.close());
  return tap;
}

class RtpTap {
  constructor(port, sippMediaPort) {
    this.port = port;
    this.sippMediaPort = sippMediaPort;
    this.limit = 20000;  // datagrams kept per direction: bounded memory
    this.reset();
  }

  reset() { this.toTrunk = []; this.fromTrunk = []; this.gateway = null; }

  // Datagrams the gateway sent toward the trunk after time `t` (ms since the epoch).
  sentAfter(t) { return this.toTrunk.filter((p) => p.t > t).length; }

  async open() {
    const bind = (s, port) => new Promise((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => { s.removeListener('error', reject); resolve(); });
    });
    this.front = dgram.createSocket('udp4');
    this.rtcp = dgram.createSocket('udp4');   // port + 1: the gateway's RTCP ends here
    this.back = dgram.createSocket('udp4');
    await bind(this.front, this.port);
    await bind(this.rtcp, this.port + 1);
    await bind(this.back, 0);
    this.front.on('message', (buf, rinfo) => {
      this.gateway = rinfo;
      if (this.toTrunk.length < this.limit) this.toTrunk.push({ t: Date.now(), buf });
      this.back.send(buf, this.sippMediaPort, '127.0.0.1');
    });
    this.back.on('message', (buf) => {
      if (this.fromTrunk.length < this.limit) this.fromTrunk.push({ t: Date.now(), buf });
      if (this.gateway) this.front.send(buf, this.gateway.port, this.gateway.address);
    });
    this.rtcp.on('message', () => {});
  }

  close() { for (const s of [this.front, this.rtcp, this.back]) { try { s.close(); } catch { /* closed */ } } }

  // What the gateway sent toward the trunk: the PCMU audio (decoded, in order) and the
  // RFC 4733 events of payload type `tePt`, one entry per event (RTP timestamp).
  analyse(tePt) {
    const rtp = this.toTrunk.map(({ buf }) => buf).filter((b) => b.length >= 12 && (b[0] >> 6) === 2);
    const pts = new Map();
    const audio = [];
    const events = new Map();
    for (const b of rtp) {
      const pt = b[1] & 0x7f;
      pts.set(pt, (pts.get(pt) || 0) + 1);
      const cc = b[0] & 0x0f;
      const off = 12 + 4 * cc;
      if (pt === 0) audio.push({ seq: b.readUInt16BE(2), ts: b.readUInt32BE(4), payload: b.subarray(off) });
      if (pt === tePt && b.length >= off + 4) {
        const ts = b.readUInt32BE(4);
        const e = events.get(ts) || { code: b[off], end: false, duration: 0, packets: 0 };
        e.packets++;
        e.duration = Math.max(e.duration, b.readUInt16BE(off + 2));
        e.end = e.end || (b[off + 1] & 0x80) !== 0;
        events.set(ts, e);
      }
    }
    const samples = [];
    for (const p of audio) for (const u of p.payload) samples.push(ulawDecode(u));
    const sizes = new Set(audio.map((p) => p.payload.length));
    return { pts, samples, packets: audio.length, sizes: [...sizes], events: [...events.values()] };
  }
}

// --- sipp ----------------------------------------------------------------------------------

// The trunk's UAS: pages/gateway_trunk_uas.xml (shared with gateway_aiortc_test.py).
const UAS_SCENARIO = path.join(__dirname, 'pages', 'gateway_trunk_uas.xml');

// sipp's 200 OK to the INVITE it received, answering PCMU at `ip`:`port`, then its ACK; `allow`
// adds the Allow header of a trunk that takes REFER and NOTIFY.
function uasAnswer({ ip = '[media_ip]', port = '[media_port]', allow = false } = {}) {
  return `  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
${allow ? 'Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY\n' : ''}Content-Type: application/sdp
Content-Length: [len]

v=0
o=trunk 1 1 IN IP4 ${ip}
s=-
c=IN IP4 ${ip}
t=0 0
m=audio ${port} RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
a=sendrecv

]]></send>
  <recv request="ACK" crlf="true"/>`;
}

// The trunk calling the DID: INVITE with PCMU, ACK, play the pcap tone, BYE after `holdMs`.
function uacScenario(pcap, holdMs) {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="turnbridge gateway test inbound call">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=trunk 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv

]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop>
    <action>
      <exec play_pcap_audio="${pcap}"/>
    </action>
  </nop>
  <pause milliseconds="${holdMs}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
`;
}

// One sipp run (one call unless `args` has its own -m) of scenario file `sf` in `dir`; resolves `done` with its exit code; `messages()`
// reads its -trace_msg log.
function runSipp(dir, name, sf, args, pids) {
  const p = spawn(SIPP, ['-sf', sf, ...args, ...(args.includes('-m') ? [] : ['-m', '1']), '-nostdin', '-timeout', '60s', '-timeout_error',
    '-trace_msg', '-trace_err', '-message_file', path.join(dir, `${name}_messages.log`),
    '-error_file', path.join(dir, `${name}_errors.log`)],
  { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  pids.push(p);
  let stderr = '';
  p.stderr.on('data', (d) => { if (stderr.length < 20000) stderr += d; });
  const done = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code ?? sig)));
  const read = (suffix) => { try { return fs.readFileSync(path.join(dir, `${name}_${suffix}.log`), 'utf8'); } catch { return ''; } };
  return {
    proc: p,
    done,
    messages: () => read('messages'),
    errors: () => `${read('errors').split('\n').slice(-6).join('\n')}${stderr.trim() ? `\n${stderr.trim().split('\n').slice(-4).join('\n')}` : ''}`,
  };
}

// Exit code of a sipp run, or 'still running' after `ms`.
const sippExit = (run, ms) => Promise.race([run.done, sleep(ms).then(() => 'still running')]);

// --- the test ------------------------------------------------------------------------------

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, adminPort, sippPort, uacPort] = await freePorts(5, taken);
  const [tapPort, echoPort, uacMediaPort] = await freeTriples(3, taken);
  const mediaLo = await freeRange(taken, 100);

  const { work, wav } = toneWorkDir('gateway-call-', PAGE_TONE_HZ);
  workDir = work;  // removed at the end when every check passed
  const pcap = path.join(work, 'tone.pcap');
  writeTonePcap(pcap, TRUNK_TONE_HZ, 12);

  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
caller_id = "+15550100"
codecs = ["opus", "pcmu", "pcma"]
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]

${adminConfig(adminPort, { flushInterval: 1 })}`);
  serverDir = tb.dir;
  await tb.start();

  const tap = await openTap(cleanup, tapPort, echoPort);
  const sipps = childList(cleanup);
  const { browser, page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort });
  const pageEvents = async () => (await page.evaluate(() => gw.events())).slice(-12).join(' | ');

  // --- outbound call 1: echo, DTMF, the page hangs up ----------------------------------------
  {
    const sipp = runSipp(work, 'uas_echo', UAS_SCENARIO, ['-i', '127.0.0.1', '-p', String(sippPort),
      '-mp', String(echoPort), '-rtp_echo', '-set', 'rtpport', String(tapPort), '-set', 'hangup_ms', '0'], sipps);
    await sleep(300);
    tap.reset();
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check('outbound: the call is answered (200 from sipp, ACK)', call.confirmed,
      `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('outbound: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}, track ${media.track}`);
    await sleep(1000);  // the echo's round trip and the decoders settle
    const heard = await page.evaluate(() => gw.measure(2400));
    const stats = await page.evaluate(() => gw.stats());
    results.check(`outbound: the page hears its own ${PAGE_TONE_HZ} Hz tone back through the trunk's echo (2 %)`,
      within(heard.peakHz, PAGE_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB, `
      + `${stats.packetsReceived} packets received (${stats.codec})`);
    results.check("outbound: the page's selected candidate is a TURN relay candidate",
      stats.local && stats.local.type === 'relay', JSON.stringify(stats.local || null) + ' -> ' + JSON.stringify(stats.remote || null));
    const left = await page.evaluate((a) => gw.dtmf(a.digits, a.ms, 120), { digits: DTMF_DIGITS, ms: DTMF_MS });
    results.check('outbound: the page sends DTMF through its RTCDTMFSender (RFC 4733)', left === '', `left in queue: "${left}"`);
    await sleep(300);
    const hangupAt = Date.now();
    const ended = await page.evaluate(() => gw.hangup(5000));
    results.check('outbound: the page hangs up (BYE)', call.confirmed && ended && ended.originator === 'local' && !ended.failed,
      JSON.stringify(ended));
    const code = await sippExit(sipp, 8000);
    results.check('outbound: BYE from the page reaches the trunk (sipp saw the whole call, exit 0)', call.confirmed && code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
    await sleep(1000);
    const late = tap.sentAfter(hangupAt + 500);
    results.check("outbound: the page's BYE also ends the trunk leg's media", call.confirmed && late === 0,
      `${late} datagrams toward the trunk more than 0.5 s after the hang-up`);

    // The INVITE toward the trunk: our own short G.711 SDP with telephone-event/8000.
    const log = sipp.messages();
    const invite = (/INVITE sip:[^]*?\r?\n\r?\n([^]*?)(?:\r?\n\r?\n|-{5,})/m.exec(log) || [])[1] || '';
    const te = /a=rtpmap:(\d+) telephone-event\/8000/.exec(invite);
    const tePt = te ? Number(te[1]) : -1;
    const leaks = ['a=fingerprint', 'a=ice-', 'a=extmap', 'a=ssrc', 'a=rtcp-fb', 'UDP/TLS', 'opus'].filter((x) => invite.includes(x));
    results.check('outbound: the trunk gets a plain G.711 SDP offer with telephone-event/8000',
      /m=audio \d+ RTP\/AVP /.test(invite) && /a=rtpmap:0 PCMU\/8000/.test(invite) && tePt > 0 && leaks.length === 0,
      invite ? `${invite.split(/\r?\n/).filter((l) => l.startsWith('m=')).join(' ')}; te ${tePt}${leaks.length ? `; browser attributes: ${leaks}` : ''}`
        : 'no INVITE in sipp\'s message log');

    const trunk = tap.analyse(tePt);
    const trunkHz = trunk.samples.length > 8000 ? dominantHz(trunk.samples.slice(-16000)) : 0;
    results.check(`outbound: the trunk leg carries PCMU at 20 ms of the page's ${PAGE_TONE_HZ} Hz tone (2 %)`,
      trunk.packets > 50 && within(trunkHz, PAGE_TONE_HZ) && JSON.stringify(trunk.sizes) === '[160]',
      `${trunk.packets} PCMU packets of ${trunk.sizes} bytes, ${trunkHz} Hz; payload types ${JSON.stringify([...trunk.pts])}; `
      + `${tap.fromTrunk.length} echoed back`);
    const want = [...DTMF_DIGITS].map((d) => ({ '*': 10, '#': 11 }[d] ?? Number(d)));
    const codes = trunk.events.map((e) => e.code);
    const durationsOk = trunk.events.every((e) => e.end && e.duration >= 0.7 * 8 * DTMF_MS && e.duration <= 1.5 * 8 * DTMF_MS);
    results.check(`outbound: the digits ${DTMF_DIGITS} reach the trunk as RFC 4733 events at 8000 Hz (PT ${tePt})`,
      JSON.stringify(codes) === JSON.stringify(want) && durationsOk,
      `events ${JSON.stringify(trunk.events.map((e) => `${e.code}:${e.duration}${e.end ? 'E' : ''}`))}, `
      + `want codes ${JSON.stringify(want)} with duration ~${8 * DTMF_MS}`);
  }

  // --- outbound call 2: the trunk hangs up -------------------------------------------------
  {
    const sipp = runSipp(work, 'uas_bye', UAS_SCENARIO, ['-i', '127.0.0.1', '-p', String(sippPort),
      '-mp', String(echoPort), '-rtp_echo', '-set', 'rtpport', String(tapPort), '-set', 'hangup_ms', '4000'], sipps);
    await sleep(300);
    tap.reset();
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OUT_NUMBER}@${REALM}`);
    results.check('outbound 2: the call is answered', call.confirmed, JSON.stringify(call.ended));
    const media = await page.evaluate(() => gw.waitMedia(15000));
    const ended = await page.evaluate(() => gw.waitEnded(15000));
    results.check("outbound 2: sipp's BYE ends the page's session", call.confirmed && ended && ended.originator === 'remote'
      && ended.cause === 'Terminated' && !ended.failed,
      `${JSON.stringify(ended)}; media was ${media.connection}`);
    const pc = await page.evaluate(() => gw.pcState());
    results.check("outbound 2: the page's peer connection is closed", call.confirmed && pc === 'closed', pc);
    const endedAt = Date.now();
    const code = await sippExit(sipp, 8000);
    results.check('outbound 2: sipp got 200 for its BYE (exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
    await sleep(1000);
    const late = tap.sentAfter(endedAt + 500);
    results.check("outbound 2: sipp's BYE also ends the gateway's media toward the trunk", call.confirmed
      && tap.toTrunk.length > 50 && late === 0, `${tap.toTrunk.length} datagrams during the call, ${late} more than 0.5 s after it ended`);
  }

  // --- inbound: sipp calls the DID, the page answers and hears sipp's tone --------------------
  {
    const uac = path.join(work, 'uac_tone.xml');
    fs.writeFileSync(uac, uacScenario(pcap, 9000));
    const sipp = runSipp(work, 'uac_tone', uac,
      ['-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort)], sipps);
    const answered = await page.evaluate(() => gw.waitIncoming(15000));
    results.check('inbound: the registered page gets the call to the DID and answers it', answered.confirmed,
      `${JSON.stringify(answered.ended)}; ${await pageEvents()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('inbound: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}, track ${media.track}`);
    await sleep(1000);
    const heard = await page.evaluate(() => gw.measure(2400));
    const stats = await page.evaluate(() => gw.stats());
    results.check(`inbound: the page hears sipp's ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(heard.peakHz, TRUNK_TONE_HZ),
      `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB, ${stats.packetsReceived} packets received (${stats.codec}), `
      + `local ${stats.local && stats.local.type}`);
    const ended = await page.evaluate(() => gw.waitEnded(15000));
    results.check("inbound: sipp's BYE ends the page's session", answered.confirmed && ended && ended.originator === 'remote'
      && ended.cause === 'Terminated' && !ended.failed, JSON.stringify(ended));
    const code = await sippExit(sipp, 8000);
    results.check('inbound: sipp (UAC) completed the call (exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }

  // --- accounting: the browser user's relay allocation carried the calls' media --------------
  await page.evaluate(() => gw.stop());
  await sleep(2500);
  const usage = await adminGet(adminPort, `/api/v1/usage?by=allocation&user=${USER}`);
  let rows = [];
  try { rows = JSON.parse(usage.body); } catch { /* reported below */ }
  const sum = (key) => (Array.isArray(rows) ? rows.reduce((s, r) => s + (Number(r[key]) || 0), 0) : 0);
  const toGateway = sum('relay_to_peer_payload_bytes');
  const fromGateway = sum('peer_to_relay_payload_bytes');
  // Three calls of several seconds of audio each way (~5 kB/s): far more than TURN's own chatter.
  results.check(`accounting: the calls' media is accounted both ways under the browser user "${USER}"`,
    usage.status === 200 && Array.isArray(rows) && rows.length >= 1 && toGateway > 40000 && fromGateway > 40000,
    `${usage.status}, ${Array.isArray(rows) ? rows.length : '?'} allocation rows, relay->gateway ${toGateway} B, `
    + `gateway->relay ${fromGateway} B${usage.status === 200 ? '' : `: ${usage.body.slice(0, 200)}`}`);

  await browser.close();
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
  if (code !== 0) console.log(tb.logTail());
}

// Required as a module (a self-check of the helpers), it only exports them.
if (require.main !== module) {
  module.exports = { writeTonePcap, ulawDecode, ulawEncode, dominantHz, RtpTap, openTap, UAS_SCENARIO, uacScenario, uasAnswer, runSipp,
    sippExit, within, fmtHz };
} else {
  runSuite('gateway_call', TOTAL_MS, main, () => [workDir, serverDir]);
}
