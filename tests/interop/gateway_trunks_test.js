#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// More than one trunk per realm (issue 14, [[realm."X".gateway.trunks]]): headless Chromium runs
// pages/gateway_call.html (JsSIP, relay-only ICE through turnbridge's TURN) in a realm with three
// trunks:
//   a  sipp at 127.0.0.1 (the first: the default), caller_id +15550100, srtp off;
//   b  sipp at 127.0.0.2, prefixes ["+44"], caller_id +442070000000, srtp = "optional";
//   c  a node UDP responder at 127.0.0.1, prefixes ["+33"], options_interval = 1.
//  - the page calls +442071234567: only b's sipp gets the INVITE, From +442070000000 and with
//    a=crypto lines (b's srtp); the call is answered and its media connects;
//  - the page calls +15557000 (no prefix matches): only a's sipp gets it, From +15550100 and no
//    a=crypto (a's srtp = off);
//  - GET /api/v1/trunks and /metrics name c's target with trunk "c" (OPTIONS health per trunk);
//  - inbound: sipp calling the routed DID from 127.0.0.2 (b's trunk_allow) rings the page, and the
//    call is b's (the log names the trunk);
//  - the call records name their trunks: GET /api/v1/calls ("trunk"), `turnbridge report --calls`
//    (CSV column trunk) and `report --by trunk` (b: two calls, a: one).
// Loopback only; free ports; only our own PIDs are killed.
// interop-timeout: 90
'use strict';
const dgram = require('node:dgram');
const fs = require('node:fs');
const { spawn, spawnSync } = require('node:child_process');
const { runSuite, childList, freePorts, freeTriples, freeRange, gatewayTurnbridge, adminConfig, adminGet,
  REALM, BINARY } = require('./harness');
const { UAS_SCENARIO, runSipp, sippExit } = require('./gateway_call_test');
const { toneWorkDir, openRegisteredPage } = require('./jssip_page');
const { respond } = require('./sip_ws');

const DID = '+15550123';              // routed to the page's user: the inbound call
const UK_NUMBER = '+442071234567';    // trunk b's prefix
const OTHER_NUMBER = '+15557000';     // no prefix: the default trunk a
const TOTAL_MS = 85000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

// Trunk c: answers OPTIONS 200 (and nothing else), on 127.0.0.1.
async function optionsResponder(port) {
  const s = dgram.createSocket('udp4');
  const t = { socket: s, options: 0 };
  s.on('message', (m, from) => {
    const text = m.toString();
    if (!text.startsWith('OPTIONS ')) return;
    t.options++;
    s.send(respond(text, 200, 'OK'), from.port, from.address);
  });
  await new Promise((resolve) => s.bind(port, '127.0.0.1', resolve));
  return t;
}

// The INVITE's From header and SDP body in a sipp -trace_msg log ('' when there is none).
function inviteOf(log) {
  const m = /INVITE sip:[^]*?\r?\n\r?\n([^]*?)(?:\r?\n\r?\n|-{5,})/m.exec(log);
  if (!m) return { from: '', sdp: '', uri: '' };
  return { from: (/^From:.*$/m.exec(m[0]) || [''])[0], sdp: m[1], uri: (/INVITE (\S+)/.exec(m[0]) || ['', ''])[1] };
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, adminPort, portA, portB, portC, uacPort] = await freePorts(7, taken);
  const [echoA, echoB] = await freeTriples(2, taken);
  const mediaLo = await freeRange(taken, 100);

  const { work, wav } = toneWorkDir('gateway-trunks-', 880);
  workDir = work;

  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
routes = { "${DID}" = ["test"] }

[[realm."${REALM}".gateway.trunks]]
name = "a"
trunk = "sip:127.0.0.1:${portA};transport=udp"
caller_id = "+15550100"

[[realm."${REALM}".gateway.trunks]]
name = "b"
trunk = "sip:127.0.0.2:${portB};transport=udp"
prefixes = ["+44"]
caller_id = "+442070000000"
srtp = "optional"
trunk_allow = ["127.0.0.2/32"]

[[realm."${REALM}".gateway.trunks]]
name = "c"
trunk = "sip:127.0.0.1:${portC};transport=udp"
prefixes = ["+33"]
options_interval = 1

${adminConfig(adminPort, { flushInterval: 1 })}`);
  serverDir = tb.dir;
  await tb.start();
  const log = () => fs.readFileSync(tb.logPath, 'utf8');
  results.check('turnbridge starts with three trunks in one realm, and says so',
    /gateway mode, trunk b sip:127\.0\.0\.2:\d+;transport=udp for \+44/.test(log()),
    log().split('\n').filter((l) => l.includes('gateway mode')).join(' | '));

  const c = await optionsResponder(portC);
  cleanup.push(() => c.socket.close());
  const sipps = childList(cleanup);
  const { page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort });
  const pageEvents = async () => (await page.evaluate(() => gw.events())).slice(-8).join(' | ');

  // Both trunks' sipps listen through both calls: each must get exactly the one meant for it.
  const uas = (name, ip, port, echo) => runSipp(work, name, UAS_SCENARIO, ['-i', ip, '-p', String(port),
    '-mp', String(echo), '-rtp_echo', '-set', 'rtpport', String(echo), '-set', 'hangup_ms', '0'], sipps);
  const sippA = uas('trunk_a', '127.0.0.1', portA, echoA);
  const sippB = uas('trunk_b', '127.0.0.2', portB, echoB);
  await sleep(400);

  // 1. +44...: trunk b.
  {
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${UK_NUMBER}@${REALM}`);
    const media = call.confirmed ? await page.evaluate(() => gw.waitMedia(15000)) : { connection: 'none' };
    results.check(`the page's call to ${UK_NUMBER} is answered and its media connects`,
      call.confirmed && media.connection === 'connected', `${JSON.stringify(call.ended)} ${media.connection}; ${await pageEvents()}`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(sippB, 8000);
    results.check(`${UK_NUMBER} reached trunk b (sipp at 127.0.0.2 saw the whole call, exit 0)`,
      call.confirmed && ended && code === 0, `exit ${code}${code === 0 ? '' : `: ${sippB.errors()}`}`);
    const inv = inviteOf(sippB.messages());
    results.check("trunk b's INVITE carries b's caller_id and b's srtp (a=crypto, RFC 8643 optional)",
      inv.from.includes('+442070000000') && /a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:/.test(inv.sdp)
        && inv.uri.includes(UK_NUMBER) && inv.uri.includes(`127.0.0.2:${portB}`),
      `${inv.uri} ${inv.from} ${(/a=crypto.*/.exec(inv.sdp) || ['no a=crypto'])[0]}`);
    const toA = (sippA.messages().match(/^INVITE sip:/gm) || []).length;
    results.check('trunk a heard nothing of it', toA === 0, `${toA} INVITEs`);
  }
  await page.evaluate(() => gw.events());

  // 2. Any other number: the default trunk a.
  {
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${OTHER_NUMBER}@${REALM}`);
    results.check(`the page's call to ${OTHER_NUMBER} is answered`, call.confirmed,
      `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(sippA, 8000);
    results.check(`${OTHER_NUMBER} (no prefix matches) reached the default trunk a (exit 0)`,
      call.confirmed && ended && code === 0, `exit ${code}${code === 0 ? '' : `: ${sippA.errors()}`}`);
    const inv = inviteOf(sippA.messages());
    results.check("trunk a's INVITE carries a's caller_id and no a=crypto (a's srtp = off)",
      inv.from.includes('+15550100') && !/a=crypto/.test(inv.sdp) && inv.uri.includes(`127.0.0.1:${portA}`),
      `${inv.uri} ${inv.from}`);
    const invitesToB = (sippB.messages().match(/^INVITE sip:/gm) || []).length;
    results.check('trunk b got only its own call', invitesToB === 1, `${invitesToB} INVITEs`);
  }

  // 3. OPTIONS health per trunk: c's target is labelled with its trunk.
  {
    let entry = null;
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      let list = [];
      try { list = JSON.parse((await adminGet(adminPort, '/api/v1/trunks')).body); } catch { /* not yet */ }
      entry = list.find((t) => t.target === `127.0.0.1:${portC}`) || null;
      if (entry && entry.state === 'up' && entry.last_status === 200) break;
      await sleep(250);
    }
    results.check('/api/v1/trunks names the target\'s realm and trunk (c), up with its OPTIONS answer',
      entry !== null && entry.realm === REALM && entry.trunk === 'c' && entry.state === 'up' && entry.last_status === 200
        && c.options > 0, JSON.stringify(entry));
    const metrics = (await adminGet(adminPort, '/metrics')).body;
    results.check('/metrics labels the target with its trunk',
      metrics.includes(`turnbridge_gateway_trunk_target_up{realm="${REALM}",trunk="c",target="127.0.0.1:${portC}"} 1`),
      metrics.split('\n').filter((l) => l.startsWith('turnbridge_gateway_trunk_target_up')).join(' | '));
  }

  // 4. Inbound from trunk b's range: the page rings and answers, and the call is b's.
  {
    const uac = spawn('/usr/bin/sipp', ['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.2',
      '-p', String(uacPort), '-m', '1', '-d', '1500', '-nostdin', '-timeout', '30s', '-timeout_error'],
    { cwd: work, stdio: 'ignore' });
    sipps.push(uac);
    const done = new Promise((resolve) => uac.on('exit', (code, sig) => resolve(code ?? sig)));
    const incoming = await page.evaluate(() => gw.waitIncoming(15000));
    const code = await Promise.race([done, sleep(15000).then(() => 'still running')]);
    results.check('an INVITE from 127.0.0.2 (trunk b\'s trunk_allow) rings the page, which answers; sipp completes (exit 0)',
      incoming.confirmed && code === 0, `${JSON.stringify(incoming)}, sipp exit ${code}`);
    results.check('the inbound call is trunk b\'s (the log names it)',
      new RegExp(`call: trunk b at 127\\.0\\.0\\.2 -> \\${DID}`).test(log()),
      log().split('\n').filter((l) => l.includes('call: trunk')).join(' | ') || 'no line');
  }

  // 5. The call records name their trunks (issue 14): the API, the listing and the per-trunk report.
  {
    const want = (r) => r.direction === 'inbound' || r.remote === UK_NUMBER || r.remote === OTHER_NUMBER;
    let rows = [];
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      try { rows = JSON.parse((await adminGet(adminPort, '/api/v1/calls')).body); } catch { rows = []; }
      if (Array.isArray(rows) && rows.filter(want).length >= 3) break;
      await sleep(250);
    }
    if (!Array.isArray(rows)) rows = [];
    const of = (pred) => rows.filter(pred).map((r) => r.trunk);
    const uk = of((r) => r.direction === 'outbound' && r.remote === UK_NUMBER);
    const other = of((r) => r.direction === 'outbound' && r.remote === OTHER_NUMBER);
    const inbound = of((r) => r.direction === 'inbound' && r.status === 200);
    results.check('/api/v1/calls: each call names its trunk (+44 -> "b", +1555 -> "a", inbound from 127.0.0.2 -> "b")',
      uk.length === 1 && uk[0] === 'b' && other.length === 1 && other[0] === 'a' && inbound.length === 1 && inbound[0] === 'b',
      JSON.stringify(rows.map((r) => [r.direction, r.remote, r.trunk])));
    const report = (args) => spawnSync(BINARY, ['report', '--config', tb.configPath, ...args], { encoding: 'utf8', timeout: 20000 });
    const csv = report(['--calls', '--format', 'csv']);
    const lines = (csv.stdout || '').trim().split(/\r?\n/);
    const header = (lines[0] || '').split(',');
    const col = header.indexOf('trunk');
    const cells = lines.slice(1).map((l) => l.split(',')[col]).sort();
    results.check('`report --calls --format csv` has a trunk column: a, b, b',
      csv.status === 0 && col >= 0 && JSON.stringify(cells) === '["a","b","b"]',
      `exit ${csv.status} column ${col} ${JSON.stringify(cells)} ${csv.stderr || ''}`);
    const by = report(['--by', 'trunk', '--format', 'json']);
    let trunks = [];
    try { trunks = JSON.parse(by.stdout); } catch { /* reported below */ }
    const calls = (key) => (trunks.find((r) => r.key === key && r.realm === REALM) || {}).calls;
    results.check('`report --by trunk`: trunk b two calls, trunk a one, no relayed traffic in them',
      by.status === 0 && calls('b') === 2 && calls('a') === 1 && trunks.every((r) => r.allocations === 0),
      `exit ${by.status} ${(by.stdout || '').slice(0, 300)} ${by.stderr || ''}`);
  }

  results.check('turnbridge is still running', tb.alive());
  const exit = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', exit === 0, `exit ${exit}`);
  if (results.failed) console.log(tb.logTail(40));
}

runSuite('gateway_trunks', TOTAL_MS, main, () => [workDir, serverDir]);
