// Magnetar dashboard. Plain JavaScript, no dependencies, nothing loaded from elsewhere.
// Tokens: the access and refresh tokens live in sessionStorage (this tab only, gone when it
// closes) and travel only in Authorization headers, JSON bodies and the WebSocket subprotocol;
// never in a URL. Everything shown is inserted as text (textContent), never as HTML.
'use strict';

(function () {
  const $ = (selector) => document.querySelector(selector);
  const TOKENS_KEY = 'magnetar.dashboard.tokens';
  const POLL_MS = 2000;
  const CHART_POINTS = 60;
  const TAIL_MAX = 200;

  const state = {
    access: null, refresh: null, me: null, admin: false,
    statsTimer: null, previous: null, series: [],
    ws: null, wsPing: null, topic: null,
  };

  // ---- small helpers ---------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function showError(message) {
    const box = $('#error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function when(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
  }

  function seconds(s) {
    if (s === null || s === undefined || isNaN(s)) return '–';
    if (s < 0.001) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    return s.toFixed(2) + ' s';
  }

  function duration(total) {
    const d = Math.floor(total / 86400), h = Math.floor(total / 3600) % 24;
    const m = Math.floor(total / 60) % 60, s = Math.floor(total % 60);
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + s + 's';
  }

  function errorText(data, status) {
    if (data && typeof data.detail === 'string') return data.detail;
    if (data && Array.isArray(data.detail)) return data.detail.map((e) => e.msg).join('; ');
    if (data && typeof data.error === 'string') return data.error;
    return 'HTTP ' + status;
  }

  // ---- tokens and API calls --------------------------------------------------------------------

  function saveTokens() {
    if (state.access) {
      sessionStorage.setItem(TOKENS_KEY, JSON.stringify({ access: state.access, refresh: state.refresh }));
    } else {
      sessionStorage.removeItem(TOKENS_KEY);
    }
  }

  function loadTokens() {
    try {
      const t = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || 'null');
      if (t && t.access) { state.access = t.access; state.refresh = t.refresh; }
    } catch (e) { sessionStorage.removeItem(TOKENS_KEY); }
  }

  async function refreshTokens() {
    if (!state.refresh) return false;
    const r = await fetch('/auth/token/refresh', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: state.refresh }), cache: 'no-store',
    });
    if (!r.ok) return false;
    const t = await r.json();
    state.access = t.access_token;
    state.refresh = t.refresh_token;
    saveTokens();
    return true;
  }

  // A JSON call with the access token; one refresh and retry on a 401.
  async function api(method, path, body, retried) {
    const headers = { Authorization: 'Bearer ' + state.access };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401 && !retried && await refreshTokens()) return api(method, path, body, true);
    if (r.status === 401) {
      signedOut('Your sign-in has ended. Please sign in again.');
      throw new Error('signed out');
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) throw new Error(errorText(data, r.status));
    return data;
  }

  // ---- sign in and out ---------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const box = $('#login-error');
    box.hidden = true;
    const form = new URLSearchParams({ username: $('#username').value, password: $('#password').value });
    let r;
    try {
      r = await fetch('/auth/login', { method: 'POST', body: form, cache: 'no-store' });
    } catch (e) {
      box.textContent = 'The server cannot be reached.';
      box.hidden = false;
      return;
    }
    const data = await r.json().catch(() => null);
    $('#password').value = '';
    if (!r.ok) {
      box.textContent = errorText(data, r.status);
      box.hidden = false;
      return;
    }
    state.access = data.access_token;
    state.refresh = data.refresh_token;
    saveTokens();
    await start();
  }

  async function signOut() {
    const access = state.access, refresh = state.refresh;
    signedOut();
    // Best effort: the access token onto the deny-list, the refresh token revoked.
    try {
      await fetch('/auth/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + access } });
      if (refresh) {
        await fetch('/auth/token/revoke', {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: refresh }),
        });
      }
    } catch (e) { /* signed out locally either way */ }
  }

  function signedOut(message) {
    stopLive();
    state.access = state.refresh = state.me = null;
    saveTokens();
    $('#nav').hidden = true;
    $('#who').hidden = true;
    for (const v of document.querySelectorAll('main > section')) v.hidden = true;
    showError('');
    $('#view-login').hidden = false;
    const box = $('#login-error');
    box.textContent = message || '';
    box.hidden = !message;
    if (location.hash) history.replaceState(null, '', location.pathname);
  }

  async function start() {
    try {
      state.me = await api('GET', '/auth/me');
    } catch (e) {
      if (state.access) signedOut(e.message);
      return;
    }
    state.admin = (state.me.permissions || []).includes('admin');
    document.body.classList.toggle('is-admin', state.admin);
    for (const n of document.querySelectorAll('.admin-only')) n.hidden = !state.admin;
    $('#view-login').hidden = true;
    $('#nav').hidden = false;
    $('#who').hidden = false;
    $('#whoami').textContent = 'Signed in as ' + state.me.username;
    route();
  }

  // ---- views -------------------------------------------------------------------------------------

  function route() {
    if (!state.me) return;
    const hash = decodeURIComponent(location.hash.slice(1));
    let view = hash.split('/')[0] || (state.admin ? 'overview' : 'topics');
    if ((view === 'overview' || view === 'users') && !state.admin) view = 'topics';
    stopLive();
    showError('');
    for (const v of document.querySelectorAll('main > section')) v.hidden = true;
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.view === view || (view === 'topic' && a.dataset.view === 'topics'));
    }
    const section = $('#view-' + view);
    if (!section) return;
    section.hidden = false;
    const load = { overview: startOverview, topics: loadTopics, topic: () => openTopic(hash.slice(6)),
                   users: loadUsers, sessions: loadMySessions }[view];
    Promise.resolve(load()).catch((e) => { if (state.me) showError(e.message); });
  }

  function stopLive() {
    if (state.statsTimer) clearInterval(state.statsTimer);
    state.statsTimer = null;
    if (state.wsPing) clearInterval(state.wsPing);
    state.wsPing = null;
    if (state.ws) { state.ws.onclose = null; state.ws.close(1000); }
    state.ws = null;
  }

  // -- overview (admin): polls /ui/api/stats; rates and latency are over the last interval --------

  function startOverview() {
    state.previous = null;
    state.series = [];
    drawChart();
    const tick = () => api('GET', '/ui/api/stats').then(showStats).catch((e) => showError(e.message));
    tick();
    state.statsTimer = setInterval(tick, POLL_MS);
  }

  // Prometheus' histogram_quantile over bucket deltas: linear within the bucket that holds it.
  function quantile(q, bounds, now, before) {
    const counts = now.map((c, i) => c - (before ? before[i] : 0));
    const total = counts[counts.length - 1];
    if (!total) return null;
    const rank = q * total;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] >= rank) {
        if (i === bounds.length) return bounds[bounds.length - 1];
        const lower = i ? bounds[i - 1] : 0, below = i ? counts[i - 1] : 0;
        const inBucket = counts[i] - below;
        return lower + (bounds[i] - lower) * (inBucket ? (rank - below) / inBucket : 1);
      }
    }
    return null;
  }

  function latencyText(now, before) {
    const p50 = quantile(0.5, now.bounds, now.counts, before && before.counts);
    const p99 = quantile(0.99, now.bounds, now.counts, before && before.counts);
    return p50 === null ? 'idle' : seconds(p50) + ' / ' + seconds(p99);
  }

  function fillList(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
  }

  function showStats(s) {
    const prev = state.previous;
    const t = performance.now() / 1000;
    const health = $('#health');
    health.textContent = s.storage === 'ok' ? 'healthy' : 'degraded';
    health.className = 'value ' + (s.storage === 'ok' ? 'ok' : 'bad');
    health.title = s.storage;
    $('#uptime').textContent = 'v' + s.version + ' · up ' + duration(s.uptime_seconds);
    $('#total-published').textContent = s.messages.published + ' in total';
    $('#total-delivered').textContent = s.messages.delivered + ' in total';
    if (prev) {
      const dt = Math.max(t - prev.t, 0.001);
      const pub = (s.messages.published - prev.s.messages.published) / dt;
      const del = (s.messages.delivered - prev.s.messages.delivered) / dt;
      $('#rate-published').textContent = pub.toFixed(pub < 10 ? 1 : 0);
      $('#rate-delivered').textContent = del.toFixed(del < 10 ? 1 : 0);
      $('#latency-publish').textContent = latencyText(s.publish_latency, prev.s.publish_latency);
      $('#latency-delivery').textContent = latencyText(s.delivery_latency, prev.s.delivery_latency);
      state.series.push([pub, del]);
      if (state.series.length > CHART_POINTS) state.series.shift();
      drawChart();
    }
    state.previous = { t, s };
    const c = s.connections;
    fillList($('#connections'), [
      ['HTTP connections', c.http], ['Long-poll requests waiting', c.longpoll_waiters],
      ['WebSockets: relay', c.websockets.relay_ws], ['WebSockets: Pulsar', c.websockets.pulsar_ws],
    ]);
    const m = s.messages;
    fillList($('#counters'), [
      ['Published', m.published], ['Delivered', m.delivered], ['Dropped (slow consumers)', m.dropped],
      ['Redelivered', m.redelivered], ['Publish failures', m.publish_failures],
      ['HTTP requests', s.http_requests], ['Auth failures', s.auth_failures],
      ['Rate-limited requests', s.rate_limited], ['Storage errors', s.storage_errors],
    ]);
  }

  function drawChart() {
    const canvas = $('#chart');
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 900, h = canvas.clientHeight || 200;
    canvas.width = w * ratio;
    canvas.height = h * ratio;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    const css = getComputedStyle(document.documentElement);
    const line = css.getPropertyValue('--line').trim(), muted = css.getPropertyValue('--muted').trim();
    const colors = [css.getPropertyValue('--accent').trim(), css.getPropertyValue('--series2').trim()];
    const max = Math.max(1, ...state.series.flat());
    const pad = 28;
    g.strokeStyle = line;
    g.fillStyle = muted;
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad / 2 + (h - pad) * i / 4;
      g.beginPath(); g.moveTo(pad + 12, y); g.lineTo(w, y); g.stroke();
      const v = max * (4 - i) / 4;
      g.fillText(max >= 10 ? String(Math.round(v)) : v.toFixed(1), 0, y + 4);
    }
    const step = (w - pad - 12) / (CHART_POINTS - 1);
    for (let k = 0; k < 2; k++) {
      g.strokeStyle = colors[k];
      g.lineWidth = 2;
      g.beginPath();
      state.series.forEach((p, i) => {
        const x = pad + 12 + step * (CHART_POINTS - state.series.length + i);
        const y = pad / 2 + (h - pad) * (1 - p[k] / max);
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      });
      g.stroke();
      const last = state.series[state.series.length - 1];
      if (last) {  // the newest point as a dot, so a first sample shows too
        g.fillStyle = colors[k];
        g.beginPath();
        g.arc(pad + 12 + step * (CHART_POINTS - 1), pad / 2 + (h - pad) * (1 - last[k] / max), 3, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }

  // -- topics --------------------------------------------------------------------------------------

  async function loadTopics() {
    const all = state.admin && $('#all-topics').checked;
    const topics = await api('GET', '/ui/api/topics' + (all ? '?all=true' : ''));
    const body = $('#topics-table tbody');
    for (const n of document.querySelectorAll('.owner-col')) n.hidden = !all;
    body.replaceChildren(...topics.map((t) => {
      const mine = t.owner_id === state.me.user_id;
      const open = mine ? el('button', { type: 'button', class: 'open-topic', 'data-topic': t.topic_name, text: 'Open',
        onclick: () => { location.hash = 'topic/' + encodeURIComponent(t.topic_name); } }) : '';
      const owner = el('td', { text: t.owner_username || t.owner_id });
      owner.hidden = !all;
      return el('tr', { 'data-topic': t.topic_name },
        el('td', { text: t.topic_name }), owner,
        el('td', { class: 'num', text: String(t.message_count) }),
        el('td', { class: 'num', text: bytes(t.bytes) }),
        el('td', { class: 'num', text: t.last_message_id || '–' }),
        el('td', {}, open));
    }));
    $('#topics-empty').hidden = topics.length > 0;
  }

  // -- one topic: recent history, then live over the relay WebSocket; publish a test message --------

  async function openTopic(name) {
    state.topic = name;
    $('#tail-topic').textContent = name;
    $('#publish-result').textContent = '';
    const list = $('#tail');
    list.replaceChildren();
    setTailStatus('connecting…', false);
    connectTail(name);
    try {
      // A topic that does not exist yet (it will with its first message) has no history to show.
      const own = await api('GET', '/ui/api/topics');
      if (!own.some((t) => t.topic_name === name)) return;
      const page = await api('GET', '/api/v1/topics/' + encodeURIComponent(name) + '/messages?limit=20&order=desc');
      // Live messages that arrived meanwhile stay on top; history goes below them.
      for (const m of page.messages) {
        if (!list.querySelector('[data-id="' + CSS.escape(m.message_id) + '"]')) list.append(tailItem(m, false));
      }
    } catch (e) {
      if (e.message !== 'signed out') showError(e.message);
    }
  }

  function setTailStatus(text, live) {
    const pill = $('#tail-status');
    pill.textContent = text;
    pill.classList.toggle('live', live);
  }

  function tailItem(m, fresh) {
    return el('li', { class: fresh ? 'fresh' : '', 'data-id': m.message_id },
      el('span', { class: 'meta', text: when(m.timestamp) + '  ' + m.message_id }),
      el('span', { class: 'payload', text: JSON.stringify(m.payload) }));
  }

  function connectTail(name) {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    // The token rides in the subprotocol list (the relay's bearer scheme), not in the URL.
    const ws = new WebSocket(url, ['bearer', 'bearer.' + state.access]);
    state.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'subscribe', topics: [name], client_id: 'dashboard', offset: 'last' }));
      // The relay closes a socket whose client sends nothing for a minute.
      state.wsPing = setInterval(() => ws.send(JSON.stringify({ type: 'ping' })), 25000);
    };
    ws.onmessage = (event) => {
      let f;
      try { f = JSON.parse(event.data); } catch (e) { return; }
      if (f.type === 'subscribed') setTailStatus('live', true);
      else if (f.type === 'message') {
        const list = $('#tail');
        if (list.querySelector('[data-id="' + CSS.escape(f.message_id) + '"]')) return;
        list.prepend(tailItem(f, true));
        while (list.children.length > TAIL_MAX) list.lastChild.remove();
      } else if (f.type === 'error') showError(f.message);
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      clearInterval(state.wsPing);
      state.ws = null;
      setTailStatus('disconnected', false);
      // An expired access token closes the socket (4001): refresh and reconnect once.
      if (event.code === 4001 && state.topic === name) {
        refreshTokens().then((ok) => { if (ok && state.topic === name && !state.ws) connectTail(name); });
      }
    };
  }

  async function publish(event) {
    event.preventDefault();
    const out = $('#publish-result');
    let payload;
    try {
      payload = JSON.parse($('#publish-payload').value);
    } catch (e) {
      out.textContent = 'Not valid JSON: ' + e.message;
      return;
    }
    try {
      const r = await api('POST', '/api/v1/messages', { topic: state.topic, payload });
      out.textContent = 'Published ' + r.message_id;
    } catch (e) {
      out.textContent = 'Not published: ' + e.message;
    }
  }

  // -- users and sessions ----------------------------------------------------------------------------

  async function loadUsers() {
    const users = await api('GET', '/auth/users');
    users.sort((a, b) => a.username.localeCompare(b.username));
    $('#users-table tbody').replaceChildren(...users.map((u) => el('tr', { 'data-user': u.username },
      el('td', { text: u.username }),
      el('td', { text: (u.permissions || []).join(', ') || '–' }),
      el('td', { text: u.is_active ? 'yes' : 'no' }),
      el('td', { text: when(u.created_at) }),
      el('td', {}, el('button', { type: 'button', class: 'show-sessions', text: 'Sessions',
        onclick: () => loadUserSessions(u).catch((e) => showError(e.message)) })))));
  }

  function sessionRows(sessions, revoke) {
    const mine = state.refresh ? state.refresh.split('.')[0] : '';
    sessions.sort((a, b) => (b.issued_at || '').localeCompare(a.issued_at || ''));
    return sessions.map((s) => el('tr', { 'data-jti': s.jti },
      el('td', { class: 'num', text: s.jti.slice(0, 12) + '…' + (s.jti === mine ? ' (this page)' : '') }),
      el('td', { text: s.client_hint || '–' }),
      el('td', { text: when(s.issued_at) }),
      el('td', { text: when(s.last_used_at) }),
      el('td', { text: when(s.expires_at) }),
      el('td', {}, el('button', { type: 'button', class: 'danger revoke', text: 'Revoke',
        onclick: () => revoke(s).catch((e) => showError(e.message)) }))));
  }

  async function loadUserSessions(user) {
    const path = '/ui/api/users/' + encodeURIComponent(user.user_id) + '/sessions';
    const sessions = await api('GET', path);
    $('#sessions-user').textContent = user.username;
    $('#user-sessions-card').hidden = false;
    $('#user-sessions tbody').replaceChildren(...sessionRows(sessions, async (s) => {
      await api('DELETE', path + '/' + encodeURIComponent(s.jti));
      await loadUserSessions(user);
    }));
  }

  async function loadMySessions() {
    const sessions = await api('GET', '/auth/sessions');
    $('#my-sessions tbody').replaceChildren(...sessionRows(sessions, async (s) => {
      await api('DELETE', '/auth/sessions/' + encodeURIComponent(s.jti));
      await loadMySessions();
    }));
  }

  // ---- wiring --------------------------------------------------------------------------------------

  $('#login-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#publish-form').addEventListener('submit', publish);
  $('#all-topics').addEventListener('change', () => loadTopics().catch((e) => showError(e.message)));
  $('#new-topic-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('#new-topic').value.trim();
    if (name) location.hash = 'topic/' + encodeURIComponent(name);
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', () => { if (!$('#view-overview').hidden) drawChart(); });

  loadTokens();
  if (state.access) start(); else signedOut();
})();
