#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The click-to-call page (issue 4) that turnbridge serves on GET / of its ws listener, driven
// in headless Chromium (Debian's /usr/bin/chromium via playwright-core) with sipp (Debian
// sip-tester) as the trunk. Checks the HTTP side (headers, CSP, HEAD, 404), then, through the
// page's own form and buttons: a wrong password fails with 401 on the status line; REGISTER
// succeeds and is refreshed; an outbound call to sipp's UAS is answered, its media connects
// relay-only and the tone we send comes back from sipp's RTP echo, DTMF is sent, and hang-up
// sends the BYE sipp expects; CANCEL while ringing; an inbound call from sipp rings the page
// and auto-answer takes it, sipp's BYE ends it; Decline gives the trunk 603.
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
const { Turnbridge, Results, freePort, USER, PASSWORD, REALM, REPO } = require('./harness');

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

// A trunk that rings and never answers: 180, then CANCEL gets 200 and the INVITE 487.
const sippReply = (status, cseq = '[last_CSeq:]') => `  <send><![CDATA[
SIP/2.0 ${status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
${cseq}
Content-Length: 0

]]></send>
`;
const RING_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ring until cancelled">
  <recv request="INVITE" />
${sippReply('180 Ringing')}  <recv request="CANCEL" />
${sippReply('200 OK')}${sippReply('487 Request Terminated', 'CSeq: [cseq] INVITE')}  <recv request="ACK" />
</scenario>
`;

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
  const mediaLo = 30000 + 100 * Math.floor(Math.random() * 50);

  const tb = new Turnbridge({
    serverConfig: `ws_listen = ["127.0.0.1:${wsPort}"]
wss_listen = ["127.0.0.1:${wssPort}"]
sip_listen = ["127.0.0.1:${sipPort}"]
media_ip = "127.0.0.1"
media_ports = "${mediaLo}-${mediaLo + 99}"
`,
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
  const source = fs.readFileSync(path.join(REPO, 'src', 'net', 'click_to_call.html'), 'utf8');
  const get = await httpRequest(wsPort, 'GET', '/');
  results.check('GET / serves the page from src/net/click_to_call.html, byte for byte',
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
  const status = () => page.textContent('#status');
  const logText = () => page.textContent('#log');
  async function waitStatus(re, ms = 10000) {
    const deadline = Date.now() + ms;
    let text = '';
    while (Date.now() < deadline) {
      text = await status();
      if (re.test(text)) return { ok: true, text };
      await sleep(100);
    }
    return { ok: false, text };
  }
  results.check('the page runs under its CSP (script ran, no violation or error)',
    (await page.evaluate(() => document.getElementById('turn').value)) === 'turn:127.0.0.1:3478' && problems.length === 0,
    problems.join(' | '));

  await page.fill('#realm', REALM);
  await page.fill('#user', USER);
  await page.fill('#turn', `turn:127.0.0.1:${tb.port}?transport=udp`);
  await page.check('#relay');
  await page.check('#autoanswer');

  // Wrong password: the server challenges again; the page gives up and says so.
  await page.fill('#password', 'not-the-password');
  await page.click('#register');
  let s = await waitStatus(/Registration failed/);
  results.check('a wrong password shows the 401 failure on the status line', s.ok && /401/.test(s.text), s.text);

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

  // Measures what the page hears: RMS and dominant frequency of the remote stream over ms.
  const listen = (ms) => page.evaluate(async (dur) => {
    const stream = document.getElementById('remote').srcObject;
    if (!stream) return { rms: 0, hz: 0 };
    const ctx = new AudioContext({ sampleRate: 48000 });
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(stream).connect(analyser);
    let rms = 0, hz = 0;
    const t = new Float32Array(analyser.fftSize);
    const f = new Float32Array(analyser.frequencyBinCount);
    for (let k = 0; k < dur / 250; k++) {
      await new Promise((r) => setTimeout(r, 250));
      analyser.getFloatTimeDomainData(t);
      const e = Math.sqrt(t.reduce((a, x) => a + x * x, 0) / t.length);
      if (e > rms) {
        rms = e;
        analyser.getFloatFrequencyData(f);
        let best = 1;
        for (let i = 1; i < f.length; i++) if (f[i] > f[best]) best = i;
        hz = (best * ctx.sampleRate) / analyser.fftSize;
      }
    }
    await ctx.close();
    return { rms, hz };
  }, ms);

  // ---- outbound: the page calls a number at sipp's UAS (which echoes RTP) ------------------
  {
    const mediaPort = await pick();
    const uas = sipp(['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(mediaPort), '-rtp_echo',
      '-m', '1'], work, cleanup);
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
      results.check(`the ${TONE_HZ} Hz tone comes back through sipp's RTP echo (heard, 2 %)`,
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
