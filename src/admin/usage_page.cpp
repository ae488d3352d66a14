// SPDX-License-Identifier: Apache-2.0
// The usage page: HTML, CSS and script in one document, so that it needs no build step and
// loads nothing from anywhere else (kUsagePageCsp enforces that). Everything it shows comes
// from the JSON API with the same bearer token; strings from the API are set as text, never as
// markup (user names are client input).
#include "turnbridge/admin/usage_page.hpp"

namespace turnbridge::admin {
namespace {

constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>turnbridge &middot; usage</title>
<style>
:root {
  --bg: #f4f6f9; --panel: #ffffff; --text: #1b2230; --muted: #687186; --grid: #e6e9ef;
  --axis: #a3aaba; --border: #e1e5ec; --accent: #2f6fed; --danger: #d64545; --ok: #2fa36b;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --panel: #171b22; --text: #e5e8ee; --muted: #8f97a8; --grid: #262c36;
    --axis: #566072; --border: #262c36; --accent: #5b8def; --danger: #ef6363; --ok: #3cc47f;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
header {
  display: flex; align-items: baseline; gap: 12px; padding: 16px 28px;
  background: var(--panel); border-bottom: 1px solid var(--border);
}
header h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: -0.01em; }
header .sub { color: var(--muted); }
#status { margin-left: auto; color: var(--muted); font-size: 12px; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--axis); }
.dot.ok { background: var(--ok); }
.dot.err { background: var(--danger); }
main { max-width: 1320px; margin: 0 auto; padding: 20px 28px 48px; display: grid; gap: 18px; }
#error {
  display: none; padding: 10px 14px; border-radius: 8px;
  background: rgba(214, 69, 69, 0.1); border: 1px solid rgba(214, 69, 69, 0.35); color: var(--danger);
}
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 14px; }
.card, section { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; }
.card { padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: 0.05em; }
.card .value { margin-top: 4px; font-size: 24px; font-weight: 620; font-variant-numeric: tabular-nums; white-space: nowrap; }
.card .value.small { font-size: 19px; line-height: 36px; }
section { padding: 16px 18px; min-width: 0; }
section h2 { margin: 0 0 12px; font-size: 15px; font-weight: 620; display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
section h2 small { color: var(--muted); font-size: 12px; font-weight: 400; }
#chart-wrap { position: relative; height: 320px; }
#chart { display: block; width: 100%; height: 100%; }
#tip {
  position: absolute; display: none; pointer-events: none; z-index: 2; min-width: 160px;
  background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 8px 10px;
  font-size: 12px; box-shadow: 0 6px 18px rgba(0, 0, 0, 0.14);
}
#tip .t { color: var(--muted); margin-bottom: 4px; }
#tip .r { display: flex; gap: 12px; justify-content: space-between; font-variant-numeric: tabular-nums; }
#legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-top: 10px; font-size: 12px; color: var(--muted); }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; text-align: left; border-bottom: 1px solid var(--border); white-space: nowrap; }
th { color: var(--muted); font-size: 11.5px; font-weight: 550; text-transform: uppercase; letter-spacing: 0.04em; }
tbody tr:last-child td { border-bottom: none; }
tbody tr:hover { background: rgba(127, 127, 127, 0.06); }
.num { text-align: right; }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.pill { font-size: 11px; padding: 1px 8px; border-radius: 9px; background: rgba(127, 127, 127, 0.15); text-transform: uppercase; }
.bar { display: inline-block; height: 6px; border-radius: 3px; background: var(--accent); opacity: 0.75; margin-right: 8px; vertical-align: 1px; }
td.empty { text-align: center; color: var(--muted); padding: 18px; }
button.kick {
  font: inherit; font-size: 12px; padding: 3px 12px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--danger); color: var(--danger); background: transparent;
}
button.kick:hover, button.kick.confirm { background: var(--danger); color: #fff; }
button.kick:disabled { opacity: 0.5; cursor: default; }
</style>
</head>
<body>
<header>
  <h1>turnbridge</h1><span class="sub">relay usage</span>
  <span id="status"><span class="dot"></span>loading&hellip;</span>
</header>
<main>
  <div id="error" role="alert"></div>
  <div class="cards">
    <div class="card"><div class="label">Egress, last 7 days</div><div class="value" id="c-egress">&ndash;</div></div>
    <div class="card"><div class="label">Allocations, last 7 days</div><div class="value" id="c-allocs">&ndash;</div></div>
    <div class="card"><div class="label">Estimated cost, 7 days</div><div class="value" id="c-cost">&ndash;</div></div>
    <div class="card"><div class="label">Live allocations</div><div class="value" id="c-live">&ndash;</div></div>
    <div class="card"><div class="label">Bit rate in / out now</div><div class="value small" id="c-rate">&ndash;</div></div>
  </div>
  <section>
    <h2>Egress per hour by user <small>last 7 days &middot; wire bytes the relay sent (relay&rarr;peer + relay&rarr;client)</small></h2>
    <div id="chart-wrap">
      <canvas id="chart" role="img" aria-label="Stacked chart of egress bytes per hour and user over the last 7 days"></canvas>
      <div id="tip"></div>
    </div>
    <div id="legend"></div>
  </section>
  <section>
    <h2>Top users <small>last 7 days</small></h2>
    <div class="scroll"><table id="users">
      <thead><tr><th>User</th><th>Realm</th><th class="num">Allocations</th><th class="num">Minutes</th>
        <th>Egress</th><th class="num">Received</th><th class="num">Est. cost</th>
        <th class="num" title="Gateway calls started (answered)">Calls</th><th class="num">Call minutes</th></tr></thead>
      <tbody><tr><td colspan="9" class="empty">loading&hellip;</td></tr></tbody>
    </table></div>
  </section>
  <section>
    <h2>Live allocations <small>refreshed every 5 s</small></h2>
    <div class="scroll"><table id="live">
      <thead><tr><th>Allocation</th><th>User</th><th>Realm</th><th>Client</th><th>Transport</th><th>Relay</th>
        <th>Started</th><th class="num">Peers</th><th class="num">In</th><th class="num">Out</th>
        <th class="num">Egress</th><th></th></tr></thead>
      <tbody><tr><td colspan="12" class="empty">loading&hellip;</td></tr></tbody>
    </table></div>
  </section>
</main>
<script>
'use strict';
(function () {
  const TOKEN = new URLSearchParams(location.search).get('token');
  const HOUR = 3600 * 1000;
  const HOURS = 7 * 24;
  const TOP = 6;
  const PALETTE = ['#2f6fed', '#e8833a', '#2fa36b', '#b54fd6', '#d9a400', '#17a2b8'];
  const OTHER_COLOR = '#9aa1b0';
  const LIVE_EVERY_MS = 5000;
  const USAGE_EVERY_MS = 60000;
  const $ = (id) => document.getElementById(id);
  const chart = { series: [], start: 0, layout: null, hover: -1 };

  // --- data ------------------------------------------------------------------------------------
  async function api(path, method) {
    const headers = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
    const res = await fetch(path, { method: method || 'GET', headers: headers, cache: 'no-store' });
    if (res.status === 204) return null;
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      let msg = res.status + ' ' + ((body && body.error) || res.statusText);
      if (body && body.parameter) msg += ' (parameter ' + body.parameter + ')';
      if (res.status === 401) msg += ' \u2014 open this page as /?token=YOUR_TOKEN';
      throw new Error(msg);
    }
    return body;
  }
  const n = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const egress = (r) => n(r.relay_to_peer_wire_bytes) + n(r.relay_to_client_wire_bytes);
  const ingress = (r) => n(r.client_to_relay_wire_bytes) + n(r.peer_to_relay_wire_bytes);

  // --- formatting ------------------------------------------------------------------------------
  function fmtUnits(v, units, base) {
    let i = 0;
    while (Math.abs(v) >= base && i < units.length - 1) { v /= base; i++; }
    const digits = i === 0 ? 0 : (Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0);
    return v.toFixed(digits) + '\u202f' + units[i];
  }
  const fmtBytes = (v) => fmtUnits(v, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], 1000);
  const fmtRate = (v) => fmtUnits(v, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'], 1000);
  const fmtInt = (v) => Math.round(v).toLocaleString('en-US');
  const fmtMinutes = (v) => (v > 0 && v < 10 ? v.toFixed(v < 1 ? 2 : 1) : fmtInt(v));
  function fmtAgo(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
    return Math.floor(s / 86400) + ' d ago';
  }
  function fmtHour(t) {
    const d = new Date(t);
    return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' }) + ', ' +
      String(d.getHours()).padStart(2, '0') + ':00';
  }
  const userLabel = (r) => (r.key === '' ? '(realm only)' : r.key);

  // --- DOM helpers (text only: never markup from the API) ---------------------------------------
  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) for (const k of Object.keys(props)) {
      if (k === 'text') e.textContent = props[k];
      else if (k === 'cls') e.className = props[k];
      else e.setAttribute(k, props[k]);
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }
  function fillBody(table, rows, columns, emptyText) {
    const tbody = table.tBodies[0];
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.appendChild(el('tr', null, [el('td', { colspan: String(columns), cls: 'empty', text: emptyText })]));
      return;
    }
    for (const r of rows) tbody.appendChild(r);
  }
  function setStatus(ok, text) {
    $('status').replaceChildren(el('span', { cls: 'dot ' + (ok ? 'ok' : 'err') }), document.createTextNode(text));
  }
  function showError(err) {
    const box = $('error');
    box.textContent = err ? String(err.message || err) : '';
    box.style.display = err ? 'block' : 'none';
    setStatus(!err, err ? 'error' : 'updated ' + new Date().toLocaleTimeString('en-GB'));
  }

  // --- usage: chart, top users and the 7-day cards ------------------------------------------------
  async function loadUsage() {
    const [hours, users] = await Promise.all([
      api('api/v1/usage?by=hour&since=7d'),
      api('api/v1/usage?by=user&since=7d'),
    ]);
    const end = Math.floor(Date.now() / HOUR) * HOUR;
    const start = end - (HOURS - 1) * HOUR;
    const bucket = (key) => {
      const t = Date.parse(key);
      if (isNaN(t)) return -1;
      const i = Math.floor((t - start) / HOUR);
      return i >= 0 && i < HOURS ? i : -1;
    };
    const total = new Array(HOURS).fill(0);
    for (const r of hours) { const i = bucket(r.key); if (i >= 0) total[i] += egress(r); }
    users.sort((a, b) => egress(b) - egress(a) || ingress(b) - ingress(a));
    const top = users.filter((u) => u.key !== '' && egress(u) > 0).slice(0, TOP);
    const realms = new Set(users.map((u) => u.realm));
    const perUser = await Promise.all(top.map((u) =>
      api('api/v1/usage?by=hour&since=7d&user=' + encodeURIComponent(u.key) +
          (u.realm ? '&realm=' + encodeURIComponent(u.realm) : ''))));
    const series = top.map((u, k) => {
      const values = new Array(HOURS).fill(0);
      for (const r of perUser[k]) { const i = bucket(r.key); if (i >= 0) values[i] += egress(r); }
      const name = realms.size > 1 && u.realm ? u.key + ' (' + u.realm + ')' : u.key;
      return { name: name, values: values, color: PALETTE[k % PALETTE.length] };
    });
    const rest = total.map((t, i) => Math.max(0, t - series.reduce((s, x) => s + x.values[i], 0)));
    if (rest.some((v) => v > 0)) series.push({ name: top.length ? 'everyone else' : 'all users', values: rest, color: OTHER_COLOR });
    chart.series = series;
    chart.start = start;
    drawChart();
    drawLegend();
    renderUsers(users);
    renderUsageCards(users);
    document.body.setAttribute('data-ready', '1');
  }

  function renderUsageCards(users) {
    $('c-egress').textContent = fmtBytes(users.reduce((s, u) => s + egress(u), 0));
    $('c-allocs').textContent = fmtInt(users.reduce((s, u) => s + n(u.allocations), 0));
    const byCurrency = new Map();
    for (const u of users) {
      const c = u.currency || '';
      if (!n(u.cost) && !c) continue;
      byCurrency.set(c, (byCurrency.get(c) || 0) + n(u.cost));
    }
    $('c-cost').textContent = byCurrency.size === 0 ? '0.00'
      : [...byCurrency].map(([c, v]) => v.toFixed(2) + (c ? ' ' + c : '')).join(' + ');
  }

  function renderUsers(users) {
    const max = users.reduce((m, u) => Math.max(m, egress(u)), 0) || 1;
    const rows = users.slice(0, 50).map((u) => el('tr', null, [
      el('td', { text: userLabel(u), cls: u.key === '' ? 'muted' : '' }),
      el('td', { text: u.realm || '', cls: 'muted' }),
      el('td', { cls: 'num', text: fmtInt(n(u.allocations)) }),
      el('td', { cls: 'num', text: fmtMinutes(n(u.relayed_minutes)) }),
      el('td', null, [el('span', { cls: 'bar', style: 'width:' + (egress(u) > 0 ? Math.max(2, Math.round(90 * egress(u) / max)) : 0) + 'px' }),
                      document.createTextNode(fmtBytes(egress(u)))]),
      el('td', { cls: 'num', text: fmtBytes(ingress(u)) }),
      el('td', { cls: 'num', text: n(u.cost).toFixed(2) + (u.currency ? ' ' + u.currency : '') }),
      el('td', { cls: 'num', text: fmtInt(n(u.calls)) + (n(u.calls) ? ' (' + fmtInt(n(u.answered_calls)) + ')' : '') }),
      el('td', { cls: 'num', text: fmtMinutes(n(u.call_minutes)) }),
    ]));
    fillBody($('users'), rows, 9, 'No usage in the last 7 days');
  }

  // --- the chart, drawn by hand on the canvas ------------------------------------------------------
  function niceStep(max, count) {
    if (!(max > 0)) return 1;
    const raw = max / count;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  function drawChart() {
    const canvas = $('chart');
    const wrap = $('chart-wrap');
    const W = wrap.clientWidth, H = wrap.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';

    const pad = { l: 72, r: 14, t: 30, b: 40 };
    const pw = Math.max(10, W - pad.l - pad.r), ph = Math.max(10, H - pad.t - pad.b);
    const stacked = new Array(HOURS).fill(0);
    for (const s of chart.series) s.values.forEach((v, i) => { stacked[i] += v; });
    const max = Math.max(0, ...stacked);
    const step = niceStep(max, 4);
    const yMax = Math.max(step, Math.ceil(max / step) * step);
    const X = (i) => pad.l + (pw * i) / HOURS;  // left edge of hour i's bar
    const slot = pw / HOURS;
    const bw = Math.max(1, slot > 3 ? slot - 1 : slot);
    const Y = (v) => pad.t + ph - (ph * v) / yMax;
    chart.layout = { pad: pad, pw: pw, ph: ph, X: X, Y: Y, W: W, slot: slot };

    // Grid and y labels.
    g.font = font;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let v = 0; v <= yMax + step / 2; v += step) {
      if (max === 0 && v > 0) break;  // nothing to scale: the baseline only
      const y = Math.round(Y(v)) + 0.5;
      g.strokeStyle = color('--grid');
      g.beginPath(); g.moveTo(pad.l, y); g.lineTo(pad.l + pw, y); g.stroke();
      g.fillStyle = color('--muted');
      g.fillText(fmtBytes(v), pad.l - 8, y);
    }
    g.save();
    g.textAlign = 'left';
    g.textBaseline = 'alphabetic';
    g.fillText('bytes per hour', pad.l - 64, 12);
    g.restore();

    // Day boundaries (local midnight) as x ticks.
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let i = 0; i < HOURS; i++) {
      const d = new Date(chart.start + i * HOUR);
      if (d.getHours() !== 0) continue;
      const x = Math.round(X(i)) + 0.5;
      g.strokeStyle = color('--grid');
      g.beginPath(); g.moveTo(x, pad.t); g.lineTo(x, pad.t + ph); g.stroke();
      g.strokeStyle = color('--axis');
      g.beginPath(); g.moveTo(x, pad.t + ph); g.lineTo(x, pad.t + ph + 5); g.stroke();
      g.fillStyle = color('--muted');
      g.fillText(d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' }), x, pad.t + ph + 9);
    }

    // Hover band behind the bars.
    if (chart.hover >= 0 && max > 0) {
      g.fillStyle = color('--grid');
      g.fillRect(X(chart.hover) - 1, pad.t, slot + 2, ph);
    }
    // Stacked bars, one per hour, bottom series first: a single busy hour stays visible.
    const base = new Array(HOURS).fill(0);
    for (const s of chart.series) {
      g.fillStyle = s.color;
      for (let i = 0; i < HOURS; i++) {
        const v = s.values[i];
        if (!(v > 0)) continue;
        const top = Y(base[i] + v), bottom = Y(base[i]);
        g.fillRect(X(i), top, bw, Math.max(1, bottom - top));
        base[i] += v;
      }
    }

    // Axes on top of the areas.
    g.strokeStyle = color('--axis');
    g.beginPath();
    g.moveTo(pad.l + 0.5, pad.t);
    g.lineTo(pad.l + 0.5, pad.t + ph + 0.5);
    g.lineTo(pad.l + pw, pad.t + ph + 0.5);
    g.stroke();

    if (max === 0) {
      g.fillStyle = color('--muted');
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.font = '13px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
      g.fillText('No relayed traffic in the last 7 days', pad.l + pw / 2, pad.t + ph / 2);
    }
  }

  function drawLegend() {
    const items = chart.series.map((s) => el('span', null, [
      el('span', { cls: 'sw', style: 'background:' + s.color }),
      document.createTextNode(s.name + ' \u00b7 ' + fmtBytes(s.values.reduce((a, b) => a + b, 0))),
    ]));
    if (!items.length) items.push(el('span', { text: 'no users with traffic yet' }));
    $('legend').replaceChildren(...items);
  }

  function onHover(ev) {
    const L = chart.layout;
    const tip = $('tip');
    if (!L || !chart.series.length) return;
    const rect = $('chart').getBoundingClientRect();
    const x = ev.clientX - rect.left;
    const i = Math.floor(((x - L.pad.l) / L.pw) * HOURS);
    if (i < 0 || i >= HOURS) { onLeave(); return; }
    chart.hover = i;
    drawChart();
    const rows = [el('div', { cls: 't', text: fmtHour(chart.start + i * HOUR) })];
    let sum = 0;
    for (const s of chart.series.slice().reverse()) {
      sum += s.values[i];
      rows.push(el('div', { cls: 'r' }, [
        el('span', null, [el('span', { cls: 'sw', style: 'background:' + s.color }), document.createTextNode(s.name)]),
        el('span', { text: fmtBytes(s.values[i]) }),
      ]));
    }
    rows.push(el('div', { cls: 'r' }, [el('b', { text: 'total' }), el('b', { text: fmtBytes(sum) })]));
    tip.replaceChildren(...rows);
    tip.style.display = 'block';
    const left = L.X(i) + L.slot + 12;
    tip.style.left = (left + tip.offsetWidth > L.W ? L.X(i) - tip.offsetWidth - 12 : left) + 'px';
    tip.style.top = L.pad.t + 'px';
  }
  function onLeave() {
    $('tip').style.display = 'none';
    if (chart.hover !== -1) { chart.hover = -1; drawChart(); }
  }

  // --- live allocations ----------------------------------------------------------------------------
  function kickButton(id) {
    const b = el('button', { cls: 'kick', type: 'button', text: 'Kick', title: 'Delete this allocation now' });
    let armed = null;
    b.addEventListener('click', async () => {
      if (!armed) {  // first click arms, the second within 3 s kicks
        b.classList.add('confirm');
        b.textContent = 'Confirm';
        armed = setTimeout(() => { armed = null; b.classList.remove('confirm'); b.textContent = 'Kick'; }, 3000);
        return;
      }
      clearTimeout(armed);
      b.disabled = true;
      try {
        await api('api/v1/allocations/' + encodeURIComponent(id), 'DELETE');
        showError(null);
      } catch (e) {
        showError(e);
      }
      refreshLive();
    });
    return b;
  }

  function renderLive(live) {
    live.sort((a, b) => n(b.bitrate_in_bps) + n(b.bitrate_out_bps) - n(a.bitrate_in_bps) - n(a.bitrate_out_bps) ||
      n(a.start_ms) - n(b.start_ms));
    const rows = live.map((a) => el('tr', null, [
      el('td', { cls: 'mono', text: String(a.id).length > 14 ? String(a.id).slice(0, 6) + '\u2026' + String(a.id).slice(-6) : String(a.id), title: String(a.id) }),
      el('td', { text: a.user || '(realm only)', title: 'USERNAME ' + (a.username || '') }),
      el('td', { cls: 'muted', text: a.realm || '' }),
      el('td', { cls: 'mono', text: a.client || '' }),
      el('td', null, [el('span', { cls: 'pill', text: a.transport || '?' })]),
      el('td', { cls: 'mono', text: a.relay || '' }),
      el('td', { text: fmtAgo(n(a.start_ms)), title: a.start || '' }),
      el('td', { cls: 'num', text: fmtInt(n(a.peers)) }),
      el('td', { cls: 'num', text: fmtRate(n(a.bitrate_in_bps)) }),
      el('td', { cls: 'num', text: fmtRate(n(a.bitrate_out_bps)) }),
      el('td', { cls: 'num', text: fmtBytes(egress(a)) }),
      el('td', { cls: 'num' }, [kickButton(a.id)]),
    ]));
    fillBody($('live'), rows, 12, 'No live allocations');
    $('c-live').textContent = fmtInt(live.length);
    const rin = live.reduce((s, a) => s + n(a.bitrate_in_bps), 0);
    const rout = live.reduce((s, a) => s + n(a.bitrate_out_bps), 0);
    $('c-rate').textContent = fmtRate(rin) + ' / ' + fmtRate(rout);
  }

  // --- refresh loops -------------------------------------------------------------------------------
  let liveTimer = null;
  async function refreshLive() {
    clearTimeout(liveTimer);
    try {
      renderLive(await api('api/v1/allocations'));
      showError(null);
    } catch (e) {
      showError(e);
    }
    liveTimer = setTimeout(refreshLive, LIVE_EVERY_MS);
  }
  async function refreshUsage() {
    try {
      await loadUsage();
      showError(null);
    } catch (e) {
      showError(e);
    }
    setTimeout(refreshUsage, USAGE_EVERY_MS);
  }

  const canvas = $('chart');
  canvas.addEventListener('mousemove', onHover);
  canvas.addEventListener('mouseleave', onLeave);
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawChart, 100); });
  refreshUsage();
  refreshLive();
})();
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string_view usage_page() { return kPage; }

}  // namespace turnbridge::admin
