#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against turnbridge
// on loopback: two RTCPeerConnections in one page with relay-only ICE, fake microphone audio
// and a data channel, over TURN/UDP, TURN/TCP and TURN/TLS. Checks, per run: the data-channel
// messages arrive both ways, audio packets arrive and keep arriving, and both sides selected a
// succeeded candidate pair whose local candidate is a relay candidate over the expected
// transport. Chromium is confined to loopback by --host-resolver-rules.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Turnbridge, Results, USER, PASSWORD } = require('./harness');

const TOTAL_TIMEOUT_MS = 200000;
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--webrtc-ip-handling-policy=default_public_interface_only',
  '--allow-loopback-in-peer-connection',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--ignore-certificate-errors',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost',
];

// Serves tests/interop/pages on 127.0.0.1 so that the page has a real origin (getUserMedia
// needs a secure context; http://127.0.0.1 is one).
function servePages() {
  const root = path.join(__dirname, 'pages');
  const types = { '.html': 'text/html', '.js': 'text/javascript' };
  const server = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url, 'http://127.0.0.1').pathname) || 'relay_call.html';
    const file = path.join(root, name);
    if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function checkRun(results, label, r, expectProtocol) {
  const ok = !r.error;
  results.check(`${label}: call set up`, ok, r.error ? `${r.error}\n${r.log}` : '');
  results.check(`${label}: data channel A -> B`, r.messageAtB === r.expectedAtB, JSON.stringify(r.messageAtB));
  results.check(`${label}: data channel B -> A`, r.messageAtA === r.expectedAtA, JSON.stringify(r.messageAtA));
  const first = r.audioFirst || { packetsReceived: 0, bytesReceived: 0 };
  const later = r.audioLater || { packetsReceived: 0, bytesReceived: 0 };
  results.check(`${label}: audio arrives and keeps arriving`,
    r.trackKind === 'audio' && first.packetsReceived > 0 && later.bytesReceived > first.bytesReceived,
    `packets ${first.packetsReceived} -> ${later.packetsReceived}, bytes ${first.bytesReceived} -> ${later.bytesReceived}, lost ${later.packetsLost}`);
  for (const side of ['A', 'B']) {
    const p = r[`pair${side}`];
    const desc = p ? `${p.state} local ${p.local.candidateType} ${p.local.address}:${p.local.port} via ${p.local.relayProtocol}`
      + ` remote ${p.remote.candidateType} ${p.remote.address}:${p.remote.port}` : 'no selected pair';
    results.check(`${label}: side ${side} selected a succeeded pair with a relay local candidate`,
      !!p && p.state === 'succeeded' && p.local.candidateType === 'relay', desc);
    results.check(`${label}: side ${side} relay candidate allocated over ${expectProtocol}`,
      !!p && p.local.relayProtocol === expectProtocol, desc);
  }
  const nonRelay = [...r.gathered.a, ...r.gathered.b].filter((c) => !/ typ relay/.test(c));
  results.check(`${label}: only relay candidates gathered`,
    r.gathered.a.length > 0 && r.gathered.b.length > 0 && nonRelay.length === 0,
    `${r.gathered.a.length}+${r.gathered.b.length} candidates${nonRelay.length ? `; others: ${nonRelay.join(' | ')}` : ''}`);
}

const tempDirs = [];  // removed when every check passed; kept for a post-mortem otherwise

async function main(results, cleanup) {
  const server = new Turnbridge();
  tempDirs.push(server.dir);
  cleanup.push(() => server.killNow());
  await server.start();
  const pages = await servePages();
  cleanup.push(() => pages.close());
  const origin = `http://127.0.0.1:${pages.address().port}`;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnbridge-chromium-'));
  cleanup.push(() => fs.rmSync(userDataDir, { recursive: true, force: true }));
  // launchPersistentContext so that the profile lives in our own fresh --user-data-dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000,
  });
  cleanup.push(() => context.close().catch(() => {}));
  const page = context.pages()[0] || await context.newPage();
  await page.goto(`${origin}/relay_call.html`);

  const runs = [
    ['turn udp', `turn:127.0.0.1:${server.port}?transport=udp`, 'udp'],
    ['turn tcp', `turn:127.0.0.1:${server.port}?transport=tcp`, 'tcp'],
    ['turns tls', `turns:localhost:${server.tlsPort}?transport=tcp`, 'tls'],
  ];
  for (const [label, url, proto] of runs) {
    const t0 = Date.now();
    const r = await page.evaluate(([u, user, pass]) => runCall({ urls: u, username: user, credential: pass }),
      [url, USER, PASSWORD]);
    console.log(`# ${label} (${url}) took ${Date.now() - t0} ms`);
    checkRun(results, label, r, proto);
    if (!server.alive()) { results.check(`${label}: turnbridge still running`, false, server.logTail()); return; }
  }
  await context.close();
  const rc = await server.stop();
  results.check('turnbridge stops cleanly on SIGTERM', rc === 0, `exit code ${rc}`);
}

(async () => {
  const results = new Results('chromium_test');
  const cleanup = [];
  const runCleanup = async () => {
    while (cleanup.length) {
      try { await cleanup.pop()(); } catch { /* best effort */ }
    }
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, async () => { await runCleanup(); process.exit(128 + os.constants.signals[sig]); });
  }
  const timer = setTimeout(async () => {
    results.check('finished in time', false, `over ${TOTAL_TIMEOUT_MS} ms`);
    await runCleanup();
    process.exit(results.finish());
  }, TOTAL_TIMEOUT_MS);
  try {
    await main(results, cleanup);
  } catch (err) {
    results.check('harness', false, err && err.stack ? err.stack : String(err));
  }
  clearTimeout(timer);
  await runCleanup();
  if (results.failed || !results.passed) console.log(`logs kept in: ${tempDirs.join(' ')}`);
  else for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  process.exit(results.finish());
})();
