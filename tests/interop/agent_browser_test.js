#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Browser callers and AI agents (issue 17, must-show 4 and 5). One turnbridge on loopback, a
// Twilio Media Streams agent written here with the `ws` package, headless Chromium running
// JsSIP (relay-only ICE through turnbridge's TURN), sipp as the trunk:
//   4. the page dials "ai" ([realm.X.gateway.agents]): the agent gets connected and start (from,
//      to, realm, user and its static parameter), then the page's 880 Hz tone as mu-law that
//      decodes to 880 Hz within 2 %; the agent's 520 Hz tone (mu-law) reaches the page as Opus,
//      and the page measures 520 Hz within 2 %. The page hangs up: the agent gets stop; the call
//      record says opus/agent.
//   4b. the page dials "ai16", an agent with media_format = "l16": start says audio/x-l16 16000,
//      640-byte payloads decode (16-bit little-endian, 16 kHz) to the page's 880 Hz within 2 %,
//      the agent's 16 kHz L16 520 Hz reaches the page (2 %); the record says opus/agent-l16
//      (codecs without g722: the leg to the agent is PCMU, resampled to 16 kHz).
//   5. sipp calls a DID routed to agent:ws://.../handover; the agent hears sipp's tone, then sends
//      {"event":"transfer","to":"test"}: its stream ends with stop, the page (auto-answer) gets
//      the call and hears sipp's 600 Hz tone (2 %); sipp's BYE ends the page's session. Once more,
//      the page hanging up: sipp gets BYE.
//   5b. another DID's agent transfers to "+15557001": turnbridge calls it through the trunk (sipp as
//      UAS behind an RTP tap), the agent's stream ends with stop, the number hears the caller's
//      600 Hz tone through the relay, and the caller's BYE ends both legs.
//   6. a browser caller's agent ("tonumber") transfers to "+15557002": sipp answers at the trunk
//      and plays 600 Hz; the agent's stream ends with stop, the page (whose Opus leg is kept)
//      hears 600 Hz instead of the agent's 520 Hz; the page's BYE reaches sipp; the number's
//      call record has codecs PCMU/PCMU. Once more with the number busy (486): the page's call
//      ends with our BYE and its record says "handover failed: 486".
//   7. a browser caller's agent ("touser") transfers to user bob: bob's page (a second page,
//      auto-answer) gets the call, each page hears the other's 880 Hz (Opus -> PCMU -> relay ->
//      PCMU -> Opus), the agent gets stop; the caller's BYE ends bob's session. /metrics counts
//      turnbridge_gateway_agent_transfers_total{result=user} 3, {result=number} 3, {result=failed} 1.
// interop-timeout: 150
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { WebSocketServer } = require('ws');
const { runSuite, childList, freePorts, freeTriples, freeRange, gatewayTurnbridge, adminConfig, adminGet, USER,
  REALM } = require('./harness');
const { writeTonePcap, ulawDecode, ulawEncode, dominantHz, uacScenario, runSipp, sippExit, within, fmtHz, openTap,
  UAS_SCENARIO, uasAnswer } = require('./gateway_call_test');
const { ok } = require('./sipp_transfer');   // sipp's 200 to the request it just received
const { toneWorkDir, openRegisteredPage, openPage } = require('./jssip_page');

const AGENT_NAME = 'ai';
const HANDOVER_DID = '+15550177';
const NUMBER_DID = '+15550178';      // its agent hands over to TARGET through the trunk
const TARGET = '+15557001';
const BROWSER_TARGET = '+15557002';   // "tonumber"'s agent hands its browser caller over to it
const BOB = 'bob';                     // "touser"'s agent hands its browser caller over to bob
const PAGE_TONE_HZ = 880;
const AGENT_TONE_HZ = 520;
const TRUNK_TONE_HZ = 600;
const TOTAL_MS = 140000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let workDir = null;
let serverDir = null;

// 200 ms of the agent's tone as mu-law, a whole number of periods at 8 kHz so chunks join up.
const AGENT_CHUNK = Buffer.from(Array.from({ length: 1600 },
  (_, i) => ulawEncode(Math.round(8000 * Math.sin((2 * Math.PI * AGENT_TONE_HZ * i) / 8000)))));

// The same 200 ms as L16 at 16 kHz (signed 16-bit little-endian), for the L16 agent.
const AGENT_CHUNK_L16 = Buffer.alloc(6400);
for (let i = 0; i < 3200; i++) AGENT_CHUNK_L16.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * AGENT_TONE_HZ * i) / 16000)), 2 * i);

// The agent: every stream's messages in order, by path; on /stream it talks (a tone, 200 ms every
// 200 ms: paced by turnbridge's playout buffer), on /handover it hands its caller over to USER
// once it has heard a second of the caller.
function startAgent(port) {
  const streams = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  wss.on('connection', (ws, req) => {
    const s = { path: req.url, messages: [], closed: false, auth: req.headers.authorization || '' };
    streams.push(s);
    let sid = null;
    let talk = null;
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(String(data)); } catch { return; }
      s.messages.push(m);
      if (m.event === 'start') {
        sid = m.streamSid;
        if (s.path === '/stream' || s.path === '/l16' || s.path.startsWith('/browser-')) {
          const chunk = s.path === '/l16' ? AGENT_CHUNK_L16 : AGENT_CHUNK;
          const send = () => ws.send(JSON.stringify({ event: 'media', streamSid: sid, media: { payload: chunk.toString('base64') } }));
          send();
          talk = setInterval(send, 200);
        }
      } else if (m.event === 'media' && s.path !== '/stream' && s.path !== '/l16'
        && s.messages.filter((x) => x.event === 'media').length === 50) {
        const to = { '/handover': USER, '/browser-user': BOB, '/browser-number': BROWSER_TARGET }[s.path] || TARGET;
        ws.send(JSON.stringify({ event: 'transfer', streamSid: sid, to }));
      } else if (m.event === 'stop') {
        clearInterval(talk);
      }
    });
    ws.on('close', () => { s.closed = true; clearInterval(talk); });
  });
  return { streams, close: () => new Promise((r) => wss.close(() => r())) };
}

// The number a browser caller is handed over to: answers PCMU at sipp's media port, plays `pcap`
// from it (so the relay sees the SDP's address), waits for the caller's BYE.
function toneUasScenario(pcap) {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent hand-over target: answers with a tone">
  <recv request="INVITE" rrs="true"/>
${uasAnswer()}
  <nop><action><exec play_pcap_audio="${pcap}"/></action></nop>
  <recv request="BYE"/>
${ok}
</scenario>
`;
}

// A busy number: 486 to the INVITE (RFC 3261 §21.4.24).
const BUSY_UAS = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent hand-over target: busy">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag02[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK"/>
</scenario>
`;

// turnbridge_gateway_agent_transfers_total by result, from /metrics.
async function transfers(adminPort) {
  const r = await adminGet(adminPort, '/metrics');
  const out = {};
  for (const m of r.body.matchAll(/^turnbridge_gateway_agent_transfers_total\{result="(\w+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// The mu-law the agent received on stream `s`, decoded, last `seconds`.
function heardByAgent(s, seconds) {
  const bytes = Buffer.concat(s.messages.filter((m) => m.event === 'media').map((m) => Buffer.from(m.media.payload, 'base64')));
  const samples = Array.from(bytes.subarray(Math.max(0, bytes.length - 8000 * seconds)), ulawDecode);
  return { bytes: bytes.length, hz: samples.length > 4000 ? dominantHz(samples) : 0 };
}

async function waitFor(fn, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = fn();
    if (v) return v;
    await sleep(50);
  }
  return fn();
}

async function main(results, cleanup) {
  const taken = new Set();
  const [wsPort, sipPort, adminPort, agentPort, trunkPort, uacPort] = await freePorts(6, taken);
  const [uacMediaPort, tapPort, echoPort] = await freeTriples(3, taken);
  const mediaLo = await freeRange(taken, 100);

  const { work, wav } = toneWorkDir('agent-browser-', PAGE_TONE_HZ);
  workDir = work;
  const pcap = path.join(work, 'tone.pcap');
  writeTonePcap(pcap, TRUNK_TONE_HZ, 14);

  const agent = startAgent(agentPort);
  cleanup.push(() => agent.close());
  const tb = gatewayTurnbridge(cleanup, { wsPort, sipPort, mediaLo }, `
[realm."${REALM}".gateway]
enabled = true
trunk = "sip:127.0.0.1:${trunkPort};transport=udp"
codecs = ["opus", "pcmu"]
agent_authorization = "Bearer realm-wide"
[realm."${REALM}".gateway.agents]
"${AGENT_NAME}" = { url = "ws://127.0.0.1:${agentPort}/stream", authorization = "Bearer ai-token", parameters = { lang = "en" } }
"+15550199" = "ws://127.0.0.1:${agentPort}/other"
tonumber = "ws://127.0.0.1:${agentPort}/browser-number"
touser = "ws://127.0.0.1:${agentPort}/browser-user"
ai16 = { url = "ws://127.0.0.1:${agentPort}/l16", media_format = "l16" }
[realm."${REALM}".gateway.routes]
"${HANDOVER_DID}" = ["agent:ws://127.0.0.1:${agentPort}/handover"]
"${NUMBER_DID}" = ["agent:ws://127.0.0.1:${agentPort}/tonumber"]

${adminConfig(adminPort, { flushInterval: 1 })}`);
  serverDir = tb.dir;
  await tb.start();
  const sipps = childList(cleanup);
  const { browser, url, page } = await openRegisteredPage(results, cleanup, { work, wav, tb, wsPort });
  const pageEvents = async () => (await page.evaluate(() => gw.events())).slice(-12).join(' | ');

  // --- 4: the page calls the agent -------------------------------------------------------------
  {
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:${AGENT_NAME}@${REALM}`);
    results.check(`browser -> agent: the call to "${AGENT_NAME}" is answered once the agent's stream is up`, call.confirmed,
      `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('browser -> agent: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}, track ${media.track}`);
    await sleep(2500);
    const heard = await page.evaluate(() => gw.measure(2400));
    const stats = await page.evaluate(() => gw.stats());
    results.check(`browser -> agent: the page hears the agent's ${AGENT_TONE_HZ} Hz tone (2 %)`, within(heard.peakHz, AGENT_TONE_HZ),
      `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB, ${stats.packetsReceived} packets (${stats.codec}), local ${stats.local && stats.local.type}`);
    const s = agent.streams.find((x) => x.path === '/stream');
    const start = s && s.messages.find((m) => m.event === 'start');
    const p = (start && start.start && start.start.customParameters) || {};
    results.check('browser -> agent: connected, then start with from, to, realm, user and the static parameter',
      s && s.messages[0].event === 'connected' && p.from === USER && p.to === AGENT_NAME && p.realm === REALM && p.user === USER
        && p.lang === 'en' && start.start.mediaFormat.encoding === 'audio/x-mulaw',
      s ? `${s.messages.slice(0, 2).map((m) => m.event)} ${JSON.stringify(p)}` : 'no stream on /stream');
    results.check("browser -> agent: the upgrade carries the agent entry's Authorization", s && s.auth === 'Bearer ai-token',
      s ? s.auth : '-');
    const fromPage = s ? heardByAgent(s, 2) : { bytes: 0, hz: 0 };
    results.check(`browser -> agent: the agent hears the page's ${PAGE_TONE_HZ} Hz tone as mu-law (2 %)`,
      within(fromPage.hz, PAGE_TONE_HZ), `${fmtHz(fromPage.hz)} Hz from ${fromPage.bytes} bytes`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    results.check('browser -> agent: the page hangs up', ended && ended.originator === 'local' && !ended.failed, JSON.stringify(ended));
    const stopped = await waitFor(() => s && s.messages.some((m) => m.event === 'stop') && s.closed, 5000);
    results.check("browser -> agent: the page's BYE ends the agent's stream with stop", !!stopped,
      s ? s.messages.slice(-2).map((m) => m.event).join(',') : '-');
    await sleep(2000);
    const calls = await adminGet(adminPort, `/api/v1/calls?user=${USER}`);
    let rows = [];
    try { rows = JSON.parse(calls.body); } catch { /* reported below */ }
    const list = Array.isArray(rows) ? rows : (rows.calls || []);
    const rec = list.find((r) => r.remote === AGENT_NAME);
    // bye-browser even when the page's DTLS close_notify overtakes its BYE (the host's grace).
    results.check('browser -> agent: the call record has codecs opus/agent, no trunk (null), end reason bye-browser',
      rec && rec.codecs === 'opus/agent' && rec.status === 200 && rec.trunk === null && rec.end_reason === 'bye-browser',
      rec ? JSON.stringify({ codecs: rec.codecs, status: rec.status, end: rec.end_reason, trunk: rec.trunk })
        : `${calls.status} ${calls.body.slice(0, 300)}`);
  }

  // --- 4b: the page calls an L16 agent (no g722 here: PCMU toward it, resampled to 16 kHz) -----
  {
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:ai16@${REALM}`);
    results.check('browser -> L16 agent: the call to "ai16" (media_format = "l16") is answered', call.confirmed,
      `${JSON.stringify(call.ended)}; ${await pageEvents()}`);
    await page.evaluate(() => gw.waitMedia(15000));
    await sleep(2500);
    const heard = await page.evaluate(() => gw.measure(2000));
    results.check(`browser -> L16 agent: the page hears the agent's 16 kHz L16 ${AGENT_TONE_HZ} Hz tone (2 %)`,
      within(heard.peakHz, AGENT_TONE_HZ), `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
    const s = agent.streams.find((x) => x.path === '/l16');
    const start = s && s.messages.find((m) => m.event === 'start');
    const fmt = start && start.start && start.start.mediaFormat;
    const media = s ? s.messages.filter((m) => m.event === 'media').map((m) => Buffer.from(m.media.payload, 'base64')) : [];
    const sizes = [...new Set(media.map((b) => b.length))];
    const pcm = Buffer.concat(media.slice(-100));
    const samples = Array.from({ length: pcm.length >> 1 }, (_, i) => pcm.readInt16LE(2 * i));
    const hz = samples.length > 16000 ? dominantHz(samples, 16000) : 0;
    results.check(`browser -> L16 agent: start says audio/x-l16 16000; 640-byte payloads decode to the page's ${PAGE_TONE_HZ} Hz (2 %)`,
      fmt && fmt.encoding === 'audio/x-l16' && fmt.sampleRate === 16000 && sizes.length === 1 && sizes[0] === 640
        && within(hz, PAGE_TONE_HZ), `${JSON.stringify(fmt)} sizes ${sizes} ${fmtHz(hz)} Hz from ${samples.length} samples`);
    await page.evaluate(() => gw.hangup(5000));
    await waitFor(() => s && s.closed, 5000);
    await sleep(1500);
    const calls = await adminGet(adminPort, `/api/v1/calls?user=${USER}`);
    let rows = [];
    try { rows = JSON.parse(calls.body); } catch { /* reported below */ }
    const rec = (Array.isArray(rows) ? rows : (rows.calls || [])).find((r) => r.remote === 'ai16');
    results.check('browser -> L16 agent: the call record has codecs opus/agent-l16', rec && rec.codecs === 'opus/agent-l16',
      rec ? rec.codecs : `${calls.status}`);
  }

  // --- 5: the trunk calls the agent, which hands the caller over to the page -----------------
  {
    const uac = path.join(work, 'uac_tone.xml');
    fs.writeFileSync(uac, uacScenario(pcap, 11000));
    const sipp = runSipp(work, 'uac_handover', uac,
      ['-s', HANDOVER_DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort)], sipps);
    const answered = await page.evaluate(() => gw.waitIncoming(20000));
    results.check('hand-over: the agent\'s transfer rings the registered page, which answers', answered.confirmed,
      `${JSON.stringify(answered.ended)}; ${await pageEvents()}`);
    const s = agent.streams.find((x) => x.path === '/handover');
    const heardAgent = s ? heardByAgent(s, 0.9) : { bytes: 0, hz: 0 };
    results.check(`hand-over: before it, the agent heard sipp's ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(heardAgent.hz, TRUNK_TONE_HZ),
      `${fmtHz(heardAgent.hz)} Hz from ${heardAgent.bytes} bytes`);
    const stopped = await waitFor(() => s && s.messages.some((m) => m.event === 'stop') && s.closed, 5000);
    results.check("hand-over: the agent's stream ends with stop and closes", !!stopped,
      s ? `${s.messages.slice(-2).map((m) => m.event).join(',')}, closed ${s.closed}` : 'no stream on /handover');
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('hand-over: ICE and DTLS connected through the relay', media.connection === 'connected' && media.track,
      `${media.connection}, track ${media.track}`);
    await sleep(1000);
    const heard = await page.evaluate(() => gw.measure(2400));
    const stats = await page.evaluate(() => gw.stats());
    results.check(`hand-over: the page hears the caller's (sipp's) ${TRUNK_TONE_HZ} Hz tone (2 %)`, within(heard.peakHz, TRUNK_TONE_HZ),
      `${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB, ${stats.packetsReceived} packets (${stats.codec})`);
    const ended = await page.evaluate(() => gw.waitEnded(20000));
    results.check("hand-over: sipp's BYE ends the page's session", answered.confirmed && ended && ended.originator === 'remote'
      && !ended.failed, JSON.stringify(ended));
    const code = await sippExit(sipp, 8000);
    results.check('hand-over: sipp (the caller) completed its call (exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }

  // --- 5, the other way round: the page hangs up a handed-over call; the caller gets BYE --------
  {
    const uac = path.join(work, 'uac_waits.xml');
    const scenario = uacScenario(path.join(work, 'tone.pcap'), 0)
      .replace(/<pause milliseconds="0"\/>[^]*<\/scenario>/, `<recv request="BYE"/>${ok}
</scenario>
`);
    fs.writeFileSync(uac, scenario);
    const sipp = runSipp(work, 'uac_waits', uac,
      ['-s', HANDOVER_DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort)], sipps);
    const answered = await page.evaluate(() => gw.waitIncoming(20000));
    const media = await page.evaluate(() => gw.waitMedia(15000));
    await sleep(500);
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(sipp, 8000);
    if (code === 'still running') { sipp.proc.kill('SIGKILL'); await sipp.done; }   // its port is needed next
    results.check("hand-over: the page's BYE reaches the caller (sipp got BYE and answered 200, exit 0)",
      answered.confirmed && media.connection === 'connected' && ended && ended.originator === 'local' && code === 0,
      `answered ${answered.confirmed}, ${media.connection}, ${JSON.stringify(ended)}, exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
  }

  // --- 5b: the agent hands its caller over to a number, called through the trunk --------------
  {
    const tap = await openTap(cleanup, tapPort, echoPort);
    const uas = runSipp(work, 'uas_target', UAS_SCENARIO, ['-i', '127.0.0.1', '-p', String(trunkPort),
      '-mp', String(echoPort), '-rtp_echo', '-set', 'rtpport', String(tapPort), '-set', 'hangup_ms', '0'], sipps);
    await sleep(300);
    const uac = path.join(work, 'uac_number.xml');
    fs.writeFileSync(uac, uacScenario(path.join(work, 'tone.pcap'), 6000));
    const sipp = runSipp(work, 'uac_number', uac,
      ['-s', NUMBER_DID, `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(uacPort), '-mp', String(uacMediaPort)], sipps);
    const code = await sippExit(sipp, 20000);
    results.check('to a number: the caller (sipp) completed its call (exit 0)', code === 0,
      `exit ${code}${code === 0 ? '' : `: ${sipp.errors()}`}`);
    const uasCode = await sippExit(uas, 8000);
    const invite = /INVITE sip:(\S+) SIP\/2\.0/.exec(uas.messages());
    results.check(`to a number: the trunk gets our INVITE to ${TARGET} and the caller's BYE ends it (exit 0)`,
      uasCode === 0 && invite && invite[1].startsWith(`${TARGET}@`),
      `exit ${uasCode}, INVITE ${invite ? invite[1] : 'none'}${uasCode === 0 ? '' : `: ${uas.errors()}`}`);
    const s = agent.streams.find((x) => x.path === '/tonumber');
    results.check("to a number: the agent's stream ends with stop and closes",
      s && s.messages.some((m) => m.event === 'stop') && s.closed, s ? s.messages.slice(-2).map((m) => m.event).join(',') : '-');
    const trunk = tap.analyse(-1);
    const hz = trunk.samples.length > 8000 ? dominantHz(trunk.samples.slice(-16000)) : 0;
    results.check(`to a number: the called number hears the caller's ${TRUNK_TONE_HZ} Hz tone through the relay (2 %), and answers back`,
      within(hz, TRUNK_TONE_HZ) && tap.fromTrunk.length > 50,
      `${trunk.packets} PCMU packets, ${fmtHz(hz)} Hz; ${tap.fromTrunk.length} echoed back`);
  }

  // --- 6: a browser caller's agent hands the page over to a number, through the trunk ---------
  {
    fs.writeFileSync(path.join(work, 'uas_tone.xml'), toneUasScenario(pcap));
    const uas = runSipp(work, 'uas_tone', path.join(work, 'uas_tone.xml'), ['-i', '127.0.0.1', '-p', String(trunkPort),
      '-mp', String(echoPort)], sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:tonumber@${REALM}`);
    const media = await page.evaluate(() => gw.waitMedia(15000));
    results.check('browser -> agent -> number: the page\'s call to "tonumber" is answered, ICE and DTLS connected',
      call.confirmed && media.connection === 'connected', `${JSON.stringify(call.ended)}, ${media.connection}; ${await pageEvents()}`);
    const s = await waitFor(() => agent.streams.find((x) => x.path === '/browser-number'), 5000);
    const stopped = await waitFor(() => s && s.messages.some((m) => m.event === 'stop') && s.closed, 8000);
    results.check("browser -> agent -> number: after its transfer the agent's stream ends with stop and closes", !!stopped,
      s ? `${s.messages.slice(-2).map((m) => m.event).join(',')}, closed ${s.closed}` : 'no stream on /browser-number');
    await sleep(1500);   // the number's answer, the relay and the page's decoder settle
    const heard = await page.evaluate(() => gw.measure(2400));
    const invite = /INVITE sip:(\S+) SIP\/2\.0/.exec(uas.messages());
    results.check(`browser -> agent -> number: the trunk gets our INVITE to ${BROWSER_TARGET}, and the page hears its `
      + `${TRUNK_TONE_HZ} Hz tone (2 %), no longer the agent's ${AGENT_TONE_HZ} Hz`,
    invite && invite[1].startsWith(`${BROWSER_TARGET}@`) && within(heard.peakHz, TRUNK_TONE_HZ),
    `INVITE ${invite ? invite[1] : 'none'}; ${fmtHz(heard.peakHz)} Hz at ${fmtHz(heard.peakDb)} dB`);
    const ended = await page.evaluate(() => gw.hangup(5000));
    const code = await sippExit(uas, 8000);
    if (code === 'still running') { uas.proc.kill('SIGKILL'); await uas.done; }
    results.check("browser -> agent -> number: the page's BYE reaches the number (sipp got BYE, exit 0)",
      ended && ended.originator === 'local' && code === 0, `${JSON.stringify(ended)}, exit ${code}${code === 0 ? '' : `: ${uas.errors()}`}`);
    await sleep(2000);
    const calls = await adminGet(adminPort, `/api/v1/calls?user=${USER}`);
    let rows = [];
    try { rows = JSON.parse(calls.body); } catch { /* reported below */ }
    const list = Array.isArray(rows) ? rows : (rows.calls || []);
    const rec = list.find((r) => r.remote === BROWSER_TARGET);
    results.check("browser -> agent -> number: the number's call record has codecs PCMU/PCMU (the relay's, the trunk's)",
      rec && rec.codecs === 'PCMU/PCMU' && rec.status === 200,
      rec ? JSON.stringify({ codecs: rec.codecs, status: rec.status, end: rec.end_reason }) : `${calls.status} ${calls.body.slice(0, 300)}`);
  }

  // --- 6, failed: the number is busy; the page's call ends with BYE and the reason -------------
  {
    fs.writeFileSync(path.join(work, 'uas_busy.xml'), BUSY_UAS);
    const uas = runSipp(work, 'uas_busy', path.join(work, 'uas_busy.xml'), ['-i', '127.0.0.1', '-p', String(trunkPort)], sipps);
    await sleep(300);
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:tonumber@${REALM}`);
    const ended = await page.evaluate(() => gw.waitEnded(10000));
    const code = await sippExit(uas, 5000);
    if (code === 'still running') { uas.proc.kill('SIGKILL'); await uas.done; }
    await sleep(2000);
    const calls = await adminGet(adminPort, `/api/v1/calls?user=${USER}`);
    let rows = [];
    try { rows = JSON.parse(calls.body); } catch { /* reported below */ }
    const list = Array.isArray(rows) ? rows : (rows.calls || []);
    // This case's record: the newest of the page's calls to "tonumber" (case 5's is older).
    const rec = list.filter((r) => r.remote === 'tonumber').sort((x, y) => y.start_ms - x.start_ms)[0];
    results.check('browser -> agent -> busy number: the page\'s call ends with our BYE, its record says "handover failed: 486"',
      call.confirmed && ended && ended.originator === 'remote' && code === 0 && rec && rec.end_reason === 'handover failed: 486',
      `${JSON.stringify(ended)}, sipp exit ${code}; ${rec ? JSON.stringify({ status: rec.status, end: rec.end_reason }) : 'no record'}`);
  }

  // --- 7: a browser caller's agent hands the page over to another user of the realm ----------
  {
    await tb.addUser(BOB);
    const { page: bob, reg } = await openPage(browser, url, { tb, wsPort, user: BOB });
    const call = await page.evaluate((t) => gw.call(t, 15000), `sip:touser@${REALM}`);
    const answered = await bob.evaluate(() => gw.waitIncoming(20000));
    results.check(`browser -> agent -> user: after the transfer ${BOB}'s page (registered: ${reg}) rings and answers`,
      call.confirmed && answered.confirmed, `${JSON.stringify(call.ended)}, ${JSON.stringify(answered.ended)}; `
      + `${(await bob.evaluate(() => gw.events())).slice(-8).join(' | ')}`);
    const s = agent.streams.find((x) => x.path === '/browser-user');
    const stopped = await waitFor(() => s && s.messages.some((m) => m.event === 'stop') && s.closed, 5000);
    results.check("browser -> agent -> user: the agent's stream ends with stop and closes", !!stopped,
      s ? `${s.messages.slice(-2).map((m) => m.event).join(',')}, closed ${s.closed}` : 'no stream on /browser-user');
    const media = await bob.evaluate(() => gw.waitMedia(15000));
    await sleep(1500);
    const [heardBob, heardCaller] = await Promise.all([bob.evaluate(() => gw.measure(2400)), page.evaluate(() => gw.measure(2400))]);
    results.check(`browser -> agent -> user: each page hears the other's ${PAGE_TONE_HZ} Hz tone (2 %) through the gateway`,
      media.connection === 'connected' && within(heardBob.peakHz, PAGE_TONE_HZ) && within(heardCaller.peakHz, PAGE_TONE_HZ),
      `${BOB} ${media.connection}, hears ${fmtHz(heardBob.peakHz)} Hz at ${fmtHz(heardBob.peakDb)} dB; `
      + `caller hears ${fmtHz(heardCaller.peakHz)} Hz at ${fmtHz(heardCaller.peakDb)} dB`);
    await page.evaluate(() => gw.hangup(5000));
    const ended = await bob.evaluate(() => gw.waitEnded(10000));
    results.check(`browser -> agent -> user: the caller's BYE ends ${BOB}'s session`, ended && ended.originator === 'remote',
      JSON.stringify(ended));
    await sleep(2000);
    const t = await transfers(adminPort);
    results.check('/metrics: turnbridge_gateway_agent_transfers_total counts user 3, number 3, failed 1 (the busy one)',
      t.user === 3 && t.number === 3 && t.failed === 1, JSON.stringify(t));
    await bob.evaluate(() => gw.stop());
  }

  await page.evaluate(() => gw.stop());
  await browser.close();
  results.check('turnbridge is still running', tb.alive());
  const code = await tb.stop();
  results.check('turnbridge exits cleanly on SIGTERM', code === 0, `exit ${code}`);
  if (code !== 0) console.log(tb.logTail());
}

runSuite('agent_browser', TOTAL_MS, main, () => [workDir, serverDir]);
