// SPDX-License-Identifier: Apache-2.0
// Gateway signaling with SIP.js (npm), the other browser SIP stack issue 4 names, run in node with
// the `ws` package as its WebSocket. Node has no WebRTC, so SIP.js gets a session description
// handler that offers a saved Chrome offer and keeps the gateway's answer. sipp (Debian
// sip-tester) is the trunk's UAS. Checks: a wrong password gets 403, REGISTER is accepted,
// an INVITE reaches sipp and comes back established with our ICE-lite DTLS answer, BYE from
// SIP.js reaches sipp, and stopping the user agent unregisters. Loopback only; own PIDs only.
// interop-timeout: 120
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { Turnbridge, Results, portPicker, USER, PASSWORD, REALM, gatewayServerConfig } = require('./harness');

globalThis.WebSocket = WebSocket;   // SIP.js's transport uses the global one

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (p, ms, fallback) => Promise.race([p, sleep(ms).then(() => fallback)]);
const OFFER = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'sdp', 'chrome_audio_offer.sdp'), 'utf8')
  .split(/\r?\n/).filter((l) => l).join('\r\n') + '\r\n';

// What SIP.js asks of a session description handler, without WebRTC.
class FixedOfferHandler {
  constructor() { this.remote = ''; }
  close() {}
  getDescription() { return Promise.resolve({ body: OFFER, contentType: 'application/sdp' }); }
  hasDescription(contentType) { return contentType === 'application/sdp'; }
  setDescription(sdp) { this.remote = typeof sdp === 'string' ? sdp : String(sdp && sdp.body); return Promise.resolve(); }
  sendDtmf() { return false; }
  rollbackDescription() { return Promise.resolve(); }
}

async function main(results) {
  const SIP = await import('sip.js');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-sipjs-'));
  const pick = portPicker();
  const [wsPort, sipPort, sippPort] = [await pick(), await pick(), await pick()];
  const tb = await new Turnbridge({
    serverConfig: gatewayServerConfig({ wsPort, sipPort }),
    extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
`,
  }).start();
  const sipp = spawn('/usr/bin/sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(sippPort), '-m', '1', '-nostdin',
    '-timeout', '60s', '-timeout_error'], { cwd: work, stdio: 'ignore' });
  const sippDone = new Promise((resolve) => sipp.on('exit', (code, sig) => resolve(code ?? sig)));
  process.on('exit', () => { try { sipp.kill('SIGKILL'); } catch { /* gone */ } });

  const agent = (password) => new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(`sip:${USER}@${REALM}`),
    transportOptions: { server: `ws://127.0.0.1:${wsPort}/sip` },
    authorizationUsername: USER,
    authorizationPassword: password,
    sessionDescriptionHandlerFactory: () => new FixedOfferHandler(),
    logLevel: 'error',
  });
  const registered = async (ua) => {
    const reg = new SIP.Registerer(ua);
    const settled = new Promise((resolve) => reg.stateChange.addListener((s) => {
      if (s !== SIP.RegistererState.Initial) resolve(s);
    }));
    let rejected = 0;
    await reg.register({ requestDelegate: { onReject: (r) => { rejected = r.message.statusCode; } } });
    return { reg, state: await within(settled, 5000, 'timeout'), rejected: () => rejected };
  };
  try {
    const bad = agent('wrong-password');
    await bad.start();
    const b = await registered(bad);
    await sleep(300);
    results.check('SIP.js with a wrong password is refused with 403', b.state !== SIP.RegistererState.Registered
      && b.rejected() === 403, `${b.state}, final ${b.rejected()}`);
    await bad.stop();

    const ua = agent(PASSWORD);
    await ua.start();
    const r = await registered(ua);
    results.check('SIP.js REGISTER is accepted (digest)', r.state === SIP.RegistererState.Registered, String(r.state));

    const inviter = new SIP.Inviter(ua, SIP.UserAgent.makeURI(`sip:+15557001@${REALM}`));
    const established = new Promise((resolve) => inviter.stateChange.addListener((s) => {
      if (s === SIP.SessionState.Established || s === SIP.SessionState.Terminated) resolve(s);
    }));
    await inviter.invite();
    const state = await within(established, 8000, 'timeout');
    const answer = inviter.sessionDescriptionHandler ? inviter.sessionDescriptionHandler.remote : '';
    results.check('SIP.js INVITE reaches sipp and is established', state === SIP.SessionState.Established, String(state));
    results.check("the answer SIP.js gets is the gateway's (ICE-lite, DTLS fingerprint, setup:passive)",
      /a=ice-lite/.test(answer) && /a=fingerprint:sha-256 /.test(answer) && /a=setup:passive/.test(answer),
      answer.split('\r\n').filter((l) => /ice-lite|setup|m=audio/.test(l)).join(' | '));
    if (state === SIP.SessionState.Established) await inviter.bye();
    const code = await within(sippDone, 8000, 'still running');
    results.check("SIP.js's BYE reaches sipp, which saw the whole call (exit 0)", code === 0, `exit ${code}`);

    await r.reg.unregister();
    await sleep(500);
    await ua.stop();
    await sleep(300);
    results.check('unREGISTER from SIP.js removes the binding (logged)', /test@\S+ unregistered from/.test(tb.logTail()),
      tb.logTail().split('\n').filter((l) => /registered/.test(l)).slice(-2).join(' | '));
  } finally {
    results.check('turnbridge is still running', tb.alive());
    const exit = await tb.stop();
    results.check('turnbridge exits cleanly on SIGTERM', exit === 0, `exit ${exit}`);
    try { sipp.kill('SIGKILL'); } catch { /* gone */ }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const results = new Results('gateway_sipjs');
main(results).catch((e) => results.check('no exception', false, e && e.stack ? e.stack : String(e)))
  .finally(() => process.exit(results.finish()));
