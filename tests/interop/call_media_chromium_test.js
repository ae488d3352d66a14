#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Headless Chromium (Debian's /usr/bin/chromium via playwright-core) as the browser against
// gateway::CallMedia, run by build/tests/unit/gateway/call_media_driver on loopback UDP sockets
// with a fake PCMU trunk inside. The page sends a 1 kHz WebAudio tone and a DTMF digit; checks:
// Chrome's ICE with our ICE-lite agent, DTLS-SRTP with Chrome's (post-quantum, multi-record)
// ClientHello, the tone at the trunk as PCMU, the trunk's 600 Hz tone heard in the page (Opus),
// the digit as RFC 4733 at 8000 Hz, and close_notify on hang-up.
// Chromium is confined to loopback by --host-resolver-rules and has no mDNS host names.
// interop-timeout: 120
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');
const { Results } = require('./harness');

const DRIVER = path.resolve(__dirname, '..', '..', 'build', 'tests', 'unit', 'gateway', 'call_media_driver');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost',
];
const SECONDS = 8;

async function main(results, cleanup) {
  results.check('driver built', fs.existsSync(DRIVER), DRIVER);
  // Playwright's own throwaway profile, removed when the browser closes.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  cleanup.push(() => browser.close());
  const page = await browser.newPage();

  const offer = await page.evaluate(async () => {
    window.ctx = new AudioContext({ sampleRate: 48000 });
    const osc = ctx.createOscillator();
    osc.frequency.value = 1000;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(dest);
    osc.start();
    window.pc = new RTCPeerConnection();
    pc.addTrack(dest.stream.getAudioTracks()[0], dest.stream);
    window.remote = null;
    pc.ontrack = (e) => { window.remote = e.streams[0] || new MediaStream([e.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  });

  const driver = spawn(DRIVER, [String(SECONDS), 'opus'], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanup.push(() => { if (driver.exitCode === null) driver.kill(); });
  const exited = new Promise((resolve) => driver.on('exit', resolve));
  const lines = readline.createInterface({ input: driver.stdout });
  const answerLines = [];
  let result = '';
  let gotAnswer;
  const answerReady = new Promise((resolve) => { gotAnswer = resolve; });
  lines.on('line', (line) => {
    if (line.startsWith('RESULT ')) result = line;
    else if (line === 'END') gotAnswer(answerLines.join('\r\n') + '\r\n');
    else answerLines.push(line);
  });
  driver.stdin.end(offer.replace(/\r\n/g, '\n') + 'END\n');
  const answer = await answerReady;
  results.check('answer is ICE-lite with passive DTLS', /a=ice-lite/.test(answer) && /a=setup:passive/.test(answer));

  const page_result = await page.evaluate(async (sdp) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    await pc.setRemoteDescription({ type: 'answer', sdp });
    for (let i = 0; i < 50 && pc.connectionState !== 'connected'; i++) await sleep(100);
    const out = { connection: pc.connectionState, ice: pc.iceConnectionState };
    if (pc.connectionState !== 'connected' || !remote) return out;
    // The remote stream must also play (muted) for WebAudio to get its samples.
    const audio = new Audio();
    audio.srcObject = remote;
    audio.muted = true;
    await audio.play().catch(() => {});
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(remote).connect(analyser);
    pc.getSenders()[0].dtmf.insertDTMF('5', 200, 100);
    await sleep(2500);
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const hz = (i) => (i * ctx.sampleRate) / analyser.fftSize;
    let best = -1;
    for (let i = 1; i < bins.length && hz(i) < 4000; i++) if (best < 0 || bins[i] > bins[best]) best = i;
    out.peakHz = hz(best);
    out.peakDb = bins[best];
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp') out.packetsReceived = s.packetsReceived;
      if (s.type === 'outbound-rtp') out.packetsSent = s.packetsSent;
    }
    pc.close();  // sends close_notify
    return out;
  }, answer);
  results.check('Chromium ICE and DTLS connected', page_result.connection === 'connected',
    `${page_result.ice}/${page_result.connection}`);
  results.check("the trunk's 600 Hz tone is heard in the page (2 %)", Math.abs(page_result.peakHz - 600) <= 12,
    `${page_result.peakHz && page_result.peakHz.toFixed(1)} Hz at ${page_result.peakDb && page_result.peakDb.toFixed(0)} dB, `
    + `${page_result.packetsReceived} packets received`);
  await exited;
  const fields = {};
  const [head, failure] = result.replace(/^RESULT /, '').split(' failure=');
  for (const kv of head.split(' ')) { const [k, v] = kv.split('='); fields[k] = v; }
  const trunkHz = Number(fields.trunk_heard_hz || 0);
  results.check("the page's 1 kHz tone reaches the trunk as PCMU (2 %)", Math.abs(trunkHz - 1000) <= 20,
    `${trunkHz} Hz, rms ${fields.trunk_rms}`);
  const duration = Number(fields.trunk_event_duration || 0);
  results.check('DTMF 5 reaches the trunk as RFC 4733 at 8000 Hz',
    fields.trunk_event_code === '5' && duration >= 0.8 * 1600 && duration <= 1.5 * 1600,
    `${fields.trunk_events} packets, event ${fields.trunk_event_code}, final duration ${duration} (200 ms = 1600)`);
  results.check('hang-up closes the media (close_notify)', fields.state === '4', `state ${fields.state}: ${failure}`);
  await browser.close();
}

// Playwright closes Chromium itself on SIGTERM (handleSIGTERM); the driver ends on its own.
const results = new Results('call_media_chromium_test');
const cleanup = [];
const deadline = setTimeout(() => { results.check('finished in time', false, 'over 90 s'); process.exit(results.finish()); }, 90000);
main(results, cleanup)
  .catch((err) => results.check('harness', false, err && err.stack ? err.stack : String(err)))
  .finally(async () => {
    clearTimeout(deadline);
    for (const undo of cleanup.reverse()) await Promise.resolve().then(undo).catch(() => {});
    process.exit(results.finish());
  });
