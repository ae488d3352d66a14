#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The click-to-call page (issue 4) that turnbridge serves on GET / of its ws listener, driven
// in headless Chromium (Debian's /usr/bin/chromium via playwright-core) with sipp (Debian
// sip-tester) as the trunk. Checks the HTTP side (headers, CSP, HEAD, 404), then, through the
// page's own form and buttons: a wrong password fails with 403 on the status line; REGISTER
// succeeds and is refreshed; an outbound call to sipp's UAS is answered, its media connects
// relay-only, the tone the fake microphone plays comes back from an RTP echo at the trunk's
// media address, Mute silences it, dial-pad DTMF arrives there as RFC 4733 events, and hang-up
// sends the BYE sipp expects; CANCEL while ringing; an inbound call from sipp (-rtp_echo) rings
// the page, auto-answer takes it, its audio is heard and sipp's BYE ends it; Decline gives the
// trunk 603; the https page on wss_listen registers over wss.
// Loopback only (--host-resolver-rules); only our own PIDs are killed.
// CLICK_TO_CALL_SIGNALING_ONLY=1 skips the media checks (a server whose gateway passes SDP through).
// interop-timeout: 300
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Turnbridge, Results, freePort, USER, PASSWORD, REALM, REPO, gatewayServerConfig } = require('./harness');
const { waitStatus: pageWaitStatus, listen: pageListen } = require('./page_audio');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const MEDIA = process.env.CLICK_TO_CALL_SIGNALING_ONLY !== '1';
const DID = '+15550123';
const TONE_HZ = 1000;
const TOTAL_TIMEOUT_MS = 280000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// 48 kHz mono 16-bit WAV of a sine: Chromium's fake microphone loops it.
function writeToneWav(file, hz, seconds) {
  const rate = 48000;
  const n = rate * seconds;
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(2 * rate, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + 2 * i);
  fs.writeFileSync(file, b);
}

function httpRequest(port, method, target) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, timeout: 3000 }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', (e) => resolve({ status: 0, headers: {}, body: String(e) }));
    req.end();
  });
}

// sipp as the trunk; resolves { code, messages } when it exits (or 'still running' after ms).
function sipp(args, dir, cleanup) {
  const p = spawn('/usr/bin/sipp', [...args, '-nostdin', '-timeout', '60s', '-timeout_error', '-trace_msg',
    '-message_file', path.join(dir, `${args[1]}-${Date.now()}.log`)], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code ?? sig)));
  cleanup.push(() => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });
  const messageFile = p.spawnargs[p.spawnargs.indexOf('-message_file') + 1];
  return {
    async result(ms) {
      const code = await Promise.race([done, sleep(ms).then(() => 'still running')]);
      if (code === 'still running') p.kill('SIGKILL');
      let messages = '';
      try { messages = fs.readFileSync(messageFile, 'utf8'); } catch { /* none written */ }
      return { code, messages, err: err.trim().split('\n').slice(-2).join(' ') };
    },
  };
}

// sipp scenario pieces: a response to the last request (a new To tag unless it has one).
const sippReply = (status, { cseq = '[last_CSeq:]', tag = true, extra = '', body = '' } = {}) => `  <send><![CDATA[
SIP/2.0 ${status}
[last_Via:]
[last_From:]
[last_To:]${tag ? ';tag=[pid]SIPpTag01[call_number]' : ''}
[last_Call-ID:]
${cseq}
${extra}Content-Length: [len]

${body}]]></send>
`;
const scenario = (name, steps) => `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="${name}">
${steps}</scenario>
`;
// A trunk that rings and never answers: 180, then CANCEL gets 200 and the INVITE 487.
const RING_SCENARIO = scenario('ring until cancelled', `  <recv request="INVITE" />
${sippReply('180 Ringing')}  <recv request="CANCEL" />
${sippReply('200 OK')}${sippReply('487 Request Terminated', { cseq: 'CSeq: [cseq] INVITE' })}  <recv request="ACK" />
`);
// A trunk that answers with its RTP at rtpPort (our echo, which also reads RFC 4733 events),
// taking the telephone-event payload type the gateway offered; then waits for BYE.
const answerScenario = (rtpPort) => scenario('answer, media elsewhere', `  <recv request="INVITE">
    <action>
      <ereg regexp="a=rtpmap:([0-9]+) telephone-event/8000" search_in="body" check_it="true" assign_to="line,pt" />
    </action>
  </recv>
  <Reference variables="line" />
${sippReply('180 Ringing')}${sippReply('200 OK', {
  extra: 'Contact: <sip:trunk@127.0.0.1:[local_port]>\nContent-Type: application/sdp\n',
  body: `v=0
o=trunk 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio ${rtpPort} RTP/AVP 0 [$pt]
a=rtpmap:0 PCMU/8000
a=rtpmap:[$pt] telephone-event/8000
a=fmtp:[$pt] 0-15
` })}  <recv request="ACK" />
  <recv request="BYE" />
${sippReply('200 OK', { tag: false })}`);

// Symmetric RTP echo on 127.0.0.1: sends every packet back to where it came from, and keeps the
// RFC 4733 events (not PCMU, a 4-byte payload after a plain 12-byte header) in the order of
// their first packet (one RTP timestamp per event).
function rtpEcho(port, cleanup) {
  const sock = require('node:dgram').createSocket('udp4');
  const echo = { port, packets: 0, events: [], lastTs: -1 };
  sock.on('message', (b, from) => {
    if (b.length < 12) return;
    echo.packets++;
    sock.send(b, from.port, from.address);
    const pt = b[1] & 0x7f;
    const ts = b.readUInt32BE(4);
    if (pt !== 0 && b.length === 16 && ts !== echo.lastTs) { echo.lastTs = ts; echo.events.push(b[12]); }
  });
  cleanup.push(() => sock.close());
  return new Promise((resolve) => sock.bind(port, '127.0.0.1', () => resolve(echo)));
}

async function main(results, cleanup) {
  const taken = new Set();
  const pick = async () => { const p = await freePort(taken); taken.add(p); taken.add(p + 1); taken.add(p + 2); return p; };
  const wsPort = await pick();
  const sipPort = await pick();
  const uasPort = await pick();
  const ringPort = await pick();
  const wssPort = await pick();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'click-to-call-'));
  cleanup.push(() => fs.rmSync(work, { recursive: true, force: true }));

  const tb = new Turnbridge({
    serverConfig: gatewayServerConfig({ wsPort, wssPort, sipPort }),
    extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${uasPort};transport=udp"
caller_id = "+15550100"
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]

[realm."ring.example"]
users = { ${USER} = "${PASSWORD}" }
[realm."ring.example".gateway]
enabled = true
trunk = "sip:127.0.0.1:${ringPort};transport=udp"
`,
  });
  cleanup.push(() => tb.killNow());
  await tb.start();

  // ---- the HTTP side ------------------------------------------------------------------------
  const source = fs.readFileSync(path.join(REPO, 'src', 'gateway', 'host', 'click_to_call.html'), 'utf8');
  const get = await httpRequest(wsPort, 'GET', '/');
  results.check('GET / serves the page from src/gateway/host/click_to_call.html, byte for byte',
    get.status === 200 && get.body === source, `${get.status}, ${get.body.length} of ${source.length} bytes`);
  results.check('GET /: Content-Type text/html; charset=utf-8, Cache-Control: no-cache',
    get.headers['content-type'] === 'text/html; charset=utf-8' && get.headers['cache-control'] === 'no-cache',
    `${get.headers['content-type']} | ${get.headers['cache-control']}`);
  const csp = get.headers['content-security-policy'] || '';
  const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  const connect = directives['connect-src'] || [];
  results.check("CSP: default-src 'none', script and style by hash only, connect-src only self and ws(s) to self",
    (directives['default-src'] || []).join(' ') === "'none'"
    && (directives['script-src'] || []).length === 1 && /^'sha256-/.test(directives['script-src'][0])
    && (directives['style-src'] || []).length === 1 && /^'sha256-/.test(directives['style-src'][0])
    && connect.every((s) => ["'self'", `ws://127.0.0.1:${wsPort}`, `wss://127.0.0.1:${wsPort}`].includes(s))
    && connect.includes("'self'"), csp);
  results.check('the page loads nothing from elsewhere (no src= or href= to another origin)',
    !/\b(src|href)\s*=\s*["']?(https?:)?\/\//i.test(source) && !/@import|url\(/i.test(source));
  const head = await httpRequest(wsPort, 'HEAD', '/');
  results.check('HEAD / has the headers and no body', head.status === 200 && head.body === ''
    && Number(head.headers['content-length']) === Buffer.byteLength(source), `${head.status} length ${head.headers['content-length']}`);
  // The Host header is echoed into connect-src only when it is a plain host[:port].
  const injected = await new Promise((resolve) => {
    let text = '';
    const sock = require('node:net').connect(wsPort, '127.0.0.1', () => sock.write(
      "GET / HTTP/1.1\r\nHost: evil.example; script-src * 'unsafe-inline'\r\nConnection: close\r\n\r\n"));
    sock.on('data', (d) => { text += d; });
    sock.on('close', () => resolve(text));
    sock.on('error', () => resolve(text));
  });
  const injectedCsp = (/^Content-Security-Policy: (.*)$/im.exec(injected) || [])[1] || '';
  results.check('a Host header with anything but host:port characters is not echoed into the CSP',
    /connect-src 'self'\r?$/.test(injectedCsp) && !injectedCsp.includes('evil'), injectedCsp.slice(-60));
  const other = await httpRequest(wsPort, 'GET', '/other.js');
  results.check('GET of another path is 404', other.status === 404, `${other.status}`);

  // ---- the browser ----------------------------------------------------------------------------
  const wav = path.join(work, 'tone.wav');
  writeToneWav(wav, TONE_HZ, 5);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost'],
  });
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  // expires=60: the shortest registration the registrar grants, so that the refresh shows up.
  await page.goto(`http://127.0.0.1:${wsPort}/?expires=60`);
  const logText = () => page.textContent('#log');
  const waitStatus = (re, ms) => pageWaitStatus(page, re, ms);
  results.check('the page runs under its CSP (script ran, no violation or error)',
    (await page.evaluate(() => document.getElementById('turn').value)) === 'turn:127.0.0.1:3478' && problems.length === 0,
    problems.join(' | '));

  await page.fill('#realm', REALM);
  await page.fill('#user', USER);
  await page.fill('#turn', `turn:127.0.0.1:${tb.port}?transport=udp`);
  await page.check('#relay');
  await page.check('#autoanswer');

  // Wrong password: the server answers the digest with 403; the page says so.
  await page.fill('#password', 'not-the-password');
  await page.click('#register');
  let s = await waitStatus(/Registration failed/);
  results.check('a wrong password shows the 403 failure on the status line', s.ok && /403/.test(s.text)
    && /wrong user or password/.test(s.text), s.text);

  await page.fill('#password', PASSWORD);
  await page.click('#register');
  s = await waitStatus(/^Registered as/);
  results.check('REGISTER with the right password: the status line says registered (200)',
    s.ok && s.text.includes(`${USER}@${REALM}`) && /200 OK/.test(s.text), s.text);
  let registeredAt = Date.now();
  results.check('the server logs the registration', /sip: test@example\.org registered from/.test(fs.readFileSync(tb.logPath, 'utf8')));
  const stored = await page.evaluate(() => localStorage.getItem('turnbridge.click_to_call') || '');
  results.check('realm, user and TURN URL are remembered in localStorage, the password is not',
    stored.includes(REALM) && stored.includes(`"user":"${USER}"`) && !stored.includes(PASSWORD) && !stored.includes('not-the-password'), stored);

  const listen = (ms) => pageListen(page, ms);

  // ---- outbound: the page calls a number at sipp's UAS (which echoes RTP) ------------------
  {
    const echo = await rtpEcho(await pick(), cleanup);
    fs.writeFileSync(path.join(work, 'answer.xml'), answerScenario(echo.port));
    const uas = sipp(['-sf', 'answer.xml', '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1'], work, cleanup);
    await sleep(300);
    await page.fill('#number', '+15550199');
    await page.click('#call');
    s = await waitStatus(/200 OK: in call|Call failed|Call not placed/, 20000);
    results.check('an outbound call to sipp is answered: the status line shows 200 OK', s.ok && /200 OK: in call/.test(s.text), s.text);
    const steps = (await logText()).split('\n').filter((l) => /status: \d{3} /.test(l)).map((l) => l.replace(/^.*status: /, ''));
    results.check('the status line shows each SIP status: 407 (authenticating) and 100 Trying before the 200',
      steps.some((l) => /^407 .*authenticating/.test(l)) && steps.some((l) => /^100 Trying/.test(l)), steps.join(' / '));
    if (MEDIA) {
      let media = '';
      for (let i = 0; i < 100 && media !== 'connected'; i++) { media = await page.textContent('#media'); await sleep(100); }
      results.check("the call's media connects relay-only (connectionState 'connected')", media === 'connected', media);
      results.check('the browser allocated on our TURN server (relay only)',
        /allocation created .*user=test realm=example\.org/.test(fs.readFileSync(tb.logPath, 'utf8')));
      const heard = await listen(3000);
      results.check(`the ${TONE_HZ} Hz tone comes back through the trunk's RTP echo (heard, 2 %)`,
        heard.rms > 0.01 && Math.abs(heard.hz - TONE_HZ) <= TONE_HZ * 0.02, `rms ${heard.rms.toFixed(4)}, ${heard.hz.toFixed(1)} Hz`);
      await page.click('#mute');
      await sleep(1500);
      const muted = await listen(1500);
      await page.click('#mute');
      results.check('Mute silences what we send (the echo goes quiet)', muted.rms < heard.rms / 10
        && (await page.getAttribute('#mute', 'aria-pressed')) === 'false', `rms ${muted.rms.toFixed(4)}`);
      for (const key of ['1', '5', '#']) await page.click(`.pad button[data-key="${key}"]`);
      await sleep(1500);
      const sent = (await logText()).match(/DTMF (\S) sent/g) || [];
      results.check('DTMF from the dial pad is sent (RTCDTMFSender tones 1, 5, #)', sent.join(',') === 'DTMF 1 sent,DTMF 5 sent,DTMF # sent',
        sent.join(','));
      // RFC 4733 §3.2: events 0-9 are the digits, 11 is #.
      results.check('the digits reach the trunk as RFC 4733 events 1, 5, 11', echo.events.join(',') === '1,5,11',
        `events [${echo.events.join(',')}] in ${echo.packets} RTP packets at the trunk`);
    }
    await sleep(1200);
    const timer = await page.textContent('#timer');
    results.check('the call timer runs', timer !== '00:00' && /^\d\d:\d\d$/.test(timer), timer);
    await page.click('#hangup');
    s = await waitStatus(/Call ended/);
    results.check('Hang up ends the call on the page', s.ok, s.text);
    const r = await uas.result(10000);
    results.check('sipp (UAS) got the BYE and completed the call (exit 0)', r.code === 0 && /^BYE /m.test(r.messages),
      `exit ${r.code} ${r.err}`);
  }

  // ---- CANCEL while ringing ------------------------------------------------------------------
  {
    fs.writeFileSync(path.join(work, 'ring.xml'), RING_SCENARIO);
    const ring = sipp(['-sf', 'ring.xml', '-i', '127.0.0.1', '-p', String(ringPort), '-m', '1'], work, cleanup);
    await sleep(300);
    // The same page, another realm whose trunk only rings: register there, call, hang up.
    await page.fill('#realm', 'ring.example');
    await page.click('#register');
    s = await waitStatus(/^Registered as test@ring\.example/);
    await page.fill('#number', '+15550177');
    await page.click('#call');
    s = await waitStatus(/180 Ringing/, 20000);
    results.check('a ringing call shows 180 Ringing', s.ok, s.text);
    await page.click('#hangup');
    s = await waitStatus(/Call cancelled/);
    results.check('Hang up while ringing sends CANCEL: the status line shows 487', s.ok && /487/.test(s.text), s.text);
    const r = await ring.result(10000);
    results.check('sipp saw the CANCEL and completed its scenario (exit 0)', r.code === 0 && /^CANCEL /m.test(r.messages),
      `exit ${r.code} ${r.err}`);
    await page.fill('#realm', REALM);
    await page.click('#register');
    s = await waitStatus(new RegExp(`^Registered as test@${REALM.replace('.', '\\.')}`));
    results.check('registers back into the first realm', s.ok, s.text);
    registeredAt = Date.now();
  }

  // ---- inbound: sipp calls the routed DID, the page auto-answers ------------------------------
  if (MEDIA) {
    const mediaPort = await pick();
    const uac = sipp(['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(await pick()),
      '-mp', String(mediaPort), '-rtp_echo', '-d', '8000', '-m', '1'], work, cleanup);
    s = await waitStatus(/200 OK sent: in call|Could not answer/, 15000);
    results.check('an inbound call from sipp rings the page and auto-answer takes it', s.ok && /in call/.test(s.text), s.text);
    let media = '';
    for (let i = 0; i < 100 && media !== 'connected'; i++) { media = await page.textContent('#media'); await sleep(100); }
    results.check('the inbound call\'s media connects', media === 'connected', media);
    const heard = await listen(2000);
    results.check('audio from the trunk is heard on the inbound call', heard.rms > 0.01, `rms ${heard.rms.toFixed(4)}, ${heard.hz.toFixed(1)} Hz`);
    s = await waitStatus(/hung up \(BYE\)/, 10000);
    results.check("sipp's BYE ends the call on the page", s.ok, s.text);
    const r = await uac.result(10000);
    results.check('sipp (UAC) completed the inbound call (exit 0)', r.code === 0, `exit ${r.code} ${r.err}`);

    // Without auto-answer the page rings with Answer/Decline; Decline reaches sipp as 603.
    await page.uncheck('#autoanswer');
    const uac2 = sipp(['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(await pick()),
      '-mp', String(await pick()), '-m', '1'], work, cleanup);
    s = await waitStatus(/Incoming call from/, 15000);
    const visible = await page.isVisible('#decline');
    results.check('an incoming call shows Answer and Decline', s.ok && visible && await page.isVisible('#answer'), s.text);
    if (visible) await page.click('#decline');
    s = await waitStatus(/declined/);
    const r2 = await uac2.result(10000);
    results.check('Decline: the trunk gets 603', s.ok && /^SIP\/2\.0 603/m.test(r2.messages), `${s.text}; sipp exit ${r2.code}`);
  }

  // ---- the registration refresh ---------------------------------------------------------------
  const wait = registeredAt + 36000 - Date.now();
  if (wait > 0) await sleep(wait);
  const refreshes = ((await logText()).match(/status: Registered as test@example\.org/g) || []).length;
  results.check('the registration is refreshed before it expires (60 s granted, refreshed at 30 s)', refreshes >= 3,
    `${refreshes} successful REGISTERs for example.org`);
  results.check('no page error or console error', problems.length === 0, problems.join(' | '));

  // wss_listen serves the same page over https (the server's certificate); it speaks SIP over wss.
  {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const secure = await context.newPage();
    await secure.goto(`https://127.0.0.1:${wssPort}/`);
    await secure.fill('#realm', REALM);
    await secure.fill('#user', USER);
    await secure.fill('#password', PASSWORD);
    await secure.click('#register');
    let text = '';
    for (let i = 0; i < 100 && !/^Registered|failed/.test(text); i++) { text = await secure.textContent('#status'); await sleep(100); }
    const log = await secure.textContent('#log');
    results.check('over wss_listen: the https page registers through wss://', /^Registered as/.test(text)
      && log.includes(`connected to wss://127.0.0.1:${wssPort}/sip`), text);
    await context.close();
  }

  await browser.close();
  results.check('turnbridge still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

const results = new Results('click_to_call');
const cleanup = [];
const runCleanup = async () => {
  while (cleanup.length) {
    try { await cleanup.pop()(); } catch { /* best effort */ }
  }
};
const deadline = setTimeout(async () => {
  results.check('finished in time', false, `over ${TOTAL_TIMEOUT_MS} ms`);
  await runCleanup();
  process.exit(results.finish());
}, TOTAL_TIMEOUT_MS);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, async () => { await runCleanup(); process.exit(1); });
main(results, cleanup)
  .catch((err) => results.check('harness', false, err && err.stack ? err.stack : String(err)))
  .finally(async () => {
    clearTimeout(deadline);
    await runCleanup();
    process.exit(results.finish());
  });
