#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Identity and number format per trunk (issue 13), against sipp trunks and a WebSocket browser:
//   1. Outbound, three realms with one identity setting each (pai / rpid / from): sipp's UAS
//      (pages/gateway_identity_uas.xml, its regexes filled in here) checks the Request-URI
//      (e164_plus, tech_prefix, user=phone), From (caller_id, or the browser's From when
//      caller_ids lists it), To, the P-Asserted-Identity or Remote-Party-ID header, and that the
//      headers not configured are absent; it answers 486, which reaches the browser.
//   2. Inbound (pages/gateway_did_uac.xml): the carrier dials the routed DID +15551234567 as
//      "+15551234567", "15551234567", "5551234567" (national_prefix = "1") and tel:+1-555-123-4567;
//      each rings the same registered browser (JsSIP, npm, running in Node: it parses the INVITE
//      and its From as in a page, and refuses with 486). A withheld caller (From anonymous, or Privacy: id
//      with P-Asserted-Identity) reaches it as "Anonymous" <sip:anonymous@anonymous.invalid>; an
//      unrouted number gets 404 and rings nobody.
// interop-timeout: 120
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runSuite, portPicker, USER, PASSWORD, REALM } = require('./harness');
const { gatewayWithClient, xmlText: xml, status, invite, rnd, SDP } = require('./sip_ws');
const { runSipp, sippExit } = require('./gateway_call_test');
const JsSIP = require('jssip');

globalThis.WebSocket = require('ws');   // JsSIP's WebSocketInterface uses the global one
// JsSIP takes an incoming INVITE only where window.RTCPeerConnection exists; the calls here are
// refused before any answer, so none is ever made.
globalThis.window = globalThis.window || { RTCPeerConnection: function RTCPeerConnection() {} };

const DID = '+15551234567';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

// Outbound cases: a realm's gateway keys, the browser's From and number dialled, sipp's regexes.
const OUTBOUND = [
  {
    realm: 'pai.example',
    keys: 'identity = "pai"\nuser_phone = true\ne164_plus = true\nnational_prefix = "1"\ncaller_ids = ["+15550199"]',
    from: '<sip:+15550199@pai.example>', dial: '5551234567',
    says: 'P-Asserted-Identity with the allowed browser From, +E.164 from a national number, user=phone',
    re: {
      RURI: 'INVITE sip:\\+15551234567@127\\.0\\.0\\.1:[0-9]+;user=phone',
      FROM: '<sip:\\+15550199@[^>;]+;user=phone>',
      TO: '<sip:\\+15551234567@[^>;]+;user=phone>',
      ID: 'P-Asserted-Identity: <sip:\\+15550199@[^>;]+;user=phone>',
      ABSENT: 'Remote-Party-ID',
    },
  },
  {
    realm: 'rpid.example',
    keys: 'identity = "rpid"\ne164_plus = false\ntech_prefix = "1010#"\ncaller_ids = ["+15550199"]',
    from: '<sip:+15550111@rpid.example>', dial: '+15551234567',
    says: 'Remote-Party-ID with caller_id (the browser From is not listed), no "+", tech prefix, no user=phone',
    re: {
      RURI: 'INVITE sip:1010%2315551234567@127\\.0\\.0\\.1:[0-9]+;transport=udp SIP/2\\.0',
      FROM: '<sip:15550100@[^>;]+>',
      TO: '<sip:1010%2315551234567@',
      ID: 'Remote-Party-ID: <sip:15550100@[^>;]+>;party=calling;screen=yes;privacy=off',
      ABSENT: 'P-Asserted-Identity|user=phone',
    },
  },
  {
    realm: 'from.example',
    keys: '',
    from: '<sip:+15550199@from.example>', dial: '+15551234567',
    says: 'From only (the default): caller_id as given, no identity header, no user=phone',
    re: {
      RURI: 'INVITE sip:\\+15551234567@127\\.0\\.0\\.1:[0-9]+;transport=udp SIP/2\\.0',
      FROM: '<sip:\\+15550100@[^>;]+>',
      TO: '<sip:\\+15551234567@',
      ID: 'CSeq: [0-9]+ INVITE',
      ABSENT: 'P-Asserted-Identity|Remote-Party-ID|user=phone',
    },
  },
];

const ANONYMOUS = '"Anonymous" <sip:anonymous@anonymous.invalid>';

// A registered JsSIP phone that refuses every call with 486 and remembers who called.
function jssipPhone(wsUrl) {
  return new Promise((resolve) => {
    const ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(wsUrl)], uri: `sip:${USER}@${REALM}`,
      password: PASSWORD, register: false, session_timers: false,
      connection_recovery_min_interval: 60, connection_recovery_max_interval: 60 });
    const phone = { ua, calls: [], registered: false };
    const timer = setTimeout(() => resolve(phone), 8000);
    ua.on('registered', () => { phone.registered = true; clearTimeout(timer); resolve(phone); });
    ua.on('registrationFailed', () => { clearTimeout(timer); resolve(phone); });
    ua.on('connected', () => ua.register());
    ua.on('newRTCSession', (e) => {
      if (e.originator !== 'remote') return;
      const id = e.session.remote_identity;
      phone.calls.push({ display: id.display_name, user: id.uri.user, host: id.uri.host });
      e.session.terminate({ status_code: 486 });
    });
    ua.start();
  });
}

async function main(results, cleanup) {
  const pick = portPicker();
  const wsPort = await pick();
  const sipPort = await pick();
  const sippPort = await pick();
  const uacPort = await pick();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-identity-'));
  workDir = work;
  const trunk = `trunk = "sip:127.0.0.1:${sippPort};transport=udp"\ncaller_id = "+15550100"`;
  const realms = OUTBOUND.map((c) => `
[realm."${c.realm}"]
users = { ${USER} = "${PASSWORD}" }
[realm."${c.realm}".gateway]
enabled = true
${trunk}
${c.keys}
`).join('');
  const { tb, sipps, c } = await gatewayWithClient({ wsPort, sipPort, extraConfig: `
[realm."${REALM}".gateway]
enabled = true
${trunk}
national_prefix = "1"
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]
${realms}` }, cleanup);
  serverDir = tb.dir;

  // --- 1. outbound identity per realm ---------------------------------------------------------
  const template = fs.readFileSync(path.join(__dirname, 'pages', 'gateway_identity_uas.xml'), 'utf8');
  for (const o of OUTBOUND) {
    let scenario = template;
    for (const [k, v] of Object.entries(o.re)) scenario = scenario.replace(`"@${k}@"`, `"${xml(v)}"`);
    const sf = path.join(work, `identity_${o.realm}.xml`);
    fs.writeFileSync(sf, scenario);
    const sipp = runSipp(work, `identity_${o.realm}`, sf, ['-i', '127.0.0.1', '-p', String(sippPort)], sipps);
    await sleep(300);
    const inv = await invite(c, `sip:${o.dial}@${o.realm}`, SDP, 8000, o.from);
    const code = await sippExit(sipp, 8000);
    const sent = sipp.messages().split(/\r?\n\r?\n/).find((m) => /INVITE sip:/.test(m)) || '';
    results.check(`1 [${o.realm}]: ${o.says} (sipp's regexes, exit 0)`, code === 0 && status(inv.final) === 486,
      `exit ${code}, browser got ${status(inv.final)}${code === 0 ? '' : `: ${sipp.errors()}\n${sent.slice(0, 700)}`}`);
  }

  // --- 2. inbound DIDs and withheld callers ---------------------------------------------------
  JsSIP.debug.disable('JsSIP:*');
  const phone = await jssipPhone(`ws://127.0.0.1:${wsPort}/sip`);
  cleanup.push(() => phone.ua.stop());
  results.check('the browser (JsSIP) registers', phone.registered);
  const rang = async (n, ms) => { const end = Date.now() + ms; while (phone.calls.length < n && Date.now() < end) await sleep(100); return phone.calls[n - 1] || null; };
  const at = `127.0.0.1:${sipPort}`;
  const caller = '<sip:+15550142@127.0.0.1>';
  const INBOUND = [
    { name: '"+15551234567"', ruri: `sip:+15551234567@${at}`, to: `<sip:+15551234567@${at}>`, from: caller, shows: '+15550142' },
    { name: '"15551234567"', ruri: `sip:15551234567@${at}`, to: `<sip:15551234567@${at}>`, from: caller, shows: '+15550142' },
    { name: '"5551234567" (national_prefix = "1")', ruri: `sip:5551234567@${at}`, to: `<sip:5551234567@${at}>`, from: caller, shows: '+15550142' },
    { name: 'tel:+1-555-123-4567 (Request-URI and To)', ruri: 'tel:+1-555-123-4567', to: '<tel:+1-555-123-4567>', from: caller, shows: '+15550142' },
    { name: 'From anonymous', ruri: `sip:+15551234567@${at}`, to: `<sip:+15551234567@${at}>`, from: ANONYMOUS, anonymous: true },
    { name: 'Privacy: id with P-Asserted-Identity', ruri: `sip:+15551234567@${at}`, to: `<sip:+15551234567@${at}>`, from: caller,
      extra: ['P-Asserted-Identity: <sip:+15550142@127.0.0.1>', 'Privacy: id'], anonymous: true },
  ];
  let calls = 0;
  for (const i of INBOUND) {
    const extra = i.extra || ['Subject: DID test', 'X-Case: plain'];
    const sipp = runSipp(work, `did_${rnd()}`, path.join(__dirname, 'pages', 'gateway_did_uac.xml'),
      ['127.0.0.1:' + sipPort, '-i', '127.0.0.1', '-p', String(uacPort), '-set', 'ruri', i.ruri, '-set', 'to', i.to,
        '-set', 'from', i.from, '-set', 'extra1', extra[0], '-set', 'extra2', extra[1]], sipps);
    const call = await rang(++calls, 8000);
    const code = await sippExit(sipp, 8000);
    const from = call ? `"${call.display || ''}" <sip:${call.user}@${call.host}>` : '';
    const fromOk = call && (i.anonymous ? from === ANONYMOUS : call.user === i.shows);
    results.check(`2: the carrier dials ${i.name}: the browser rings, the caller ${i.anonymous ? 'anonymous' : 'shown'}; `
      + 'sipp gets its 486 (exit 0)', fromOk && code === 0,
      `${call ? `rang, From ${from}` : 'did not ring'}; sipp exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }
  {
    const sipp = runSipp(work, 'did_unrouted', path.join(__dirname, 'pages', 'gateway_did_uac.xml'),
      ['127.0.0.1:' + sipPort, '-i', '127.0.0.1', '-p', String(uacPort), '-set', 'ruri', `sip:+15551234568@${at}`,
        '-set', 'to', `<sip:+15551234568@${at}>`, '-set', 'from', caller, '-set', 'extra1', 'Subject: x', '-set', 'extra2', 'X-Case: x'], sipps);
    const call = await rang(calls + 1, 3000);
    await sippExit(sipp, 8000);
    results.check('2: a number one digit off gets 404 and rings nobody', call === null && /SIP\/2\.0 404/.test(sipp.messages()),
      call ? `rang: ${JSON.stringify(call)}` : `404 in sipp's log: ${/SIP\/2\.0 404/.test(sipp.messages())}`);
  }

  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

runSuite('gateway_identity', 110000, main, () => [workDir, serverDir]);
