/**
 * The per-IP connect limit on the HTTP surfaces (rate-limiting spec §5 cases 36 and 37;
 * protocol/ratelimit.md): `RateLimits({connect})` gives the socket a `connectLimit` checked on the
 * WebSocket upgrade and the LongPoll open before the connect hook. Denied → HTTP 429 before the
 * handshake with `RateLimit-Policy: "socket_connect";q=<limit>;w=<s>`, `RateLimit:
 * "socket_connect";r=0;t=<s>` and `Retry-After` ≥ t; limiter unavailable → 503; an allowed
 * connect with r ≤ 10 % of q carries RateLimit-Policy and RateLimit.
 *
 * Most gateways here run the connect policy (GCRA, 20 per 60 s, burst 20: one connect back every
 * 3 s) on a fake monotonic clock, so the counts are exact whatever the machine's load; one runs on
 * the real clock through startGateway's config. Headers are parsed as RFC 8941 Structured Fields.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type TransportConstructor } from 'phoenix';
import { createGateway, type Gateway } from '../../src/index.js';
import { createLogger } from '../../src/log/logger.js';
import { RateLimits, type ConnectLimitOptions } from '../../src/ratelimit/rate-limits.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { connectHook, roomChannel, type TestAssigns } from '../support/test-app.js';
import { replyOf } from '../support/phoenix-client.js';
import { until } from '../support/wait.js';

/** Asymmetric matchers, typed `unknown` so the object literals holding them stay typed. */
const ANY_STRING: unknown = expect.any(String);

// ---- RFC 8941 Structured Fields (the subset the RateLimit headers use: a List of Items) -------

type BareItem = string | number | boolean | { token: string };
interface SfItem {
  value: BareItem;
  params: Record<string, BareItem>;
}

/** Parses an SF List (RFC 8941 §4.2.1); throws on anything that is not valid. */
function parseSfList(input: string): SfItem[] {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`invalid structured field ${JSON.stringify(input)} at ${i}: ${why}`);
  };
  const ows = () => {
    while (input[i] === ' ' || input[i] === '\t') i++;
  };
  const sp = () => {
    while (input[i] === ' ') i++;
  };
  const key = (): string => {
    const match = /^[a-z*][a-z0-9_\-.*]*/.exec(input.slice(i));
    if (!match) fail('key expected');
    i += match![0].length;
    return match![0];
  };
  const bare = (): BareItem => {
    const c = input[i];
    if (c === '"') {
      i++;
      let out = '';
      for (;;) {
        const ch = input[i++];
        if (ch === undefined) fail('unterminated string');
        if (ch === '\\') {
          const next = input[i++];
          if (next !== '"' && next !== '\\') fail('bad escape');
          out += next;
        } else if (ch === '"') return out;
        else if (ch! < ' ' || ch! > '~') fail('bad string character');
        else out += ch;
      }
    }
    if (c === '?') {
      const v = input[i + 1];
      if (v !== '0' && v !== '1') fail('bad boolean');
      i += 2;
      return v === '1';
    }
    if (c !== undefined && /[-0-9]/.test(c)) {
      const match = /^-?\d{1,15}(\.\d{1,3})?/.exec(input.slice(i));
      if (!match) fail('bad number');
      i += match![0].length;
      return Number(match![0]);
    }
    const token = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(input.slice(i));
    if (!token) fail('bare item expected');
    i += token![0].length;
    return { token: token![0] };
  };
  const params = (): Record<string, BareItem> => {
    const out: Record<string, BareItem> = {};
    while (input[i] === ';') {
      i++;
      sp();
      const name = key();
      let value: BareItem = true;
      if (input[i] === '=') {
        i++;
        value = bare();
      }
      out[name] = value;
    }
    return out;
  };
  const list: SfItem[] = [];
  sp();
  while (i < input.length) {
    if (input[i] === '(') fail('inner lists are not expected here');
    const value = bare();
    list.push({ value, params: params() });
    ows();
    if (i >= input.length) break;
    if (input[i] !== ',') fail('comma expected');
    i++;
    ows();
    if (i >= input.length) fail('trailing comma');
  }
  sp();
  return list;
}

/** The single item of a RateLimit / RateLimit-Policy header. */
function sfHeader(headers: IncomingHttpHeaders, name: string): SfItem {
  const raw = headers[name];
  expect(typeof raw, `${name} header`).toBe('string');
  const list = parseSfList(raw as string);
  expect(list).toHaveLength(1);
  return list[0]!;
}

/** Asserts the draft-10/11 RateLimit headers: the policy with q and w, the state with r and t. */
function expectLimitHeaders(
  headers: IncomingHttpHeaders,
  expected: { q: number; w: number; r?: number; t?: number },
): { r: number; t: number } {
  const policy = sfHeader(headers, 'ratelimit-policy');
  expect(policy).toEqual({ value: 'socket_connect', params: { q: expected.q, w: expected.w } });
  const state = sfHeader(headers, 'ratelimit');
  expect(state.value).toBe('socket_connect');
  expect(Object.keys(state.params).sort()).toEqual(['r', 't']);
  const r = state.params.r as number;
  const t = state.params.t as number;
  expect(Number.isInteger(r) && r >= 0).toBe(true);
  expect(Number.isInteger(t) && t >= 0).toBe(true);
  if (expected.r !== undefined) expect(r).toBe(expected.r);
  if (expected.t !== undefined) expect(t).toBe(expected.t);
  return { r, t };
}

function expectNoLimitHeaders(headers: IncomingHttpHeaders): void {
  expect(headers['ratelimit']).toBeUndefined();
  expect(headers['ratelimit-policy']).toBeUndefined();
  expect(headers['retry-after']).toBeUndefined();
}

/** Asserts a 429's headers; returns the Retry-After seconds. */
function expect429(headers: IncomingHttpHeaders, q: number, w: number, t?: number): number {
  const state = expectLimitHeaders(headers, { q, w, r: 0, ...(t === undefined ? {} : { t }) });
  const retryAfter = headers['retry-after'];
  expect(retryAfter).toMatch(/^\d+$/);
  const seconds = Number(retryAfter);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeGreaterThanOrEqual(state.t);
  return seconds;
}

// ---- raw HTTP ----------------------------------------------------------------------------------

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A raw WebSocket upgrade request (optionally from another loopback address); 101 when it upgraded. */
function upgrade(
  port: number,
  path = '/socket/websocket?vsn=2.0.0',
  localAddress?: string,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      ...(localAddress ? { localAddress } : {}),
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.once('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** The LongPoll open (a GET without a token). */
function longpollOpen(port: number, localAddress?: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/socket/longpoll?vsn=2.0.0',
        ...(localAddress ? { localAddress } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

// ---- gateways ----------------------------------------------------------------------------------

const logger = createLogger({ level: 'silent', pretty: false });

interface LimitedGateway {
  gateway: Gateway;
  rateLimits: RateLimits;
  port: number;
  /** Connect hook calls (accepted handshakes only). */
  hookCalls: () => number;
  /** Moves the connect policy's (fake) clock. */
  advance(ms: number): void;
  close(): Promise<void>;
}

const running: { close(): Promise<void> }[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const item of running.splice(0)) await item.close();
});

/** createGateway + a RateLimits with `connect`, on a fake monotonic clock. */
async function limitedGateway(connect: ConnectLimitOptions): Promise<LimitedGateway> {
  let now = 5_000_000;
  const rateLimits = new RateLimits({ connect }, logger, { monotonic: () => now });
  const gateway = createGateway({ logger: false });
  let calls = 0;
  gateway
    .socket<TestAssigns>('/socket', {
      connect: (info) => {
        calls++;
        return connectHook(info);
      },
      connectLimit: rateLimits.connectLimit,
      checkOrigin: false,
      longpoll: { windowMs: 500 },
    })
    .channel('room:*', roomChannel);
  const { port } = await gateway.listen(0, '127.0.0.1');
  const handle: LimitedGateway = {
    gateway,
    rateLimits,
    port,
    hookCalls: () => calls,
    advance: (ms) => {
      now += ms;
    },
    close: async () => {
      await gateway.close();
      await rateLimits.close();
    },
  };
  running.push(handle);
  return handle;
}

const TWENTY_PER_MINUTE: ConnectLimitOptions = { limit: 20, windowMs: 60_000 };

describe('37: per-IP connect limit, 20 per minute (fake clock)', () => {
  it('20 WebSocket connects from 127.0.0.1 succeed; the 21st upgrade gets 429 before the handshake with RateLimit-Policy, RateLimit and Retry-After', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 1; n <= 20; n++) {
      const answer = await upgrade(app.port);
      expect(answer.status, `connect ${n}`).toBe(101);
      // 36: successful responses carry the headers only once r ≤ 10 % of q (r ≤ 2): connects 18–20.
      if (n <= 17) expectNoLimitHeaders(answer.headers);
      else {
        expectLimitHeaders(answer.headers, { q: 20, w: 60, r: 20 - n, t: 3 });
        expect(answer.headers['retry-after']).toBeUndefined();
      }
    }
    const refused = await upgrade(app.port);
    expect(refused.status).toBe(429);
    expect(refused.headers['sec-websocket-accept']).toBeUndefined();
    expect(refused.headers['upgrade']).toBeUndefined();
    expect(refused.headers['connection']).toBe('close');
    expect(refused.body).toBe('');
    expect(refused.headers['ratelimit-policy']).toBe('"socket_connect";q=20;w=60');
    expect(refused.headers['ratelimit']).toBe('"socket_connect";r=0;t=3');
    expect(expect429(refused.headers, 20, 60, 3)).toBe(3);
    // The connect hook ran for the 20 accepted connects only.
    expect(app.hookCalls()).toBe(20);
    expect(app.gateway.stats.rateLimitedConnects).toBe(1);
  });

  it('the real ws client gets the 429 and its headers through "unexpected-response" and never opens', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 0; n < 20; n++) expect((await upgrade(app.port)).status).toBe(101);
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/socket/websocket?vsn=2.0.0`);
    let opened = false;
    ws.on('open', () => (opened = true));
    ws.on('error', () => {});
    const answer = await new Promise<{ status: number; headers: IncomingHttpHeaders }>(
      (resolve) => {
        ws.on('unexpected-response', (_req, res) => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
          res.resume();
          ws.terminate();
        });
      },
    );
    expect(answer.status).toBe(429);
    expect429(answer.headers, 20, 60, 3);
    expect(opened).toBe(false);
    expect(app.hookCalls()).toBe(20);
  });

  it('Retry-After is honest: after t seconds one connect passes (r=0 on its 101), then 429 again', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 0; n < 20; n++) await upgrade(app.port);
    const first = await upgrade(app.port);
    expect(first.status).toBe(429);
    const seconds = expect429(first.headers, 20, 60);
    app.advance(seconds * 1000 - 1);
    const early = await upgrade(app.port);
    expect(early.status).toBe(429);
    expect(expect429(early.headers, 20, 60, 1)).toBe(1);
    app.advance(1);
    const onTime = await upgrade(app.port);
    expect(onTime.status).toBe(101);
    expectLimitHeaders(onTime.headers, { q: 20, w: 60, r: 0, t: 3 });
    expect((await upgrade(app.port)).status).toBe(429);
    expect(app.gateway.stats.rateLimitedConnects).toBe(3);
  });

  it('the limit is per IP: connects from 127.0.0.2 have their own count', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 0; n < 20; n++) await upgrade(app.port);
    expect((await upgrade(app.port)).status).toBe(429);
    const other = await upgrade(app.port, undefined, '127.0.0.2');
    expect(other.status).toBe(101);
    expectNoLimitHeaders(other.headers);
    expect((await longpollOpen(app.port, '127.0.0.2')).status).toBe(200);
    expect((await upgrade(app.port)).status).toBe(429);
  });

  it('36/37 LongPoll: the open shares the count, carries the headers when r ≤ 10 %, and the 21st gets 429 with the same headers', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 1; n <= 10; n++) expect((await upgrade(app.port)).status).toBe(101);
    for (let n = 11; n <= 20; n++) {
      const open = await longpollOpen(app.port);
      expect(open.status, `open ${n}`).toBe(200);
      const body = JSON.parse(open.body) as { status: number; token: unknown; messages: unknown[] };
      expect(body).toEqual({ status: 410, token: ANY_STRING, messages: [] });
      if (n <= 17) expectNoLimitHeaders(open.headers);
      else expectLimitHeaders(open.headers, { q: 20, w: 60, r: 20 - n, t: 3 });
    }
    const refused = await longpollOpen(app.port);
    expect(refused.status).toBe(429);
    // The JS client understands only 403 in the body; the HTTP status says 429.
    expect(JSON.parse(refused.body)).toEqual({ status: 403 });
    expect(expect429(refused.headers, 20, 60, 3)).toBe(3);
    expect((await upgrade(app.port)).status).toBe(429);
    expect(app.hookCalls()).toBe(20);
    expect(app.gateway.stats.rateLimitedConnects).toBe(2);
  });

  it('stats.rateLimitedConnects counts every refused connect; the connect hook is never called for them', async () => {
    const app = await limitedGateway({ limit: 3, windowMs: 60_000 });
    for (let n = 0; n < 3; n++) expect((await upgrade(app.port)).status).toBe(101);
    const refused = await Promise.all([
      upgrade(app.port),
      longpollOpen(app.port),
      upgrade(app.port),
      longpollOpen(app.port),
      upgrade(app.port),
    ]);
    expect(refused.map((answer) => answer.status)).toEqual([429, 429, 429, 429, 429]);
    for (const answer of refused) expect429(answer.headers, 3, 60);
    expect(app.gateway.stats.rateLimitedConnects).toBe(5);
    expect(app.hookCalls()).toBe(3);
    // The policy's own counters agree.
    const view = app.rateLimits
      .health()
      .policies.find((policy) => policy.config.id === 'socket_connect');
    expect(view?.stats).toMatchObject({ checks: 8, denied: 5 });
  });

  it('the real phoenix client: a refused connect reaches its error callback and reconnect loop; once the limit frees it connects and works', async () => {
    const app = await limitedGateway(TWENTY_PER_MINUTE);
    for (let n = 0; n < 20; n++) await upgrade(app.port);
    const socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, {
      transport: WebSocket as unknown as TransportConstructor,
      reconnectAfterMs: () => 50,
    });
    sockets.push(socket);
    const errors: unknown[] = [];
    socket.onError((error) => errors.push(error));
    socket.connect();
    // The client retries on its schedule; every retry is refused (429) and counted.
    await until(
      () => errors.length >= 3 && app.gateway.stats.rateLimitedConnects >= 3,
      'three refused connects',
    );
    expect(socket.isConnected()).toBe(false);
    expect(app.hookCalls()).toBe(20);
    // The gateway keeps serving others meanwhile.
    expect((await upgrade(app.port, undefined, '127.0.0.2')).status).toBe(101);

    app.advance(3_000);
    await until(() => socket.isConnected(), 'the client connected once the limit freed');
    const channel = socket.channel('room:after-429');
    expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
    expect(await replyOf(channel.push('echo', { hi: 1 }))).toEqual({
      status: 'ok',
      response: { hi: 1 },
    });
    // 20 before, the one from 127.0.0.2, and the client's accepted connect.
    expect(app.hookCalls()).toBe(22);
  });
});

describe('36: connect limit with an unavailable limiter', () => {
  it('a strict connect policy with fallback "closed" and no store (no NATS attached) answers 503, without RateLimit headers or the hook', async () => {
    const app = await limitedGateway({
      limit: 20,
      windowMs: 60_000,
      mode: 'strict',
      fallback: 'closed',
    });
    const ws = await upgrade(app.port);
    expect(ws.status).toBe(503);
    expect(ws.body).toBe('');
    expectNoLimitHeaders(ws.headers);
    const lp = await longpollOpen(app.port);
    expect(lp.status).toBe(503);
    expect(lp.body).toBe('');
    expectNoLimitHeaders(lp.headers);
    expect(app.hookCalls()).toBe(0);
    expect(app.rateLimits.health().stats).toMatchObject({ failClosed: 2 });
  });

  it('fallback "local" without a store limits on this node (ceil(limit / 1 node)): 429 with the headers after 3', async () => {
    const app = await limitedGateway({
      limit: 3,
      windowMs: 60_000,
      mode: 'strict',
      fallback: 'local',
    });
    for (let n = 0; n < 3; n++) expect((await upgrade(app.port)).status).toBe(101);
    const refused = await upgrade(app.port);
    expect(refused.status).toBe(429);
    expect429(refused.headers, 3, 60);
    expect(app.rateLimits.health().stats).toMatchObject({ fallback: 4 });
  });

  it('fallback "open" without a store lets every connect through', async () => {
    const app = await limitedGateway({
      limit: 1,
      windowMs: 60_000,
      mode: 'strict',
      fallback: 'open',
    });
    const answers = await Promise.all(Array.from({ length: 4 }, () => upgrade(app.port)));
    expect(answers.map((answer) => answer.status)).toEqual([101, 101, 101, 101]);
    expect(app.rateLimits.health().stats).toMatchObject({ failOpen: 4 });
    expect(app.gateway.stats.rateLimitedConnects).toBe(0);
  });
});

describe('37 through the gateway config (startGateway, real clock)', () => {
  it('rateLimits.connect in the config limits WebSocket upgrades and LongPoll opens', async () => {
    const started: RunningGateway = await startGateway({
      config: { rateLimits: { connect: { limit: 20, windowMs: 60_000 } } },
      fromFile: true,
      port: 0,
      logger,
    });
    running.push({ close: () => started.gateway.close() });
    const port = started.address.port;
    const statuses: number[] = [];
    let lastAllowed: HttpAnswer | null = null;
    for (let n = 0; n < 20; n++) {
      const answer = await upgrade(port);
      statuses.push(answer.status);
      if (answer.status === 101) lastAllowed = answer;
    }
    expect(statuses).toEqual(Array<number>(20).fill(101));
    // The last allowed connect is within 10 % of the limit.
    expectLimitHeaders(lastAllowed!.headers, { q: 20, w: 60 });
    const refused = await upgrade(port);
    expect(refused.status).toBe(429);
    expect429(refused.headers, 20, 60);
    const lp = await longpollOpen(port);
    expect(lp.status).toBe(429);
    expect429(lp.headers, 20, 60);
    expect(started.gateway.stats.rateLimitedConnects).toBe(2);
  });
});
