// SPDX-License-Identifier: Apache-2.0
// One REGISTER through JsSIP (npm, in node with the `ws` package), as a browser would send it:
// `node jssip_register.js WS_URL USER REALM PASSWORD` prints `registered STATUS` and exits 0, or
// prints why not and exits 1. hostile_common.py's legitimate client during every attack.
// Bounded: gives up after 8 s. Loopback URLs only (given by the caller).
'use strict';
const WebSocket = require('ws');

globalThis.WebSocket = WebSocket;   // JsSIP's WebSocketInterface uses the global one
const JsSIP = require('jssip');

const [url, user, realm, password] = process.argv.slice(2);
JsSIP.debug.disable('JsSIP:*');
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(url)],
  uri: `sip:${user}@${realm}`,
  password,
  register: false,
  session_timers: false,
  connection_recovery_min_interval: 60,
  connection_recovery_max_interval: 60,
});
let finished = false;
const done = (ok, what) => {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  console.log(what);
  // JsSIP's stop() sends the un-REGISTER; give it a moment, then leave.
  ua.stop();
  setTimeout(() => process.exit(ok ? 0 : 1), 300);
};
const timer = setTimeout(() => done(false, 'timeout'), 8000);
ua.on('registered', (e) => done(true, `registered ${e.response.status_code}`));
ua.on('registrationFailed', (e) => done(false, `failed ${e.response ? e.response.status_code : e.cause}`));
ua.on('disconnected', () => done(false, 'disconnected'));
ua.on('connected', () => ua.register());
ua.start();
