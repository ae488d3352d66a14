// Drives JsSIP 3.10 in Node with a fake socket and a stub RTCPeerConnection, writing every
// message it sends to out/NN-<method>.sip. Answers: 401 to the first REGISTER, 200 to the next.
const fs = require('fs');
fs.mkdirSync('out', {recursive: true});
const SDP = fs.readFileSync('offer.sdp', 'utf8');
global.RTCPeerConnection = class {
  constructor() { this.iceGatheringState = 'new'; this.signalingState = 'stable'; this.connectionState = 'new'; this._l = {}; this.localDescription = null; }
  addEventListener(n, f) { (this._l[n] = this._l[n] || []).push(f); }
  removeEventListener() {}
  getSenders() { return []; } getReceivers() { return []; } getTransceivers() { return []; }
  addTrack() {} addStream() {}
  async createOffer() { return {type: 'offer', sdp: SDP}; }
  async setLocalDescription(d) { this.localDescription = d; this.iceGatheringState = 'complete';
    setTimeout(() => { (this._l['icecandidate'] || []).forEach(f => f({candidate: null})); (this._l['icegatheringstatechange']||[]).forEach(f=>f()); }, 5); }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  close() {}
};
global.window = global;
global.RTCSessionDescription = class { constructor(d) { Object.assign(this, d); } };
const JsSIP = require('jssip');
let n = 0;
const sent = [];
class FakeSocket {
  constructor() { this.via_transport = 'WSS'; this.url = 'wss://gw.example.org:8443/sip'; this.sip_uri = 'sip:gw.example.org;transport=ws'; }
  connect() { setTimeout(() => this.onconnect(), 1); }
  disconnect() {}
  isConnected() { return true; } isConnecting() { return false; }
  send(msg) {
    const method = msg.split(' ')[0];
    fs.writeFileSync(`out/${String(++n).padStart(2, '0')}-${method.replace(/[^A-Z0-9]/g, '_')}.sip`, msg);
    sent.push(msg);
    if (method === 'REGISTER') setTimeout(() => this.answerRegister(msg), 1);
    if (method === 'INVITE') setTimeout(() => this.answerInvite(msg), 1);
    if (method === 'BYE' || method === 'CANCEL' || method === 'MESSAGE') setTimeout(() => this.reply(msg, '200 OK', ';tag=uas1'), 1);
    return true;
  }
  reply(msg, status, totag, extra = '', body = '') {
    const h = (name) => (msg.match(new RegExp('^' + name + ': (.*)$', 'mi')) || [])[1];
    this.ondata('SIP/2.0 ' + status + '\r\nVia: ' + h('Via') + '\r\nTo: ' + h('To') + (h('To').includes('tag=') ? '' : totag) +
      '\r\nFrom: ' + h('From') + '\r\nCall-ID: ' + h('Call-ID') + '\r\nCSeq: ' + h('CSeq') + '\r\n' + extra +
      'Content-Length: ' + Buffer.byteLength(body) + '\r\n\r\n' + body);
  }
  answerInvite(msg) {
    this.invites = (this.invites || 0) + 1;
    this.reply(msg, '100 Trying', '');
    this.reply(msg, '180 Ringing', ';tag=uas' + this.invites, 'Contact: <sip:gw@gw.example.org;transport=ws>\r\n');
    if (this.invites === 1)
      setTimeout(() => this.reply(msg, '200 OK', ';tag=uas1', 'Contact: <sip:gw@gw.example.org;transport=ws>\r\nContent-Type: application/sdp\r\n',
                                  SDP.replace('UDP/TLS/RTP/SAVPF 111 0 8', 'UDP/TLS/RTP/SAVPF 111')), 20);
  }
  answerRegister(msg) {
    const h = (name) => (msg.match(new RegExp('^' + name + ': (.*)$', 'mi')) || [])[1];
    const authed = /^Authorization:/mi.test(msg);
    let r = (authed ? 'SIP/2.0 200 OK' : 'SIP/2.0 401 Unauthorized') + '\r\n' +
      'Via: ' + h('Via') + '\r\nTo: ' + h('To') + ';tag=regtag\r\nFrom: ' + h('From') + '\r\nCall-ID: ' + h('Call-ID') +
      '\r\nCSeq: ' + h('CSeq') + '\r\n';
    if (authed) r += 'Contact: ' + h('Contact').replace(/;expires=\d+/, '') + ';expires=600\r\n';
    else r += 'WWW-Authenticate: Digest realm="example.org", nonce="obMatJos2wAAA0000675a1b2c9f8e7d6c5b4a3928", qop="auth", algorithm=MD5\r\n';
    r += 'Content-Length: 0\r\n\r\n';
    this.ondata(r);
  }
}
const ua = new JsSIP.UA({sockets: [new FakeSocket()], uri: 'sip:alice@example.org', password: 'wonderland',
                         display_name: 'Alice', register: true, user_agent: 'JsSIP 3.10.1'});
ua.on('registered', () => {
  ua.sendMessage('sip:bob@example.org', 'hello from JsSIP');
  const opts = {mediaStream: {getTracks: () => [], getAudioTracks: () => []}, pcConfig: {}};
  const s1 = ua.call('sip:+15550123@example.org', opts);
  s1.on('confirmed', () => setTimeout(() => s1.terminate(), 20));
  s1.on('ended', () => {
    const s2 = ua.call('sip:+15550124@example.org', opts);
    s2.on('progress', () => setTimeout(() => s2.terminate(), 20));
    s2.on('failed', () => setTimeout(() => { ua.stop(); setTimeout(() => process.exit(0), 200); }, 50));
  });
  s1.on('failed', (e) => { console.error('call failed', e.cause); process.exit(1); });
});
ua.on('registrationFailed', (e) => { console.error('registration failed', e.cause); process.exit(1); });
ua.start();
