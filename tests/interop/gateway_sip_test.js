// SPDX-License-Identifier: Apache-2.0
// Gateway signaling (issue 4) end to end, without media: JsSIP (npm, in node with the `ws`
// package as its WebSocket) registers over SIP-over-WebSocket; raw SIP over a WebSocket places
// calls toward sipp (Debian sip-tester) as the trunk's UAS. Node has no WebRTC: the browser's
// offer is a saved Chrome offer (tests/fixtures/sdp) and its answers are written here from our
// offer, so the gateway's SDP mapping runs but no media flows (gateway_call_test does media).
// Loopback only; only our own PIDs are killed.
// interop-timeout: 150
'use strict';
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const WebSocket = require('ws');
const { Turnbridge, Results, portPicker, USER, PASSWORD, REALM, gatewayServerConfig } = require('./harness');
const { WsSip, status, header, isResponse, request, respond, digestHeader, register, invite, rnd, md5, SDP,
  browserAnswer } = require('./sip_ws');

globalThis.WebSocket = WebSocket;   // JsSIP's WebSocketInterface uses the global one
const JsSIP = require('jssip');

const DID = '+15550123';
const DEAD_REALM = 'dead.example';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function httpGet(port, target) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
  });
}

function jssipRegister(wsUrl, password) {
  return new Promise((resolve) => {
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(wsUrl)],
      uri: `sip:${USER}@${REALM}`,
      password,
      register: false,
      session_timers: false,
      connection_recovery_min_interval: 60,
      connection_recovery_max_interval: 60,
    });
    const done = (what, detail) => { clearTimeout(timer); ua.stop(); resolve({ what, detail }); };
    const timer = setTimeout(() => done('timeout'), 8000);
    ua.on('registered', (e) => done('registered', e.response.status_code));
    ua.on('registrationFailed', (e) => done('failed', e.response ? e.response.status_code : e.cause));
    ua.on('connected', () => ua.register());
    ua.start();
  });
}

async function main() {
  const results = new Results('gateway_sip');
  let tb = null;
  let sipp = null;
  let registrar = null;
  const sippExit = { code: null };
  const cleanup = () => {
    if (tb) tb.killNow();
    if (sipp && sippExit.code === null) { try { sipp.kill('SIGKILL'); } catch { /* gone */ } }
    try { registrar.close(); } catch { /* not open */ }
  };
  process.on('exit', cleanup);
  try {
    const pick = portPicker();
    const wsPort = await pick();
    const sipPort = await pick();
    const sippPort = await pick();
    const deadPort = await pick();
    const wssPort = await pick();
    const registrarPort = await pick();
    const tcpSippPort = await pick();

    // The trunk registrar of realm reg.example: 401 first, then checks the digest and grants 60 s.
    registrar = dgram.createSocket('udp4');
    const regSeen = { first: null, authorized: null, digestOk: false };
    registrar.on('message', (buf, rinfo) => {
      const m = buf.toString();
      if (!m.startsWith('REGISTER ')) return;
      const auth = header(m, 'Authorization');
      let reply;
      if (!auth) {
        regSeen.first = { m, from: rinfo.port };
        reply = respond(m, 401, 'Unauthorized', { toTag: 'r1' }).replace('Content-Length',
          'WWW-Authenticate: Digest realm="trunk", nonce="n0nce1", qop="auth", algorithm=MD5\r\nContent-Length');
      } else {
        regSeen.authorized = { m, from: rinfo.port };
        const p = {};
        for (const x of auth.matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) p[x[1].toLowerCase()] = x[3] ?? x[2];
        const ha1 = md5(`gw:trunk:trunkpw`);
        const ha2 = md5(`REGISTER:${p.uri}`);
        regSeen.digestOk = p.response === md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
        reply = regSeen.digestOk ? respond(m, 200, 'OK', { toTag: 'r1' }).replace('Content-Length',
          `Contact: ${header(m, 'Contact')};expires=60\r\nContent-Length`) : respond(m, 403, 'Forbidden', { toTag: 'r1' });
      }
      registrar.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise((r) => registrar.bind(registrarPort, '127.0.0.1', r));
    JsSIP.debug.disable('JsSIP:*');

    // sipp's default UAS: INVITE -> 180, 200; ACK; BYE -> 200; one call, then it exits 0.
    const sippDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sipp-'));
    sipp = spawn('/usr/bin/sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(sippPort), '-m', '1',
      '-nostdin', '-timeout', '90s', '-timeout_error', '-trace_err'],
    { cwd: sippDir, stdio: ['ignore', 'ignore', 'pipe'] });
    let sippErr = '';
    sipp.stderr.on('data', (d) => { sippErr += d; });
    const sippDone = new Promise((resolve) => sipp.on('exit', (code, sig) => {
      sippExit.code = code ?? sig;
      resolve(sippExit.code);
    }));

    tb = await new Turnbridge({
      serverConfig: gatewayServerConfig({ wsPort, wssPort, sipPort }),
      extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
caller_id = "+15550100"
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]

[realm."${DEAD_REALM}"]
users = { ${USER} = "${PASSWORD}" }
[realm."${DEAD_REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${deadPort};transport=udp"

[realm."deadtcp.example"]
users = { ${USER} = "${PASSWORD}" }
[realm."deadtcp.example".gateway]
enabled = true
trunk = "sip:127.0.0.1:${deadPort};transport=tcp"

[realm."tcp.example"]
users = { ${USER} = "${PASSWORD}" }
[realm."tcp.example".gateway]
enabled = true
trunk = "sip:127.0.0.1:${tcpSippPort};transport=tcp"

[realm."reg.example"]
users = { ${USER} = "${PASSWORD}" }
[realm."reg.example".gateway]
enabled = true
trunk = "sip:127.0.0.1:${registrarPort};transport=udp"
trunk_username = "gw"
trunk_password = "trunkpw"
register = true
`,
    }).start();
    const wsUrl = `ws://127.0.0.1:${wsPort}/sip`;

    // Our REGISTER toward the trunk (register = true): from the sip_listen socket, digest answered.
    for (let i = 0; i < 40 && !regSeen.authorized; i++) await sleep(100);
    results.check('REGISTER to the trunk leaves from sip_listen', regSeen.first !== null && regSeen.first.from === sipPort,
      regSeen.first ? `from port ${regSeen.first.from}` : 'nothing arrived');
    results.check("the trunk's 401 is answered with a correct digest", regSeen.authorized !== null && regSeen.digestOk);
    for (let i = 0; i < 20 && !/registered to trunk/.test(fs.readFileSync(tb.logPath, 'utf8')); i++) await sleep(100);
    results.check('turnbridge logs the trunk registration', /realm reg\.example: registered to trunk (?:\S+ )?for 60 s/
      .test(fs.readFileSync(tb.logPath, 'utf8')));

    // SIP over secure WebSocket (wss_listen, the server's certificate).
    {
      const s = new WsSip(`wss://127.0.0.1:${wssPort}/sip`);
      s.options = { rejectUnauthorized: false };
      await s.open();
      const callId = rnd();
      s.send(request({ method: 'OPTIONS', uri: `sip:${REALM}`, callId, cseq: 1, fromTag: rnd(), to: `<sip:${REALM}>` }));
      const r = await s.wait(isResponse(callId, 'OPTIONS'));
      results.check('OPTIONS over wss gets 200', status(r) === 200, `${status(r)}`);
      s.close();
    }

    // HTTP side of the ws listener.
    const page = await httpGet(wsPort, '/');
    results.check('GET / serves the click-to-call page', page.status === 200 && /text\/html/.test(page.type || '')
      && page.body.includes('<html'), `${page.status} ${page.type}`);

    // REGISTER through JsSIP: wrong password refused, right one accepted.
    const bad = await jssipRegister(wsUrl, 'wrong-password');
    results.check('REGISTER with a wrong password is refused', bad.what === 'failed', `${bad.what} ${bad.detail}`);
    const good = await jssipRegister(wsUrl, PASSWORD);
    results.check('REGISTER with the right password: JsSIP registered', good.what === 'registered'
      && good.detail === 200, `${good.what} ${good.detail}`);

    const c = new WsSip(wsUrl);
    await c.open();

    // REGISTER for a realm that does not exist.
    {
      const callId = rnd();
      c.send(request({ method: 'REGISTER', uri: 'sip:nowhere.example', callId, cseq: 1, fromTag: rnd(),
        to: `<sip:${USER}@nowhere.example>` }));
      const r = await c.wait(isResponse(callId, 'REGISTER'));
      results.check('REGISTER for an unknown realm gets 404', status(r) === 404, `${status(r)}`);
    }

    // OPTIONS out of dialog.
    {
      const callId = rnd();
      c.send(request({ method: 'OPTIONS', uri: `sip:${REALM}`, callId, cseq: 1, fromTag: rnd(), to: `<sip:${REALM}>` }));
      const r = await c.wait(isResponse(callId, 'OPTIONS'));
      results.check('OPTIONS gets 200', status(r) === 200, `${status(r)}`);
    }

    // A request whose CSeq method differs from its method (RFC 3261 §8.1.1.5): 400. (A request
    // without Call-ID is dropped instead: a 400 could not name the transaction either.)
    {
      const branch = `z9hG4bK${rnd()}`;
      c.send(['OPTIONS sip:example.org SIP/2.0', `Via: SIP/2.0/WS bad.invalid;branch=${branch}`,
        'Max-Forwards: 70', `From: <sip:${USER}@${REALM}>;tag=1`, `To: <sip:${REALM}>`, `Call-ID: ${rnd()}`,
        'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'));
      const r = await c.wait((m) => m.startsWith('SIP/2.0') && m.includes(branch));
      results.check('malformed SIP (CSeq method mismatch) gets 400', status(r) === 400, r ? r.split('\r\n')[0] : 'no answer');
      // Garbage that is not SIP at all: dropped, the connection and the server stay up.
      c.send('\x01\x02 this is not SIP \r\n\r\n');
      const callId = rnd();
      c.send(request({ method: 'OPTIONS', uri: `sip:${REALM}`, callId, cseq: 1, fromTag: rnd(), to: `<sip:${REALM}>` }));
      const after = await c.wait(isResponse(callId, 'OPTIONS'));
      results.check('garbage over WS is dropped, the connection still answers', status(after) === 200 && tb.alive());
    }

    // Outbound call to sipp: 407, authenticated INVITE, 180/200 relayed, ACK, BYE.
    {
      const uri = `sip:${DID}@${REALM}`;
      const inv = await invite(c, uri, SDP, 10000);
      results.check('INVITE is challenged with 407', status(inv.first) === 407, `${status(inv.first)}`);
      const ok = status(inv.final) === 200;
      results.check('INVITE reaches sipp and its 200 comes back', ok, inv.final ? inv.final.split('\r\n')[0] : 'no answer');
      results.check('the 200 carries an SDP answer', ok && header(inv.final, 'Content-Type') === 'application/sdp'
        && inv.final.includes('\r\nm=audio'));
      if (ok) {
        const to = header(inv.final, 'To');
        const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
        c.send(request({ method: 'ACK', uri: target, callId: inv.callId, cseq: 2, fromTag: inv.fromTag, to }));
        await sleep(300);
        c.send(request({ method: 'BYE', uri: target, callId: inv.callId, cseq: 3, fromTag: inv.fromTag, to }));
        const bye = await c.wait(isResponse(inv.callId, 'BYE'));
        results.check('BYE from the browser gets 200', status(bye) === 200, `${status(bye)}`);
      }
      const code = await Promise.race([sippDone, sleep(8000).then(() => 'still running')]);
      results.check('sipp saw the whole call (INVITE, ACK, BYE) and exited 0', code === 0,
        `exit ${code}${sippErr ? `: ${sippErr.trim().split('\n').slice(-2).join(' ')}` : ''}`);
    }

    // The browser vanishes mid-call (its WebSocket drops): the trunk leg gets BYE.
    {
      const again = spawn('/usr/bin/sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(sippPort), '-m', '1',
        '-nostdin', '-timeout', '30s', '-timeout_error'], { cwd: sippDir, stdio: 'ignore' });
      const againDone = new Promise((resolve) => again.on('exit', (code, sig) => resolve(code ?? sig)));
      process.on('exit', () => { try { again.kill('SIGKILL'); } catch { /* gone */ } });
      await sleep(500);
      const d = new WsSip(wsUrl);
      await d.open();
      const uri = `sip:${DID}@${REALM}`;
      const inv = await invite(d, uri, SDP, 10000);
      if (status(inv.final) === 200) {
        const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
        d.send(request({ method: 'ACK', uri: target, callId: inv.callId, cseq: 2, fromTag: inv.fromTag,
          to: header(inv.final, 'To') }));
        await sleep(300);
      }
      d.ws.terminate();
      const code = await Promise.race([againDone, sleep(8000).then(() => 'still running')]);
      results.check('a browser whose WebSocket drops mid-call: the trunk gets BYE', status(inv.final) === 200
        && code === 0, `${status(inv.final)}, sipp exit ${code}`);
      if (code === 'still running') again.kill('SIGKILL');
    }

    // A TCP trunk (sipp -t t1): we connect to it, the call and its BYE go over that connection.
    {
      const tcpUas = spawn('/usr/bin/sipp', ['-sn', 'uas', '-t', 't1', '-i', '127.0.0.1', '-p', String(tcpSippPort),
        '-m', '1', '-nostdin', '-timeout', '30s', '-timeout_error'], { cwd: sippDir, stdio: 'ignore' });
      const tcpDone = new Promise((resolve) => tcpUas.on('exit', (code, sig) => resolve(code ?? sig)));
      process.on('exit', () => { try { tcpUas.kill('SIGKILL'); } catch { /* gone */ } });
      await sleep(500);
      const inv = await invite(c, `sip:${DID}@tcp.example`, SDP, 10000);
      let byeStatus = 0;
      if (status(inv.final) === 200) {
        const to = header(inv.final, 'To');
        const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
        c.send(request({ method: 'ACK', uri: target, callId: inv.callId, cseq: 2, fromTag: inv.fromTag, to }));
        await sleep(300);
        c.send(request({ method: 'BYE', uri: target, callId: inv.callId, cseq: 3, fromTag: inv.fromTag, to }));
        byeStatus = status(await c.wait(isResponse(inv.callId, 'BYE')));
      }
      const code = await Promise.race([tcpDone, sleep(8000).then(() => 'still running')]);
      results.check('a call over a TCP trunk: 200, BYE 200, sipp (TCP) saw the whole call',
        status(inv.final) === 200 && byeStatus === 200 && code === 0,
        `${status(inv.final)}, BYE ${byeStatus}, sipp exit ${code}`);
      if (code === 'still running') tcpUas.kill('SIGKILL');
    }

    // The browser CANCELs a call the trunk has not answered (RFC 3261 §9.2): 200 to the CANCEL,
    // 487 to the INVITE, at once.
    {
      const uri = `sip:${DID}@${DEAD_REALM}`;
      const callId = rnd() + rnd();
      const fromTag = rnd();
      const to = `<${uri}>`;
      c.send(request({ method: 'INVITE', uri, callId, cseq: 1, fromTag, to, body: SDP }));
      const challenge = await c.wait((m) => isResponse(callId, 'INVITE')(m) && status(m) === 407);
      c.send(request({ method: 'ACK', uri, callId, cseq: 1, fromTag, to: header(challenge, 'To') }));
      const branch = `z9hG4bK${rnd()}`;
      const auth = digestHeader(header(challenge, 'Proxy-Authenticate'), 'INVITE', uri, USER, PASSWORD);
      c.send(request({ method: 'INVITE', uri, callId, cseq: 2, fromTag, to, body: SDP, branch,
        extra: [`Proxy-Authorization: ${auth}`] }));
      const trying = await c.wait((m) => isResponse(callId, 'INVITE')(m) && status(m) === 100);
      await sleep(500);
      const t0 = Date.now();
      c.send(request({ method: 'CANCEL', uri, callId, cseq: 2, fromTag, to, branch }));
      const ok = await c.wait(isResponse(callId, 'CANCEL'));
      const final = await c.wait((m) => isResponse(callId, 'INVITE')(m) && status(m) >= 200, 5000);
      results.check('CANCEL from the browser: 200, then 487 for the INVITE', trying !== null && status(ok) === 200
        && status(final) === 487, `${status(ok)} ${status(final)} after ${Date.now() - t0} ms`);
      if (final) c.send(request({ method: 'ACK', uri, callId, cseq: 2, fromTag, to: header(final, 'To'), branch }));
    }

    // A TCP connection to the ws listener that never sends its HTTP request: handshake_timeout
    // closes it (checked at the end, while the other checks run).
    const idle = require('node:net').connect(wsPort, '127.0.0.1');
    const idleClosed = new Promise((resolve) => idle.on('close', () => resolve(Date.now())));
    const idleSince = Date.now();

    // A call into a realm whose trunk does not answer: Timer B (64*T1 = 32 s) ends it.
    {
      const inv = await invite(c, `sip:${DID}@${DEAD_REALM}`, SDP, 40000);
      const s = status(inv.final);
      results.check('a dead trunk gives the browser 503 within the Timer B budget',
        s === 503 && inv.elapsed < 40000, `${s} after ${inv.elapsed} ms`);
    }

    // A TCP trunk that refuses the connection: a transport error (RFC 3261 §8.1.3.1), 503 at once.
    {
      const inv = await invite(c, `sip:${DID}@deadtcp.example`, SDP, 10000);
      const s = status(inv.final);
      results.check('a TCP trunk that refuses the connection gives the browser 503 at once',
        s === 503 && inv.elapsed < 5000, `${s} after ${inv.elapsed} ms`);
    }

    // Inbound: sipp (UAC) calls the routed DID over UDP, then over TCP; both registrations of the
    // routed user ring, the first to answer wins and the other gets CANCEL; sipp's BYE reaches the winner.
    for (const [transport, tag] of [['u1', 'UDP'], ['t1', 'TCP']]) {
      const a = new WsSip(wsUrl);
      const b = new WsSip(wsUrl);
      await a.open();
      await b.open();
      const contactA = `sip:${USER}@${rnd()}.invalid;transport=ws`;
      const contactB = `sip:${USER}@${rnd()}.invalid;transport=ws`;
      const ra = await register(a, contactA);
      const rb = await register(b, contactB);
      results.check(`two raw WS clients register (digest 401 round) [${tag}]`, ra === 200 && rb === 200, `${ra} ${rb}`);
      const uacPort = await pick();
      const uac = spawn('/usr/bin/sipp', ['-sn', 'uac', '-s', DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1',
        '-p', String(uacPort), '-t', transport, '-m', '1', '-d', '500', '-nostdin', '-timeout', '30s', '-timeout_error'],
      { cwd: sippDir, stdio: 'ignore' });
      const uacDone = new Promise((resolve) => uac.on('exit', (code, sig) => resolve(code ?? sig)));
      process.on('exit', () => { try { uac.kill('SIGKILL'); } catch { /* gone */ } });
      const isInvite = (m) => m.startsWith('INVITE ');
      const [ia, ib] = await Promise.all([a.wait(isInvite, 8000), b.wait(isInvite, 8000)]);
      results.check(`the inbound INVITE forks to both registrations [${tag}]`, ia !== null && ib !== null,
        `${ia ? 'A' : '-'}${ib ? 'B' : '-'}`);
      if (ia && ib) {
        results.check(`the forked INVITE targets the registered Contact [${tag}]`, ia.startsWith(`INVITE ${contactA} `)
          && ib.startsWith(`INVITE ${contactB} `), ia.split('\r\n')[0]);
        b.send(respond(ib, 180, 'Ringing', { toTag: 'btag', contact: contactB }));
        a.send(respond(ia, 200, 'OK', { toTag: 'atag', body: browserAnswer(ia), contact: contactA }));
        const ack = await a.wait((m) => m.startsWith('ACK '));
        results.check(`the winner gets the ACK [${tag}]`, ack !== null);
        const cancel = await b.wait((m) => m.startsWith('CANCEL '));
        results.check(`the other registration gets CANCEL [${tag}]`, cancel !== null);
        if (cancel) {
          b.send(respond(cancel, 200, 'OK'));
          b.send(respond(ib, 487, 'Request Terminated', { toTag: 'btag' }));
        }
        const bye = await a.wait((m) => m.startsWith('BYE '), 8000);
        results.check(`sipp's BYE reaches the winner [${tag}]`, bye !== null);
        if (bye) a.send(respond(bye, 200, 'OK'));
      }
      const code = await Promise.race([uacDone, sleep(10000).then(() => 'still running')]);
      results.check(`sipp (UAC) completed the inbound call and exited 0 [${tag}]`, code === 0, `exit ${code}`);
      if (code === 'still running') uac.kill('SIGKILL');
      a.close();
      b.close();
    }

    c.close();
    const idleAt = await Promise.race([idleClosed, sleep(Math.max(0, idleSince + 20000 - Date.now())).then(() => null)]);
    // [streams] handshake_timeout (default 10 s) plus the host's 1 s sweep.
    results.check('a connection that never completes its HTTP request is closed after ~10 s (streams.handshake_timeout)',
      idleAt !== null && idleAt - idleSince >= 9500 && idleAt - idleSince <= 13000,
      idleAt ? `${idleAt - idleSince} ms` : 'still open');
    idle.destroy();
    results.check('turnbridge is still running', tb.alive());
    const code = await tb.stop();
    results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
    if (code !== 0) console.log(tb.logTail());
  } catch (e) {
    results.check('test ran to the end', false, e.stack || String(e));
    if (tb) console.log(tb.logTail());
  } finally {
    cleanup();
  }
  process.exit(results.finish());
}

main();
