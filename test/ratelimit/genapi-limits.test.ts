/**
 * gen_api rate limits as a client sees them: the demo contract (issue 4: `demo.limited`, 5 per
 * 10 s per user_id, sliding log, local when embedded) through the real `phoenix` client and raw
 * frames, and config-file policies through `startGateway` (src/server.ts): per function, per
 * argument, several per request (all-or-nothing), shadow mode, strict without a store (fallbacks),
 * and how the gen_api limiter and the per-socket message rate stay out of each other's way.
 *
 * A denial is PhoenixGenApi's push `{request_id, result: null, success: false, error: "Rate limit
 * exceeded. Please retry after N seconds.", async: false, has_more: false, can_retry: true}` plus
 * `rate_limit` (protocol/gen_api.md, protocol/ratelimit.md), then the push's phx_reply ok.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import type { GatewayConfig } from '../../src/config/file.js';
import type { GenApiResponse } from '../../src/genapi/types.js';
import { createLogger } from '../../src/log/logger.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { replyOf, type PushReply } from '../support/phoenix-client.js';
import { RawClient } from '../support/ws-client.js';
import { until } from '../support/wait.js';
import { manualClock, type ManualClock } from '../support/clock.js';

const TOPIC = 'gen_api:lobby';
const EVENT = 'phoenix_gen_api';
const logger = createLogger({ level: 'silent', pretty: false });
const RATE_LIMITED = /^Rate limit exceeded\. Please retry after (\d+) seconds\.$/;
/** Asymmetric matchers, typed `unknown` so object literals holding them stay typed. */
const ANY_NUMBER: unknown = expect.any(Number);
const RATE_LIMITED_MESSAGE: unknown = expect.stringMatching(RATE_LIMITED);

let nextId = 0;
const id = (label: string) => `${label}-${++nextId}`;

interface Request {
  request_id: string;
  service: string;
  request_type: string;
  args: Record<string, unknown>;
}
const limited = (requestId: string, message = 'hi'): Request => ({
  request_id: requestId,
  service: 'demo',
  request_type: 'limited',
  args: { message },
});
const echo = (requestId: string, message = 'hi'): Request => ({
  request_id: requestId,
  service: 'demo',
  request_type: 'echo',
  args: { message },
});
const echoAsync = (requestId: string, message = 'hi'): Request => ({
  request_id: requestId,
  service: 'demo',
  request_type: 'echo_async',
  args: { message },
});

/** The successful sync push. */
const success = (requestId: string, result: unknown): GenApiResponse => ({
  request_id: requestId,
  result,
  success: true,
  error: null,
  async: false,
  has_more: false,
  can_retry: false,
});

interface RateLimitField {
  policy: string;
  limit: number;
  window_ms: number;
  remaining: number;
  reset_ms: number;
  retry_after_ms: number;
  source: string;
}

/**
 * Asserts the exact denial push for `requestId` by `policy` (limit, window, source) and returns
 * its rate_limit details; N in the message is ceil(retry_after_ms / 1000) ≥ 1.
 */
function expectDenied(
  push: unknown,
  requestId: string,
  policy: { id: string; limit: number; windowMs: number; source?: string },
): RateLimitField {
  expect(push).toEqual({
    request_id: requestId,
    result: null,
    success: false,
    error: RATE_LIMITED_MESSAGE,
    async: false,
    has_more: false,
    can_retry: true,
    rate_limit: {
      policy: policy.id,
      limit: policy.limit,
      window_ms: policy.windowMs,
      remaining: 0,
      reset_ms: ANY_NUMBER,
      retry_after_ms: ANY_NUMBER,
      source: policy.source ?? 'local',
    },
  });
  const response = push as GenApiResponse & { rate_limit: RateLimitField };
  const details = response.rate_limit;
  expect(Number.isInteger(details.retry_after_ms)).toBe(true);
  expect(details.retry_after_ms).toBeGreaterThanOrEqual(1);
  expect(details.retry_after_ms).toBeLessThanOrEqual(policy.windowMs);
  expect(details.reset_ms).toBeGreaterThanOrEqual(0);
  expect(details.reset_ms).toBeLessThanOrEqual(policy.windowMs);
  const seconds = Number(RATE_LIMITED.exec(response.error as string)![1]);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBe(Math.ceil(details.retry_after_ms / 1000));
  return details;
}

// ---- the real phoenix client ---------------------------------------------------------------

/** A joined gen_api channel that collects the pushes by request_id. */
class ApiClient {
  private readonly pushes = new Map<string, GenApiResponse[]>();

  constructor(
    readonly socket: Socket,
    readonly channel: Channel,
  ) {
    channel.on(EVENT, (payload) => {
      const response = payload as GenApiResponse;
      const key = String(response.request_id);
      const list = this.pushes.get(key) ?? [];
      list.push(response);
      this.pushes.set(key, list);
    });
  }

  pushesFor(requestId: string): GenApiResponse[] {
    return this.pushes.get(requestId) ?? [];
  }

  /** Pushes a request; resolves with its phx_reply and its first `count` gen_api pushes. */
  async call(request: Request, count = 1): Promise<{ reply: PushReply; pushes: GenApiResponse[] }> {
    const reply = await replyOf(this.channel.push(EVENT, request));
    const pushes =
      count === 0
        ? []
        : await until(
            () =>
              this.pushesFor(request.request_id).length >= count
                ? this.pushesFor(request.request_id)
                : undefined,
            `${count} push(es) for ${request.request_id}`,
          );
    return { reply, pushes };
  }

  /** One sync call: its single push (asserting the reply is ok with the request_type). */
  async push(request: Request): Promise<GenApiResponse> {
    const { reply, pushes } = await this.call(request);
    expect(reply).toEqual({ status: 'ok', response: request.request_type });
    expect(pushes).toHaveLength(1);
    return pushes[0]!;
  }
}

const sockets: Socket[] = [];
const rawClients: RawClient[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const client of rawClients.splice(0)) client.close();
});

async function phoenixClient(port: number, userId: string): Promise<ApiClient> {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: userId, device_id: `dev-${userId}` },
    reconnectAfterMs: () => 60_000,
  });
  sockets.push(socket);
  socket.connect();
  await until(() => socket.isConnected(), 'socket open');
  const channel = socket.channel(TOPIC, {});
  expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
  return new ApiClient(socket, channel);
}

/**
 * A gateway on a manual clock: the per-socket message rate and the local policies see time move
 * only when the test advances it, so counts and windows are exact however loaded the machine is.
 */
async function start(
  config: GatewayConfig,
  clock: ManualClock,
  fromFile = true,
): Promise<RunningGateway> {
  return startGateway({ config, fromFile, port: 0, logger, clock: clock.now });
}

function policyStats(gateway: RunningGateway, policyId: string) {
  const view = gateway.genApi
    .rateLimits!.health()
    .policies.find((policy) => policy.config.id === policyId);
  if (!view) throw new Error(`no policy ${policyId}`);
  return view.stats;
}

const DEMO_POLICY = { id: 'demo.limited', limit: 5, windowMs: 10_000 };

// ---- the demo contract ---------------------------------------------------------------------

describe('the demo contract: demo.limited, 5 per 10 s per user_id (embedded demo, local)', () => {
  let demo: RunningGateway;
  const clock = manualClock();
  beforeAll(async () => {
    demo = await start({ demo: true }, clock, false);
  });
  afterAll(() => demo?.gateway.close());

  it('the demo policy is present: local, sliding log, keyed by user_id', () => {
    const policy = demo.genApi.rateLimits!.limiter.policy('demo.limited');
    expect(policy?.config).toEqual({
      id: 'demo.limited',
      scope: { service: 'demo', requestType: 'limited' },
      key: 'user_id',
      algorithm: 'sliding_log',
      limit: 5,
      windowMs: 10_000,
      mode: 'local',
    });
  });

  it('over raw frames: 5 × (push result, reply ok), then the 6th is exactly (denial push, reply ok "limited")', async () => {
    const client = await RawClient.connect(
      `ws://127.0.0.1:${demo.address.port}/socket/websocket?vsn=2.0.0&user_id=raw-user`,
    );
    rawClients.push(client);
    expect(await client.join(TOPIC, '1')).toEqual([
      '1',
      '1',
      TOPIC,
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    for (let n = 1; n <= 5; n++) {
      const requestId = `raw-${n}`;
      client.send(['1', String(n + 1), TOPIC, EVENT, limited(requestId, `m${n}`)]);
      expect(await client.take(2, 10_000)).toEqual([
        ['1', null, TOPIC, EVENT, success(requestId, { message: `m${n}` })],
        ['1', String(n + 1), TOPIC, 'phx_reply', { status: 'ok', response: 'limited' }],
      ]);
    }
    client.send(['1', '7', TOPIC, EVENT, limited('raw-6', 'm6')]);
    const [push, reply] = (await client.take(2, 10_000)) as unknown[][];
    expect(push!.slice(0, 4)).toEqual(['1', null, TOPIC, EVENT]);
    expectDenied(push![4], 'raw-6', DEMO_POLICY);
    expect(reply).toEqual(['1', '7', TOPIC, 'phx_reply', { status: 'ok', response: 'limited' }]);
    // Nothing else follows: the next frame is the reply to a later heartbeat.
    client.send([null, '8', 'phoenix', 'heartbeat', {}]);
    expect(await client.take(1, 10_000)).toEqual([
      [null, '8', 'phoenix', 'phx_reply', { status: 'ok', response: {} }],
    ]);
  });

  it("the same user on two sockets shares one count; another user on either socket's gateway does not", async () => {
    const first = await phoenixClient(demo.address.port, 'shared');
    const second = await phoenixClient(demo.address.port, 'shared');
    for (let n = 0; n < 3; n++)
      expect((await first.push(limited(id('s1'), 'a'))).success).toBe(true);
    for (let n = 0; n < 2; n++)
      expect((await second.push(limited(id('s2'), 'b'))).success).toBe(true);
    const requestId = id('s1');
    expectDenied(await first.push(limited(requestId)), requestId, DEMO_POLICY);
    const other = await phoenixClient(demo.address.port, 'someone-else');
    expect(await other.push(limited('else-1', 'x'))).toEqual(success('else-1', { message: 'x' }));
  });

  it('issue demo contract through the phoenix client: 5 calls by u1 succeed, the 6th is denied exactly, u2 is unaffected, and after the window u1 is allowed again', async () => {
    const u1 = await phoenixClient(demo.address.port, 'u1');
    for (let n = 1; n <= 5; n++) {
      const requestId = `u1-${n}`;
      const args = { message: `hello ${n}` };
      const push = await u1.push({
        request_id: requestId,
        service: 'demo',
        request_type: 'limited',
        args,
      });
      expect(push).toEqual(success(requestId, args));
      expect(push.result).toEqual(args);
    }
    const denial = await u1.push(limited('u1-6', 'hello 6'));
    const details = expectDenied(denial, 'u1-6', DEMO_POLICY);
    // Nothing else arrives for the denied request: a later call's push comes back first.
    expect((await u1.push(echo('u1-marker'))).success).toBe(true);
    expect(u1.pushesFor('u1-6')).toHaveLength(1);

    const u2 = await phoenixClient(demo.address.port, 'u2');
    for (let n = 1; n <= 5; n++)
      expect(await u2.push(limited(`u2-${n}`, 'u2'))).toEqual(
        success(`u2-${n}`, { message: 'u2' }),
      );

    // The window frees exactly after retry_after_ms: 1 ms before it u1 is still denied.
    clock.advance(details.retry_after_ms - 1);
    expectDenied(await u1.push(limited('u1-7', 'early')), 'u1-7', DEMO_POLICY);
    clock.advance(1);
    expect(await u1.push(limited('u1-8', 'again'))).toEqual(success('u1-8', { message: 'again' }));
    expect(policyStats(demo, 'demo.limited').denied).toBeGreaterThanOrEqual(2);
  });
});

// ---- config-file policies --------------------------------------------------------------------

const ECHO_3_PER_2S: PolicyConfig = {
  id: 'demo.echo.per_user',
  scope: { service: 'demo', requestType: 'echo' },
  key: 'user_id',
  limit: 3,
  windowMs: 2_000,
};

describe('config-file policies (startGateway, config {demo: true, rateLimits})', () => {
  const gateways: RunningGateway[] = [];
  let clock = manualClock();
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.gateway.close()));
  });
  async function gatewayWith(config: GatewayConfig): Promise<RunningGateway> {
    clock = manualClock();
    const started = await start({ demo: true, ...config }, clock);
    gateways.push(started);
    return started;
  }

  it('the demo echo limited per user through the real phoenix client (3 per 2 s); other users unaffected; retry after retry_after_ms succeeds', async () => {
    const app = await gatewayWith({ rateLimits: { policies: [ECHO_3_PER_2S] } });
    // The demo's own policy is added next to the config's.
    expect(
      app.genApi
        .rateLimits!.limiter.policies()
        .map((policy) => policy.id)
        .sort(),
    ).toEqual(['demo.echo.per_user', 'demo.limited']);
    const alice = await phoenixClient(app.address.port, 'alice');
    for (let n = 1; n <= 3; n++)
      expect(await alice.push(echo(`a-${n}`, `e${n}`))).toEqual(
        success(`a-${n}`, { message: `e${n}` }),
      );
    const details = expectDenied(await alice.push(echo('a-4')), 'a-4', {
      id: 'demo.echo.per_user',
      limit: 3,
      windowMs: 2_000,
    });
    // Only echo is limited: other functions of the service are not.
    expect((await alice.push(limited('a-lim'))).success).toBe(true);
    const bob = await phoenixClient(app.address.port, 'bob');
    for (let n = 1; n <= 3; n++) expect((await bob.push(echo(`b-${n}`))).success).toBe(true);
    clock.advance(details.retry_after_ms - 1);
    expectDenied(await alice.push(echo('a-early')), 'a-early', ECHO_3_PER_2S);
    clock.advance(1);
    expect(await alice.push(echo('a-5', 'later'))).toEqual(success('a-5', { message: 'later' }));
  });

  it('several policies per request are all-or-nothing: a request denied by one policy consumes none of the others', async () => {
    const global: PolicyConfig = {
      id: 'all.per_user',
      scope: 'global',
      key: 'user_id',
      limit: 5,
      windowMs: 60_000,
    };
    const perEcho: PolicyConfig = {
      id: 'echo.per_user',
      scope: { service: 'demo', requestType: 'echo' },
      key: 'user_id',
      limit: 2,
      windowMs: 60_000,
    };
    const app = await gatewayWith({ rateLimits: { policies: [global, perEcho] } });
    const client = await phoenixClient(app.address.port, 'multi');
    // echo: both policies; 2 pass (global 2/5, echo 2/2).
    for (let n = 0; n < 2; n++) expect((await client.push(echo(id('m')))).success).toBe(true);
    // 3 more echos: denied by echo.per_user; they must not consume the global count.
    for (let n = 0; n < 3; n++) {
      const requestId = id('m-denied');
      expectDenied(await client.push(echo(requestId)), requestId, {
        id: 'echo.per_user',
        limit: 2,
        windowMs: 60_000,
      });
    }
    // echo_async is under the global policy only: exactly 3 more pass (2 + 3 = 5)...
    for (let n = 0; n < 3; n++) {
      const requestId = id('m-async');
      const { reply, pushes } = await client.call(echoAsync(requestId), 2);
      expect(reply).toEqual({ status: 'ok', response: 'echo_async' });
      expect(pushes[0]).toMatchObject({ request_id: requestId, async: true, success: true });
      expect(pushes[1]).toMatchObject({
        request_id: requestId,
        result: { message: 'hi' },
        success: true,
      });
    }
    // ...and the 6th request overall is denied by the global policy.
    const requestId = id('m-async-denied');
    const { reply, pushes } = await client.call(echoAsync(requestId));
    expect(reply).toEqual({ status: 'ok', response: 'echo_async' });
    expectDenied(pushes[0], requestId, { id: 'all.per_user', limit: 5, windowMs: 60_000 });
    expect(policyStats(app, 'echo.per_user')).toMatchObject({ denied: 3 });
    expect(policyStats(app, 'all.per_user')).toMatchObject({ denied: 1 });
    // Nothing else arrives for the denied request: a later call's push comes back first.
    await client.push(limited(id('m-marker')));
    expect(client.pushesFor(requestId)).toHaveLength(1);
  });

  it('a policy keyed by {arg: "message"} counts per argument value, across users and sockets', async () => {
    const byMessage: PolicyConfig = {
      id: 'echo.by_message',
      scope: { service: 'demo', requestType: 'echo' },
      key: { arg: 'message' },
      limit: 2,
      windowMs: 60_000,
    };
    const app = await gatewayWith({ rateLimits: { policies: [byMessage] } });
    const [u1, u2, u3] = await Promise.all([
      phoenixClient(app.address.port, 'k1'),
      phoenixClient(app.address.port, 'k2'),
      phoenixClient(app.address.port, 'k3'),
    ]);
    expect((await u1.push(echo('k1-hot', 'hot'))).success).toBe(true);
    expect((await u2.push(echo('k2-hot', 'hot'))).success).toBe(true);
    expectDenied(await u3.push(echo('k3-hot', 'hot')), 'k3-hot', {
      id: 'echo.by_message',
      limit: 2,
      windowMs: 60_000,
    });
    expect(await u3.push(echo('k3-cold', 'cold'))).toEqual(success('k3-cold', { message: 'cold' }));
    expectDenied(await u1.push(echo('k1-hot-2', 'hot')), 'k1-hot-2', {
      id: 'echo.by_message',
      limit: 2,
      windowMs: 60_000,
    });
  });

  it('shadow mode (global switch in the config) never denies, and counts what it would have denied', async () => {
    const app = await gatewayWith({
      rateLimits: { shadow: true, policies: [{ ...ECHO_3_PER_2S, limit: 1, windowMs: 60_000 }] },
    });
    const client = await phoenixClient(app.address.port, 'shadowed');
    for (let n = 1; n <= 5; n++)
      expect(await client.push(echo(`sh-${n}`))).toEqual(success(`sh-${n}`, { message: 'hi' }));
    for (let n = 1; n <= 7; n++)
      expect((await client.push(limited(`shl-${n}`))).success).toBe(true);
    expect(policyStats(app, 'demo.echo.per_user')).toMatchObject({ denied: 0, wouldDeny: 4 });
    expect(policyStats(app, 'demo.limited')).toMatchObject({ denied: 0, wouldDeny: 2 });
    expect(app.genApi.rateLimits!.health()).toMatchObject({
      shadow: true,
      stats: { denied: 0, wouldDeny: 6 },
    });
  });

  it('a per-policy shadow flag spares only that policy', async () => {
    const app = await gatewayWith({
      rateLimits: { policies: [{ ...ECHO_3_PER_2S, limit: 1, windowMs: 60_000, shadow: true }] },
    });
    const client = await phoenixClient(app.address.port, 'half-shadowed');
    for (let n = 1; n <= 4; n++) expect((await client.push(echo(`ps-${n}`))).success).toBe(true);
    for (let n = 1; n <= 5; n++)
      expect((await client.push(limited(`psl-${n}`))).success).toBe(true);
    expectDenied(await client.push(limited('psl-6')), 'psl-6', DEMO_POLICY);
    expect(policyStats(app, 'demo.echo.per_user')).toMatchObject({ denied: 0, wouldDeny: 3 });
  });

  it('a strict policy without NATS: fallback "closed" answers "Rate limit service unavailable"; fallback "local" limits on this node (source "fallback")', async () => {
    const closed: PolicyConfig = {
      ...ECHO_3_PER_2S,
      id: 'echo.strict',
      mode: 'strict',
      fallback: 'closed',
    };
    // Overrides the demo's own demo.limited (same id): strict, 2 per minute, local fallback.
    const local: PolicyConfig = {
      id: 'demo.limited',
      scope: { service: 'demo', requestType: 'limited' },
      key: 'user_id',
      limit: 2,
      windowMs: 60_000,
      mode: 'strict',
      fallback: 'local',
    };
    const app = await gatewayWith({ rateLimits: { policies: [closed, local] } });
    const client = await phoenixClient(app.address.port, 'strict-user');
    expect(await client.push(echo('st-1'))).toEqual({
      request_id: 'st-1',
      result: null,
      success: false,
      error: 'Rate limit service unavailable',
      async: false,
      has_more: false,
      can_retry: true,
      // Spec 30: the machine-readable reason is limiter_unavailable (not rate_limited), no retry time.
      rate_limit: { reason: 'limiter_unavailable', policy: 'echo.strict', source: 'fallback' },
    });
    expect(policyStats(app, 'echo.strict')).toMatchObject({ failClosed: 1 });

    for (let n = 1; n <= 2; n++)
      expect((await client.push(limited(`stl-${n}`))).success).toBe(true);
    expectDenied(await client.push(limited('stl-3')), 'stl-3', {
      id: 'demo.limited',
      limit: 2,
      windowMs: 60_000,
      source: 'fallback',
    });
    expect(policyStats(app, 'demo.limited')).toMatchObject({ fallback: 3 });
  });
});

// ---- the gen_api limiter and the per-socket message rate ------------------------------------

describe('the gen_api limiter and the per-socket message rate do not interfere', () => {
  let app: RunningGateway;
  const clock = manualClock();
  const echoCounter: PolicyConfig = {
    id: 'echo.counter',
    scope: { service: 'demo', requestType: 'echo' },
    key: 'user_id',
    limit: 1000,
    windowMs: 60_000,
  };
  beforeAll(async () => {
    app = await start(
      {
        demo: true,
        socket: {
          messageRate: { limit: 10, windowMs: 1000, floodDenials: 50, floodWindowMs: 10_000 },
        },
        rateLimits: { policies: [echoCounter] },
      },
      clock,
    );
  });
  afterAll(() => app?.gateway.close());

  it('gen_api denials are pushes with a phx_reply ok: not socket-level denials, no flood', async () => {
    const client = await phoenixClient(app.address.port, 'mix-1');
    clock.advance(1000); // the join's token is back: a burst of 10 is available
    const limitedBefore = app.gateway.stats.rateLimitedMessages;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, n) => client.call(limited(`mx-${n}`))),
    );
    for (const { reply } of results) expect(reply).toEqual({ status: 'ok', response: 'limited' });
    const pushes = results.map(({ pushes: [push] }) => push!);
    expect(pushes.filter((push) => push.success)).toHaveLength(5);
    const denied = pushes.filter((push) => !push.success);
    expect(denied).toHaveLength(3);
    for (const push of denied) expectDenied(push, String(push.request_id), DEMO_POLICY);
    expect(app.gateway.stats.rateLimitedMessages).toBe(limitedBefore);
    expect(client.socket.isConnected()).toBe(true);
  });

  it('a message-rate denial of a gen_api push gets the socket-level error reply and no gen_api push; the gen_api limiter never sees it', async () => {
    const client = await phoenixClient(app.address.port, 'mix-2');
    clock.advance(1000); // the join's token is back: a burst of 10 is available, and no more
    const checksBefore = policyStats(app, 'echo.counter').checks;
    const requests = Array.from({ length: 12 }, (_, n) => echo(`burst-${n}`, `b${n}`));
    const replies = await Promise.all(
      requests.map((request) => replyOf(client.channel.push(EVENT, request))),
    );
    expect(replies.slice(0, 10)).toEqual(
      Array.from({ length: 10 }, () => ({ status: 'ok', response: 'echo' })),
    );
    for (const reply of replies.slice(10)) {
      expect(reply).toEqual({
        status: 'error',
        response: {
          reason: 'rate_limited',
          policy: 'socket_messages',
          limit: 10,
          window_ms: 1000,
          remaining: 0,
          reset_ms: ANY_NUMBER,
          retry_after_ms: ANY_NUMBER,
        },
      });
    }
    await until(
      () =>
        requests.slice(0, 10).every((request) => client.pushesFor(request.request_id).length === 1),
      'the 10 gen_api pushes',
    );
    for (const [n, request] of requests.slice(0, 10).entries())
      expect(client.pushesFor(request.request_id)).toEqual([
        success(request.request_id, { message: `b${n}` }),
      ]);
    // Only the 10 messages that passed the socket limit reached the gen_api limiter.
    expect(policyStats(app, 'echo.counter').checks - checksBefore).toBe(10);
    // No push for the 2 denied ones: a later call (after the bucket refills) is answered first.
    clock.advance(1000);
    expect((await client.push(echo('burst-marker'))).success).toBe(true);
    for (const request of requests.slice(10))
      expect(client.pushesFor(request.request_id)).toEqual([]);
    expect(policyStats(app, 'echo.counter').checks - checksBefore).toBe(11);
    expect(client.socket.isConnected()).toBe(true);
  });
});

// ---- spec 35: which denials make a flood --------------------------------------------------------

/**
 * The decision (protocol/ratelimit.md §3.2): a flood is counted from socket-level denials (the
 * `phx_reply` error `rate_limited`, spec 34's denied push); gen_api denials follow PhoenixGenApi's
 * contract (a `can_retry` push and a `phx_reply` ok) and never close the socket, however many.
 * A client hammering a denied function still spends messages: past the message rate its messages
 * are socket-level denials, and those flood.
 */
describe('spec 35: gen_api denials never close the socket; socket-level denials past floodDenials do', () => {
  let app: RunningGateway;
  const clock = manualClock();
  beforeAll(async () => {
    app = await start(
      {
        demo: true,
        socket: {
          messageRate: {
            limit: 100,
            windowMs: 1000,
            burst: 100,
            floodDenials: 50,
            floodWindowMs: 10_000,
          },
        },
      },
      clock,
    );
  });
  afterAll(() => app?.gateway.close());

  it('80 denied gen_api calls within 10 s (over 50): the socket and channel stay up and no flood is counted', async () => {
    const client = await phoenixClient(app.address.port, 'flood-genapi');
    const floods = app.gateway.stats.floods;
    const pushes = await Promise.all(
      Array.from({ length: 85 }, (_, n) => client.push(limited(`fg-${n}`))),
    );
    expect(pushes.filter((push) => push.success)).toHaveLength(5);
    const denied = pushes.filter((push) => !push.success);
    expect(denied).toHaveLength(80);
    for (const push of denied) expectDenied(push, String(push.request_id), DEMO_POLICY);
    // The channel still works: another function is served (and nothing closed the socket before).
    expect(await client.push(echo('fg-after', 'still here'))).toEqual(
      success('fg-after', { message: 'still here' }),
    );
    expect(client.socket.isConnected()).toBe(true);
    expect(app.gateway.stats.floods).toBe(floods);
  });

  it('the same client past the message rate: 51 socket-level denials within 10 s close the socket 1008 "message flood"', async () => {
    const client = await phoenixClient(app.address.port, 'flood-socket');
    // The join's token is back (a full burst of 100). The clock then stands still: no token
    // comes back while the 160 messages are processed, however slowly (under load, real time
    // refilled tokens at 100/s and fewer than 51 denials were left: the close never came).
    clock.advance(1000);
    const floods = app.gateway.stats.floods;
    let closeCode: number | null = null;
    let closeReason = '';
    client.socket.onClose((event: unknown) => {
      const { code, reason } = event as { code: number; reason: string };
      closeCode ??= code;
      closeReason ||= reason;
    });
    // 100 pass the message rate (burst 100), then each message is a socket-level denial: the 51st closes.
    for (let n = 0; n < 160; n++) client.channel.push(EVENT, echo(`fs-${n}`));
    await until(() => closeCode !== null, 'the socket closed');
    expect(closeCode).toBe(1008);
    expect(closeReason).toBe('message flood');
    expect(app.gateway.stats.floods).toBe(floods + 1);
  });
});
