// SPDX-License-Identifier: Apache-2.0
// Helpers for suites that drive the click-to-call page in Chromium (click_to_call_test.js,
// demo_test.js): waiting for its status line, and measuring what it hears.
'use strict';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls the page's #status until it matches `re` or `ms` pass: { ok, text }.
async function waitStatus(page, re, ms = 10000) {
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    text = await page.textContent('#status');
    if (re.test(text)) return { ok: true, text };
    await sleep(100);
  }
  return { ok: false, text };
}

// What the page's #remote stream sounds like over `ms`, sampled every 100 ms: the loudest
// snapshot's RMS, dominant frequency and level (dB) at each of `probe` Hz, and after how many ms
// the sound first went over 0.01 RMS (-1: never).
function listen(page, ms, probe = []) {
  return page.evaluate(async ([dur, freqs]) => {
    const stream = document.getElementById('remote').srcObject;
    if (!stream) return { rms: 0, hz: 0, db: [], firstLoud: -1 };
    const ctx = new AudioContext({ sampleRate: 48000 });
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(stream).connect(analyser);
    let rms = 0, hz = 0, db = [], firstLoud = -1;
    const t = new Float32Array(analyser.fftSize);
    const f = new Float32Array(analyser.frequencyBinCount);
    const started = performance.now();
    for (let k = 0; k < dur / 100; k++) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatTimeDomainData(t);
      const e = Math.sqrt(t.reduce((a, x) => a + x * x, 0) / t.length);
      if (e > 0.01 && firstLoud < 0) firstLoud = performance.now() - started;
      if (e > rms) {
        rms = e;
        analyser.getFloatFrequencyData(f);
        let best = 1;
        for (let i = 1; i < f.length; i++) if (f[i] > f[best]) best = i;
        hz = (best * ctx.sampleRate) / analyser.fftSize;
        db = freqs.map((x) => {
          const i = Math.round((x * analyser.fftSize) / ctx.sampleRate);
          return Math.max(f[i - 1], f[i], f[i + 1]);
        });
      }
    }
    await ctx.close();
    return { rms, hz, db, firstLoud };
  }, [ms, probe]);
}

module.exports = { waitStatus, listen };
