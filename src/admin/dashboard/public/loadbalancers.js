// Load balancers on the dashboard: the list (GET /api/v1/loadbalancers), a form that creates one
// (POST /api/v1/loadbalancers) and a delete button per row (DELETE /api/v1/loadbalancers/{name}).
'use strict';
(() => {
  const { api, notice, lastError } = window.portico;
  const TOKEN_KEY = 'portico.adminToken';
  const $ = (s) => document.querySelector(s);
  const body = $('#loadbalancers tbody');
  const issues = $('#lb-issues');

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function healthText(h) {
    if (!h || h.type === 'none') return 'none';
    return h.type + (h.port !== undefined ? ':' + h.port : '') + (h.path !== undefined ? h.path : '');
  }

  function render(list) {
    body.textContent = '';
    if (list.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('none yet', 'muted');
      td.colSpan = 7;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const lb of list) {
      const tr = document.createElement('tr');
      tr.dataset.lb = lb.name;
      tr.append(
        cell(lb.name, 'lb-name'),
        cell(lb.address ?? '–', 'lb-address'),
        cell(lb.dnsName ?? '–', 'lb-dns'),
        cell(lb.listeners.map((l) => `${l.protocol} ${l.listen ?? '(down)'} → :${l.serverPort}`).join(', ')),
        cell(lb.servers.length === 0 ? 'none' : lb.servers.map((s) => s.address).join(', '), 'lb-servers'),
        cell(healthText(lb.health)),
      );
      const td = document.createElement('td');
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'act-delete-lb';
      del.textContent = 'Delete';
      del.addEventListener('click', async () => {
        if (!confirm(`Delete load balancer ${lb.name}? Its listeners stop accepting and drain; its DNS name goes.`)) return;
        const r = await api('DELETE', `/api/v1/loadbalancers/${encodeURIComponent(lb.name)}`);
        if (r !== null) notice(`load balancer ${lb.name} deleted`);
        refresh();
      });
      td.append(del);
      tr.append(td);
      body.append(tr);
    }
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const r = await fetchList();
      if (r !== null) render(r.loadbalancers);
    } finally {
      busy = false;
    }
  }

  // With admin.protectReads the list waits for the token the page asks for (the next refresh has it).
  async function fetchList() {
    try {
      const res = await fetch('/api/v1/loadbalancers', { headers: tokenHeader(), cache: 'no-store' });
      return res.ok ? await res.json() : null;
    } catch {
      return null;
    }
  }

  function tokenHeader() {
    const t = sessionStorage.getItem(TOKEN_KEY) || '';
    return t === '' ? { accept: 'application/json' } : { accept: 'application/json', authorization: 'Bearer ' + t };
  }

  $('#lb-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const spec = {
      name: String(f.get('name')).trim(),
      listeners: [{ protocol: f.get('protocol'), port: Number(f.get('port')), serverPort: Number(f.get('serverPort')) }],
    };
    const servers = String(f.get('servers')).split(/[\s,]+/).filter((s) => s !== '');
    if (servers.length > 0) spec.servers = servers;
    const target = String(f.get('target')).trim();
    if (target !== '') spec.health = { target };
    issues.hidden = true;
    issues.textContent = '';
    const r = await api('POST', '/api/v1/loadbalancers', spec);
    if (r === null) {
      const err = lastError();
      for (const i of (err && err.issues) || []) {
        const li = document.createElement('li');
        li.textContent = `${i.path}: ${i.message}`;
        issues.append(li);
      }
      issues.hidden = issues.childElementCount === 0;
      return;
    }
    notice(`load balancer ${r.name}: ${r.address ?? ''}${r.dnsName ? ' ' + r.dnsName : ''}`);
    e.target.reset();
    refresh();
  });

  refresh();
  setInterval(refresh, 5000);
})();
