#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// In-dialog requests toward a carrier behind a proxy (issue 13; RFC 3261 §12.2.1.1): a WebSocket
// browser calls out; sipp's 200 (pages/gateway_route_uas.xml) has a private-address Contact
// behind a Record-Route to sipp and makes the gateway the session-timer refresher. The gateway's
// ACK, refresh re-INVITE, its ACK and the BYE after the browser hangs up must carry:
//   loose routing (;lr): Request-URI = the Contact, Route = the Record-Route;
//   strict routing (no lr): Request-URI = the Record-Route URI, the Contact as the last Route.
// Every one of them reaches sipp (the Record-Route's address), which checks them with regexes.
// Then a realm with late_offer = true (pages/gateway_late_prack_uas.xml): the trunk offers in a
// reliable 183; the gateway's answer goes in the PRACK (RFC 3262 §5), the browser gets its answer
// in a 183, and the 200 (the offer repeated) changes nothing: the ACK has no SDP.
// interop-timeout: 90
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runSuite, portPicker, USER, PASSWORD, REALM } = require('./harness');
const { gatewayWithClient, dialogOf, xmlText: xml, status, isResponse, invite, SDP } = require('./sip_ws');
const { runSipp, sippExit } = require('./gateway_call_test');

const SE = 4;   // Session-Expires: our refresh re-INVITE comes 2 s after the answer
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

async function main(results, cleanup) {
  const pick = portPicker();
  const wsPort = await pick();
  const sipPort = await pick();
  const sippPort = await pick();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-routing-'));
  workDir = work;
  const { tb, sipps, c } = await gatewayWithClient({ wsPort, sipPort, extraConfig: `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
caller_id = "+15550100"
min_se = 2

[realm."late.example"]
users = { ${USER} = "${PASSWORD}" }
[realm."late.example".gateway]
enabled = true
trunk = "sip:127.0.0.1:${sippPort};transport=udp"
late_offer = true
` }, cleanup);
  serverDir = tb.dir;

  const contact = 'sip:trunk@10\\.9\\.8\\.7:5099';
  const proxy = `sip:127\\.0\\.0\\.1:${sippPort}`;
  const CASES = [
    { name: 'loose routing (;lr)', lr: ';lr', ruri: contact, route: `Route: <${proxy};lr>` },
    { name: 'strict routing (no lr)', lr: '', ruri: proxy, route: `Route: <${contact}>` },
  ];
  const template = fs.readFileSync(path.join(__dirname, 'pages', 'gateway_route_uas.xml'), 'utf8');
  for (const k of CASES) {
    const sf = path.join(work, `route_${k.lr ? 'loose' : 'strict'}.xml`);
    fs.writeFileSync(sf, template.replaceAll('@LR@', k.lr).replaceAll('@RURI@', xml(k.ruri)).replaceAll('@ROUTE@', xml(k.route)));
    const sipp = runSipp(work, `route_${k.lr ? 'loose' : 'strict'}`, sf, ['-i', '127.0.0.1', '-p', String(sippPort),
      '-set', 'se', String(SE)], sipps);
    await sleep(300);
    const uri = `sip:+15557000@${REALM}`;
    const inv = await invite(c, uri, SDP, 8000);
    const ok = status(inv.final) === 200;
    results.check(`${k.name}: the call is answered`, ok, inv.final ? inv.final.split('\r\n')[0] : 'no answer');
    if (ok) {
      const dialog = dialogOf(c, inv);
      dialog.ack();
      // The refresh re-INVITE is due SE/2 after the answer; sipp logs its 200 for it.
      const end = Date.now() + 8000;
      while (Date.now() < end && (sipp.messages().match(/CSeq: 2 INVITE/g) || []).length < 2) await sleep(100);
      await sleep(300);
      const bye = await dialog.bye();
      results.check(`${k.name}: the browser's BYE gets 200`, status(bye) === 200, `${status(bye)}`);
    }
    const code = await sippExit(sipp, 8000);
    const sent = sipp.messages().split(/\r?\n\r?\n/).filter((m) => /^(ACK|INVITE|BYE) /m.test(m)).map((m) => m.split(/\r?\n/).filter((l) => /^(ACK|INVITE|BYE) |^Route:/.test(l.trim())).join(' / '));
    results.check(`${k.name}: ACK, refresh re-INVITE, its ACK and BYE reach the Record-Route address with the right `
      + 'Request-URI and Route (sipp exit 0)', code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}\n${sent.join('\n')}`}`);
  }
  {
    const sipp = runSipp(work, 'late_prack', path.join(__dirname, 'pages', 'gateway_late_prack_uas.xml'),
      ['-i', '127.0.0.1', '-p', String(sippPort)], sipps);
    await sleep(300);
    const inv = await invite(c, 'sip:+15557000@late.example', SDP, 8000);
    const early = await c.wait((m) => isResponse(inv.callId, 'INVITE')(m) && status(m) === 183, 1000);
    const ok = status(inv.final) === 200;
    const body = (m) => (m ? m.slice(m.indexOf('\r\n\r\n') + 4) : '');
    results.check('late offer: the trunk\'s offer in a reliable 183 reaches the browser as a 183 with our answer, '
      + 'and the 200 has the same answer', ok && early !== null && /m=audio/.test(body(early)) && body(early) === body(inv.final),
      `183 ${early ? 'with' : 'missing'}; final ${inv.final ? inv.final.split('\r\n')[0] : 'none'}`);
    if (ok) {
      const dialog = dialogOf(c, inv);
      dialog.ack();
      await sleep(500);
      await dialog.bye();
    }
    const code = await sippExit(sipp, 8000);
    results.check('late offer: sipp found our answer in the PRACK (RAck 1 1 INVITE, PCMU) and no SDP in the ACK (exit 0)',
      code === 0, `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
}

runSuite('gateway_routing', 80000, main, () => [workDir, serverDir]);
