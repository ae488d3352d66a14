// SPDX-License-Identifier: Apache-2.0
// The page side of tests/interop/gateway_call_test.js, driven through window.gw by Playwright.
// One JsSIP UA (SIP over WebSocket to turnbridge's gateway) with relay-only ICE through
// turnbridge's TURN; the microphone is Chromium's fake capture device playing the test's WAV
// tone. What the page hears is measured with WebAudio: the dominant frequency of the remote
// stream, averaged over several AnalyserNode snapshots.
'use strict';

(() => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const state = {
    ua: null, session: null, direction: '', options: null, events: [], remote: null, ended: null, confirmed: null,
    ctx: null, reinvites: 0, updates: 0, kept: {},
  };
  const log = (line) => {
    const text = `${(performance.now() / 1000).toFixed(2)} ${line}`;
    state.events.push(text);
    document.getElementById('log').textContent += `${text}\n`;
  };

  // Resolves when `pred()` holds (checked every 50 ms) or after `ms`; returns the last value.
  async function until(pred, ms) {
    const end = performance.now() + ms;
    let v = pred();
    while (!v && performance.now() < end) {
      await sleep(50);
      v = pred();
    }
    return v;
  }

  // Event wiring shared by outgoing and incoming sessions.
  function adopt(session, direction) {
    state.session = session;
    state.reinvites = 0;
    state.updates = 0;
    state.direction = direction;
    state.remote = null;
    state.ended = null;
    state.confirmed = null;
    const attach = (pc) => {
      pc.addEventListener('track', (e) => {
        state.remote = e.streams[0] || new MediaStream([e.track]);
        const audio = document.getElementById('remote');
        audio.srcObject = state.remote;
        audio.muted = true;
        audio.play().catch((err) => log(`audio.play: ${err}`));
        log(`track ${e.track.kind}`);
      });
      pc.addEventListener('connectionstatechange', () => log(`pc ${pc.connectionState}`));
    };
    if (session.connection) attach(session.connection);
    session.on('peerconnection', (e) => attach(e.peerconnection));
    // Mid-call requests from the gateway (issue 13: refreshes must not reach the page).
    session.on('reinvite', (e) => { state.reinvites++; log(`re-INVITE ${e.request && e.request.body ? 'with' : 'without'} SDP`); });
    session.on('update', () => { state.updates++; log('UPDATE'); });
    session.on('hold', (e) => log(`hold ${e.originator}`));
    session.on('unhold', (e) => log(`unhold ${e.originator}`));
    session.on('progress', (e) => log(`progress ${e.response ? e.response.status_code : ''}`));
    session.on('confirmed', () => { state.confirmed = true; log('confirmed'); });
    session.on('ended', (e) => {
      state.ended = { originator: e.originator, cause: e.cause };
      session.tbEnded = state.ended;   // for a session kept aside (attended transfer)
      log(`ended ${e.originator} ${e.cause}`);
    });
    session.on('failed', (e) => {
      state.ended = { originator: e.originator, cause: e.cause, failed: true,
        status: e.message && e.message.status_code };
      session.tbEnded = state.ended;
      log(`failed ${e.originator} ${e.cause}`);
    });
  }

  // session.refer(target, options); resolves once the REFER's subscription ends (NOTIFY with a
  // final sipfrag) or the REFER failed, with the events it saw.
  async function referOn(session, target, options, ms) {
    const seen = [];
    let done = false;
    try {
      session.refer(target, {
        ...options,
        eventHandlers: {
          requestSucceeded: (e) => seen.push(`response ${e.response.status_code}`),
          requestFailed: (e) => { seen.push(`response ${e.response ? e.response.status_code : e.cause}`); done = true; },
          trying: () => seen.push('notify 100'),
          progress: (e) => seen.push(`notify ${e.status_line.status_code}`),
          accepted: (e) => { seen.push(`notify ${e.status_line.status_code}`); done = true; },
          failed: (e) => { seen.push(`notify ${e.status_line ? e.status_line.status_code : 'failed'}`); done = true; },
        },
      });
    } catch (e) {
      return [`refer: ${e}`];
    }
    await until(() => done, ms);
    return seen;
  }

  const gw = {
    events: () => state.events.slice(),
    // Re-INVITEs and UPDATEs the gateway sent the page during the current session.
    counts: () => ({ reinvites: state.reinvites, updates: state.updates }),

    // Registers; with autoAnswer every incoming call is answered at once.
    // sessionTimers: JsSIP's own default (on, 90 s) instead of off.
    start({ wsUrl, uri, password, iceServers, autoAnswer, sessionTimers }) {
      state.ctx = new AudioContext();
      state.options = {
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers, iceTransportPolicy: 'relay' },
      };
      JsSIP.debug.disable('JsSIP:*');
      const ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(wsUrl)],
        uri,
        password,
        register: true,
        session_timers: !!sessionTimers,
        connection_recovery_min_interval: 60,
        connection_recovery_max_interval: 60,
      });
      state.ua = ua;
      ua.on('newRTCSession', (e) => {
        if (e.originator !== 'remote') return;
        log(`incoming from ${e.request.from.uri}`);
        adopt(e.session, 'incoming');
        if (autoAnswer) e.session.answer(state.options);
      });
      return new Promise((resolve) => {
        ua.on('registered', () => { log('registered'); resolve('registered'); });
        ua.on('registrationFailed', (e) => resolve(`registration failed: ${e.cause}`));
        ua.start();
      });
    },

    // An outgoing call; resolves once it is confirmed or has failed.
    async call(target, ms) {
      adopt(state.ua.call(target, state.options), 'outgoing');
      await until(() => state.confirmed || state.ended, ms);
      return { confirmed: !!state.confirmed, ended: state.ended };
    },

    // Waits for an incoming call to be answered (auto-answer) and confirmed.
    async waitIncoming(ms) {
      const incoming = () => state.direction === 'incoming';
      await until(() => incoming() && (state.confirmed || state.ended), ms);
      return { confirmed: incoming() && !!state.confirmed, ended: incoming() ? state.ended : 'no incoming call' };
    },

    // Waits for the media path (ICE + DTLS through the relay) and the remote track.
    async waitMedia(ms) {
      const pc = () => state.session && state.session.connection;
      await until(() => pc() && pc().connectionState === 'connected' && state.remote, ms);
      return { connection: pc() ? pc().connectionState : 'none', track: !!state.remote };
    },

    // The dominant frequency (Hz, from `fromHz` to under `toHz`, 4 kHz by default) of the remote
    // stream over `ms`: the power of `snapshots` AnalyserNode spectra summed, so one glitch does
    // not decide it.
    async measure(ms, snapshots = 8, fromHz = 0, toHz = 4000) {
      if (!state.remote) return { peakHz: 0, peakDb: -Infinity, error: 'no remote stream' };
      const ctx = state.ctx;
      await ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      const source = ctx.createMediaStreamSource(state.remote);
      source.connect(analyser);
      const bins = new Float32Array(analyser.frequencyBinCount);
      const power = new Float64Array(analyser.frequencyBinCount);
      await sleep(300);
      for (let k = 0; k < snapshots; k++) {
        await sleep(ms / snapshots);
        analyser.getFloatFrequencyData(bins);
        for (let i = 0; i < bins.length; i++) power[i] += 10 ** (bins[i] / 10);
      }
      source.disconnect();
      const hz = (i) => (i * ctx.sampleRate) / analyser.fftSize;
      let best = Math.max(1, Math.ceil((fromHz * analyser.fftSize) / ctx.sampleRate));
      for (let i = best; i < power.length && hz(i) < toHz; i++) if (power[i] > power[best]) best = i;
      return { peakHz: hz(best), peakDb: 10 * Math.log10(power[best] / snapshots), sampleRate: ctx.sampleRate };
    },

    // Media statistics: the selected pair's local candidate, packets, the negotiated codec.
    async stats() {
      const pc = state.session && state.session.connection;
      if (!pc) return {};
      const all = new Map();
      for (const s of (await pc.getStats()).values()) all.set(s.id, s);
      const out = {};
      for (const s of all.values()) {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = all.get(s.selectedCandidatePairId);
          const local = pair && all.get(pair.localCandidateId);
          const remote = pair && all.get(pair.remoteCandidateId);
          if (local) out.local = { type: local.candidateType, protocol: local.relayProtocol, address: `${local.address}:${local.port}` };
          if (remote) out.remote = { type: remote.candidateType, address: `${remote.address}:${remote.port}` };
        }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.packetsReceived = s.packetsReceived;
          const codec = all.get(s.codecId);
          out.codec = codec ? codec.mimeType : '';
        }
        if (s.type === 'outbound-rtp' && s.kind === 'audio') out.packetsSent = s.packetsSent;
      }
      return out;
    },

    // RFC 4733 digits through the RTCDTMFSender; resolves when the sender's queue is empty.
    async dtmf(tones, duration, gap) {
      try {
        state.session.sendDTMF(tones, { transportType: 'RFC2833', duration, interToneGap: gap });
      } catch (e) {
        return `sendDTMF: ${e}`;
      }
      const sender = state.session.connection.getSenders().find((s) => s.track && s.track.kind === 'audio');
      await until(() => sender && sender.dtmf && sender.dtmf.toneBuffer === '', (duration + gap) * tones.length + 3000);
      await sleep(duration + gap);
      return sender && sender.dtmf ? sender.dtmf.toneBuffer : 'no RTCDTMFSender';
    },

    // Blind transfer (RFC 3515): session.refer(target), with the REFER's events (referOn).
    refer(target, ms) { return referOn(state.session, target, {}, ms); },

    // Attended transfer (issue 14): the current session is kept aside as `name` (the next call()
    // makes another current one); referReplacing(from, target, replaces) is JsSIP's
    // kept[from].refer(target, { replaces: kept[replaces] }), or, with `replaces` an object
    // { callId, toTag, fromTag }, a Replaces naming any dialog (as a hostile page could).
    keep(name) { state.kept[name] = state.session; },
    referReplacing(from, target, replaces, ms) {
      const other = typeof replaces === 'string' ? state.kept[replaces]
        : { _request: { call_id: replaces.callId }, _to_tag: replaces.toTag, _from_tag: replaces.fromTag };
      return referOn(state.kept[from], target, { replaces: other }, ms);
    },
    // How the kept session `name` ended (null while it goes on after `ms`).
    async keptEnded(name, ms) {
      await until(() => state.kept[name].tbEnded, ms);
      return state.kept[name].tbEnded || null;
    },

    // Hangs up (BYE once confirmed); resolves with how the session ended.
    async hangup(ms) {
      try {
        state.session.terminate();
      } catch (e) {
        return { error: `terminate: ${e}`, ended: state.ended };
      }
      await until(() => state.ended, ms);
      return state.ended;
    },

    // Waits for the session to end by itself (the far end's BYE).
    async waitEnded(ms) {
      await until(() => state.ended, ms);
      return state.ended;
    },

    pcState() {
      const pc = state.session && state.session.connection;
      return pc ? pc.connectionState : 'none';
    },

    stop() {
      if (state.ua) state.ua.stop();
    },
  };
  window.gw = gw;
})();
