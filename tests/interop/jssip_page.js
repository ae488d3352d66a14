// SPDX-License-Identifier: Apache-2.0
// Headless Chromium for the gateway suites: its fake microphone (a tone WAV), pages/gateway_call.html
// with JsSIP (npm, bundled by esbuild at test time) served from 127.0.0.1, and pages of it
// registered over turnbridge's WebSocket with relay-only ICE through turnbridge's TURN. What a
// page does once registered (gw.call, gw.waitMedia, gw.measure...) is in pages/gateway_call.js.
// Loopback only: Chromium gets --host-resolver-rules.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const esbuild = require('esbuild');
const { USER, PASSWORD, REALM } = require('./harness');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// A 48 kHz mono 16-bit WAV of a whole number of periods, so that Chromium's loop is seamless;
// `hz` may be a list of tones, mixed at equal levels.
function writeToneWav(file, hz, seconds) {
  const rate = 48000;
  const n = rate * seconds;
  const tones = [].concat(hz);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    const v = tones.reduce((sum, f) => sum + Math.sin((2 * Math.PI * f * i) / rate), 0);
    data.writeInt16LE(Math.round((9000 / tones.length) * v), 2 * i);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

// A suite's work folder, $TMPDIR/`prefix`XXXXXX, holding tone.wav: the page's microphone looping
// `hz` (a tone or a list of tones), 2 s long. { work, wav }.
function toneWorkDir(prefix, hz) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const wav = path.join(work, 'tone.wav');
  writeToneWav(wav, hz, 2);
  return { work, wav };
}

function bundleJsSIP(dir) {
  return esbuild.build({
    stdin: { contents: "window.JsSIP = require('jssip');", resolveDir: __dirname, sourcefile: 'jssip-entry.js' },
    bundle: true, format: 'iife', platform: 'browser', target: 'chrome100',
    outfile: path.join(dir, 'jssip.js'), logLevel: 'silent',
  });
}

// The page, its script and the bundle on 127.0.0.1 (a real origin: getUserMedia needs one).
function servePages(bundleDir) {
  const files = {
    '/': [path.join(__dirname, 'pages', 'gateway_call.html'), 'text/html'],
    '/gateway_call.js': [path.join(__dirname, 'pages', 'gateway_call.js'), 'text/javascript'],
    '/jssip.js': [path.join(bundleDir, 'jssip.js'), 'text/javascript'],
  };
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url, 'http://127.0.0.1').pathname];
    if (!f) { res.writeHead(req.url === '/favicon.ico' ? 204 : 404); res.end(); return; }
    res.writeHead(200, { 'content-type': f[1] });
    fs.createReadStream(f[0]).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Headless Chromium whose fake microphone loops `wav`, on loopback only.
function launchChromium(wav) {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost',
    ],
    env: chromiumEnv(),
  });
}

// Chromium puts its SingletonSocket in $TMPDIR/org.chromium.Chromium.XXXXXX/: a Unix socket path
// has 108 bytes, and a suite run by another (json_log_test.py: build/interop/json_log_test/
// turnbridge-json-XXXXXXXX/demo_test/) gets a TMPDIR too deep for it ("Socket path too long").
function chromiumEnv() {
  return os.tmpdir().length > 56 ? { ...process.env, TMPDIR: '/tmp' } : process.env;
}

// JsSIP bundled into `work` and served with the page, and headless Chromium whose microphone
// loops `wav`; `cleanup` closes both. { browser, url }: url opens the page.
async function openBrowser(results, cleanup, { work, wav }) {
  const built = await bundleJsSIP(work).then(() => true, (e) => e);
  const bundleSize = built === true ? fs.statSync(path.join(work, 'jssip.js')).size : 0;
  results.check('esbuild bundles JsSIP (npm) for the browser', built === true && bundleSize > 50000,
    built === true ? `${bundleSize} bytes` : String(built));
  const pages = await servePages(work);
  cleanup.push(() => pages.close());
  const browser = await launchChromium(wav);
  cleanup.push(() => browser.close());
  return { browser, url: `http://127.0.0.1:${pages.address().port}/` };
}

// A new page of `browser` at `url`, registered as `user` over turnbridge `tb`'s WebSocket on
// `wsPort`, its ICE relay-only through tb's TURN (as USER), auto-answering; `options` go to
// gw.start too (sessionTimers). { page, reg }: reg is 'registered' or why not.
async function openPage(browser, url, { tb, wsPort, user = USER, options = {} }) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  [page ${user}] ${m.text()}`); });
  await page.goto(url);
  const iceServers = [{ urls: `turn:127.0.0.1:${tb.port}?transport=udp`, username: USER, credential: PASSWORD }];
  const reg = await page.evaluate((o) => gw.start(o), {
    wsUrl: `ws://127.0.0.1:${wsPort}/sip`, uri: `sip:${user}@${REALM}`, password: PASSWORD, iceServers, autoAnswer: true,
    ...options,
  });
  return { page, reg };
}

// The page of a gateway test (openBrowser, then openPage as USER), checked registered: the check
// is named `registers` when given. What it opens is closed by `cleanup`. { browser, url, page }:
// openPage(browser, url, ...) opens another.
async function openRegisteredPage(results, cleanup, { work, wav, tb, wsPort, options = {},
  registers = 'the page (JsSIP over WebSocket) registers' }) {
  const { browser, url } = await openBrowser(results, cleanup, { work, wav });
  const { page, reg } = await openPage(browser, url, { tb, wsPort, options });
  results.check(registers, reg === 'registered', reg);
  return { browser, url, page };
}

module.exports = { writeToneWav, toneWorkDir, launchChromium, openBrowser, openPage, openRegisteredPage };
