// SPDX-License-Identifier: Apache-2.0
// A browser's side of SIP over WebSocket (RFC 7118) for the Node gateway tests, without JsSIP:
// raw requests and responses, the digest rounds (RFC 2617 qop=auth) of REGISTER and INVITE.
// The caller is harness.js's USER of REALM. Loopback only (the URLs come from the tests).
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');
const { USER, PASSWORD, REALM, Turnbridge, childList, gatewayServerConfig } = require('./harness');

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');
const rnd = () => crypto.randomBytes(6).toString('hex');

// A bare SIP-over-WebSocket client: send text, wait for a message matching a predicate.
class WsSip {
  constructor(url) { this.url = url; this.inbox = []; this.waiters = []; }
  open() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url, 'sip', this.options || {});
      this.ws.on('open', resolve);
      this.ws.on('error', reject);
      this.ws.on('message', (data) => {
        const text = data.toString();
        const w = this.waiters.find((x) => x.pred(text));
        if (w) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(text); } else this.inbox.push(text);
      });
    });
  }
  send(text) { this.ws.send(text); }
  wait(pred, ms = 5000) {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        const k = this.waiters.indexOf(w);
        if (k >= 0) { this.waiters.splice(k, 1); resolve(null); }
      }, ms);
    });
  }
  close() { try { this.ws.close(); } catch { /* gone */ } }
}

const status = (m) => (m && /^SIP\/2\.0 (\d{3})/.exec(m) ? Number(/^SIP\/2\.0 (\d{3})/.exec(m)[1]) : 0);
const header = (m, name) => {
  const r = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(m || '');
  return r ? r[1].trim() : '';
};
const isResponse = (callId, cseqMethod) => (m) => m.startsWith('SIP/2.0')
  && header(m, 'Call-ID') === callId && header(m, 'CSeq').endsWith(cseqMethod);

function request({ method, uri, callId, cseq, fromTag, to, body = '', extra = [], contact = '', branch = '', from = '' }) {
  const lines = [`${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/WS client.invalid;branch=${branch || `z9hG4bK${rnd()}`}`,
    'Max-Forwards: 70',
    `From: ${from || `<sip:${USER}@${REALM}>`};tag=${fromTag}`,
    `To: ${to}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} ${method}`,
    `Contact: <${contact || `sip:${USER}@${rnd()}.invalid;transport=ws`}>`,
    ...extra];
  if (body) lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return lines.join('\r\n');
}

// A response to `req` (Via, From, To, Call-ID, CSeq copied; RFC 3261 §8.2.6).
function respond(req, code, reason, { toTag = '', body = '', contact = '' } = {}) {
  const lines = [`SIP/2.0 ${code} ${reason}`];
  for (const l of req.split('\r\n')) {
    if (/^(Via|From|Call-ID|CSeq):/i.test(l)) lines.push(l);
    else if (/^To:/i.test(l)) lines.push(toTag && !/;tag=/.test(l) ? `${l};tag=${toTag}` : l);
  }
  if (contact) lines.push(`Contact: <${contact}>`);
  if (body) lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return lines.join('\r\n');
}

// RFC 2617 qop=auth answer to a 401/407 challenge.
function digestHeader(challenge, method, uri, user, password) {
  const p = {};
  for (const m of challenge.matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) p[m[1].toLowerCase()] = m[3] ?? m[2];
  const cnonce = rnd();
  const nc = '00000001';
  const ha1 = md5(`${user}:${p.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const response = md5(`${ha1}:${p.nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", `
    + `response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}

// REGISTER with the 401 round; resolves to the final status.
// The user a client speaks for: `c.user`/`c.password` when the test set them, else USER.
const userOf = (c) => ({ user: c.user || USER, password: c.password || PASSWORD });

async function register(c, contact) {
  const callId = rnd();
  const fromTag = rnd();
  const uri = `sip:${REALM}`;
  const { user, password } = userOf(c);
  const to = `<sip:${user}@${REALM}>`;
  c.send(request({ method: 'REGISTER', uri, callId, cseq: 1, fromTag, to, contact, from: to }));
  const first = await c.wait(isResponse(callId, 'REGISTER'));
  if (status(first) !== 401) return status(first);
  const auth = digestHeader(header(first, 'WWW-Authenticate'), 'REGISTER', uri, user, password);
  c.send(request({ method: 'REGISTER', uri, callId, cseq: 2, fromTag, to, contact, from: to,
    extra: [`Authorization: ${auth}`] }));
  return status(await c.wait(isResponse(callId, 'REGISTER')));
}

// INVITE `uri` with `sdp`, through the 407 round; resolves to
// { callId, fromTag, first, final, elapsed } once a final response arrives (or null after finalMs).
// `from`: another From (name-addr) than the user's own, as a browser may send.
async function invite(c, uri, sdp, finalMs, from = '') {
  const { user, password } = userOf(c);
  if (!from && c.user) from = `<sip:${user}@${REALM}>`;
  const callId = rnd() + rnd();
  const fromTag = rnd();
  const to = `<${uri}>`;
  c.send(request({ method: 'INVITE', uri, callId, cseq: 1, fromTag, to, body: sdp, from }));
  const first = await c.wait((m) => isResponse(callId, 'INVITE')(m) && status(m) >= 200, 5000);
  if (status(first) !== 407) return { callId, first, final: first };
  c.send(request({ method: 'ACK', uri, callId, cseq: 1, fromTag, to: header(first, 'To'), from }));
  const auth = digestHeader(header(first, 'Proxy-Authenticate'), 'INVITE', uri, user, password);
  const t0 = Date.now();
  c.send(request({ method: 'INVITE', uri, callId, cseq: 2, fromTag, to, body: sdp, from,
    extra: [`Proxy-Authorization: ${auth}`] }));
  const final = await c.wait((m) => isResponse(callId, 'INVITE')(m) && status(m) >= 200, finalMs);
  return { callId, fromTag, first, final, elapsed: Date.now() - t0 };
}

// A browser's offer (Chrome's, saved in tests/fixtures), and a browser's answer to the gateway's
// offer in `offerMessage` (its first codec, ICE and DTLS attributes, a=setup:active): enough for
// the gateway's SDP mapping; no media flows.
const SDP = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'sdp', 'chrome_audio_offer.sdp'), 'utf8')
  .split(/\r?\n/).filter((l) => l).join('\r\n') + '\r\n';
function browserAnswer(offerMessage) {
  const offer = offerMessage.slice(offerMessage.indexOf('\r\n\r\n') + 4);
  const m = /^m=audio \d+ [A-Z/]+ (\d+)/m.exec(offer);
  const pt = m ? m[1] : '0';
  const rtpmap = new RegExp(`^a=rtpmap:${pt} (.*)$`, 'm').exec(offer);
  const mid = /^a=mid:(.*)$/m.exec(offer);
  const fp = Array.from(crypto.randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  return ['v=0', 'o=- 2 1 IN IP4 127.0.0.1', 's=-', 't=0 0', `a=group:BUNDLE ${mid ? mid[1] : '0'}`,
    `m=audio 9 UDP/TLS/RTP/SAVPF ${pt}`, 'c=IN IP4 0.0.0.0', `a=mid:${mid ? mid[1] : '0'}`,
    'a=ice-ufrag:nodeX', 'a=ice-pwd:nodejsnodejsnodejsnodejs', `a=fingerprint:sha-256 ${fp}`, 'a=setup:active',
    'a=rtcp-mux', 'a=sendrecv', `a=rtpmap:${pt} ${rtpmap ? rtpmap[1].trim() : 'PCMU/8000'}`, ''].join('\r\n');
}

// The browser's side of the dialog a 200 to invite() set up: ack() it (CSeq 2) at the 200's
// Contact; bye() (CSeq 3) resolves to the BYE's response.
function dialogOf(c, inv) {
  const to = header(inv.final, 'To');
  const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
  const send = (method, cseq) => c.send(request({ method, uri: target, callId: inv.callId, cseq, fromTag: inv.fromTag, to }));
  return { ack: () => send('ACK', 2), bye: () => { send('BYE', 3); return c.wait(isResponse(inv.callId, 'BYE')); } };
}

// The frame of the WebSocket gateway suites: turnbridge with gateway listeners and `extraConfig`,
// a list for the suite's sipp runs (killed at cleanup), and a WsSip connected to it.
async function gatewayWithClient({ wsPort, sipPort, extraConfig }, cleanup) {
  const tb = new Turnbridge({ serverConfig: gatewayServerConfig({ wsPort, sipPort }), extraConfig });
  cleanup.push(() => tb.killNow());
  await tb.start();
  const sipps = childList(cleanup);
  const c = new WsSip(`ws://127.0.0.1:${wsPort}/sip`);
  await c.open();
  cleanup.push(() => c.close());
  return { tb, sipps, c };
}

// Text for an XML attribute (a regular expression in a sipp scenario template).
const xmlText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

module.exports = { gatewayWithClient, dialogOf, xmlText, WsSip, status, header, isResponse, request, respond, digestHeader, register, invite, rnd, md5,
  SDP, browserAnswer };
