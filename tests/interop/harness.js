// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the Node interop tests (the twin of harness.py): one turnbridge on loopback
// with its own config, certificate and ports in a temp dir; PASS/FAIL lines and the closing
// `N passed, M failed` line. Every address here is 127.0.0.1 or ::1.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
// TURNBRIDGE_BIN picks another build (scripts/test runs the suites again on build-asan/).
const BINARY = process.env.TURNBRIDGE_BIN || path.join(REPO, 'build', 'turnbridge');
// What ASan, LSan and UBSan print to stderr (the server log) when they find something.
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'];
const servers = [];  // every Turnbridge started; finish() reads their logs
const USER = 'test';
const PASSWORD = 'secret';
const REALM = 'example.org';
const REST_SECRET = 's3cr3t';

function tcpFree(host, port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function udpFree(host, port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

// Every port this process has handed out: a port picked but not yet bound by its server looks
// free, so without this two picks in one test could meet (CI saw ws_listen == listen once).
const handedOut = new Set();

// A port in 20000-29999 free for UDP and TCP on 127.0.0.1, never one handed out before.
async function freePort(taken = new Set()) {
  for (let i = 0; i < 500; i++) {
    const p = 20000 + Math.floor(Math.random() * 10000);
    if (taken.has(p) || handedOut.has(p)) continue;
    if ((await tcpFree('127.0.0.1', p)) && (await udpFree('127.0.0.1', p))) { handedOut.add(p); return p; }
  }
  throw new Error('no free port in 20000-29999');
}

// Free ports that differ from each other: each call of the returned function gives a new one.
function portPicker(taken = new Set()) {
  return async () => { const p = await freePort(taken); taken.add(p); return p; };
}

// `n` free ports (freePort), each added to `taken`: const [wsPort, sipPort] = await freePorts(2, taken).
async function freePorts(n, taken = new Set()) {
  const pick = portPicker(taken);
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await pick());
  return ports;
}

async function udpPairFree(port) {
  const probe = (p) => new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind({ address: '127.0.0.1', port: p, exclusive: true }, () => s.close(() => resolve(true)));
  });
  return (await probe(port)) && (await probe(port + 1)) && (await probe(port + 2));
}

// A port p with p+1 and p+2 free too (sipp -rtp_echo binds p and p+2; an RtpTap p and p+1).
async function freeTriple(taken) {
  for (let i = 0; i < 200; i++) {
    const p = await freePort(taken);
    if (taken.has(p + 1) || taken.has(p + 2)) continue;
    if (await udpPairFree(p)) { taken.add(p); taken.add(p + 1); taken.add(p + 2); return p; }
  }
  throw new Error('no free port triple');
}

// `n` of freeTriple's ports: const [tapPort, echoPort] = await freeTriples(2, taken).
async function freeTriples(n, taken) {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await freeTriple(taken));
  return ports;
}

// A media_ports range of `width` ports whose first ones are free now.
async function freeRange(taken, width) {
  for (let i = 0; i < 200; i++) {
    const lo = 20000 + 10 * Math.floor(Math.random() * 990);
    let ok = true;
    for (let p = lo; p < lo + width && ok; p++) ok = !taken.has(p);
    for (let p = lo; p < lo + 12 && ok; p += 3) ok = await udpPairFree(p);
    if (ok) { for (let p = lo; p < lo + width; p++) taken.add(p); return lo; }
  }
  throw new Error('no free media port range');
}

class Results {
  constructor(suite) { this.suite = suite; this.passed = 0; this.failed = 0; }
  check(name, ok, detail = '') {
    if (ok) this.passed++; else this.failed++;
    const sep = ok ? (detail ? ` (${detail})` : '') : (detail ? `: ${detail}` : '');
    console.log(`${ok ? 'PASS' : 'FAIL'} ${this.suite}: ${name}${sep}`);
    return ok;
  }
  finish() {
    // A sanitizer build reports through the server's log; any report fails the run.
    for (const server of servers) {
      let text = '';
      try { text = fs.readFileSync(server.logPath, 'utf8'); } catch { continue; }
      const line = text.split('\n').find((l) => SANITIZER_MARKERS.some((m) => l.includes(m)));
      if (line) this.check('no sanitizer report in the server log', false, `${server.logPath}: ${line.trim()}`);
    }
    console.log(`${this.passed} passed, ${this.failed} failed`);
    return this.failed || !this.passed ? 1 : 0;
  }
}

class Turnbridge {
  // serverConfig: extra lines inside [server]; extraConfig: TOML appended at the end;
  // configText: the whole file instead (a sample from conf/ with its ports replaced).
  constructor({ allowedPeers = ['127.0.0.0/8', '::1/128'], readyTimeoutMs = 15000, serverConfig = '',
    extraConfig = '', configText = null } = {}) {
    this.configText = configText;
    this.serverConfig = serverConfig;
    this.extraConfig = extraConfig;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnbridge-interop-'));
    this.allowedPeers = allowedPeers;
    this.readyTimeoutMs = readyTimeoutMs;
    this.logPath = path.join(this.dir, 'turnbridge.log');
    this.configPath = path.join(this.dir, 'turnbridge.toml');
    this.proc = null;
    this.exitCode = null;
  }

  async start() {
    if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: build first`);
    this.port = await freePort();
    this.tlsPort = await freePort(new Set([this.port]));
    this.relayLo = 61000 + 100 * Math.floor(Math.random() * 36);
    this.relayHi = this.relayLo + 399;
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-keyout', path.join(this.dir, 'key.pem'), '-out', path.join(this.dir, 'cert.pem')],
    { stdio: 'ignore' });
    const list = (xs) => `[${xs.map((x) => `"${x}"`).join(', ')}]`;
    fs.writeFileSync(this.configPath, this.configText ?? `# Generated by tests/interop/harness.js
[server]
listen = ["127.0.0.1:${this.port}"]
tls_listen = ["127.0.0.1:${this.tlsPort}"]
tls_cert = "cert.pem"
tls_key = "key.pem"
relay_ips = ["127.0.0.1", "::1"]
relay_ports = "${this.relayLo}-${this.relayHi}"
default_realm = "${REALM}"
threads = 2
${process.env.TURNBRIDGE_LOG_FORMAT ? `log_format = "${process.env.TURNBRIDGE_LOG_FORMAT}"\n` : ''}${this.serverConfig}
[security]
allowed_peers = ${list(this.allowedPeers)}

[realm."${REALM}"]
users = { ${USER} = "${PASSWORD}" }
rest_secret = "${REST_SECRET}"
${this.extraConfig}`);
    servers.push(this);
    const log = fs.openSync(this.logPath, 'w');
    this.proc = spawn(BINARY, ['-c', this.configPath],
      { cwd: this.dir, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.proc.on('exit', (code, signal) => { this.exitCode = code ?? `signal ${signal}`; });
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== null) throw new Error(`turnbridge exited (${this.exitCode}) before ready:\n${this.logTail()}`);
      if (fs.readFileSync(this.logPath, 'utf8').includes('ready')) return this;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`turnbridge did not log 'ready' in time:\n${this.logTail()}`);
  }

  alive() { return this.proc !== null && this.exitCode === null; }

  // Rewrites the config with `edit` (its text in, the new text out), sends SIGHUP and waits (at
  // most `timeoutMs`) for the log to say how the reload went; resolves to the log lines since.
  async reload(edit, timeoutMs = 5000) {
    const before = fs.statSync(this.logPath).size;
    fs.writeFileSync(this.configPath, edit(fs.readFileSync(this.configPath, 'utf8')));
    this.proc.kill('SIGHUP');
    const deadline = Date.now() + timeoutMs;
    let fresh = '';
    while (Date.now() < deadline) {
      fresh = fs.readFileSync(this.logPath).subarray(before).toString();
      if (/reloaded|reload failed/.test(fresh)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 100));  // every worker picks up the new snapshot
    return fresh;
  }

  // Adds `user` to the users of the realm start() wrote (the config's first `users =` line), by a reload.
  addUser(user, password = PASSWORD) {
    return this.reload((text) => text.replace(/^users = \{ (.*) \}$/m, `users = { $1, ${user} = "${password}" }`));
  }

  // SIGTERM by PID, SIGKILL after 10 s; resolves to the exit code.
  stop() {
    const p = this.proc;
    if (!p || this.exitCode !== null) return Promise.resolve(this.exitCode);
    return new Promise((resolve) => {
      const kill = setTimeout(() => p.kill('SIGKILL'), 10000);  // LeakSanitizer needs a moment
      p.once('exit', (code, signal) => { clearTimeout(kill); resolve(code ?? `signal ${signal}`); });
      p.kill('SIGTERM');
    });
  }

  // Synchronous last resort for process exit handlers.
  killNow() {
    if (this.proc && this.exitCode === null) {
      try { this.proc.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }

  logTail(n = 30) {
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-n).map((l) => `  | ${l}`).join('\n');
    } catch { return ''; }
  }
}

// The [server] lines of a gateway: its WebSocket listener (and WSS, when given), sip_listen and
// a media range of 100 ports, picked at random when not given so that tests running side by side
// rarely meet (a port in use is skipped by the server anyway).
function gatewayServerConfig({ wsPort, wssPort, sipPort, mediaLo }) {
  const lo = mediaLo ?? 30000 + 100 * Math.floor(Math.random() * 50);
  return `ws_listen = ["127.0.0.1:${wsPort}"]
${wssPort ? `wss_listen = ["127.0.0.1:${wssPort}"]\n` : ''}sip_listen = ["127.0.0.1:${sipPort}"]
media_ip = "127.0.0.1"
media_ports = "${lo}-${lo + 99}"
`;
}

// A gateway turnbridge: gatewayServerConfig(`ports`) in [server], `extraConfig` after; `cleanup`
// kills it. Not started yet, so that the suite can keep tb.dir for a post-mortem first.
function gatewayTurnbridge(cleanup, ports, extraConfig) {
  const tb = new Turnbridge({ serverConfig: gatewayServerConfig(ports), extraConfig });
  cleanup.push(() => tb.killNow());
  return tb;
}

// The admin API on 127.0.0.1:`port` with the token adminGet sends; `flushInterval` (seconds) adds
// an [accounting] table, so that the API soon shows what was just relayed.
const ADMIN_TOKEN = 't0ken';
function adminConfig(port, { flushInterval } = {}) {
  return `${flushInterval ? `[accounting]\nflush_interval = ${flushInterval}\n\n` : ''}[admin]
listen = "127.0.0.1:${port}"
token = "${ADMIN_TOKEN}"
`;
}

// GET `target` from the admin API on 127.0.0.1:`port`: { status, body } (status 0: no answer).
function adminGet(port, target) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, timeout: 5000,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
  });
}

// Runs a suite's async main(results, cleanup) with a deadline of `totalMs`: on time-out or
// SIGTERM/SIGINT (scripts/test's `timeout`) the cleanups run and the suite fails; at the end the
// folders `keptDirs()` names are removed when every check passed, kept for a post-mortem otherwise.
function runSuite(name, totalMs, main, keptDirs = () => []) {
  const results = new Results(name);
  const cleanup = [];
  const abort = (why) => {
    results.check('finished in time', false, why);
    for (const undo of cleanup.reverse()) { try { undo(); } catch { /* best effort */ } }
    process.exit(results.finish());
  };
  const deadline = setTimeout(() => abort(`over ${totalMs / 1000} s`), totalMs);
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => abort(`stopped by ${sig}`));
  main(results, cleanup)
    .catch((err) => results.check('harness', false, err && err.stack ? err.stack : String(err)))
    .finally(async () => {
      clearTimeout(deadline);
      for (const undo of cleanup.reverse()) await Promise.resolve().then(undo).catch(() => {});
      for (const dir of keptDirs().filter(Boolean)) {
        if (results.failed === 0) fs.rmSync(dir, { recursive: true, force: true });
        else console.log(`kept for a post-mortem: ${dir}`);
      }
      process.exit(results.finish());
    });
}

// A list for a suite's child processes (sipp runs): whatever is still running is SIGKILLed at cleanup.
function childList(cleanup) {
  const children = [];
  cleanup.push(() => { for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });
  return children;
}

module.exports = { Turnbridge, Results, runSuite, childList, freePort, portPicker, freePorts, freeTriple, freeTriples,
  freeRange, gatewayServerConfig, gatewayTurnbridge, adminConfig, adminGet, USER, PASSWORD, REALM, REST_SECRET, REPO,
  BINARY };
