// SPDX-License-Identifier: Apache-2.0
// Gateway signaling with SIP.js (npm), the other browser SIP stack issue 4 names, run in node with
// the `ws` package as its WebSocket. Node has no WebRTC, so SIP.js gets a session description
// handler that offers a saved Chrome offer and keeps the gateway's answer. sipp (Debian
// sip-tester) is the trunk's UAS. Checks: a wrong password gets 403, REGISTER is accepted,
// an INVITE reaches sipp and comes back established with our ICE-lite DTLS answer, BYE from
// SIP.js reaches sipp, SIP.js's Session.refer() reaches sipp as REFER with NOTIFY 100/200 back
// (issue 14), and stopping the user agent unregisters. Loopback only; own PIDs only.
// interop-timeout: 120
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { Turnbridge, Results, portPicker, USER, PASSWORD, REALM, gatewayServerConfig } = require('./harness');
const { runSipp } = require('./gateway_call_test');
const { acceptingScenario } = require('./sipp_transfer');

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

    // Blind transfer (issue 14): SIP.js's Session.refer() reaches the trunk as REFER with
    // Refer-To <sip:NUMBER@trunk-host>; the trunk's 202 and NOTIFYs come back to SIP.js, and the
    // trunk's BYE ends SIP.js's session.
    {
      await within(sippDone, 3000, null);   // the first sipp's port is needed
      const sf = path.join(work, 'accept_refer.xml');
      fs.writeFileSync(sf, acceptingScenario(`<sip:\\+15557002@127\\.0\\.0\\.1:${sippPort}>`));
      const pids = [];
      const uas = runSipp(work, 'accept_refer', sf, ['-i', '127.0.0.1', '-p', String(sippPort)], pids);
      process.on('exit', () => { try { uas.proc.kill('SIGKILL'); } catch { /* gone */ } });
      await sleep(300);
      const call = new SIP.Inviter(ua, SIP.UserAgent.makeURI(`sip:+15557001@${REALM}`));
      const up = new Promise((resolve) => call.stateChange.addListener((st) => {
        if (st === SIP.SessionState.Established || st === SIP.SessionState.Terminated) resolve(st);
      }));
      const ended = new Promise((resolve) => call.stateChange.addListener((st) => {
        if (st === SIP.SessionState.Terminated) resolve(st);
      }));
      await call.invite();
      const st = await within(up, 8000, 'timeout');
      const seen = [];
      let notified;
      const notifiedDone = new Promise((resolve) => { notified = resolve; });
      if (st === SIP.SessionState.Established) {
        await call.refer(SIP.UserAgent.makeURI(`sip:+15557002@${REALM}`), {
          requestDelegate: {
            onAccept: (res) => seen.push(`response ${res.message.statusCode}`),
            onReject: (res) => { seen.push(`response ${res.message.statusCode}`); notified(); },
          },
          onNotify: (n) => {
            const frag = /SIP\/2\.0 (\d{3})/.exec(n.request.body || '');
            seen.push(`notify ${frag ? frag[1] : '?'}`);
            n.accept();
            if (frag && Number(frag[1]) >= 200) notified();
          },
        });
      }
      await within(notifiedDone, 8000, null);
      results.check('SIP.js refer() gets 202, then NOTIFY 100 and 200 (sipfrag) from the trunk',
        JSON.stringify(seen) === JSON.stringify(['response 202', 'notify 100', 'notify 200']), `${st}: ${JSON.stringify(seen)}`);
      const end = await within(ended, 8000, 'timeout');
      results.check("the trunk's BYE after the transfer ends SIP.js's session", end === SIP.SessionState.Terminated, String(end));
      const code = await within(uas.done, 8000, 'still running');
      if (code === 'still running') uas.proc.kill('SIGKILL');
      results.check('sipp got REFER with Refer-To <sip:+15557002@trunk-host> and Referred-By (exit 0)', code === 0,
        `exit ${code}${code === 0 ? '' : `: ${uas.errors()}`}`);
    }

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
