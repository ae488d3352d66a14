// SPDX-License-Identifier: Apache-2.0
// runCall(iceServer) sets up A -> B with relay-only ICE, sends a data-channel message each way,
// lets fake microphone audio flow, and returns what getStats says on both sides.
'use strict';

function log(msg) {
  document.getElementById('log').textContent += `${new Date().toISOString()} ${msg}\n`;
}

function withTimeout(promise, ms, what) {
  return Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The selected candidate pair of a connection and its local and remote candidates.
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId) || {};
  const remote = stats.get(pair.remoteCandidateId) || {};
  return {
    state: pair.state,
    nominated: pair.nominated,
    bytesSent: pair.bytesSent,
    bytesReceived: pair.bytesReceived,
    local: { candidateType: local.candidateType, address: local.address, port: local.port,
      protocol: local.protocol, relayProtocol: local.relayProtocol, url: local.url },
    remote: { candidateType: remote.candidateType, address: remote.address, port: remote.port },
  };
}

async function inboundAudio(pc) {
  const stats = await pc.getStats();
  let out = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out = { packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0,
        packetsLost: s.packetsLost || 0 };
    }
  });
  return out || { packetsReceived: 0, bytesReceived: 0, packetsLost: 0 };
}

// eslint-disable-next-line no-unused-vars
async function runCall(iceServer, timeoutMs = 45000) {
  const config = { iceServers: [iceServer], iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const result = { gathered: { a: [], b: [] } };
  try {
    for (const [pc, other, name] of [[a, b, 'a'], [b, a, 'b']]) {
      pc.onicecandidate = (e) => {
        if (e.candidate) {
          result.gathered[name].push(e.candidate.candidate);
          other.addIceCandidate(e.candidate).catch((err) => log(`addIceCandidate ${name}: ${err}`));
        }
      };
      pc.onicecandidateerror = (e) => log(`icecandidateerror ${name}: ${e.url} ${e.errorCode} ${e.errorText}`);
      pc.onconnectionstatechange = () => log(`${name} connection ${pc.connectionState}`);
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    for (const t of stream.getTracks()) a.addTrack(t, stream);

    const dcA = a.createDataChannel('turnbridge', { ordered: true });
    const fromA = 'hello from A through turnbridge';
    const fromB = 'hello from B through turnbridge';
    const gotAtB = new Promise((resolve) => {
      b.ondatachannel = (e) => {
        const dcB = e.channel;
        dcB.onmessage = (m) => { resolve(m.data); dcB.send(fromB); };
      };
    });
    const gotAtA = new Promise((resolve) => { dcA.onmessage = (m) => resolve(m.data); });
    dcA.onopen = () => dcA.send(fromA);
    const track = new Promise((resolve) => { b.ontrack = (e) => resolve(e.track.kind); });

    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);

    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1000, deadline - Date.now());
    result.trackKind = await withTimeout(track, left(), 'remote track');
    result.messageAtB = await withTimeout(gotAtB, left(), 'data channel A -> B');
    result.messageAtA = await withTimeout(gotAtA, left(), 'data channel B -> A');
    result.expectedAtB = fromA;
    result.expectedAtA = fromB;

    // Audio: packets arrive at B and keep arriving.
    let first = await inboundAudio(b);
    while (first.packetsReceived === 0 && Date.now() < deadline) {
      await sleep(250);
      first = await inboundAudio(b);
    }
    await sleep(1500);
    result.audioFirst = first;
    result.audioLater = await inboundAudio(b);
    result.pairA = await selectedPair(a);
    result.pairB = await selectedPair(b);
    result.connectionState = { a: a.connectionState, b: b.connectionState };
  } catch (err) {
    result.error = String(err);
    result.pairA = await selectedPair(a).catch(() => null);
    result.pairB = await selectedPair(b).catch(() => null);
  } finally {
    result.log = document.getElementById('log').textContent;
    a.close();
    b.close();
  }
  return result;
}
