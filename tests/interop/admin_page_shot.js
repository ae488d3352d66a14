#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Helper of admin_test.py (not a test by itself): loads the admin usage page in headless
// Chromium (Debian's /usr/bin/chromium via playwright-core), waits for body[data-ready="1"] and
// the live table, and saves a full-page screenshot. Prints one JSON line: what it saw (table
// rows, painted canvas pixels, every URL the page requested, script errors).
// Usage: node admin_page_shot.js URL OUT.png   (URL on loopback only)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost',
];
const TOTAL_TIMEOUT_MS = 60000;

async function main(url, out, result) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnbridge-admin-chromium-'));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000,
      viewport: { width: 1280, height: 900 },
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => result.errors.push(`pageerror: ${e}`));
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(`console: ${m.text()}`); });
    page.on('request', (r) => result.requests.push(r.url()));
    const resp = await page.goto(url, { waitUntil: 'load', timeout: 20000 });
    result.status = resp ? resp.status() : 0;
    await page.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
    result.ready = true;
    await page.waitForFunction(() => document.getElementById('c-live').textContent !== '\u2013', null, { timeout: 15000 });
    result.liveRows = await page.$$eval('#live tbody tr', (rows) => rows.map((r) => r.textContent));
    result.userRows = await page.$$eval('#users tbody tr', (rows) => rows.map((r) => r.textContent));
    result.error = await page.$eval('#error', (e) => e.textContent);
    result.canvas = await page.evaluate(() => {
      const c = document.getElementById('chart');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) painted++;
      return { width: c.width, height: c.height, painted };
    });
    await page.screenshot({ path: out, fullPage: true });
    result.screenshot = out;
    result.ok = true;
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

(async () => {
  const [url, out] = process.argv.slice(2);
  const result = { ok: false, ready: false, status: 0, errors: [], requests: [] };
  const timer = setTimeout(() => {
    result.errors.push(`timed out after ${TOTAL_TIMEOUT_MS} ms`);
    console.log(JSON.stringify(result));
    process.exit(2);
  }, TOTAL_TIMEOUT_MS);
  try {
    if (!url || !out) throw new Error('usage: node admin_page_shot.js URL OUT.png');
    await main(url, out, result);
  } catch (err) {
    result.errors.push(String(err && err.stack ? err.stack : err));
  }
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
})();
