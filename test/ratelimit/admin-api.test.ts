/**
 * The admin HTTP API for rate limits (protocol/ratelimit.md §6), mounted by startGateway when the
 * config has `admin: {token}`: bearer auth, health, policy list/get/put/delete, global shadow,
 * per-key status and reset, the error statuses (401, 404, 405 with Allow, 413, 400), and the warn
 * log line every change writes (in-process through a captured pino logger, and once from a real
 * `gen-gateway` process). Effects on clients are checked through the real `phoenix` client.
 */
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import type { GenApiResponse } from '../../src/genapi/types.js';
import { createLogger } from '../../src/log/logger.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { replyOf } from '../support/phoenix-client.js';
import { until } from '../support/wait.js';

/** Asymmetric matchers, typed `unknown` so the object literals holding them stay typed. */
const ANY_NUMBER: unknown = expect.any(Number);

const TOKEN = 'admin-token-0123456789abcdefghij';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const TOPIC = 'gen_api:admin';
const EVENT = 'phoenix_gen_api';
const RATE_LIMITED = /^Rate limit exceeded\. Please retry after \d+ seconds\.$/;

const ECHO_POLICY: PolicyConfig = {
  id: 'echo.per_user',
  scope: { service: 'demo', requestType: 'echo' },
  key: 'user_id',
  limit: 3,
  windowMs: 60_000,
};
const DEMO_POLICY: PolicyConfig = {
  id: 'demo.limited',
  scope: { service: 'demo', requestType: 'limited' },
  key: 'user_id',
  algorithm: 'sliding_log',
  limit: 5,
  windowMs: 10_000,
  mode: 'local',
};

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** An admin request (the token unless `token` is given; null sends no Authorization). */
async function admin(
  base: string,
  path: string,
  init: {
    method?: string;
    body?: unknown;
    token?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// ---- a captured logger ------------------------------------------------------------------------

const logLines: Record<string, unknown>[] = [];
const captured = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.startsWith('{')) logLines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  }),
);

/** The warn-level change lines logged since `from`, with message `msg`. */
function changeLines(msg: string, from = 0): Record<string, unknown>[] {
  return logLines.slice(from).filter((line) => line.msg === msg && line.level === 40);
}

// ---- phoenix clients ------------------------------------------------------------------------

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

interface Caller {
  call(requestType: string, args?: Record<string, unknown>): Promise<GenApiResponse>;
}

let nextId = 0;
async function caller(port: number, userId: string): Promise<Caller> {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: userId },
    reconnectAfterMs: () => 60_000,
  });
  sockets.push(socket);
  socket.connect();
  await until(() => socket.isConnected(), 'socket open');
  const channel: Channel = socket.channel(TOPIC, {});
  expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
  const pushes = new Map<string, GenApiResponse>();
  channel.on(EVENT, (payload) => {
    const response = payload as GenApiResponse;
    if (!pushes.has(String(response.request_id))) pushes.set(String(response.request_id), response);
  });
  return {
    async call(requestType, args = { message: 'hi' }) {
      const requestId = `${userId}-${++nextId}`;
      const reply = await replyOf(
        channel.push(EVENT, {
          request_id: requestId,
          service: 'demo',
          request_type: requestType,
          args,
        }),
      );
      expect(reply).toEqual({ status: 'ok', response: requestType });
      return until(() => pushes.get(requestId), `the push for ${requestId}`);
    },
  };
}

const isDenied = (push: GenApiResponse, policy: string): boolean =>
  !push.success &&
  RATE_LIMITED.test(String(push.error)) &&
  (push as { rate_limit?: { policy?: string } }).rate_limit?.policy === policy;

// ---- the in-process gateway ---------------------------------------------------------------------

let app: RunningGateway;
let base: string;
let port: number;
beforeAll(async () => {
  app = await startGateway({
    config: { demo: true, admin: { token: TOKEN }, rateLimits: { policies: [ECHO_POLICY] } },
    fromFile: true,
    port: 0,
    logger: captured,
  });
  port = app.address.port;
  base = `http://127.0.0.1:${port}`;
});
afterAll(() => app?.gateway.close());

describe('admin API: authentication', () => {
  it('401 with WWW-Authenticate: Bearer without a token, with a wrong one, or with another scheme; nothing changes', async () => {
    const attempts = [
      await admin(base, '/admin/rate-limits', { token: null }),
      await admin(base, '/admin/rate-limits', { token: `${TOKEN}x` }),
      await admin(base, '/admin/rate-limits', {
        token: null,
        headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      }),
      await admin(base, '/admin/rate-limits/policies/sneaky', {
        method: 'PUT',
        token: 'wrong-token-wrong-token-wrong-tok',
        body: { key: 'user_id', limit: 1, windowMs: 1000 },
      }),
      await admin(base, '/admin/nowhere', { token: null }),
    ];
    for (const answer of attempts) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="gen-gateway admin"');
      expect(answer.json).toEqual({ error: 'missing or wrong bearer token' });
    }
    expect(app.genApi.rateLimits!.limiter.policy('sneaky')).toBeUndefined();
  });
});

describe('admin API: reading', () => {
  it('GET /admin/rate-limits is the health: shadow, keys, stats, every policy with its stats, no cluster without NATS', async () => {
    const user = await caller(port, 'health-user');
    expect((await user.call('echo')).success).toBe(true);
    const health = await admin(base, '/admin/rate-limits');
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toBe('application/json');
    expect(health.headers.get('cache-control')).toBe('no-store');
    const body = health.json as {
      shadow: boolean;
      keys: number;
      stats: Record<string, number>;
      policies: { config: PolicyConfig; keys: number; stats: Record<string, number> }[];
      cluster: unknown;
    };
    expect(body.shadow).toBe(false);
    expect(body.cluster).toBeNull();
    expect(body.keys).toBeGreaterThanOrEqual(1);
    expect(body.stats).toMatchObject({
      checks: ANY_NUMBER,
      denied: ANY_NUMBER,
      wouldDeny: ANY_NUMBER,
    });
    const echo = body.policies.find((policy) => policy.config.id === 'echo.per_user');
    expect(echo).toMatchObject({
      config: ECHO_POLICY,
      keys: ANY_NUMBER,
      stats: { checks: ANY_NUMBER },
    });
    expect(echo!.stats.checks).toBeGreaterThanOrEqual(1);
  });

  it('GET /admin/rate-limits/policies lists the configs; GET one policy gives its keys and stats; an unknown one is 404', async () => {
    const list = await admin(base, '/admin/rate-limits/policies');
    expect(list.status).toBe(200);
    const policies = (list.json as { policies: PolicyConfig[] }).policies;
    expect(policies).toEqual(expect.arrayContaining([ECHO_POLICY, DEMO_POLICY]));
    const one = await admin(base, '/admin/rate-limits/policies/demo.limited');
    expect(one.status).toBe(200);
    expect(one.json).toEqual({
      config: DEMO_POLICY,
      keys: ANY_NUMBER,
      stats: expect.objectContaining({ checks: ANY_NUMBER, denied: ANY_NUMBER }) as unknown,
    });
    const missing = await admin(base, '/admin/rate-limits/policies/no.such');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'no policy "no.such"' });
  });
});

describe('admin API: changing policies', () => {
  it('PUT a new policy (201) limits calls at once; PUT replaces it (200, counters kept when compatible); DELETE (204) lifts it; a second DELETE is 404; each change is logged at warn with the actor', async () => {
    const user = await caller(port, 'put-user');
    for (let n = 0; n < 3; n++) expect((await user.call('echo_async')).success).toBe(true);

    // Add: the id comes from the path (the body may omit it).
    let mark = logLines.length;
    const body = {
      scope: { service: 'demo', requestType: 'echo_async' },
      key: 'user_id',
      limit: 2,
      windowMs: 60_000,
    };
    const added = await admin(base, '/admin/rate-limits/policies/async.per_user', {
      method: 'PUT',
      body,
    });
    expect(added.status).toBe(201);
    expect(added.json).toEqual({ policy: { id: 'async.per_user', ...body } });
    const [addLine] = changeLines('rate-limit policy added', mark);
    expect(addLine).toMatchObject({
      component: 'ratelimit',
      actor: { via: 'admin', who: '127.0.0.1' },
      policy: { id: 'async.per_user', ...body },
      previous: null,
    });

    // Counting starts now: two more pass, the third is denied by the new policy.
    expect((await user.call('echo_async')).success).toBe(true);
    expect((await user.call('echo_async')).success).toBe(true);
    expect(isDenied(await user.call('echo_async'), 'async.per_user')).toBe(true);
    // Another user is unaffected.
    const other = await caller(port, 'put-other');
    expect((await other.call('echo_async')).success).toBe(true);

    // Replace (the id in the body matches the path): 200. Same algorithm and key: the counters
    // are kept and the new limit applies to them (2 used of 4: two more pass).
    mark = logLines.length;
    const replacement = { id: 'async.per_user', ...body, limit: 4 };
    const replaced = await admin(base, '/admin/rate-limits/policies/async.per_user', {
      method: 'PUT',
      body: replacement,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toEqual({ policy: replacement });
    const [replaceLine] = changeLines('rate-limit policy replaced', mark);
    expect(replaceLine).toMatchObject({
      actor: { via: 'admin', who: '127.0.0.1' },
      policy: replacement,
      previous: { id: 'async.per_user', ...body },
      counters: 'kept',
    });
    for (let n = 0; n < 2; n++) expect((await user.call('echo_async')).success).toBe(true);
    expect(isDenied(await user.call('echo_async'), 'async.per_user')).toBe(true);
    // Another algorithm is a new count (logged as such): 4 pass, then the fifth is denied.
    mark = logLines.length;
    const gcra = { ...replacement, algorithm: 'gcra' };
    expect(
      (
        await admin(base, '/admin/rate-limits/policies/async.per_user', {
          method: 'PUT',
          body: gcra,
        })
      ).status,
    ).toBe(200);
    expect(changeLines('rate-limit policy replaced', mark)[0]).toMatchObject({ counters: 'reset' });
    for (let n = 0; n < 4; n++) expect((await user.call('echo_async')).success).toBe(true);
    expect(isDenied(await user.call('echo_async'), 'async.per_user')).toBe(true);

    // Delete: 204 without a body; the calls are no longer limited.
    mark = logLines.length;
    const deleted = await admin(base, '/admin/rate-limits/policies/async.per_user', {
      method: 'DELETE',
    });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const [deleteLine] = changeLines('rate-limit policy removed', mark);
    expect(deleteLine).toMatchObject({ actor: { via: 'admin', who: '127.0.0.1' }, policy: gcra });
    for (let n = 0; n < 6; n++) expect((await user.call('echo_async')).success).toBe(true);
    const again = await admin(base, '/admin/rate-limits/policies/async.per_user', {
      method: 'DELETE',
    });
    expect(again.status).toBe(404);
    expect(again.json).toEqual({ error: 'no policy "async.per_user"' });
  });

  it('PUT an invalid policy is 400 with the PolicyError message, and changes nothing', async () => {
    const mark = logLines.length;
    const cases: [unknown, string][] = [
      [
        { ...ECHO_POLICY, limit: 0 },
        'policy echo.per_user: limit must be a positive integer, got 0',
      ],
      [
        { ...ECHO_POLICY, windowMs: 'soon' },
        'policy echo.per_user: windowMs must be a positive integer, got "soon"',
      ],
      [
        { ...ECHO_POLICY, algorithm: 'leaky' },
        'policy echo.per_user: algorithm must be one of sliding_log, sliding_window, gcra, fixed_window',
      ],
      [
        { ...ECHO_POLICY, key: 'email' },
        'policy echo.per_user: key must be user_id, device_id, ip, socket_id or {arg: name}',
      ],
      [
        { ...ECHO_POLICY, scope: 'connect' },
        'policy echo.per_user: connect policies are keyed by ip (nothing else is known before connect)',
      ],
      [
        { ...ECHO_POLICY, mode: 'sometimes' },
        'policy echo.per_user: mode must be one of local, eventual, strict',
      ],
      [[ECHO_POLICY], 'body must be a policy object'],
      ['null', 'body must be a policy object'],
    ];
    for (const [body, error] of cases) {
      const answer = await admin(base, '/admin/rate-limits/policies/echo.per_user', {
        method: 'PUT',
        body,
      });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json).toEqual({ error });
    }
    const badId = await admin(
      base,
      `/admin/rate-limits/policies/${encodeURIComponent('bad id!')}`,
      { method: 'PUT', body: { key: 'user_id', limit: 1, windowMs: 1000 } },
    );
    expect(badId.status).toBe(400);
    expect((badId.json as { error: string }).error).toMatch(/^policy id must match/);
    const current = await admin(base, '/admin/rate-limits/policies/echo.per_user');
    expect((current.json as { config: PolicyConfig }).config).toEqual(ECHO_POLICY);
    expect(logLines.slice(mark).filter((line) => line.level === 40)).toEqual([]);
  });

  it('PUT with a body id that differs from the path is 400', async () => {
    const answer = await admin(base, '/admin/rate-limits/policies/echo.per_user', {
      method: 'PUT',
      body: { ...ECHO_POLICY, id: 'other.id' },
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: 'body id "other.id" differs from the path\'s "echo.per_user"',
    });
    expect(app.genApi.rateLimits!.limiter.policy('other.id')).toBeUndefined();
  });

  it('PUT /shadow on: calls are no longer denied and wouldDeny counts them; off: denied again; both logged', async () => {
    const user = await caller(port, 'shadow-user');
    for (let n = 0; n < 3; n++) expect((await user.call('echo')).success).toBe(true);
    expect(isDenied(await user.call('echo'), 'echo.per_user')).toBe(true);
    const wouldDeny = app.genApi.rateLimits!.health().stats.wouldDeny;
    let mark = logLines.length;
    try {
      const on = await admin(base, '/admin/rate-limits/shadow', {
        method: 'PUT',
        body: { shadow: true },
      });
      expect(on.status).toBe(200);
      expect(on.json).toEqual({ shadow: true });
      expect(changeLines('rate-limit shadow mode changed', mark)[0]).toMatchObject({
        actor: { via: 'admin', who: '127.0.0.1' },
        shadow: true,
        previous: false,
      });
      expect((await admin(base, '/admin/rate-limits')).json).toMatchObject({ shadow: true });
      for (let n = 0; n < 3; n++) expect((await user.call('echo')).success).toBe(true);
      expect(app.genApi.rateLimits!.health().stats.wouldDeny - wouldDeny).toBe(3);
    } finally {
      mark = logLines.length;
      const off = await admin(base, '/admin/rate-limits/shadow', {
        method: 'PUT',
        body: { shadow: false },
      });
      expect(off.status).toBe(200);
      expect(off.json).toEqual({ shadow: false });
    }
    expect(changeLines('rate-limit shadow mode changed', mark)[0]).toMatchObject({
      shadow: false,
      previous: true,
    });
    expect(isDenied(await user.call('echo'), 'echo.per_user')).toBe(true);
    for (const body of [{}, { shadow: 'yes' }, [true]]) {
      const bad = await admin(base, '/admin/rate-limits/shadow', { method: 'PUT', body });
      expect(bad.status).toBe(400);
      expect(bad.json).toEqual({ error: 'body must be {"shadow": true|false}' });
    }
  });

  it("GET a key's status; DELETE resets it (204, logged) and the user can call again at once", async () => {
    const fresh = await admin(base, '/admin/rate-limits/policies/demo.limited/keys/key-user');
    expect(fresh.status).toBe(200);
    expect(fresh.json).toEqual({
      policy: 'demo.limited',
      key: 'key-user',
      source: 'local',
      limit: 5,
      window_ms: 10_000,
      remaining: 4,
      reset_ms: 10_000,
      retry_after_ms: 0,
      allowed: true,
    });

    const user = await caller(port, 'key-user');
    for (let n = 0; n < 5; n++) expect((await user.call('limited')).success).toBe(true);
    expect(isDenied(await user.call('limited'), 'demo.limited')).toBe(true);
    const exhausted = await admin(base, '/admin/rate-limits/policies/demo.limited/keys/key-user');
    expect(exhausted.json).toEqual({
      policy: 'demo.limited',
      key: 'key-user',
      source: 'local',
      limit: 5,
      window_ms: 10_000,
      remaining: 0,
      reset_ms: ANY_NUMBER,
      retry_after_ms: ANY_NUMBER,
      allowed: false,
    });
    expect((exhausted.json as { retry_after_ms: number }).retry_after_ms).toBeGreaterThanOrEqual(1);

    const mark = logLines.length;
    const reset = await admin(base, '/admin/rate-limits/policies/demo.limited/keys/key-user', {
      method: 'DELETE',
    });
    expect(reset.status).toBe(204);
    expect(changeLines('rate-limit key reset', mark)[0]).toMatchObject({
      actor: { via: 'admin', who: '127.0.0.1' },
      policy: 'demo.limited',
      key: 'key-user',
    });
    expect(
      (await admin(base, '/admin/rate-limits/policies/demo.limited/keys/key-user')).json,
    ).toMatchObject({ remaining: 4, allowed: true });
    for (let n = 0; n < 5; n++) expect((await user.call('limited')).success).toBe(true);
    expect(isDenied(await user.call('limited'), 'demo.limited')).toBe(true);

    for (const method of ['GET', 'DELETE']) {
      const unknown = await admin(base, '/admin/rate-limits/policies/no.such/keys/key-user', {
        method,
      });
      expect(unknown.status).toBe(404);
      expect(unknown.json).toEqual({ error: 'no policy "no.such"' });
    }
  });
});

describe('admin API: errors', () => {
  it('405 with Allow for a wrong method', async () => {
    const cases: [string, string, string][] = [
      ['POST', '/admin/rate-limits', 'GET'],
      ['DELETE', '/admin/rate-limits/policies', 'GET'],
      ['POST', '/admin/rate-limits/policies/echo.per_user', 'GET, PUT, DELETE'],
      ['GET', '/admin/rate-limits/shadow', 'PUT'],
      ['PUT', '/admin/rate-limits/policies/echo.per_user/keys/u1', 'GET, DELETE'],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await admin(base, path, { method });
      expect(answer.status, `${method} ${path}`).toBe(405);
      expect(answer.headers.get('allow')).toBe(allow);
      expect(answer.json).toEqual({ error: `use ${allow.replace(/, /g, ' or ')}` });
    }
  });

  it('404 for unknown paths under the admin prefix; 400 for a malformed path', async () => {
    for (const path of [
      '/admin',
      '/admin/',
      '/admin/nope',
      '/admin/rate-limits/nope',
      '/admin/rate-limits/shadow/extra',
      '/admin/rate-limits/policies/echo.per_user/keys',
      '/admin/rate-limits/policies/echo.per_user/other/u1',
      '/admin/rate-limits/policies/echo.per_user/keys/u1/extra',
    ]) {
      const answer = await admin(base, path);
      expect(answer.status, path).toBe(404);
      expect(answer.json).toEqual({ error: 'not found' });
    }
    const malformed = await admin(base, '/admin/rate-limits/policies/%E0%A4%A');
    expect(malformed.status).toBe(400);
    expect(malformed.json).toEqual({ error: 'malformed path' });
    // Outside the prefix the gateway answers its own 404.
    const outside = await admin(base, '/administrator/rate-limits');
    expect(outside.status).toBe(404);
    expect(outside.text).toBe('not found');
  });

  it('413 for a body over 64 KiB (declared or streamed); 400 for a body that is not JSON', async () => {
    const big = JSON.stringify({ ...ECHO_POLICY, padding: 'x'.repeat(70_000) });
    const declared = await admin(base, '/admin/rate-limits/policies/echo.per_user', {
      method: 'PUT',
      body: big,
    });
    expect(declared.status).toBe(413);
    expect(declared.json).toEqual({ error: 'body larger than 65536 bytes' });

    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/admin/rate-limits/shadow',
          method: 'PUT',
          headers: { ...AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      for (let n = 0; n < 10; n++) req.write('x'.repeat(8_000));
      req.end();
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body)).toEqual({ error: 'body larger than 65536 bytes' });

    for (const path of ['/admin/rate-limits/policies/echo.per_user', '/admin/rate-limits/shadow']) {
      const answer = await admin(base, path, { method: 'PUT', body: '{"shadow": tru' });
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ error: 'body is not valid JSON' });
    }
    expect(app.genApi.rateLimits!.limiter.shadow).toBe(false);
    expect((await admin(base, '/admin/rate-limits/policies/echo.per_user')).json).toMatchObject({
      config: ECHO_POLICY,
    });
  });

  it("without an admin config the path is not served (the gateway's 404)", async () => {
    const plain = await startGateway({
      config: { demo: true, rateLimits: { policies: [ECHO_POLICY] } },
      fromFile: true,
      port: 0,
      logger: createLogger({ level: 'silent', pretty: false }),
    });
    try {
      const plainBase = `http://127.0.0.1:${plain.address.port}`;
      for (const path of ['/admin/rate-limits', '/admin/rate-limits/policies']) {
        const answer = await admin(plainBase, path);
        expect(answer.status).toBe(404);
        expect(answer.text).toBe('not found');
        expect(answer.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      }
      const put = await admin(plainBase, '/admin/rate-limits/policies/x.y', {
        method: 'PUT',
        body: { key: 'user_id', limit: 1, windowMs: 1000 },
      });
      expect(put.status).toBe(404);
      expect(plain.genApi.rateLimits!.limiter.policy('x.y')).toBeUndefined();
    } finally {
      await plain.gateway.close();
    }
  });
});

describe('admin API in a real gen-gateway process', () => {
  let proc: GatewayProcess | null = null;
  afterAll(async () => {
    await proc?.stop();
  });

  it('a change made through the API is logged at warn (JSON on stdout) with the actor and the policy, and applies to clients', async () => {
    proc = await GatewayProcess.start({
      config: { demo: true, admin: { token: TOKEN }, rateLimits: { policies: [ECHO_POLICY] } },
    });
    const loaded = await proc.process.logLine('rate limits loaded');
    expect(loaded).toMatchObject({
      level: 30,
      component: 'ratelimit',
      policies: expect.arrayContaining(['echo.per_user(local)', 'demo.limited(local)']) as unknown,
    });

    const body = {
      scope: { service: 'demo', requestType: 'whoami' },
      key: 'user_id',
      limit: 1,
      windowMs: 60_000,
    };
    const put = await admin(proc.httpUrl, '/admin/rate-limits/policies/whoami.once', {
      method: 'PUT',
      body,
    });
    expect(put.status).toBe(201);
    const line = await proc.process.logLine('rate-limit policy added');
    expect(line).toMatchObject({
      level: 40,
      component: 'ratelimit',
      actor: { via: 'admin', who: '127.0.0.1' },
      policy: { id: 'whoami.once', ...body },
      previous: null,
    });

    const user = await caller(proc.port, 'proc-user');
    expect(await user.call('whoami', {})).toMatchObject({
      success: true,
      result: { user_id: 'proc-user' },
    });
    expect(isDenied(await user.call('whoami', {}), 'whoami.once')).toBe(true);

    expect(
      (await admin(proc.httpUrl, '/admin/rate-limits/policies/whoami.once', { method: 'DELETE' }))
        .status,
    ).toBe(204);
    expect(await proc.process.logLine('rate-limit policy removed')).toMatchObject({
      level: 40,
      actor: { via: 'admin', who: '127.0.0.1' },
      policy: { id: 'whoami.once' },
    });
    expect((await user.call('whoami', {})).success).toBe(true);
  }, 40_000);
});
