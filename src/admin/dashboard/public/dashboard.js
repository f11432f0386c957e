// Portico dashboard: live over server-sent events (/api/v1/events, read with fetch), changes through the admin API.
// No framework: the page is re-rendered from each one-second `stats` frame; uPlot draws the charts.
'use strict';
(() => {
  const MAX_FRAMES = 300;
  const MAX_TIMELINE = 200;
  const TOKEN_KEY = 'portico.adminToken';

  const state = {
    frames: [], // stats frames, oldest first
    timeline: [], // server and health events, newest first
    selected: null, // { pool, server? }
    tokenRequired: false,
    charts: {},
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, attrs = {}, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  };

  // ---------------------------------------------------------------- formatting
  const num = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
  const rate = (x) => (x === null || x === undefined ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const pct = (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 1) + '%');
  const ms = (x) => (x === null || x === undefined ? '–' : x >= 100 ? x.toFixed(0) + ' ms' : x >= 1 ? x.toFixed(1) + ' ms' : x.toFixed(2) + ' ms');
  const bytes = (x) => {
    if (x === null || x === undefined) return '–';
    const u = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (x >= 1000 && i < u.length - 1) { x /= 1000; i++; }
    return (i === 0 ? x.toFixed(0) : x.toFixed(1)) + ' ' + u[i] + '/s';
  };
  const size = (x) => {
    const u = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (x >= 1000 && i < u.length - 1) { x /= 1000; i++; }
    return (i === 0 ? x.toFixed(0) : x.toFixed(1)) + ' ' + u[i];
  };
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  const fineUpper = (i) => 2 ** (-4 + i / 4); // ms; matches src/observability/latency.ts

  // ---------------------------------------------------------------- notices
  let noticeTimer;
  function notice(text, bad = false) {
    const n = $('#notice');
    n.textContent = text;
    n.className = bad ? 'bad' : '';
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, bad ? 8000 : 4000);
  }

  // ---------------------------------------------------------------- token and API calls
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
  function updateTokenButton() { $('#forget-token').hidden = token() === ''; }

  function askToken(error) {
    const dlg = $('#token-dialog');
    const err = $('#token-error');
    err.hidden = !error;
    err.textContent = error || '';
    $('#token-input').value = '';
    return new Promise((resolve) => {
      const done = (value) => {
        dlg.removeEventListener('close', onClose);
        $('#token-cancel').onclick = null;
        resolve(value);
      };
      const onClose = () => done(dlg.returnValue === 'ok' ? $('#token-input').value.trim() : '');
      dlg.addEventListener('close', onClose);
      $('#token-cancel').onclick = () => dlg.close('cancel');
      dlg.showModal();
    });
  }

  /** Call the admin API; asks for the token once (kept in sessionStorage) when one is needed. */
  async function api(method, path, body) {
    if (state.tokenRequired && token() === '') {
      const t = await askToken();
      if (t === '') return null;
      sessionStorage.setItem(TOKEN_KEY, t);
      updateTokenButton();
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token() !== '') headers.authorization = 'Bearer ' + token();
      const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      let json = null;
      try { json = text === '' ? null : JSON.parse(text); } catch { json = null; }
      if (res.status === 401 && attempt === 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        const t = await askToken((json && json.error && json.error.message) || 'the token was refused');
        if (t === '') return null;
        sessionStorage.setItem(TOKEN_KEY, t);
        updateTokenButton();
        continue;
      }
      if (!res.ok) {
        const msg = json && json.error ? `${json.error.code}: ${json.error.message}` : `${res.status} ${res.statusText}`;
        notice(`${method} ${path} failed: ${msg}`, true);
        return null;
      }
      return json ?? {};
    }
    return null;
  }

  const serverPath = (pool, server) => `/api/v1/pools/${encodeURIComponent(pool)}/servers/${encodeURIComponent(server)}`;

  async function setServer(pool, server, change) {
    const r = await api('PATCH', serverPath(pool, server), change);
    if (r !== null) notice(`${pool}/${server}: ${Object.entries(change).map(([k, v]) => `${k} → ${v}`).join(', ')}`);
  }

  $('#reload').addEventListener('click', async () => {
    const r = await api('POST', '/api/v1/reload');
    if (r !== null) notice('configuration reloaded' + (r.generation !== undefined ? ` (generation ${r.generation})` : ''));
  });
  $('#forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    updateTokenButton();
  });

  // ---------------------------------------------------------------- rendering: listeners
  function renderListeners(frame) {
    const tb = $('#listeners tbody');
    tb.replaceChildren(
      ...frame.listeners.map((l) =>
        el('tr', { 'data-listener': l.name },
          el('td', { text: l.name }), el('td', { text: l.protocol }), el('td', { text: l.address }),
          el('td', { class: 'num', text: rate(l.rps) }), el('td', { class: 'num', text: rate(l.connectionsPerSec) }),
          el('td', { class: 'num', text: rate(l.rejectedPerSec) }))),
    );
  }

  // ---------------------------------------------------------------- rendering: kernel listeners
  // A kernel (nftables) listener's servers with their packet and byte rates, from its counters
  // (GET /api/v1/listeners/{name}/kernel, 404 for a userspace listener: asked again now and then).
  const kernel = { last: new Map(), notKernel: new Map(), busy: false, frame: 0 };
  async function pollKernel(frame) {
    if (kernel.busy || kernel.frame++ % 2 !== 0) return;
    kernel.busy = true;
    try {
      const rows = [];
      for (const l of frame.listeners.filter((x) => x.protocol === 'tcp' || x.protocol === 'udp')) {
        if ((kernel.notKernel.get(l.name) || 0) > kernel.frame) continue;
        const headers = { accept: 'application/json' };
        if (token() !== '') headers.authorization = 'Bearer ' + token();
        let res;
        try { res = await fetch('/api/v1/listeners/' + encodeURIComponent(l.name) + '/kernel', { headers, cache: 'no-store' }); } catch { continue; }
        if (res.status === 404) { kernel.notKernel.set(l.name, kernel.frame + 30); continue; }
        if (!res.ok) continue;
        const v = await res.json();
        const now = Date.now();
        const prev = kernel.last.get(l.name);
        const per = (s, k) => {
          const p = prev && prev.servers.get(s.server);
          const dt = prev ? (now - prev.at) / 1000 : 0;
          return p && dt > 0 && s[k] >= p[k] ? (s[k] - p[k]) / dt : null;
        };
        for (const s of v.servers) {
          rows.push(el('tr', {},
            el('td', { text: l.name }), el('td', { text: s.server }),
            el('td', { class: 'num', text: rate(per(s, 'packetsIn')) }), el('td', { class: 'num', text: rate(per(s, 'packetsOut')) }),
            el('td', { class: 'num', text: bytes(per(s, 'bytesIn')) }), el('td', { class: 'num', text: bytes(per(s, 'bytesOut')) })));
        }
        kernel.last.set(l.name, { at: now, servers: new Map(v.servers.map((s) => [s.server, s])) });
      }
      $('#kernel').hidden = rows.length === 0;
      $('#kernel tbody').replaceChildren(...rows);
    } finally {
      kernel.busy = false;
    }
  }

  // ---------------------------------------------------------------- rendering: caches
  /** Share of the requests answered from the cache between two counts (null: none counted). */
  const ratio = (fromCache, requests) => (requests > 0 ? fromCache / requests : null);
  const CACHE_WINDOW = 10; // frames the recent hit ratio covers

  function renderCaches(frame) {
    const caches = frame.caches || [];
    $('#caches').hidden = caches.length === 0;
    const old = state.frames[Math.max(0, state.frames.length - 1 - CACHE_WINDOW)];
    $('#caches tbody').replaceChildren(
      ...caches.map((c) => {
        const o = old && old !== frame ? (old.caches || []).find((x) => x.name === c.name) : undefined;
        // A count that went down is a new cache (reload) or a worker left: no recent ratio then.
        const recent = o && c.requests >= o.requests && c.fromCache >= o.fromCache ? ratio(c.fromCache - o.fromCache, c.requests - o.requests) : null;
        return el('tr', { 'data-cache': c.name },
          el('td', { text: c.name }), el('td', { class: 'num', text: String(c.entries) }), el('td', { class: 'num', text: size(c.bytes) }),
          el('td', { class: 'num', text: pct(recent) }), el('td', { class: 'num', text: pct(ratio(c.fromCache, c.requests)) }),
          el('td', { class: 'num', text: String(c.requests) }));
      }),
    );
  }

  // ---------------------------------------------------------------- rendering: pools and servers
  function lawCells(t) {
    const L = t.laws;
    const close = L.XR !== null && Math.abs(L.N - L.XR) <= Math.max(0.05, 0.1 * Math.max(L.N, L.XR));
    return [
      el('td', { class: 'num', text: rate(L.X) }),
      el('td', { class: 'num', text: ms(L.R) }),
      el('td', { class: 'num law-n', text: num(L.N, 3) }),
      el('td', { class: 'num law-xr ' + (L.XR === null ? '' : close ? 'law-ok' : 'law-off'), title: close ? 'N = X·R holds' : 'N and X·R differ (window edges, long requests)', text: num(L.XR, 3) }),
      el('td', { class: 'num', text: L.U === null ? '–' : pct(L.U) }),
    ];
  }

  function trafficCells(t) {
    return [
      el('td', { class: 'num', text: rate(t.rps) }),
      el('td', { class: 'num', text: pct(t.errorRate) }),
      el('td', { class: 'num', text: bytes(t.bytesPerSec) }),
      el('td', { class: 'num', text: ms(t.p50) }),
      el('td', { class: 'num', text: ms(t.p99) }),
    ];
  }

  function weightCell(s) {
    const ramp = s.effectiveWeight < s.weight;
    const share = s.weight > 0 ? Math.min(1, s.effectiveWeight / s.weight) : 0;
    return el('td', {},
      el('div', { class: 'weight' },
        el('span', { class: 'w-eff', text: String(Math.round(s.effectiveWeight * 100) / 100) }),
        el('span', { class: 'muted', text: '/ ' + s.weight }),
        el('span', { class: 'bar' }, (() => { const b = el('span'); b.style.width = (share * 100).toFixed(0) + '%'; return b; })()),
        ramp ? el('span', { class: 'ramp', text: 'slow start' }) : null));
  }

  function actionsCell(pool, s) {
    const weightInput = el('input', { type: 'number', min: '0', max: '256', step: '1', value: String(s.weight), 'aria-label': 'weight' });
    const stop = (fn) => (ev) => { ev.stopPropagation(); fn(); };
    return el('td', {},
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'act-ready', title: 'take new traffic', onclick: stop(() => setServer(pool, s.name, { state: 'ready' })) , ...(s.admin === 'ready' ? { disabled: '' } : {}), text: 'ready' }),
        el('button', { type: 'button', class: 'act-drain', title: 'finish what is in flight, take nothing new', onclick: stop(() => setServer(pool, s.name, { state: 'drain' })), ...(s.admin === 'drain' ? { disabled: '' } : {}), text: 'drain' }),
        el('button', { type: 'button', class: 'act-maint', title: 'out of service, no health checks', onclick: stop(() => setServer(pool, s.name, { state: 'maint' })), ...(s.admin === 'maint' ? { disabled: '' } : {}), text: 'maint' }),
        weightInput,
        el('button', { type: 'button', class: 'act-weight', onclick: stop(() => {
          const w = Number(weightInput.value);
          if (!Number.isInteger(w) || w < 0 || w > 256) return notice('a weight is an integer from 0 to 256', true);
          setServer(pool, s.name, { weight: w });
        }), title: 'set the configured weight', text: 'set' })));
  }

  function isSelected(pool, server) {
    const s = state.selected;
    return s !== null && s.pool === pool && (s.server ?? null) === (server ?? null);
  }

  function renderPools(frame) {
    const root = $('#pools');
    // Keep the focus on a weight input being edited: skip re-rendering that pool's table.
    const active = document.activeElement;
    const editing = active && active.tagName === 'INPUT' && root.contains(active) ? active.closest('article') : null;
    const byName = new Map([...root.querySelectorAll('article.pool')].map((a) => [a.dataset.pool, a]));
    const keep = new Set();
    for (const p of frame.pools) {
      keep.add(p.name);
      let art = byName.get(p.name);
      if (!art) {
        art = $('#pool-template').content.firstElementChild.cloneNode(true);
        art.dataset.pool = p.name;
        $('.pool-head', art).addEventListener('click', () => select({ pool: p.name }));
        root.append(art);
      }
      $('.pool-name', art).textContent = 'pool ' + p.name;
      $('.balance', art).textContent = p.balance;
      $('.avail', art).textContent = `${p.available} of ${p.servers.length} available`;
      const prow = $('.pool-row', art);
      prow.className = 'pool-row selectable' + (isSelected(p.name) ? ' selected' : '');
      prow.onclick = () => select({ pool: p.name });
      prow.replaceChildren(el('td', { class: 'num', text: String(p.inflight) }), el('td', { class: 'num queued', text: String(p.queued) }), ...trafficCells(p), ...lawCells(p));
      if (art === editing) continue;
      $('table.servers tbody', art).replaceChildren(
        ...p.servers.map((s) => {
          const tr = el('tr', { 'data-server': `${p.name}/${s.name}`, class: 'selectable' + (isSelected(p.name, s.name) ? ' selected' : ''), onclick: () => select({ pool: p.name, server: s.name }) },
            el('td', { text: s.name + (s.backup ? ' (backup)' : '') }),
            el('td', { class: 'muted', text: s.address }),
            el('td', {}, el('span', { class: `badge admin admin-${s.admin}`, text: s.admin })),
            el('td', {}, el('span', { class: `badge op op-${s.op}`, text: s.op })),
            weightCell(s),
            el('td', { class: 'num inflight', text: String(s.inflight) + (s.maxConnections > 0 ? ' / ' + s.maxConnections : '') }),
            ...trafficCells(s), ...lawCells(s), actionsCell(p.name, s));
          return tr;
        }),
      );
    }
    for (const [name, art] of byName) if (!keep.has(name)) art.remove();
  }

  // ---------------------------------------------------------------- charts
  function findTarget(frame, sel) {
    const p = frame.pools.find((x) => x.name === sel.pool);
    if (!p) return null;
    return sel.server === undefined ? p : p.servers.find((s) => s.name === sel.server) ?? null;
  }

  function chartWidth(id) {
    const w = $(id).clientWidth;
    return Math.max(300, w || 440);
  }

  function makeChart(id, series, opts = {}) {
    const node = $(id);
    node.replaceChildren();
    return new uPlot({
      width: chartWidth(id), height: 200,
      series: [{}, ...series],
      axes: [{}, { size: 50 }],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      ...opts,
    }, [[], ...series.map(() => [])], node);
  }

  function ensureCharts() {
    if (state.charts.rate) return;
    state.charts.rate = makeChart('#chart-rate', [
      { label: 'req/s', stroke: '#2f6fde', width: 1.5 },
      { label: 'errors/s', stroke: '#d64545', width: 1.5 },
    ], { scales: { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } } });
    state.charts.latency = makeChart('#chart-latency', [
      { label: 'p50', stroke: '#1f9d55', width: 1.5 },
      { label: 'p90', stroke: '#c27c0e', width: 1.5 },
      { label: 'p99', stroke: '#d64545', width: 1.5 },
    ], { scales: { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } } });
    state.charts.little = makeChart('#chart-little', [
      { label: 'N measured', stroke: '#2f6fde', width: 2 },
      { label: 'X·R', stroke: '#c27c0e', width: 1.5, dash: [6, 4] },
    ], { scales: { y: { range: (u, lo, hi) => [0, Math.max(0.01, hi * 1.1)] } } });
    state.charts.hist = makeChart('#chart-hist', [
      { label: 'requests', stroke: '#2f6fde', fill: 'rgba(47,111,222,0.35)', paths: uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } },
    ], {
      scales: { x: { time: false }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
      axes: [{ values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? fmtBucket(v) : '')) }, { size: 50 }],
    });
  }

  function fmtBucket(i) {
    const v = fineUpper(i);
    return v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 's' : v >= 1 ? v.toFixed(v >= 10 ? 0 : 1) : v.toFixed(2);
  }

  function renderCharts() {
    const sel = state.selected;
    if (sel === null) return;
    ensureCharts();
    $('#selected-name').textContent = sel.server === undefined ? `pool ${sel.pool}` : `server ${sel.pool}/${sel.server}`;
    const t = [], rps = [], err = [], p50 = [], p90 = [], p99 = [], N = [], XR = [];
    for (const f of state.frames) {
      const x = findTarget(f, sel);
      t.push(f.time / 1000);
      rps.push(x ? x.rps : null);
      err.push(x && x.errorRate !== null ? x.errorRate * x.rps : x ? 0 : null);
      p50.push(x ? x.p50 : null);
      p90.push(x ? x.p90 : null);
      p99.push(x ? x.p99 : null);
      N.push(x ? x.laws.N : null);
      XR.push(x ? x.laws.XR : null);
    }
    state.charts.rate.setData([t, rps, err]);
    state.charts.latency.setData([t, p50, p90, p99]);
    state.charts.little.setData([t, N, XR]);
    // Histogram: the selected server's, or the sum over the pool's servers.
    const last = state.frames[state.frames.length - 1];
    const counts = new Map();
    if (last) {
      const p = last.pools.find((x) => x.name === sel.pool);
      const servers = p ? (sel.server === undefined ? p.servers : p.servers.filter((s) => s.name === sel.server)) : [];
      for (const s of servers) for (let i = 0; i < s.hist.length; i += 2) counts.set(s.hist[i], (counts.get(s.hist[i]) ?? 0) + s.hist[i + 1]);
    }
    const idx = [...counts.keys()].sort((a, b) => a - b);
    const xs = [], ys = [];
    if (idx.length > 0) for (let i = Math.max(0, idx[0] - 1); i <= idx[idx.length - 1] + 1; i++) { xs.push(i); ys.push(counts.get(i) ?? 0); }
    state.charts.hist.setData([xs, ys]);
  }

  function select(sel) {
    state.selected = sel;
    const last = state.frames[state.frames.length - 1];
    if (last) renderPools(last);
    renderCharts();
  }

  // ---------------------------------------------------------------- timeline
  const w = (x) => { const n = Number(x); return Number.isFinite(n) ? String(Math.round(n * 100) / 100) : String(x); };

  function describe(ev) {
    if (ev.type === 'server') {
      const what = ev.kind === 'op' ? `${ev.to}` : ev.kind === 'admin' ? `${ev.to}` : ev.kind === 'weight' ? `weight ${w(ev.from)} → ${w(ev.to)}` : ev.kind;
      const cls = ev.kind === 'op' ? (ev.to === 'down' ? 'ev-down' : ev.to === 'up' ? 'ev-up' : '') : '';
      const detail = `${ev.kind === 'op' || ev.kind === 'admin' ? `${ev.kind} ${ev.from} → ${ev.to}, ` : ''}cause ${ev.cause}${ev.detail ? ': ' + ev.detail : ''}`;
      return { cls, what, detail };
    }
    return { cls: 'ev-fail', what: 'check failed', detail: `${ev.reason}${ev.detail ? ': ' + ev.detail : ''} (${ev.state}, streak ${ev.streak})` };
  }

  function addTimeline(ev, render = true) {
    // Passing checks, and failures of a server already down, are counted in /metrics, not listed:
    // the list shows the failures that build up to a flip, and the flips themselves.
    if (ev.type === 'health' && (ev.ok || ev.state === 'down')) return;
    // A slow-start ramp is one line, updated at each step.
    if (ev.type === 'server' && ev.kind === 'weight' && ev.cause === 'slow-start') {
      const i = state.timeline.findIndex((x) => x.type === 'server' && x.kind === 'weight' && x.cause === 'slow-start' && x.pool === ev.pool && x.server === ev.server);
      if (i >= 0 && i < 10) {
        ev = { ...ev, from: state.timeline[i].from };
        state.timeline.splice(i, 1);
      }
    }
    state.timeline.unshift(ev);
    if (state.timeline.length > MAX_TIMELINE) state.timeline.length = MAX_TIMELINE;
    if (render) renderTimeline();
  }

  function renderTimeline() {
    const ol = $('#timeline');
    if (state.timeline.length === 0) {
      ol.replaceChildren(el('li', { class: 'empty', text: 'no state change or failed check yet' }));
      return;
    }
    ol.replaceChildren(...state.timeline.map((ev) => {
      const d = describe(ev);
      return el('li', { class: d.cls, 'data-kind': ev.type },
        el('time', { text: clock(ev.time) }),
        el('span', { class: 'who', text: `${ev.pool}/${ev.server}` }),
        el('span', { class: 'what', text: d.what }),
        el('span', { class: 'muted', text: d.detail }));
    }));
  }

  // ---------------------------------------------------------------- the event stream
  function onFrame(frame) {
    state.frames.push(frame);
    if (state.frames.length > MAX_FRAMES) state.frames.splice(0, state.frames.length - MAX_FRAMES);
    if (state.selected === null && frame.pools.length > 0) state.selected = { pool: frame.pools[0].name };
    renderListeners(frame);
    renderCaches(frame);
    void pollKernel(frame);
    renderPools(frame);
    renderCharts();
    // Several worker processes (cluster.workers): how many the figures cover.
    const w = frame.workers;
    $('#workers').textContent = w ? `· ${w.reporting} of ${w.running} workers` : '';
  }

  /** Apply a state change at once (the next frame confirms it). */
  function patchServer(ev) {
    if (ev.kind !== 'admin' && ev.kind !== 'op') return;
    const row = document.querySelector(`tr[data-server="${CSS.escape(ev.pool + '/' + ev.server)}"]`);
    if (!row) return;
    const badge = $(ev.kind === 'admin' ? '.admin' : '.op', row);
    badge.textContent = ev.to;
    badge.className = `badge ${ev.kind} ${ev.kind}-${ev.to}`;
  }

  /** One event of the stream: `hello` first, then `stats`, `server` and `health`. */
  function onEvent(type, data) {
    const live = $('#live');
    if (type === 'hello') {
      const h = JSON.parse(data);
      state.tokenRequired = h.tokenRequired === true;
      $('#node').textContent = `node ${h.node} · version ${h.version} · up since ${new Date(h.startedAt).toLocaleString()}`;
      state.frames = [];
      state.timeline = [];
      for (const ev of h.events) addTimeline(ev, false);
      renderTimeline();
      for (const f of h.stats) state.frames.push(f);
      const last = state.frames.pop();
      if (last) onFrame(last);
      live.textContent = 'live';
      live.className = 'pill pill-live';
    } else if (type === 'stats') {
      onFrame(JSON.parse(data));
    } else if (type === 'server') {
      const ev = { type: 'server', ...JSON.parse(data) };
      addTimeline(ev);
      patchServer(ev);
    } else if (type === 'health') {
      addTimeline({ type: 'health', ...JSON.parse(data) });
    }
  }

  /**
   * The live stream (/api/v1/events) read with fetch rather than EventSource: fetch can send the
   * token as the Authorization header (admin.protectReads), so it never goes into a URL or a cookie.
   */
  async function connect() {
    const live = $('#live');
    live.onclick = null;
    const retry = (why) => {
      live.textContent = why;
      live.className = 'pill pill-wait';
      setTimeout(connect, 2000);
    };
    const headers = { accept: 'text/event-stream' };
    if (token() !== '') headers.authorization = 'Bearer ' + token();
    let res;
    try {
      res = await fetch('/api/v1/events', { headers, cache: 'no-store' });
    } catch {
      return retry('reconnecting');
    }
    if (res.status === 401) {
      // admin.protectReads: reading this node needs the token too.
      let msg = 'reading this node needs the admin token';
      try { const j = await res.json(); if (token() !== '' && j.error) msg = j.error.message; } catch { /* keep msg */ }
      sessionStorage.removeItem(TOKEN_KEY);
      updateTokenButton();
      live.textContent = 'token needed';
      live.className = 'pill pill-dead';
      const t = await askToken(msg);
      if (t === '') {
        live.textContent = 'token needed (click)';
        live.onclick = connect;
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, t);
      updateTokenButton();
      return connect();
    }
    if (!res.ok || res.body === null) return retry('reconnecting');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let type = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
          }
          if (data.length > 0) onEvent(type, data.join('\n'));
        }
      }
    } catch {
      /* the connection broke: reconnect below */
    }
    retry('reconnecting');
  }

  window.addEventListener('resize', () => {
    for (const [k, c] of Object.entries(state.charts)) c.setSize({ width: chartWidth('#chart-' + k), height: 200 });
  });

  updateTokenButton();
  renderTimeline();
  connect();
})();
