#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The first run (issue 16, must-show 4): conf/turnbridge.toml, the demo config scripts/run
// starts, with only its ports, database and accounting flush interval changed, and headless
// Chromium (Debian's /usr/bin/chromium via playwright-core) on its click-to-call page, with no
// trunk at all: the built-in test line answers.
//   echo: the fake microphone's 600 Hz tone comes back (within 2 %), after about 0.5 s;
//   tone: a 1 kHz tone (within 2 %);
//   dtmf: dial-pad 9s come back as the 852 + 1477 Hz pair;
// then the usage page on the admin listener shows the calls under the demo user. Screenshots of
// both pages land in the test's log folder ($TMPDIR under scripts/test).
// Loopback only (--host-resolver-rules); only our own PIDs are killed.
// interop-timeout: 180
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Turnbridge, runSuite, portPicker, REPO } = require('./harness');
const { writeToneWav, launchChromium } = require('./jssip_page');
const { waitStatus: pageWaitStatus, listen: pageListen } = require('./page_audio');

const MIC_HZ = 600;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The demo config with every port it names replaced by a free one (the sample's own ports may
// be taken on a developer's machine), its database beside the copy, and a 1 s flush.
function demoConfig(sample, ports) {
  let text = sample;
  const swap = (from, to) => {
    const before = text;
    text = text.split(from).join(to);
    if (text === before) throw new Error(`conf/turnbridge.toml no longer has ${from}: update demo_test.js`);
  };
  swap('127.0.0.1:3478', `127.0.0.1:${ports.turn}`);
  swap('[::1]:3478', `[::1]:${ports.turn}`);
  swap('127.0.0.1:5349', `127.0.0.1:${ports.turns}`);
  swap('127.0.0.1:8088', `127.0.0.1:${ports.ws}`);
  swap('127.0.0.1:5080', `127.0.0.1:${ports.sip}`);
  swap('127.0.0.1:9641', `127.0.0.1:${ports.admin}`);
  swap('media_ports = "22000-22999"', `media_ports = "${ports.mediaLo}-${ports.mediaLo + 99}"`);
  swap('flush_interval = 5', 'flush_interval = 1');
  if (process.env.TURNBRIDGE_LOG_FORMAT) swap('# log_format = "text"', `log_format = "${process.env.TURNBRIDGE_LOG_FORMAT}"`);
  return text;
}

async function main(results, cleanup) {
  const pick = portPicker();
  const ports = { turn: await pick(), turns: await pick(), ws: await pick(), sip: await pick(), admin: await pick(),
    mediaLo: 30000 + 100 * Math.floor(Math.random() * 50) };
  const sample = fs.readFileSync(path.join(REPO, 'conf', 'turnbridge.toml'), 'utf8');
  const tb = new Turnbridge({ configText: demoConfig(sample, ports) });
  cleanup.push(() => tb.killNow());
  await tb.start();
  const serverLog = () => fs.readFileSync(tb.logPath, 'utf8');
  results.check('the demo config starts TURN, the admin server and the gateway with its test line',
    /test numbers echo, 9196, tone and dtmf/.test(serverLog()) && serverLog().includes(`ws://127.0.0.1:${ports.ws}/sip`));

  const logDir = os.tmpdir();   // scripts/test's TMPDIR: the test's log folder
  const wav = path.join(tb.dir, 'mic.wav');
  writeToneWav(wav, MIC_HZ, 5);
  const browser = await launchChromium(wav);
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  // The link scripts/run prints (realm, user and number filled in; the password typed).
  const printed = fs.readFileSync(path.join(REPO, 'scripts', 'run'), 'utf8');
  const link = /http:\/\/127\.0\.0\.1:8088(\/\?\S+)/.exec(printed);
  results.check('scripts/run prints the click-to-call link, the usage page and the credentials',
    link !== null && printed.includes('http://127.0.0.1:9641/') && /password: secret/.test(printed));
  await page.goto(`http://127.0.0.1:${ports.ws}${link ? link[1] : '/?realm=example.org&user=test&number=echo'}`);
  results.check('the link fills realm, user and number and ticks Relay only', await page.inputValue('#realm') === 'example.org'
    && await page.inputValue('#user') === 'test' && await page.inputValue('#number') === 'echo' && await page.isChecked('#relay'));
  await page.fill('#turn', `turn:127.0.0.1:${ports.turn}?transport=udp`);
  await page.fill('#password', 'secret');
  const waitStatus = (re, ms) => pageWaitStatus(page, re, ms);
  await page.click('#register');
  let s = await waitStatus(/^Registered as/);
  results.check('the demo user registers (test / secret)', s.ok, s.text);

  const listen = (ms, probe) => pageListen(page, ms, probe);

  async function call(number) {
    await page.fill('#number', number);
    await page.click('#call');
    const answered = await waitStatus(/200 OK: in call|Call failed|Call not placed/, 20000);
    let media = '';
    for (let i = 0; i < 100 && media !== 'connected'; i++) { media = await page.textContent('#media'); await sleep(100); }
    results.check(`${number}: the test line answers (200 OK) and the media connects`,
      answered.ok && /200 OK: in call/.test(answered.text) && media === 'connected', `${answered.text}; media ${media}`);
  }
  async function hangUp(number) {
    await page.click('#hangup');
    const s = await waitStatus(/Call ended/);
    results.check(`${number}: Hang up ends the call`, s.ok, s.text);
  }

  // ---- echo: our microphone's tone comes back, half a second late ----------------------------
  await call('echo');
  const echoed = await listen(3000);
  results.check(`echo: the ${MIC_HZ} Hz microphone tone is heard back (2 %)`,
    echoed.rms > 0.01 && Math.abs(echoed.hz - MIC_HZ) <= MIC_HZ * 0.02,
    `rms ${echoed.rms.toFixed(4)}, ${echoed.hz.toFixed(1)} Hz`);
  await page.screenshot({ path: path.join(logDir, 'demo-click-to-call.png'), fullPage: true });
  // Mute, wait for silence, unmute: the tone returns about 0.5 s later (plus the path's delay).
  await page.click('#mute');
  await sleep(1500);
  await page.click('#mute');
  const back = await listen(2000);
  results.check('echo: after Unmute the tone returns with the 0.5 s delay (0.4 to 1.5 s)',
    back.firstLoud >= 400 && back.firstLoud <= 1500, `first heard after ${back.firstLoud.toFixed(0)} ms`);
  await hangUp('echo');

  // ---- tone: 1 kHz ---------------------------------------------------------------------------
  await call('tone');
  const tone = await listen(2000);
  results.check('tone: a 1 kHz tone is heard (2 %)', tone.rms > 0.01 && Math.abs(tone.hz - 1000) <= 20,
    `rms ${tone.rms.toFixed(4)}, ${tone.hz.toFixed(1)} Hz`);
  await hangUp('tone');

  // ---- dtmf: each digit sent comes back as its tone pair -------------------------------------
  await call('dtmf');
  const quiet = await listen(1000);
  results.check('dtmf: silent until a digit is sent (the microphone is not echoed)', quiet.rms < 0.01,
    `rms ${quiet.rms.toFixed(4)}`);
  const heard = listen(3000, [852, 1477, 697, 1209, 1000, MIC_HZ]);
  for (let i = 0; i < 4; i++) await page.click('.pad button[data-key="9"]');
  const pair = await heard;
  const [low, high, ...others] = pair.db;
  const loudestOther = Math.max(...others);
  results.check('dtmf: the 9s come back as 852 + 1477 Hz (both 20 dB over 697, 1209, 1000 and 600 Hz)',
    pair.rms > 0.01 && low > loudestOther + 20 && high > loudestOther + 20,
    `rms ${pair.rms.toFixed(4)}; dB 852 ${low.toFixed(1)}, 1477 ${high.toFixed(1)}, others max ${loudestOther.toFixed(1)}`);
  await hangUp('dtmf');
  results.check('the server logged the three test-line calls', ['echo', 'tone', 'dtmf'].every((n) =>
    serverLog().includes(`test line: ${n} answers call`)));

  // ---- the usage page: the calls under the demo user -----------------------------------------
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await admin.goto(`http://127.0.0.1:${ports.admin}/`);
  await admin.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
  let rows = [];
  for (let i = 0; i < 50; i++) {
    rows = await admin.$$eval('#users tbody tr', (trs) => trs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
    if (rows.some((r) => r[0] === 'test' && r[7] === '3 (3)' && r[4] !== '0 B')) break;
    await sleep(300);
    if (i % 10 === 9) await admin.reload().then(() => admin.waitForSelector('body[data-ready="1"]'));
  }
  await admin.screenshot({ path: path.join(logDir, 'demo-usage.png'), fullPage: true });
  const testRow = rows.find((r) => r[0] === 'test') || [];
  // Columns: user, realm, allocations, minutes, egress, received, cost, calls (answered), call minutes.
  results.check('the usage page shows the calls (3, all answered) and their relayed bytes under the demo user "test"',
    testRow[7] === '3 (3)' && /^[\d.]+\s*(kB|MB)$/.test(testRow[4] || ''), JSON.stringify(rows).slice(0, 400));
  for (const f of ['demo-click-to-call.png', 'demo-usage.png']) {
    const p = path.join(logDir, f);
    const size = fs.existsSync(p) ? fs.statSync(p).size : 0;
    results.check(`screenshot ${f} in the log folder`, size > 10000, `${p}: ${size} bytes`);
  }
  results.check('no page error or console error', problems.length === 0, problems.join(' | '));
  await browser.close();
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

runSuite('demo', 170000, main);
