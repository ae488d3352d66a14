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
//   attended: the page has two calls, to party A (+15557000, plays 440 Hz) and party B
//     (+15557002, plays 1000 Hz) of a small trunk written here (UDP SIP, RTP parties that record
//     what they hear); JsSIP's sessionA.refer(target, {replaces: sessionB}) gets 202, NOTIFY 100
//     and 200, both of the page's sessions end by the gateway's BYEs, A hears B's tone and B
//     A's (decoded from their RTP), and A's BYE reaches B. A Replaces naming no call gets 202
//     and NOTIFY 481, one naming the call itself 400 (issue 14, RFC 3891).
//   inbound: that trunk calls the page's DID from a caller playing 440 Hz (from a second port,
//     its origination address), the page auto-answers and hears it; its refer() to +15557001
//     gets the trunk's 403, so turnbridge calls the target (1000 Hz) as an outbound call goes,
//     at the trunk's configured target: 202, NOTIFY 100 and 200, the trunk's first call BYEd,
//     the page hears the target, and the page's hang-up BYEs the target's call.
// interop-timeout: 130
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { runSuite, childList, freePorts, freeTriple, freeRange, gatewayTurnbridge, USER, REALM } = require('./harness');
const { WsSip, request, status, isResponse, invite, dialogOf, rnd, SDP } = require('./sip_ws');
const dgram = require('node:dgram');
const { writeTonePcap, runSipp, sippExit, within, fmtHz, ulawDecode, ulawEncode, dominantHz } = require('./gateway_call_test');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');
const { inDialog, answer, reply, ok, remember, acceptingScenario } = require('./sipp_transfer');

const OUT_NUMBER = '+15557000';
const TARGET = '+15557001';
const DID = '+15550123';
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

// --- attended transfer: a trunk with two parties ------------------------------------------

// One party of the trunk: an RTP socket that, once the gateway's RTP reaches it, sends a PCMU
// tone of `hz` back every 20 ms (symmetric RTP) and keeps what it hears (bounded): audio, and
// RFC 4733 events (PT 101) as {digit, end, ts}. dtmf(d) keys a digit (RFC 4733 §2.5).
class Party {
  constructor(hz) { this.hz = hz; this.heard = []; this.events = []; this.sent = 0; this.peer = null; }
  async open() {
    this.sock = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => { this.sock.once('error', reject); this.sock.bind(0, '127.0.0.1', resolve); });
    this.port = this.sock.address().port;
    this.sock.on('message', (buf, rinfo) => {
      if (buf.length >= 16 && (buf[0] >> 6) === 2 && (buf[1] & 0x7f) === 101 && this.events.length < 500) {
        const at = 12 + 4 * (buf[0] & 0x0f);
        this.events.push({ digit: buf[at], end: (buf[at + 1] & 0x80) !== 0, ts: buf.readUInt32BE(4), marker: (buf[1] & 0x80) !== 0 });
        return;
      }
      if (buf.length < 12 || (buf[0] >> 6) !== 2 || (buf[1] & 0x7f) !== 0) return;
      if (this.heard.length < 5000) this.heard.push({ t: Date.now(), payload: buf.subarray(12 + 4 * (buf[0] & 0x0f)) });
      if (!this.peer) {
        this.peer = rinfo;
        this.timer = setInterval(() => this.tick(), 20);
      }
    });
  }
  tick() {
    const k = this.sent++;
    const rtp = Buffer.alloc(12 + 160);
    rtp[0] = 0x80;
    rtp.writeUInt16BE(k & 0xffff, 2); rtp.writeUInt32BE((k * 160) >>> 0, 4); rtp.writeUInt32BE(0x7a000000 + this.hz, 8);
    for (let i = 0; i < 160; i++) rtp[12 + i] = ulawEncode(Math.round(8000 * Math.sin((2 * Math.PI * this.hz * (k * 160 + i)) / 8000)));
    this.sock.send(rtp, this.peer.port, this.peer.address);
  }
  // `digit` (0-9) for 60 ms: packets 20 ms apart sharing the event's timestamp, the end three times.
  async dtmf(digit) {
    const ts = (this.sent * 160) >>> 0;
    const durations = [160, 320, 480, 480, 480];
    for (let i = 0; i < durations.length; i++) {
      const p = Buffer.alloc(16);
      p[0] = 0x80; p[1] = 101 | (i === 0 ? 0x80 : 0);
      p.writeUInt16BE((50000 + i) & 0xffff, 2); p.writeUInt32BE(ts, 4); p.writeUInt32BE(0x7a000000 + this.hz, 8);
      p[12] = digit; p[13] = (i >= 2 ? 0x80 : 0) | 10; p.writeUInt16BE(durations[i], 14);
      this.sock.send(p, this.peer.port, this.peer.address);
      await sleep(20);
    }
  }
  // The dominant frequency of what it heard after time `from` (ms since the epoch).
  heardHz(from) {
    const x = [];
    for (const p of this.heard) if (p.t > from) for (const u of p.payload) x.push(ulawDecode(u));
    return x.length >= 4000 ? dominantHz(x) : 0;
  }
  close() { clearInterval(this.timer); try { this.sock.close(); } catch { /* closed */ } }
}

// The trunk (UDP SIP on `port`): answers each INVITE at once with the SDP of the party its
// number names, 200 to BYE and anything else in a dialog (403 to REFER with `refuseRefer`);
// bye(number) hangs a party up, dial() calls the gateway from a party.
class TwoPartyTrunk {
  constructor(port, parties, { refuseRefer = false } = {}) {
    this.port = port; this.parties = parties; this.calls = new Map(); this.refuseRefer = refuseRefer;
  }
  static sdp(party) {
    return ['v=0', 'o=trunk 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${party.port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15',
      'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
  }
  // An inbound call from `party` (as `from`) to `did` at the gateway's SIP port; ACKs its 2xx.
  // It leaves from a second port (the carrier's origination address, its Via and Contact),
  // not the configured trunk target: calls to the trunk must come to `port` (issue 14).
  dial(from, did, sipPort, party) {
    const callId = `dial${Date.now()}@127.0.0.1`;
    const body = TwoPartyTrunk.sdp(party);
    const call = { number: from, party, tag: 'dialtag', from: `<sip:${did}@127.0.0.1:${sipPort}>`,
      to: `<sip:${from}@127.0.0.1:${this.originPort}>`, contact: `sip:${did}@127.0.0.1:${sipPort}`,
      rinfo: { port: sipPort, address: '127.0.0.1' }, bye: null, cseq: 1, dialled: true, answered: null };
    this.calls.set(callId, call);
    const text = [`INVITE sip:${did}@127.0.0.1:${sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.originPort};branch=z9hG4bKdial${Date.now()}`,
      `From: ${call.to};tag=${call.tag}`, `To: ${call.from}`, `Call-ID: ${callId}`, 'CSeq: 1 INVITE',
      `Contact: <sip:trunk@127.0.0.1:${this.originPort}>`, 'Max-Forwards: 70', 'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
    this.origin.send(text, sipPort, '127.0.0.1');
  }
  async open() {
    this.sock = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => { this.sock.once('error', reject); this.sock.bind(this.port, '127.0.0.1', resolve); });
    this.sock.on('message', (buf, rinfo) => this.onMessage(buf.toString(), rinfo, this.sock, this.port));
    this.origin = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => { this.origin.once('error', reject); this.origin.bind(0, '127.0.0.1', resolve); });
    this.originPort = this.origin.address().port;
    this.origin.on('message', (buf, rinfo) => this.onMessage(buf.toString(), rinfo, this.origin, this.originPort));
  }
  static headers(text, name, compact) {
    const re = new RegExp(`^(?:${name}${compact ? `|${compact}` : ''})\\s*:\\s*(.*)$`, 'gim');
    return [...text.split('\r\n\r\n')[0].matchAll(re)].map((m) => m[1].trim());
  }
  // `sock`/`port`: the socket it came to (the configured target, or dial()'s origination port).
  onMessage(text, rinfo, sock, port) {
    const h = (n, c) => TwoPartyTrunk.headers(text, n, c)[0] || '';
    if (text.startsWith('SIP/2.0')) {
      // The answer to our BYE, or to a dialled INVITE: its 2xx gets an ACK (each retransmission too).
      const c = this.calls.get(h('Call-ID', 'i'));
      if (!c || !c.dialled || !/^SIP\/2\.0 2/.test(text) || !/INVITE/.test(h('CSeq'))) return;
      c.from = h('To', 't');   // with the gateway's tag: our BYE's To
      c.contact = (/<([^>]+)>/.exec(h('Contact', 'm')) || [])[1] || c.contact;
      c.answered = c.answered || Date.now();
      const ack = [`ACK ${c.contact} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKack${Date.now()}`,
        `From: ${c.to};tag=${c.tag}`, `To: ${c.from}`, `Call-ID: ${h('Call-ID', 'i')}`, 'CSeq: 1 ACK', 'Max-Forwards: 70',
        'Content-Length: 0', '', ''].join('\r\n');
      sock.send(ack, c.rinfo.port, c.rinfo.address);
      return;
    }
    const method = text.split(' ')[0];
    const callId = h('Call-ID', 'i');
    let call = this.calls.get(callId);
    if (method === 'INVITE' && !call) {
      const number = (/^INVITE sip:([^@;]+)@/.exec(text) || [])[1];
      call = { number, party: this.parties[number], tag: `tt${this.calls.size + 1}`, from: h('From', 'f'), to: h('To', 't'),
        contact: (/<([^>]+)>/.exec(h('Contact', 'm')) || [])[1], rinfo, bye: null, cseq: 1, at: port,
        ruri: text.split(' ')[1] };
      this.calls.set(callId, call);
    }
    if (method === 'ACK') return;
    let extra = '';
    let body = '';
    if (method === 'INVITE' && call && call.party) {
      body = TwoPartyTrunk.sdp(call.party);
      extra = `Contact: <sip:trunk@127.0.0.1:${port}>\r\nContent-Type: application/sdp\r\n`;
    }
    if (method === 'BYE' && call) call.bye = Date.now();
    const to = h('To', 't');
    if (method === 'REFER' && call) call.refer = Date.now();
    const status = method === 'INVITE' && !(call && call.party) ? '404 Not Found'
      : method === 'REFER' && this.refuseRefer ? '403 Forbidden' : '200 OK';
    const lines = [`SIP/2.0 ${status}`, ...TwoPartyTrunk.headers(text, 'Via', 'v').map((v) => `Via: ${v}`),
      `From: ${h('From', 'f')}`, `To: ${to}${/;tag=/.test(to) || !call ? '' : `;tag=${call.tag}`}`, `Call-ID: ${callId}`,
      `CSeq: ${h('CSeq')}`];
    sock.send(`${lines.join('\r\n')}\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      rinfo.port, rinfo.address);
  }
  call(number) { return [...this.calls.entries()].find(([, c]) => c.number === number); }
  bye(number) {
    const [callId, c] = this.call(number);
    const text = [`BYE ${c.contact} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${callId.slice(0, 8)}bye`,
      `From: ${c.to};tag=${c.tag}`, `To: ${c.from}`, `Call-ID: ${callId}`, `CSeq: ${++c.cseq} BYE`, 'Max-Forwards: 70',
      'Content-Length: 0', '', ''].join('\r\n');
    this.sock.send(text, c.rinfo.port, c.rinfo.address);
  }
  close() { for (const s of [this.sock, this.origin]) try { s.close(); } catch { /* closed */ } }
}

async function attended(results, cleanup, { page, sippPort }) {
  const A = '+15557000';
  const B = '+15557002';
  const partyA = new Party(440);
  const partyB = new Party(1000);
  for (const p of [partyA, partyB]) { await p.open(); cleanup.push(() => p.close()); }
  const trunk = new TwoPartyTrunk(sippPort, { [A]: partyA, [B]: partyB });
  await trunk.open();
  cleanup.push(() => trunk.close());
  for (const [name, number] of [['A', A], ['B', B]]) {
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${number}@${REALM}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check(`attended: the page's call ${name} to ${number} is answered, its media connected`,
      call.confirmed && media.connection === 'connected', `${JSON.stringify(call)} ${JSON.stringify(media)}`);
    await page.evaluate((n) => gw.keep(n), name);
  }
  await sleep(1500);
  const before = Date.now() - 1200;
  results.check(`attended: before the transfer party A hears the page's ${PAGE_TONE_HZ} Hz tone`,
    within(partyA.heardHz(before), PAGE_TONE_HZ), `${fmtHz(partyA.heardHz(before))} Hz`);
  // Hostile Replaces: no such call, and the referring call itself.
  const target = `sip:${B}@${REALM}`;
  const unknown = await page.evaluate((t) => gw.referReplacing('A', t, { callId: 'nosuchcall', toTag: 'x', fromTag: 'y' }, 5000), target);
  results.check('attended: a Replaces naming no call of the user gets 202 and NOTIFY 481 (the call goes on)',
    JSON.stringify(unknown) === '["response 202","notify 481"]', JSON.stringify(unknown));
  const self = await page.evaluate((t) => gw.referReplacing('A', t, 'A', 5000), target);
  results.check('attended: a Replaces naming the referring call itself gets 400', JSON.stringify(self) === '["response 400"]',
    JSON.stringify(self));
  // The transfer.
  const seen = await page.evaluate((t) => gw.referReplacing('A', t, 'B', 8000), target);
  const joined = Date.now();
  results.check('attended: refer(target, {replaces: B}) on call A gets 202, NOTIFY 100 and 200',
    JSON.stringify(seen) === JSON.stringify(['response 202', 'notify 100', 'notify 200']), JSON.stringify(seen));
  const endedA = await page.evaluate(() => gw.keptEnded('A', 5000));
  const endedB = await page.evaluate(() => gw.keptEnded('B', 5000));
  results.check('attended: both of the page\'s sessions end normally by the gateway\'s BYE',
    endedA && endedA.originator === 'remote' && !endedA.failed && endedB && endedB.originator === 'remote' && !endedB.failed,
    `${JSON.stringify(endedA)} ${JSON.stringify(endedB)}`);
  await sleep(2600);
  const aHears = partyA.heardHz(joined + 500);
  const bHears = partyB.heardHz(joined + 500);
  results.check(`attended: party A now hears party B's ${partyB.hz} Hz`, within(aHears, partyB.hz), `${fmtHz(aHears)} Hz`);
  results.check(`attended: party B now hears party A's ${partyA.hz} Hz`, within(bHears, partyA.hz), `${fmtHz(bHears)} Hz`);
  // DTMF between the joined parties (a PIN keyed into the party one was transferred to).
  const keyed = (party, digit) => party.events.filter((e) => e.digit === digit);
  await partyA.dtmf(7);
  await partyB.dtmf(3);
  await sleep(300);
  const toB = keyed(partyB, 7);
  const toA = keyed(partyA, 3);
  results.check('attended: RFC 4733 digits pass between the joined parties (A keys 7, B hears it; B keys 3, A hears it)',
    toB.length === 5 && toB[0].marker && toB.filter((e) => e.end).length === 3 && toB.every((e) => e.ts === toB[0].ts)
      && toA.length === 5 && toA.filter((e) => e.end).length === 3,
    `B got ${JSON.stringify(toB)}; A got ${toA.length} packets of 3`);
  trunk.bye(A);
  const t0 = Date.now();
  while (!trunk.call(B)[1].bye && Date.now() - t0 < 4000) await sleep(50);
  results.check('attended: party A\'s BYE reaches party B (the gateway hangs the joined call up)',
    !!trunk.call(B)[1].bye, `${trunk.call(B)[1].bye ? trunk.call(B)[1].bye - t0 : 'no BYE'} ms`);
  trunk.close();
}

// The browser's blind transfer on an inbound call, refused by the trunk: turnbridge's own call
// to the target through the trunk becomes the call's trunk leg (issue 14).
async function inbound(results, cleanup, { page, sipPort, sippPort }) {
  const CALLER = '+15557654';
  const caller = new Party(440);
  const target = new Party(TARGET_TONE_HZ);
  for (const p of [caller, target]) { await p.open(); cleanup.push(() => p.close()); }
  const trunk = new TwoPartyTrunk(sippPort, { [TARGET]: target }, { refuseRefer: true });
  await trunk.open();
  cleanup.push(() => trunk.close());
  trunk.dial(CALLER, DID, sipPort, caller);
  const first = await page.evaluate(() => gw.waitIncoming(15000));
  const media = await page.evaluate(() => gw.waitMedia(15000));
  results.check(`inbound: the trunk's call to ${DID} is answered by the page, its media connected`,
    first.confirmed && media.connection === 'connected', `${JSON.stringify(first)} ${JSON.stringify(media)}`);
  await sleep(800);
  const before = await page.evaluate(() => gw.measure(1600));
  results.check(`inbound: before the transfer the page hears the caller's ${caller.hz} Hz`,
    within(before.peakHz, caller.hz), `${fmtHz(before.peakHz)} Hz at ${fmtHz(before.peakDb)} dB`);
  const seen = await page.evaluate((t) => gw.refer(t, 10000), `sip:${TARGET}@${REALM}`);
  const [, firstCall] = trunk.call(CALLER);
  results.check('inbound: the trunk\'s 403 to our REFER becomes 202, NOTIFY 100 ... 200 as turnbridge calls the target',
    !!firstCall.refer && seen[0] === 'response 202' && seen[1] === 'notify 100' && seen[seen.length - 1] === 'notify 200',
    `${JSON.stringify(seen)}, REFER ${firstCall.refer ? 'seen' : 'not seen'}`);
  const t0 = Date.now();
  while (!firstCall.bye && Date.now() - t0 < 4000) await sleep(50);
  const toTarget = trunk.call(TARGET);
  results.check(`inbound: the trunk got our INVITE to ${TARGET} and a BYE for the call it placed`,
    !!toTarget && !!firstCall.bye, `${toTarget ? 'INVITE' : 'no INVITE'}, ${firstCall.bye ? 'BYE' : 'no BYE'}`);
  // As an outbound call goes: to the trunk's configured target and host, not back to the
  // address (and Contact) the trunk's call came from.
  results.check(`inbound: our INVITE to ${TARGET} went to the trunk's configured target (port ${sippPort}), not its origination port ${trunk.originPort}`,
    !!toTarget && toTarget[1].at === sippPort && toTarget[1].ruri === `sip:${TARGET}@127.0.0.1:${sippPort};transport=udp`,
    toTarget ? `at port ${toTarget[1].at}, ${toTarget[1].ruri}` : 'no INVITE');
  await sleep(1200);
  const heard = await page.evaluate(() => gw.measure(2400));
  results.check(`inbound: the page now hears the target's ${TARGET_TONE_HZ} Hz tone (2 %)`,
    within(heard.peakHz, TARGET_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
  const hears = target.heardHz(Date.now() - 2000);
  results.check(`inbound: the target hears the page's ${PAGE_TONE_HZ} Hz tone`, within(hears, PAGE_TONE_HZ), `${fmtHz(hears)} Hz`);
  const ended = await page.evaluate(() => gw.hangup(5000));
  const t1 = Date.now();
  while (toTarget && !toTarget[1].bye && Date.now() - t1 < 4000) await sleep(50);
  results.check('inbound: the page hangs up normally and the BYE reaches the target\'s call',
    ended && !ended.failed && !!toTarget && !!toTarget[1].bye, `${JSON.stringify(ended)}, ${toTarget && toTarget[1].bye ? 'BYE' : 'no BYE'}`);
  trunk.close();
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
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]
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
  // --- attended transfer between the page's two calls (issue 14) ----------------------------
  await attended(results, cleanup, { page, sippPort });
  // --- a blind transfer on an inbound call, refused by the trunk (issue 14) -----------------
  await inbound(results, cleanup, { page, sipPort, sippPort });
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

runSuite('gateway_transfer', 125000, main, () => [workDir, serverDir]);
