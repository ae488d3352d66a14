// SPDX-License-Identifier: Apache-2.0
// Gateway toward a TLS SIP trunk (issue 4), end to end: Kamailio (Debian, tls module) is the
// trunk, listening on UDP and TLS with a certificate this test makes (openssl); turnbridge
// connects to it over TLS (trunk_ca = that certificate), REGISTERs over the connection and
// places calls through it; Kamailio forwards them over UDP to sipp (UAS), and forwards sipp's
// calls (UAC) back to the registered turnbridge over the same TLS connection, which rings the
// browser (raw SIP over WebSocket from node). Also: a trunk named "localhost" (resolved by
// turnbridge, certificate checked against the name), a trunk whose certificate is not signed by
// the configured CA, and one whose trusted certificate names someone else (503 at once, a log
// line naming the trunk).
// Loopback only; free ports; only our own PIDs are killed.
// interop-timeout: 150
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Turnbridge, Results, portPicker, USER, PASSWORD, REALM, gatewayServerConfig } = require('./harness');
const { WsSip, status, header, isResponse, request, respond, register, invite, rnd, SDP, browserAnswer } =
  require('./sip_ws');

const DID = '+15550123';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function kamailioModules() {
  for (const dir of ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules',
    '/usr/lib/kamailio/modules', '/usr/lib64/kamailio/modules']) {
    if (fs.existsSync(path.join(dir, 'tls.so'))) return dir;
  }
  return null;
}

// A self-signed certificate, by default for localhost and 127.0.0.1.
function certificate(dir, name, cn = 'localhost', san = 'DNS:localhost,IP:127.0.0.1') {
  const key = path.join(dir, `${name}-key.pem`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '2', '-subj', `/CN=${cn}/O=${name}`, '-addext', `subjectAltName=${san}`,
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

// Kamailio as the trunk: REGISTER only over TLS (saved in memory); calls from TLS (turnbridge)
// go to sipp over UDP, calls from UDP (sipp) go to turnbridge's registered Contact, which is
// the TLS connection turnbridge opened. In-dialog requests follow their Request-URI, or the
// registration again for those from sipp (whose ACK/BYE are addressed to Kamailio itself).
function kamailioConfig({ modules, udpPort, tlsPort, otherTlsPort, tlsCfg, sippPort }) {
  return `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
enable_tls=yes
listen=udp:127.0.0.1:${udpPort}
listen=tls:127.0.0.1:${tlsPort}
listen=tls:127.0.0.1:${otherTlsPort}
loadpath "${modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "tls.so"
modparam("tls", "config", "${tlsCfg}")
modparam("usrloc", "db_mode", 0)

request_route {
    xlog("L_NOTICE", "KAM $rm $ru from $proto:$si:$sp\\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (is_method("REGISTER")) {
        if ($proto == "tls") save("location"); else sl_send_reply("403", "TLS only");
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
    if ($proto == "tls") {
        if (!has_totag()) $du = "sip:127.0.0.1:${sippPort};transport=udp";
        t_relay();
        exit;
    }
    $var(did) = $rU;
    $rU = "turnbridge";
    if (!lookup("location")) { sl_send_reply("404", "Not registered"); exit; }
    $rU = $var(did);
    t_relay();
}
`;
}

// One more realm of the same user whose gateway calls `trunk`, trusting `ca`.
function gatewayRealm(name, trunk, ca) {
  return `[realm."${name}"]
users = { ${USER} = "${PASSWORD}" }
[realm."${name}".gateway]
enabled = true
trunk = "${trunk}"
trunk_ca = "${ca}"
`;
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function childPids(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}

// sipp as a one-call UAS on `port`; resolves to its exit code.
function sippUas(dir, port) {
  const p = spawn('/usr/bin/sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-nostdin',
    '-timeout', '40s', '-timeout_error'], { cwd: dir, stdio: 'ignore' });
  const done = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code ?? sig)));
  return { proc: p, done };
}

async function main() {
  const results = new Results('gateway_tls_trunk');
  let tb = null;
  let kam = null;
  const others = [];
  const cleanup = () => {
    if (tb) tb.killNow();
    for (const p of others) if (p.exitCode === null && p.signalCode === null) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
    if (kam && kam.exitCode === null && kam.signalCode === null) {
      const children = childPids(kam.pid);
      try { kam.kill('SIGKILL'); } catch { /* gone */ }
      for (const c of children) { try { process.kill(c, 'SIGKILL'); } catch { /* gone */ } }
    }
  };
  process.on('exit', cleanup);
  try {
    const modules = kamailioModules();
    if (!results.check('kamailio and its tls module are installed (scripts/setup)',
      modules !== null && fs.existsSync('/usr/sbin/kamailio'))) throw new Error('no kamailio');
    const pick = portPicker();
    const wsPort = await pick();
    const sipPort = await pick();
    const kamUdp = await pick();
    const kamTls = await pick();
    const sippPort = await pick();
    const kamOtherTls = await pick();

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-trunk-'));
    const trunkCert = certificate(dir, 'trunk');
    const stranger = certificate(dir, 'stranger');   // the same names, another (unrelated) key
    const other = certificate(dir, 'other', 'other.example', 'DNS:other.example');   // served on kamOtherTls
    const tlsCfg = path.join(dir, 'tls.cfg');
    fs.writeFileSync(tlsCfg, `[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = ${trunkCert.key}
certificate = ${trunkCert.cert}

[server:127.0.0.1:${kamOtherTls}]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = ${other.key}
certificate = ${other.cert}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`);
    const kamCfg = path.join(dir, 'kamailio.cfg');
    fs.writeFileSync(kamCfg, kamailioConfig({ modules, udpPort: kamUdp, tlsPort: kamTls, otherTlsPort: kamOtherTls, tlsCfg,
      sippPort }));
    const runDir = path.join(dir, 'run');
    fs.mkdirSync(runDir);
    const kamLogPath = path.join(dir, 'kamailio.log');
    const kamLog = fs.openSync(kamLogPath, 'w');
    // -DD: no daemon (this PID is the main process), -E: log to stderr, -Y: runtime dir of our own.
    kam = spawn('/usr/sbin/kamailio', ['-f', kamCfg, '-DD', '-E', '-Y', runDir, '-m', '32', '-M', '8'],
      { cwd: dir, stdio: ['ignore', kamLog, kamLog] });
    fs.closeSync(kamLog);
    let up = false;
    for (let i = 0; i < 100 && !up && kam.exitCode === null; i++) { await sleep(100); up = await tcpOpen(kamTls); }
    const kamText = () => fs.readFileSync(kamLogPath, 'utf8');
    if (!results.check('kamailio listens on TLS', up, up ? `port ${kamTls}` : kamText().split('\n').slice(-5).join(' | ')))
      throw new Error('kamailio did not start');

    tb = await new Turnbridge({
      serverConfig: gatewayServerConfig({ wsPort, sipPort }),
      extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sips:127.0.0.1:${kamTls}"
trunk_ca = "${trunkCert.cert}"
register = true
caller_id = "+15550100"
[realm."${REALM}".gateway.routes]
"${DID}" = ["${USER}"]
${gatewayRealm('name.example', `sip:localhost:${kamTls};transport=tls`, trunkCert.cert)}
${gatewayRealm('wrongca.example', `sips:127.0.0.1:${kamTls}`, stranger.cert)}
${gatewayRealm('mismatch.example', `sips:127.0.0.1:${kamOtherTls}`, other.cert)}
`,
    }).start();
    const tbText = () => fs.readFileSync(tb.logPath, 'utf8');
    const wsUrl = `ws://127.0.0.1:${wsPort}/sip`;

    // REGISTER over TLS: Kamailio saves it only when it came over TLS.
    for (let i = 0; i < 50 && !/realm example\.org: registered to trunk/.test(tbText()); i++) await sleep(100);
    const reg = /KAM REGISTER (\S+) from tls:127\.0\.0\.1:(\d+)/.exec(kamText());
    results.check('turnbridge REGISTERs to the trunk over TLS (sips Request-URI)', reg !== null
      && reg[1] === `sips:127.0.0.1:${kamTls}`, reg ? reg[0] : 'no REGISTER in the kamailio log');
    results.check('the trunk accepts the registration (200)', /realm example\.org: registered to trunk/.test(tbText()));
    const tlsPort = reg ? reg[2] : 'none';

    const c = new WsSip(wsUrl);
    await c.open();

    // Outbound call through the TLS trunk to sipp, over the registration's connection.
    const outbound = async (realm, label) => {
      const uas = sippUas(dir, sippPort);
      others.push(uas.proc);
      await sleep(300);
      const inv = await invite(c, `sip:${DID}@${realm}`, SDP, 15000);
      let bye = 0;
      if (status(inv.final) === 200) {
        const to = header(inv.final, 'To');
        const target = /<([^>]+)>/.exec(header(inv.final, 'Contact'))[1];
        c.send(request({ method: 'ACK', uri: target, callId: inv.callId, cseq: 2, fromTag: inv.fromTag, to }));
        await sleep(300);
        c.send(request({ method: 'BYE', uri: target, callId: inv.callId, cseq: 3, fromTag: inv.fromTag, to }));
        bye = status(await c.wait(isResponse(inv.callId, 'BYE'), 8000));
      }
      const code = await Promise.race([uas.done, sleep(10000).then(() => 'still running')]);
      results.check(`${label}: 200 through Kamailio, BYE 200, sipp saw INVITE, ACK and BYE`,
        status(inv.final) === 200 && bye === 200 && code === 0,
        `${inv.final ? inv.final.split('\r\n')[0] : 'no answer'}, BYE ${bye}, sipp exit ${code}`);
      if (code === 'still running') uas.proc.kill('SIGKILL');
      return inv;
    };

    const first = await outbound(REALM, 'call to sips:127.0.0.1 (IP literal)');
    const sent = [...kamText().matchAll(/KAM (INVITE|ACK|BYE) (\S+) from tls:127\.0\.0\.1:(\d+)/g)];
    const invites = sent.filter((m) => m[1] === 'INVITE');
    results.check('the INVITE reached Kamailio over TLS with a sips Request-URI',
      invites.length === 1 && invites[0][2] === `sips:${DID}@127.0.0.1:${kamTls}`, invites.map((m) => m[0]).join('; '));
    results.check('INVITE, ACK and BYE reuse the registration\'s TLS connection (RFC 3261 §18)',
      sent.length >= 3 && sent.every((m) => m[3] === tlsPort), `${sent.map((m) => `${m[1]}:${m[3]}`).join(' ')}, REGISTER:${tlsPort}`);
    void first;

    // A trunk named by host name: "localhost" is resolved (c-ares, /etc/hosts), the certificate is
    // checked for that name, the call works the same way.
    await outbound('name.example', 'call to sip:localhost;transport=tls (host name)');
    const named = [...kamText().matchAll(/KAM INVITE (\S+) from tls:127\.0\.0\.1:(\d+)/g)].pop();
    results.check('the named trunk\'s INVITE keeps the name and transport=tls in its Request-URI',
      named && named[1] === `sip:${DID}@localhost:${kamTls};transport=tls`, named ? named[0] : 'none');

    // A trunk whose certificate the configured CA did not sign, and one whose certificate is
    // trusted but made out to another name (RFC 6125): the handshake fails, the browser gets
    // 503 at once (no Timer B wait), and the log names the trunk and the reason.
    for (const [realm, port, why, label] of [['wrongca.example', kamTls, /self.signed certificate/, 'an untrusted certificate'],
      ['mismatch.example', kamOtherTls, /IP address mismatch/, 'a certificate for another name']]) {
      const inv = await invite(c, `sip:${DID}@${realm}`, SDP, 8000);
      results.check(`a trunk with ${label}: 503 at once`, status(inv.final) === 503 && inv.elapsed < 5000,
        `${status(inv.final)} after ${inv.elapsed} ms`);
      const line = tbText().split('\n').find((l) => l.includes(`realm ${realm}`) && /handshake failed/.test(l));
      results.check(`the log line names the trunk and why (${label})`, line !== undefined
        && line.includes(`sips:127.0.0.1:${port}`) && /certificate verify failed/.test(line) && why.test(line),
      line ? line.trim() : tbText().split('\n').slice(-5).join(' | '));
    }

    // Inbound: sipp calls the DID at Kamailio over UDP; Kamailio finds turnbridge's registration
    // and sends the INVITE over turnbridge's TLS connection; the registered browser rings.
    {
      const b = new WsSip(wsUrl);
      await b.open();
      const contact = `sip:${USER}@${rnd()}.invalid;transport=ws`;
      const r = await register(b, contact);
      results.check('the browser registers over WebSocket', r === 200, `${r}`);
      const uacPort = await pick();
      const uac = spawn('/usr/bin/sipp', ['-sn', 'uac', '-s', DID, `127.0.0.1:${kamUdp}`, '-i', '127.0.0.1',
        '-p', String(uacPort), '-m', '1', '-d', '500', '-nostdin', '-timeout', '30s', '-timeout_error'],
      { cwd: dir, stdio: 'ignore' });
      others.push(uac);
      const uacDone = new Promise((resolve) => uac.on('exit', (code, sig) => resolve(code ?? sig)));
      const inv = await b.wait((m) => m.startsWith('INVITE '), 8000);
      const via = /KAM INVITE (\S+) from udp:127\.0\.0\.1:(\d+)/.exec(kamText());
      results.check('an inbound call from sipp through Kamailio rings the browser', inv !== null
        && inv.startsWith(`INVITE ${contact} `), inv ? inv.split('\r\n')[0] : `nothing (kamailio: ${via ? via[0] : '-'})`);
      if (inv) {
        b.send(respond(inv, 180, 'Ringing', { toTag: 'btag', contact }));
        b.send(respond(inv, 200, 'OK', { toTag: 'btag', body: browserAnswer(inv), contact }));
        const ack = await b.wait((m) => m.startsWith('ACK '), 8000);
        const bye = await b.wait((m) => m.startsWith('BYE '), 8000);
        if (bye) b.send(respond(bye, 200, 'OK'));
        results.check('the browser gets the ACK and, after sipp hangs up, the BYE', ack !== null && bye !== null,
          `${ack ? 'ACK' : '-'} ${bye ? 'BYE' : '-'}`);
      }
      const code = await Promise.race([uacDone, sleep(10000).then(() => 'still running')]);
      results.check('sipp (UAC) completed the inbound call and exited 0', code === 0, `exit ${code}`);
      const inbound = [...kamText().matchAll(/KAM (INVITE|ACK|BYE) \S+ from udp:127\.0\.0\.1:(\d+)/g)];
      results.check('Kamailio relayed the inbound INVITE, ACK and BYE from sipp', inbound.length >= 3,
        inbound.map((m) => m[1]).join(' '));
      b.close();
    }

    c.close();
    results.check('turnbridge is still running', tb.alive());
    const code = await tb.stop();
    results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
    if (code !== 0) console.log(tb.logTail());
  } catch (e) {
    if (e.message !== 'no kamailio' && e.message !== 'kamailio did not start')
      results.check('test ran to the end', false, e.stack || String(e));
    if (tb) console.log(tb.logTail());
  } finally {
    cleanup();
  }
  process.exit(results.finish());
}

main();
