// SPDX-License-Identifier: Apache-2.0
// The gateway on every worker (issue 12), with threads = 2 (the harness's): browsers' WebSockets
// land on both workers (SO_REUSEPORT), their calls toward the trunk are placed on the least
// loaded worker (so concurrent calls use both), and an inbound trunk call forks to registrations
// whose WebSockets live on different workers and is answered by one of them (the answer, the
// CANCEL of the others and the trunk's BYE cross workers by Call-ID). Which worker holds what is
// read from the server's debug log and from our Call-IDs ("w<worker>-..."). Each browser is a
// user of its own (w0..w7, all routed from the DID): one user's calls are kept on one worker on
// purpose (attended transfer, issue 14), so one user would not show the spread. No media flows
// (gateway_call_test does media). Loopback only; only our own PIDs are killed.
// interop-timeout: 120
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Turnbridge, Results, portPicker, REALM, gatewayServerConfig } = require('./harness');
const { WsSip, status, header, respond, register, invite, request, rnd, SDP, browserAnswer } = require('./sip_ws');

const DID = '+15550177';
const CLIENTS = 8;
const USERS = Array.from({ length: CLIENTS }, (_, i) => `w${i}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const results = new Results('gateway_workers');
  let tb = null;
  const kids = [];
  process.on('exit', () => {
    if (tb) tb.killNow();
    for (const k of kids) { try { k.kill('SIGKILL'); } catch { /* gone */ } }
  });
  try {
    const pick = portPicker();
    const wsPort = await pick();
    const sipPort = await pick();
    const sippPort = await pick();
    const sippDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sipp-'));
    // The trunk's UAS: answers every INVITE and waits for our BYE.
    const uas = spawn('/usr/bin/sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(sippPort), '-m', String(CLIENTS),
      '-nostdin', '-timeout', '90s'], { cwd: sippDir, stdio: 'ignore' });
    kids.push(uas);
    tb = await new Turnbridge({
      serverConfig: `${gatewayServerConfig({ wsPort, sipPort })}log_level = "debug"\n`,
      extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
max_calls_per_user = ${2 * CLIENTS}
[realm."${REALM}".gateway.routes]
"${DID}" = [${USERS.map((u) => `"${u}"`).join(', ')}]
`,
    }).start();
    await tb.reload((text) => text.replace(/^users = \{ (.*) \}$/m,
      `users = { $1, ${USERS.map((u) => `${u} = "pw-${u}"`).join(', ')} }`));
    const logText = () => fs.readFileSync(tb.logPath, 'utf8');
    const wsUrl = `ws://127.0.0.1:${wsPort}/sip`;

    // Browsers: each its own WebSocket and its own user, all routed from the DID.
    const clients = [];
    for (let i = 0; i < CLIENTS; ++i) {
      const c = new WsSip(wsUrl);
      await c.open();
      c.user = USERS[i];
      c.password = `pw-${USERS[i]}`;
      c.contact = `sip:${c.user}@${rnd()}.invalid;transport=ws`;
      c.regStatus = await register(c, c.contact);
      c.port = c.ws._socket.localPort;
      clients.push(c);
    }
    results.check('every browser registers', clients.every((c) => c.regStatus === 200),
      clients.map((c) => c.regStatus).join(' '));
    const wsWorker = (port) => {
      const m = new RegExp(`worker (\\d+): WebSocket \\d+ from 127\\.0\\.0\\.1:${port}\\b`).exec(logText());
      return m ? Number(m[1]) : null;
    };
    for (const c of clients) c.worker = wsWorker(c.port);
    const wsWorkers = new Set(clients.map((c) => c.worker));
    results.check('the browsers\' WebSockets land on both workers', wsWorkers.has(0) && wsWorkers.has(1),
      clients.map((c) => c.worker).join(''));

    // Outbound: every browser calls the trunk at once; the calls stay up until all are placed.
    const calls = await Promise.all(clients.map((c) => invite(c, `sip:+1555020${clients.indexOf(c)}@${REALM}`, SDP, 10000)));
    results.check('every outbound call is answered', calls.every((x) => status(x.final) === 200),
      calls.map((x) => status(x.final)).join(' '));
    const placedOn = (callId) => {
      const m = new RegExp(`worker (\\d+): call ${callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} placed here`).exec(logText());
      return m ? Number(m[1]) : null;
    };
    const placements = calls.map((x) => placedOn(x.callId));
    const on0 = placements.filter((w) => w === 0).length;
    const on1 = placements.filter((w) => w === 1).length;
    results.check('the calls are spread over both workers (least loaded first)', on0 >= CLIENTS / 2 - 1 && on1 >= CLIENTS / 2 - 1,
      `worker 0: ${on0}, worker 1: ${on1} (${placements.join('')})`);
    const crossing = clients.filter((c, i) => c.worker !== null && placements[i] !== null && c.worker !== placements[i]).length;
    results.check('some calls live on another worker than their browser\'s WebSocket', crossing > 0, `${crossing}`);
    // ACK and BYE from each browser reach its call (by Call-ID) wherever it lives.
    const byes = await Promise.all(clients.map(async (c, i) => {
      const x = calls[i];
      if (status(x.final) !== 200) return 0;
      const uri = `sip:+1555020${i}@${REALM}`;
      const to = header(x.final, 'To');
      c.send(request({ method: 'ACK', uri, callId: x.callId, cseq: 2, fromTag: x.fromTag, to }));
      await sleep(200);
      c.send(request({ method: 'BYE', uri, callId: x.callId, cseq: 3, fromTag: x.fromTag, to }));
      const ok = await c.wait((m) => m.startsWith('SIP/2.0') && header(m, 'Call-ID') === x.callId && /BYE/.test(header(m, 'CSeq')));
      return status(ok);
    }));
    results.check('every browser\'s BYE gets 200', byes.every((s) => s === 200), byes.join(' '));

    // Inbound: the trunk calls the DID; every registration rings, on both workers.
    const uacPort = await pick();
    const uac = spawn('/usr/bin/sipp', ['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1',
      '-p', String(uacPort), '-m', '1', '-d', '500', '-nostdin', '-timeout', '30s', '-timeout_error'],
    { cwd: sippDir, stdio: 'ignore' });
    kids.push(uac);
    const uacDone = new Promise((resolve) => uac.on('exit', (code, sig) => resolve(code ?? sig)));
    const isInvite = (m) => m.startsWith('INVITE ');
    const invites = await Promise.all(clients.map(async (c, i) => {
      const m = await c.wait(isInvite, 8000);
      // Ringing: only a leg that answered provisionally can be CANCELled (RFC 3261 §9.1).
      if (m) c.send(respond(m, 180, 'Ringing', { toTag: `t${i}`, contact: c.contact }));
      return m;
    }));
    results.check('the inbound INVITE forks to every registration', invites.every((m) => m !== null),
      invites.map((m) => (m ? 'x' : '-')).join(''));
    const forkCallIds = invites.filter((m) => m).map((m) => header(m, 'Call-ID'));
    const callWorker = forkCallIds.length ? Number((/^w(\d+)-/.exec(forkCallIds[0]) || [])[1]) : null;
    results.check('the forks carry the call\'s worker in their Call-ID', forkCallIds.length > 0
      && forkCallIds.every((id) => /^w\d+-.*@turnbridge$/.test(id) && Number(/^w(\d+)-/.exec(id)[1]) === callWorker),
    `${forkCallIds[0]}`);
    const ringing = clients.filter((c, i) => invites[i]);
    const ringWorkers = new Set(ringing.map((c) => c.worker));
    results.check('the ringing browsers\' WebSockets are on both workers', ringWorkers.has(0) && ringWorkers.has(1),
      [...ringWorkers].join(','));
    // The winner: a browser on the other worker than the call, when there is one.
    let w = clients.findIndex((c, i) => invites[i] && c.worker !== callWorker);
    if (w < 0) w = clients.findIndex((c, i) => invites[i]);
    if (w >= 0) {
      const winner = clients[w];
      winner.send(respond(invites[w], 200, 'OK', { toTag: 'win', body: browserAnswer(invites[w]), contact: winner.contact }));
      const ack = await winner.wait((m) => m.startsWith('ACK '));
      results.check(`the winner (WebSocket on worker ${winner.worker}, call on worker ${callWorker}) gets the ACK`, ack !== null);
      const cancels = await Promise.all(clients.map(async (c, i) => {
        if (i === w || !invites[i]) return true;
        const cancel = await c.wait((m) => m.startsWith('CANCEL '));
        if (cancel) {
          c.send(respond(cancel, 200, 'OK'));
          c.send(respond(invites[i], 487, 'Request Terminated', { toTag: `t${i}` }));
        }
        return cancel !== null;
      }));
      results.check('every other registration, on either worker, gets CANCEL', cancels.every((x) => x));
      const bye = await winner.wait((m) => m.startsWith('BYE '), 8000);
      results.check('the trunk\'s BYE reaches the winner', bye !== null);
      if (bye) winner.send(respond(bye, 200, 'OK'));
    }
    const code = await Promise.race([uacDone, sleep(10000).then(() => 'still running')]);
    results.check('sipp (UAC) completed the inbound call and exited 0', code === 0, `exit ${code}`);
    for (const c of clients) c.close();
    results.check('turnbridge is still running', tb.alive());
    const exit = await tb.stop();
    results.check('turnbridge exits cleanly on SIGTERM', exit === 0, `exit ${exit}`);
    if (exit !== 0) console.log(tb.logTail());
  } catch (e) {
    results.check('test ran to the end', false, e.stack || String(e));
    if (tb) console.log(tb.logTail());
  }
  process.exit(results.finish());
}

main();
