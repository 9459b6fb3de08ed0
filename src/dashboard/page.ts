/**
 * The dashboard page: HTML, a stylesheet and an ES module, kept here as strings so the build ships
 * them inside dist/ with no copy step. Everything is same-origin (the strict Content-Security-Policy
 * in route.ts allows nothing else): no inline script or style, no external loads. The module
 * drives the real `phoenix` client (served next to it from node_modules) and builds every value
 * into the DOM as text, never as markup.
 */

function escapeAttribute(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** How the page authenticates: ask for the admin token, or nothing (loopback in the demo). */
export type PageAuth = 'token' | 'loopback';

/** The HTML of the page served at `path`, connecting to the socket mounted at `socketPath`. */
export function dashboardHtml(path: string, socketPath: string, auth: PageAuth): string {
  const base = escapeAttribute(path);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gen-gateway dashboard</title>
<link rel="icon" href="${base}/icon.svg">
<link rel="stylesheet" href="${base}/app.css">
<script type="module" src="${base}/app.js"></script>
</head>
<body data-auth="${auth}" data-socket="${escapeAttribute(socketPath)}">
<header>
  <h1>gen-gateway</h1>
  <span id="node" class="muted"></span>
  <span id="status" class="status">connecting…</span>
  <span id="updated" class="muted"></span>
</header>
<form id="login" hidden>
  <label>Admin token <input type="password" id="token" autocomplete="current-password" required></label>
  <button type="submit">Connect</button>
  <p id="login-error" class="error" role="alert"></p>
</form>
<main id="board" hidden>
  <section class="cards">
    <div class="card"><span class="label">Sockets</span><output id="stat-sockets">–</output><span id="stat-sockets-detail" class="muted"></span></div>
    <div class="card"><span class="label">Channels</span><output id="stat-channels">–</output><span id="stat-topics" class="muted"></span></div>
    <div class="card"><span class="label">gen_api req/s</span><output id="stat-rate">–</output><span id="stat-requests" class="muted"></span></div>
    <div class="card"><span class="label">In flight</span><output id="stat-inflight">–</output><span id="stat-streams" class="muted"></span></div>
    <div class="card"><span class="label">Workers</span><output id="stat-workers">–</output><span id="stat-services" class="muted"></span></div>
    <div class="card"><span class="label">NATS</span><output id="stat-nats">–</output><span id="stat-rtt" class="muted"></span></div>
  </section>
  <section>
    <h2>gen_api functions <span id="window" class="muted"></span></h2>
    <table id="functions"><thead><tr><th>Service</th><th>Function</th><th class="num">req/s</th><th class="num">In window</th><th class="num">Errors</th><th class="num">p50 ms</th><th class="num">p99 ms</th><th>Outcomes</th></tr></thead><tbody></tbody></table>
  </section>
  <div class="columns">
    <section>
      <h2>Top topics</h2>
      <table id="topics"><thead><tr><th>Topic</th><th class="num">Subscribers</th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Workers</h2>
      <table id="workers"><thead><tr><th>Service</th><th>Version</th><th class="num">Instances</th><th>Config</th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Circuit breakers</h2>
      <table id="breakers"><thead><tr><th>Service or instance</th><th>State</th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Cluster</h2>
      <p id="cluster-status" class="muted"></p>
      <table id="nodes"><thead><tr><th>Node</th><th class="num">Presence entries</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
  <section>
    <h2>Rate limits <span id="shadow" class="muted"></span></h2>
    <table id="policies"><thead><tr><th>Policy</th><th>Scope</th><th>Key</th><th>Limit</th><th>Mode</th><th class="num">Keys</th><th class="num">Checks</th><th class="num">Denied</th><th>Top keys (remaining)</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>NATS</h2>
    <dl id="nats"></dl>
  </section>
</main>
</body>
</html>
`;
}

/** The page's icon (`<path>/icon.svg`): without one the browser asks for /favicon.ico. */
export const DASHBOARD_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2330"/><path d="M3 11l3-4 3 2 4-6" stroke="#4cc38a" stroke-width="2" fill="none"/></svg>
`;

/** The stylesheet (`<path>/app.css`). */
export const DASHBOARD_CSS = `:root { color-scheme: light; --fg: #1d2330; --muted: #6b7385; --line: #dfe3ea; --bg: #f6f7f9;
  --card: #fff; --ok: #1b7f3b; --warn: #b26b00; --bad: #b3261e; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 1em; align-items: baseline; padding: .8em 1.2em; background: var(--card);
  border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2em; margin: 0; }
h2 { font-size: 1em; margin: 1.2em 0 .4em; }
main, form { padding: 0 1.2em 1.2em; }
form { padding-top: 1.2em; }
.muted { color: var(--muted); }
.error { color: var(--bad); }
.status { font-weight: 600; }
.status.live { color: var(--ok); }
.status.down { color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .8em; margin-top: 1em; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em;
  display: flex; flex-direction: column; }
.card .label { color: var(--muted); font-size: .85em; }
.card output { font-size: 1.8em; font-weight: 600; font-variant-numeric: tabular-nums; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 1.2em; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid var(--line); }
th { font-weight: 600; color: var(--muted); font-size: .85em; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: var(--muted); font-style: italic; }
.state-closed, .nats-connected { color: var(--ok); }
.state-half_open, .state-stalled, .nats-reconnecting { color: var(--warn); }
.state-open, .state-isolated, .nats-disconnected, .nats-closed { color: var(--bad); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; background: var(--card);
  border: 1px solid var(--line); padding: .6em .8em; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
`;

/** The page's module (`<path>/app.js`); it imports `./phoenix.mjs` next to it. */
export const DASHBOARD_JS = `import { Socket } from './phoenix.mjs';

const TOKEN_KEY = 'gen-gateway-dashboard-token';
const body = document.body;
const $ = (id) => document.getElementById(id);
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const url = scheme + '://' + location.host + body.dataset.socket;
let socket = null;

function setStatus(text, kind) {
  const status = $('status');
  status.textContent = text;
  status.className = 'status ' + (kind || '');
}

function showLogin(message) {
  $('board').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  setStatus('not connected', 'down');
  $('token').focus();
}

const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 }));
const ms = (n) => (n === null || n === undefined ? '–' : n < 1 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toString());

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(tableId, rows, columns, empty) {
  const tbody = $(tableId).tBodies[0];
  const fresh = document.createElement('tbody');
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(empty, 'empty');
    td.colSpan = columns;
    tr.append(td);
    fresh.append(tr);
  }
  for (const row of rows) {
    const tr = document.createElement('tr');
    for (const [text, className] of row) tr.append(cell(text, className));
    fresh.append(tr);
  }
  tbody.replaceWith(fresh);
}

function scopeText(scope) {
  if (typeof scope === 'string') return scope;
  return scope.service + (scope.requestType ? '.' + scope.requestType : '.*');
}

function render(s) {
  $('login').hidden = true;
  $('board').hidden = false;
  setStatus('live', 'live');
  $('node').textContent = 'node ' + s.node;
  $('updated').textContent = 'updated ' + new Date(s.at).toLocaleTimeString('en-GB');
  $('stat-sockets').textContent = fmt(s.sockets.total);
  $('stat-sockets-detail').textContent =
    fmt(s.sockets.websocket) + ' ws · ' + fmt(s.sockets.longpoll) + ' longpoll · ' + fmt(s.sockets.dashboard) + ' dashboard';
  $('stat-channels').textContent = fmt(s.channels.joined);
  $('stat-topics').textContent = fmt(s.channels.topics) + ' topics · ' + fmt(s.channels.subscriptions) + ' subscriptions';
  const rate = s.genApi.functions.reduce((sum, f) => sum + f.rate, 0);
  $('stat-rate').textContent = fmt(rate);
  $('stat-requests').textContent = fmt(s.genApi.requests) + ' requests · ' + fmt(s.genApi.failures) + ' failed since start';
  $('stat-inflight').textContent = fmt(s.genApi.inflight);
  $('stat-streams').textContent = fmt(s.genApi.streams) + ' streams';
  $('stat-workers').textContent = fmt(s.workers.instances);
  $('stat-services').textContent = s.genApi.services.length + ' services';
  $('stat-nats').textContent = s.nats ? s.nats.status : 'off';
  $('stat-nats').className = s.nats ? 'nats-' + s.nats.status : '';
  $('stat-rtt').textContent = s.nats && s.nats.rttMs !== null ? 'rtt ' + ms(s.nats.rttMs) + ' ms' : '';
  $('window').textContent = 'last ' + Math.round(s.genApi.windowMs / 1000) + ' s';

  fill('functions', s.genApi.functions.map((f) => [
    [f.service], [f.function], [fmt(f.rate), 'num'], [fmt(f.count), 'num'], [fmt(f.errors), 'num'],
    [ms(f.p50Ms), 'num'], [ms(f.p99Ms), 'num'],
    [Object.entries(f.outcomes).map(([k, v]) => k + ' ' + v).join(', ')],
  ]), 8, 'no gen_api requests in the window');
  fill('topics', s.channels.top.map((t) => [[t.topic], [fmt(t.subscribers), 'num']]), 2, 'no topics');
  fill('workers', s.workers.groups.map((g) => [
    [g.service], [g.version], [fmt(g.instances), 'num'], [g.configVersions.join(', ')],
  ]), 4, s.nats ? 'no worker discovered' : 'no NATS: in-process services only');
  const breakers = [
    ...Object.entries(s.breakers.services).map(([id, state]) => [[id], [state, 'state-' + state]]),
    ...Object.entries(s.breakers.instances).map(([id, state]) => [['instance ' + id], [state, 'state-' + state]]),
  ];
  fill('breakers', breakers, 2, 'no breaker yet');
  const cluster = s.cluster;
  $('cluster-status').textContent = cluster
    ? (cluster.connected ? 'connected' : 'DISCONNECTED') + ' via ' + (cluster.server || '?') + ' · ' +
      fmt(cluster.broadcastsPublished) + ' broadcasts out, ' + fmt(cluster.broadcastsReceived) + ' in'
    : 'this gateway runs alone';
  fill('nodes', cluster ? cluster.nodes.map((n) => [
    [n.node + (n.self ? ' (this node)' : '')], [n.presenceEntries === null ? '–' : fmt(n.presenceEntries), 'num'],
  ]) : [], 2, 'no cluster');
  const limits = s.rateLimits;
  $('shadow').textContent = limits && limits.shadow ? '(shadow mode: nothing is denied)' : '';
  fill('policies', limits ? limits.policies.map((p) => [
    [p.id + (p.shadow ? ' (shadow)' : '')], [scopeText(p.scope)], [p.key],
    [p.limit + ' / ' + fmt(p.windowMs / 1000) + ' s ' + p.algorithm], [p.mode],
    [fmt(p.keys), 'num'], [fmt(p.checks), 'num'], [fmt(p.denied), 'num'],
    [p.topKeys.map((k) => k.key + ' ' + k.remaining + '/' + k.limit + (k.blocked ? ' BLOCKED' : '')).join(', ')],
  ]) : [], 9, 'no rate limits configured');
  const nats = $('nats');
  nats.replaceChildren();
  const facts = s.nats
    ? [['status', s.nats.status], ['server', s.nats.server || '–'], ['since', new Date(s.nats.since).toLocaleString('en-GB')],
       ['round trip', s.nats.rttMs === null ? '–' : ms(s.nats.rttMs) + ' ms'], ['reconnects', fmt(s.nats.reconnects)],
       ['pending requests', fmt(s.nats.pendingRequests)], ['last error', s.nats.lastError || '–']]
    : [['status', 'not configured (in-process services only)']];
  for (const [name, value] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    nats.append(dt, dd);
  }
}

function connect(token) {
  const options = { reconnectAfterMs: (tries) => [500, 1000, 2000][tries - 1] || 5000 };
  if (token) options.authToken = token;
  socket = new Socket(url, options);
  let opened = false;
  socket.onOpen(() => {
    opened = true;
  });
  socket.onClose(() => {
    // A gateway that restarts or drains closes cleanly: the client reconnects and rejoins.
    if (opened) setStatus('reconnecting…', 'down');
  });
  socket.onError(() => {
    if (!opened && body.dataset.auth === 'token') {
      // Refused before it ever opened: a wrong token (or too many tries, or no gateway).
      socket.disconnect();
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('Refused: wrong token, too many attempts, or the gateway is unreachable.');
      return;
    }
    setStatus('reconnecting…', 'down');
  });
  const channel = socket.channel('admin:dashboard', {});
  channel.on('snapshot', render);
  channel.join()
    .receive('ok', render)
    .receive('error', (reply) => setStatus('refused: ' + ((reply && reply.reason) || 'error'), 'down'));
  socket.connect();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login-error').textContent = '';
  setStatus('connecting…');
  connect(token);
});

if (body.dataset.auth === 'token') {
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) connect(saved);
  else showLogin('');
} else {
  connect(null);
}
`;
