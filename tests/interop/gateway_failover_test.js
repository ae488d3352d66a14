// SPDX-License-Identifier: Apache-2.0
// Issue 14, trunk addresses and failover: turnbridge resolves its trunks through c-ares at a
// dnsmasq on loopback (server.dns_servers), which serves SRV records (RFC 3263 §4.2, RFC 2782)
// for sipp trunks; the browser side is raw SIP over WebSocket from node (sip_ws.js).
//  - the first target answers 503: the call completes on the second within one second (SRV,
//    and again with gateway.trunk_targets, a list of addresses);
//  - the first target is silent (a UDP socket that never answers): given up within 2 s;
//  - the first target answers 486: not retried, the second never hears of the call;
//  - OPTIONS health (options_interval = 1): a stopped sipp is marked down after 3 missed probes
//    (GET /api/v1/trunks), calls skip it, and it is up again once sipp answers again;
//  - inbound INVITEs: from an address in gateway.trunk_allow (sipp bound to 127.0.0.2) the
//    browser rings; from outside it (127.0.0.3) 403 and nobody rings.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const dgram = require('node:dgram');
const { spawn } = require('node:child_process');
const { Turnbridge, runSuite, portPicker, gatewayServerConfig, adminConfig, adminGet, USER, PASSWORD,
  REALM } = require('./harness');
const { WsSip, status, header, isResponse, request, respond, register, invite, rnd, SDP, browserAnswer } = require('./sip_ws');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DID = '+15550100';

// A sipp UAS that answers each `method` with `code` (then takes the ACK of an INVITE).
const answeringUas = (method, code, reason) => `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer ${method} ${code}">
  <recv request="${method}" />
  <send><![CDATA[
SIP/2.0 ${code} ${reason}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
${method === 'INVITE' ? '  <recv request="ACK" />\n' : ''}</scenario>
`;

// A sipp UAC that expects 403 to its INVITE (the stateless answer to a stranger: no ACK needed).
const expect403 = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="expect 403">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true" />
  <recv response="403" />
</scenario>
`;

// A UDP trunk target in node: OPTIONS -> 200, INVITE -> 486 (and the ACK taken); counts INVITEs.
async function busyResponder(port) {
  const s = dgram.createSocket('udp4');
  const t = { socket: s, invites: 0 };
  s.on('message', (m, from) => {
    const text = m.toString();
    const method = text.split(' ', 1)[0];
    if (method !== 'OPTIONS' && method !== 'INVITE') return;
    if (method === 'INVITE') t.invites++;
    const reply = method === 'OPTIONS' ? respond(text, 200, 'OK') : respond(text, 486, 'Busy Here', { toTag: 'busy' });
    s.send(reply, from.port, from.address);
  });
  await new Promise((resolve) => s.bind(port, '127.0.0.1', resolve));
  return t;
}

function outboundRealm(name, host) {
  return `[realm."${name}"]
users = { ${USER} = "${PASSWORD}" }
[realm."${name}".gateway]
enabled = true
trunk = "sip:${host};transport=udp"
`;
}

// A UDP socket that never answers; counts the SIP requests it gets.
async function silentTarget(port) {
  const s = dgram.createSocket('udp4');
  const t = { socket: s, invites: 0, last: 0 };
  s.on('message', (m) => { if (m.toString().startsWith('INVITE ')) { t.invites++; t.last = Date.now(); } });
  await new Promise((resolve) => s.bind(port, '127.0.0.1', resolve));
  return t;
}

runSuite('gateway_failover', 150000, async (results, cleanup) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'failover-'));
  const procs = [];
  const start = (cmd, args, opts = {}) => {
    const p = spawn(cmd, args, { cwd: dir, stdio: 'ignore', ...opts });
    procs.push(p);
    p.done = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code ?? sig)));
    return p;
  };
  cleanup.push(() => { for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });
  const pick = portPicker();
  const [wsPort, sipPort, dnsPort, adminPort] = [await pick(), await pick(), await pick(), await pick()];
  const port = {};
  for (const k of ['r503', 'ok1', 'silent', 'ok2', 'r486', 'quiet', 'uac', 'hA', 'hB', 'l503', 'ok3']) port[k] = await pick();
  fs.writeFileSync(path.join(dir, 'uas503.xml'), answeringUas('INVITE', 503, 'Service Unavailable'));
  fs.writeFileSync(path.join(dir, 'uas486.xml'), answeringUas('INVITE', 486, 'Busy Here'));
  fs.writeFileSync(path.join(dir, 'expect403.xml'), expect403);
  fs.writeFileSync(path.join(dir, 'options.xml'), answeringUas('OPTIONS', 200, 'OK'));   // call after call

  // dnsmasq serves the SRV records: priority 10 first, 20 second (RFC 2782).
  const srv = (name, target, p, prio) => `--srv-host=_sip._udp.${name},${target},${p},${prio},10`;
  const dns = start('/usr/sbin/dnsmasq', ['--no-daemon', `--port=${dnsPort}`, '--listen-address=127.0.0.1',
    '--bind-interfaces', '--no-resolv', '--no-hosts', '--log-queries', `--log-facility=${path.join(dir, 'dnsmasq.log')}`,
    '--host-record=t.carrier.test,127.0.0.1',
    srv('fo503.test', 't.carrier.test', port.r503, 10), srv('fo503.test', 't.carrier.test', port.ok1, 20),
    srv('silent.test', 't.carrier.test', port.silent, 10), srv('silent.test', 't.carrier.test', port.ok2, 20),
    srv('busy.test', 't.carrier.test', port.r486, 10), srv('busy.test', 't.carrier.test', port.quiet, 20),
    srv('health.test', 't.carrier.test', port.hA, 10), srv('health.test', 't.carrier.test', port.hB, 20)]);
  cleanup.push(() => dns.kill('SIGKILL'));
  await sleep(300);
  results.check('dnsmasq runs on loopback', dns.exitCode === null);

  const tb = await new Turnbridge({
    serverConfig: `${gatewayServerConfig({ wsPort, sipPort })}dns_servers = ["127.0.0.1:${dnsPort}"]\n`,
    extraConfig: `[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${port.quiet};transport=udp"
trunk_allow = ["127.0.0.2/32"]
routes = { "${DID}" = ["${USER}"] }

${outboundRealm('a.example', 'fo503.test')}options_interval = 0   # sipp -sn uas takes an OPTIONS for a failed call
${outboundRealm('b.example', 'silent.test')}options_interval = 0
${outboundRealm('c.example', 'busy.test')}options_interval = 0
${outboundRealm('d.example', 'health.test')}options_interval = 1
${outboundRealm('e.example', `127.0.0.1:${port.l503}`)}trunk_targets = ["127.0.0.1:${port.ok3}"]
options_interval = 0

${adminConfig(adminPort, { flushInterval: 1 })}`,
  }).start();
  cleanup.push(() => tb.killNow());
  const tbText = () => fs.readFileSync(tb.logPath, 'utf8');
  const c = new WsSip(`ws://127.0.0.1:${wsPort}/sip`);
  await c.open();
  cleanup.push(() => c.close());

  // ACK and BYE an answered call; resolves to the BYE's status.
  const hangUp = async (inv) => {
    const to = header(inv.final, 'To');
    const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
    c.send(request({ method: 'ACK', uri: target, callId: inv.callId, cseq: 2, fromTag: inv.fromTag, to }));
    await sleep(200);
    c.send(request({ method: 'BYE', uri: target, callId: inv.callId, cseq: 3, fromTag: inv.fromTag, to }));
    return status(await c.wait(isResponse(inv.callId, 'BYE'), 8000));
  };
  const sipp = (scenario, p) => start('/usr/bin/sipp', [...scenario, '-i', '127.0.0.1', '-p', String(p), '-m', '1',
    '-nostdin', '-timeout', '30s', '-timeout_error']);

  // 1. 503 from the first target (sipp at `first`), the second (sipp at `second`) answers within
  // a second: with SRV (a.example), then with a list of addresses, trunk_targets (e.example).
  for (const [realm, first, second, label] of [['a.example', port.r503, port.ok1, 'SRV'],
    ['e.example', port.l503, port.ok3, 'trunk_targets']]) {
    const refuse = sipp(['-sf', 'uas503.xml'], first);
    const ok = sipp(['-sn', 'uas'], second);
    await sleep(300);
    const inv = await invite(c, `sip:${DID}@${realm}`, SDP, 10000);
    const bye = status(inv.final) === 200 ? await hangUp(inv) : 0;
    const codes = await Promise.all([refuse.done, ok.done].map((d) => Promise.race([d, sleep(8000).then(() => 'running')])));
    results.check(`${label}: 503 from the first target, the call completes on the second within one second`,
      status(inv.final) === 200 && inv.elapsed < 1000 && bye === 200,
      `${status(inv.final)} after ${inv.elapsed} ms, BYE ${bye}`);
    results.check(`${label}: the 503 target saw the INVITE and the ACK, the second the whole call (sipp exit 0 both)`,
      codes[0] === 0 && codes[1] === 0, `exit ${codes.join(', ')}`);
  }

  // 2. A silent first target: abandoned within 2 s (kTryingWait), then the second answers.
  {
    const silent = await silentTarget(port.silent);
    cleanup.push(() => silent.socket.close());
    const ok = sipp(['-sn', 'uas'], port.ok2);
    await sleep(300);
    const inv = await invite(c, `sip:${DID}@b.example`, SDP, 10000);
    const bye = status(inv.final) === 200 ? await hangUp(inv) : 0;
    const code = await Promise.race([ok.done, sleep(8000).then(() => 'running')]);
    results.check('a silent first target is given up within 2 s; the second answers',
      status(inv.final) === 200 && inv.elapsed < 2600 && inv.elapsed >= 1900 && bye === 200 && code === 0,
      `${status(inv.final)} after ${inv.elapsed} ms, BYE ${bye}, sipp exit ${code}`);
    const seen = silent.invites;
    await sleep(1500);
    results.check('the silent target got the INVITE (and Timer A copies), none after it was given up',
      seen >= 1 && silent.invites === seen, `${seen} then ${silent.invites}`);
  }

  // 3. 486 is the callee's answer, not the target's failure: no failover.
  {
    const quiet = await silentTarget(port.quiet);
    cleanup.push(() => quiet.socket.close());
    const busy = sipp(['-sf', 'uas486.xml'], port.r486);
    await sleep(300);
    const inv = await invite(c, `sip:${DID}@c.example`, SDP, 10000);
    const code = await Promise.race([busy.done, sleep(8000).then(() => 'running')]);
    await sleep(500);
    results.check('486 from the first target reaches the browser, and is not retried on the second',
      status(inv.final) === 486 && quiet.invites === 0 && code === 0,
      `${status(inv.final)}, second target got ${quiet.invites} INVITE(s), sipp exit ${code}`);
    quiet.socket.close();
  }
  results.check('the targets came from SRV through c-ares at dnsmasq',
    /query\[SRV\] _sip\._udp\.fo503\.test/.test(fs.readFileSync(path.join(dir, 'dnsmasq.log'), 'utf8')));

  // 4. OPTIONS health: sipp at hA answers, is stopped (down after 3 misses, skipped), returns (up).
  {
    const b = await busyResponder(port.hB);
    cleanup.push(() => b.socket.close());
    // (no -m: every OPTIONS is a call of its own to sipp)
    const startA = () => start('/usr/bin/sipp', ['-sf', 'options.xml', '-i', '127.0.0.1', '-p', String(port.hA),
      '-nostdin']);
    let a = startA();
    const stateOf = async () => {
      let list = null;
      try { list = JSON.parse((await adminGet(adminPort, '/api/v1/trunks')).body); } catch { /* not yet */ }
      const t = (list || []).find((x) => x.realm === 'd.example' && x.target === `127.0.0.1:${port.hA}`);
      return t || null;
    };
    const waitFor = async (pred, ms) => {
      const until = Date.now() + ms;
      let t = null;
      while (Date.now() < until) {
        t = await stateOf();
        if (t && pred(t)) return t;
        await sleep(250);
      }
      return t;
    };
    // (the first probe may meet sipp before it listens: its answer then comes to Timer E's copy)
    let t = await waitFor((x) => x.state === 'up' && x.last_status === 200 && x.rtt_ms !== null && x.rtt_ms < 400, 6000);
    results.check('/api/v1/trunks: the answering target is up, with its last status and RTT',
      t !== null && t.state === 'up' && t.last_status === 200 && t.rtt_ms !== null && t.rtt_ms < 500,
      JSON.stringify(t));
    a.kill('SIGTERM');
    await a.done;
    const stopped = Date.now();
    t = await waitFor((x) => x.state === 'down', 9000);
    results.check('a stopped sipp is marked down after 3 unanswered OPTIONS',
      t !== null && t.state === 'down' && t.misses >= 3, `${JSON.stringify(t)} after ${Date.now() - stopped} ms`);
    const metrics = (await adminGet(adminPort, '/metrics')).body;
    results.check('/metrics shows the target down',
      metrics.includes(`turnbridge_gateway_trunk_target_up{realm="d.example",trunk="default",target="127.0.0.1:${port.hA}"} 0`),
      metrics.split('\n').filter((l) => l.startsWith('turnbridge_gateway_trunk_target')).join(' | '));
    const inv = await invite(c, `sip:${DID}@d.example`, SDP, 8000);
    results.check('a call skips the down target: the next one answers at once (486 here, no 2 s wait)',
      status(inv.final) === 486 && inv.elapsed < 1000 && b.invites === 1, `${status(inv.final)} after ${inv.elapsed} ms`);
    a = startA();
    t = await waitFor((x) => x.state === 'up', 6000);
    results.check('back up once sipp answers again', t !== null && t.state === 'up' && t.misses === 0, JSON.stringify(t));
    a.kill('SIGTERM');
    b.socket.close();
  }

  // 5. Inbound from trunk_allow (127.0.0.2) rings the browser; from 127.0.0.3, 403 and no ring.
  {
    const b = new WsSip(`ws://127.0.0.1:${wsPort}/sip`);
    await b.open();
    cleanup.push(() => b.close());
    const contact = `sip:${USER}@${rnd()}.invalid;transport=ws`;
    results.check('the browser registers', await register(b, contact) === 200);
    const uac = start('/usr/bin/sipp', ['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.2',
      '-p', String(port.uac), '-m', '1', '-d', '500', '-nostdin', '-timeout', '30s', '-timeout_error']);
    const ring = await b.wait((m) => m.startsWith('INVITE '), 8000);
    results.check('an INVITE from 127.0.0.2 (in trunk_allow) rings the browser', ring !== null,
      ring ? ring.split('\r\n')[0] : 'no INVITE');
    if (ring) {
      b.send(respond(ring, 200, 'OK', { toTag: 'btag', body: browserAnswer(ring), contact }));
      const bye = await b.wait((m) => m.startsWith('BYE '), 8000);
      if (bye) b.send(respond(bye, 200, 'OK'));
    }
    const code = await Promise.race([uac.done, sleep(10000).then(() => 'running')]);
    results.check('sipp (UAC at 127.0.0.2) completed the call', code === 0, `exit ${code}`);

    const stranger = start('/usr/bin/sipp', ['-sf', 'expect403.xml', '-s', DID, `127.0.0.1:${sipPort}`,
      '-i', '127.0.0.3', '-p', String(port.uac), '-m', '1', '-nostdin', '-timeout', '10s', '-timeout_error']);
    const code2 = await Promise.race([stranger.done, sleep(12000).then(() => 'running')]);
    const rang = await b.wait((m) => m.startsWith('INVITE '), 1500);
    results.check('an INVITE from 127.0.0.3 (outside trunk_allow) gets 403 and rings nobody',
      code2 === 0 && rang === null, `sipp exit ${code2}, browser ${rang ? 'rang' : 'silent'}`);
  }

  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
  if (results.failed) console.log(tb.logTail(40));
  void tbText;
}, () => []);
