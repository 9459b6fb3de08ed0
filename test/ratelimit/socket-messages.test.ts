/**
 * Per-socket message rate (rate-limiting spec §5 cases 34 and 35; protocol: an excess client
 * message is answered `phx_reply` status "error" with `{reason: "rate_limited", policy:
 * "socket_messages", limit, window_ms, remaining, reset_ms, retry_after_ms}` and dropped; a flood
 * closes the socket 1008 "message flood"). Raw V2 JSON frames over `ws`, the real `phoenix`
 * client and raw LongPoll, against in-process gateways.
 *
 * Tight mounts use {limit: 10, windowMs: 1000, floodDenials: 5, floodWindowMs: 10000}: GCRA with
 * burst = limit, so 10 messages pass at once and one more every 100 ms (retry_after_ms ≤ 100).
 * Every gateway here runs on a manual clock (gateway `clock` option, which the socket's rate
 * uses): time moves only when a test advances it, so a slow machine cannot refill tokens in the
 * middle of a burst, and the values asserted are exact.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type CloseEventLike, type TransportConstructor } from 'phoenix';
import { createGateway, type Gateway, type SocketOptions } from '../../src/index.js';
import { MESSAGE_RATE_DEFAULTS } from '../../src/ratelimit/message-limit.js';
import { connectHook, roomChannel, type TestAssigns } from '../support/test-app.js';
import { RawClient, type Frame } from '../support/ws-client.js';
import { collectUntil, openSession, post } from '../support/longpoll-client.js';
import { replyOf } from '../support/phoenix-client.js';
import { until } from '../support/wait.js';
import { manualClock, type ManualClock } from '../support/clock.js';

/** Asymmetric matchers, typed `unknown` so the object literals holding them stay typed. */
const ANY_NUMBER: unknown = expect.any(Number);

const TIGHT = { limit: 10, windowMs: 1000, floodDenials: 5, floodWindowMs: 10_000 };
/** GCRA emission interval of TIGHT: one message per 100 ms once the burst is spent. */
const INTERVAL_MS = 100;
/**
 * Denials answered before the refused message that closes the socket. protocol/ratelimit.md §3.2,
 * protocol/phoenix.md (close codes) and the SocketOptions doc say "floodDenials denials within
 * floodWindowMs are a flood" (the floodDenials-th refused message would close); MessageRate.check
 * (src/ratelimit/message-limit.ts) closes on the (floodDenials + 1)-th, which matches the spec's
 * "more than 50 denied pushes" (§5 case 35). Reported to the lead; these tests pin the code's
 * current behaviour through this one function.
 */
const answeredBeforeFlood = (floodDenials: number): number => floodDenials;

interface App {
  gateway: Gateway;
  clock: ManualClock;
  port: number;
  wsUrl(mount: string, query?: string): string;
  lpUrl(mount: string): string;
  /** The phoenix client's endpoint (it appends /websocket). */
  endpoint(mount: string): string;
  close(): Promise<void>;
}

/** A gateway with one mount per entry (room:* on each), on a manual clock. */
async function startApp(mounts: Record<string, Partial<SocketOptions<TestAssigns>>>): Promise<App> {
  const clock = manualClock(1_000_000);
  const gateway = createGateway({ logger: false, clock: clock.now });
  for (const [path, options] of Object.entries(mounts)) {
    gateway
      .socket<TestAssigns>(path, { connect: connectHook, longpoll: { windowMs: 500 }, ...options })
      .channel('room:*', roomChannel);
  }
  const { port } = await gateway.listen(0, '127.0.0.1');
  const base = `127.0.0.1:${port}`;
  return {
    gateway,
    clock,
    port,
    wsUrl: (mount, query = 'vsn=2.0.0') => `ws://${base}${mount}/websocket?${query}`,
    lpUrl: (mount) => `http://${base}${mount}/longpoll`,
    endpoint: (mount) => `ws://${base}${mount}`,
    close: () => gateway.close(),
  };
}

const OK_EMPTY = { status: 'ok', response: {} };

/** The error reply payload of a denied message, with the bounds of TIGHT. */
function expectDenial(
  payload: unknown,
  limit = TIGHT.limit,
  windowMs = TIGHT.windowMs,
  maxWaitMs = INTERVAL_MS,
): { retry_after_ms: number; reset_ms: number } {
  expect(payload).toEqual({
    status: 'error',
    response: {
      reason: 'rate_limited',
      policy: 'socket_messages',
      limit,
      window_ms: windowMs,
      remaining: 0,
      reset_ms: ANY_NUMBER,
      retry_after_ms: ANY_NUMBER,
    },
  });
  const response = (payload as { response: { retry_after_ms: number; reset_ms: number } }).response;
  expect(Number.isInteger(response.retry_after_ms)).toBe(true);
  expect(response.retry_after_ms).toBeGreaterThanOrEqual(1);
  expect(response.retry_after_ms).toBeLessThanOrEqual(maxWaitMs);
  expect(response.reset_ms).toBeGreaterThanOrEqual(1);
  expect(response.reset_ms).toBeLessThanOrEqual(maxWaitMs);
  return response;
}

const isDenial = (frame: Frame): boolean =>
  Array.isArray(frame) &&
  frame[3] === 'phx_reply' &&
  (frame[4] as { response?: { reason?: unknown } }).response?.reason === 'rate_limited';
const isOkReply = (frame: Frame): boolean =>
  Array.isArray(frame) &&
  frame[3] === 'phx_reply' &&
  (frame[4] as { status?: unknown }).status === 'ok';

const echo = (topic: string, ref: number, joinRef: string | null = '1'): unknown[] => [
  joinRef,
  String(ref),
  topic,
  'echo',
  { n: ref },
];
const echoOk = (topic: string, ref: number, joinRef = '1'): unknown[] => [
  joinRef,
  String(ref),
  topic,
  'phx_reply',
  { status: 'ok', response: { n: ref } },
];

const clients: RawClient[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const socket of sockets.splice(0)) socket.disconnect();
});

async function raw(app: App, mount: string): Promise<RawClient> {
  const client = await RawClient.connect(app.wsUrl(mount));
  clients.push(client);
  return client;
}

/** Joins `topic` (join_ref "1"), then lets the join's token come back (the full burst is available). */
async function joinedRaw(app: App, mount: string, topic: string): Promise<RawClient> {
  const client = await raw(app, mount);
  expect(await client.join(topic, '1')).toEqual(['1', '1', topic, 'phx_reply', OK_EMPTY]);
  app.clock.advance(INTERVAL_MS);
  return client;
}

const heartbeat = (ref: string): unknown[] => [null, ref, 'phoenix', 'heartbeat', {}];
const heartbeatOk = (ref: string): unknown[] => [null, ref, 'phoenix', 'phx_reply', OK_EMPTY];

/** Nothing else is on its way: the next frame is the reply to a heartbeat sent now (a marker). */
async function expectNothingBefore(client: RawClient, ref: string): Promise<void> {
  expect(await client.request(heartbeat(ref))).toEqual(heartbeatOk(ref));
}

describe('per-socket message rate', () => {
  let app: App;
  beforeAll(async () => {
    app = await startApp({
      '/tight': { messageRate: TIGHT },
      '/shortflood': { messageRate: { ...TIGHT, floodWindowMs: 1_000 } },
      '/off': { messageRate: false },
      '/defaults': {},
    });
  });
  afterAll(() => app?.close());

  describe('raw ws, V2 JSON', () => {
    it('34: the 11th message of a burst gets the exact rate_limited error reply; the channel stays joined; a message after retry_after_ms succeeds', async () => {
      const client = await joinedRaw(app, '/tight', 'room:burst');
      const before = app.gateway.stats.rateLimitedMessages;
      for (let ref = 2; ref <= 12; ref++) client.send(echo('room:burst', ref));
      const frames = await client.take(11);
      expect(frames.slice(0, 10)).toEqual(
        Array.from({ length: 10 }, (_, i) => echoOk('room:burst', i + 2)),
      );
      const denial = frames[10] as unknown[];
      // The reply of a channel message carries the channel's join_ref, its ref and topic.
      expect(denial.slice(0, 4)).toEqual(['1', '12', 'room:burst', 'phx_reply']);
      const { retry_after_ms } = expectDenial(denial[4]);
      expect(retry_after_ms).toBe(INTERVAL_MS);
      expect(app.gateway.stats.rateLimitedMessages - before).toBe(1);
      // Dropped, not queued: nothing else arrives for it.
      await expectNothingBefore(client, 'hb-burst');

      app.clock.advance(retry_after_ms - 1);
      expectDenial(((await client.request(echo('room:burst', 13))) as unknown[])[4]);
      app.clock.advance(1);
      expect(await client.request(echo('room:burst', 14))).toEqual(echoOk('room:burst', 14));
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
    });

    it('the join counts: a join followed at once by 10 messages has its 10th message denied', async () => {
      const client = await raw(app, '/tight');
      client.send(['1', '1', 'room:joincount', 'phx_join', {}]);
      for (let ref = 2; ref <= 11; ref++) client.send(echo('room:joincount', ref));
      const frames = await client.take(11);
      expect(frames[0]).toEqual(['1', '1', 'room:joincount', 'phx_reply', OK_EMPTY]);
      expect(frames.slice(1, 10)).toEqual(
        Array.from({ length: 9 }, (_, i) => echoOk('room:joincount', i + 2)),
      );
      expect((frames[10] as unknown[]).slice(0, 4)).toEqual([
        '1',
        '11',
        'room:joincount',
        'phx_reply',
      ]);
      expectDenial((frames[10] as unknown[])[4]);
    });

    it("a denied join is answered with the join's own join_ref and ref; joining after retry_after_ms works", async () => {
      const client = await joinedRaw(app, '/tight', 'room:first');
      for (let ref = 2; ref <= 11; ref++) client.send(echo('room:first', ref));
      expect(await client.take(10)).toEqual(
        Array.from({ length: 10 }, (_, i) => echoOk('room:first', i + 2)),
      );
      const denied = (await client.request([
        '12',
        '12',
        'room:second',
        'phx_join',
        {},
      ])) as unknown[];
      expect(denied.slice(0, 4)).toEqual(['12', '12', 'room:second', 'phx_reply']);
      const { retry_after_ms } = expectDenial(denied[4]);
      // The denied join did not join: a message on that topic is unmatched (after the wait).
      app.clock.advance(retry_after_ms);
      expect(await client.request(['12', '13', 'room:second', 'echo', {}])).toEqual([
        null,
        '13',
        'room:second',
        'phx_reply',
        { status: 'error', response: { reason: 'unmatched topic' } },
      ]);
      app.clock.advance(INTERVAL_MS);
      expect(await client.join('room:second', '14')).toEqual([
        '14',
        '14',
        'room:second',
        'phx_reply',
        OK_EMPTY,
      ]);
    });

    it('heartbeats are never limited and do not consume the rate; phx_leave is never limited', async () => {
      const client = await joinedRaw(app, '/tight', 'room:hb');
      // 50 heartbeats (5× the limit) in a burst: all answered ok.
      for (let i = 0; i < 50; i++) client.send(heartbeat(`hb${i}`));
      expect(await client.take(50)).toEqual(
        Array.from({ length: 50 }, (_, i) => heartbeatOk(`hb${i}`)),
      );
      // They consumed nothing: the full burst of 10 channel messages still passes.
      for (let ref = 2; ref <= 11; ref++) client.send(echo('room:hb', ref));
      expect(await client.take(10)).toEqual(
        Array.from({ length: 10 }, (_, i) => echoOk('room:hb', i + 2)),
      );
      // Now exhausted: a message is denied, heartbeats still pass.
      const denied = (await client.request(echo('room:hb', 12))) as unknown[];
      expectDenial(denied[4]);
      for (let i = 50; i < 70; i++) client.send(heartbeat(`hb${i}`));
      expect(await client.take(20)).toEqual(
        Array.from({ length: 20 }, (_, i) => heartbeatOk(`hb${i + 50}`)),
      );
      // The leave too, while the rate is still exhausted.
      const channelsBefore = app.gateway.stats.channels;
      client.send(['1', '13', 'room:hb', 'phx_leave', {}]);
      expect(await client.take(2)).toEqual([
        ['1', '13', 'room:hb', 'phx_reply', OK_EMPTY],
        ['1', '1', 'room:hb', 'phx_close', {}],
      ]);
      expect(app.gateway.stats.channels).toBe(channelsBefore - 1);
      // Two denials in all (one message, plus none for heartbeats and the leave): still open.
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
    });

    it('35: a flood of denials within floodWindowMs (floodDenials 5) closes the socket 1008 "message flood"; stats.floods counts it', async () => {
      const client = await joinedRaw(app, '/tight', 'room:flood');
      const floods = app.gateway.stats.floods;
      const limited = app.gateway.stats.rateLimitedMessages;
      for (let ref = 2; ref < 40; ref++) client.send(echo('room:flood', ref));
      const closed = await client.closed;
      expect(closed).toEqual({ code: 1008, reason: 'message flood' });
      const frames = [...client.frames];
      const denials = frames.filter(isDenial);
      const oks = frames.filter(isOkReply);
      // The denials before the flood are answered; the refused message that makes the flood closes instead.
      expect(denials).toHaveLength(answeredBeforeFlood(TIGHT.floodDenials));
      for (const denial of denials) expectDenial((denial as unknown[])[4]);
      expect(oks).toHaveLength(10);
      expect(frames).toHaveLength(oks.length + denials.length);
      expect(app.gateway.stats.floods - floods).toBe(1);
      expect(app.gateway.stats.rateLimitedMessages - limited).toBe(
        answeredBeforeFlood(TIGHT.floodDenials) + 1,
      );
    });

    it('35: just below the threshold the socket stays open: 4 denials, then traffic within the rate all passes', async () => {
      const client = await joinedRaw(app, '/tight', 'room:below');
      const floods = app.gateway.stats.floods;
      for (let ref = 2; ref <= 15; ref++) client.send(echo('room:below', ref));
      const frames = await client.take(14);
      expect(frames.filter(isOkReply)).toHaveLength(10);
      expect(frames.filter(isDenial)).toHaveLength(TIGHT.floodDenials - 1);
      app.clock.advance(TIGHT.windowMs);
      // Within the flood window still, but at the allowed rate: every message passes.
      for (let ref = 16; ref < 26; ref++) {
        expect(await client.request(echo('room:below', ref))).toEqual(echoOk('room:below', ref));
        app.clock.advance(INTERVAL_MS);
      }
      await expectNothingBefore(client, 'hb-below');
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
      expect(app.gateway.stats.floods).toBe(floods);
    });

    it('35: denials spread wider than floodWindowMs never close the socket (3 rounds of 4 denials, 1 s window)', async () => {
      const client = await joinedRaw(app, '/shortflood', 'room:rounds');
      let ref = 2;
      let denied = 0;
      for (let round = 0; round < 3; round++) {
        const first = ref;
        for (let i = 0; i < 14; i++) client.send(echo('room:rounds', ref++));
        const frames = await client.take(14);
        expect(frames.map((frame) => (frame as unknown[])[1])).toEqual(
          Array.from({ length: 14 }, (_, i) => String(first + i)),
        );
        expect(frames.filter(isDenial)).toHaveLength(4);
        denied += 4;
        app.clock.advance(1_300);
      }
      expect(denied).toBeGreaterThan(TIGHT.floodDenials);
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
      expect(await client.request(echo('room:rounds', ref))).toEqual(echoOk('room:rounds', ref));
    });

    it('messageRate: false disables the limit: 1500 messages in a burst all pass', async () => {
      const client = await raw(app, '/off');
      expect(await client.join('room:off', '1')).toEqual([
        '1',
        '1',
        'room:off',
        'phx_reply',
        OK_EMPTY,
      ]);
      const limited = app.gateway.stats.rateLimitedMessages;
      for (let ref = 2; ref < 1502; ref++) client.send(echo('room:off', ref));
      const frames = await client.take(1500, 10_000);
      expect(frames.every(isOkReply)).toBe(true);
      expect(frames.at(-1)).toEqual(echoOk('room:off', 1501));
      expect(app.gateway.stats.rateLimitedMessages).toBe(limited);
    });

    it('the documented default (1000/s, burst 1000, flood at 50 denials in 10 s) lets a well-behaved client send 1000 messages in a burst without a denial', async () => {
      expect(MESSAGE_RATE_DEFAULTS).toEqual({
        limit: 1000,
        windowMs: 1000,
        burst: 1000,
        floodDenials: 50,
        floodWindowMs: 10_000,
      });
      const client = await raw(app, '/defaults');
      expect(await client.join('room:defaults', '1')).toEqual([
        '1',
        '1',
        'room:defaults',
        'phx_reply',
        OK_EMPTY,
      ]);
      app.clock.advance(1);
      const limited = app.gateway.stats.rateLimitedMessages;
      for (let ref = 2; ref < 1002; ref++) client.send(echo('room:defaults', ref));
      const frames = await client.take(1000, 10_000);
      expect(frames.filter(isDenial)).toEqual([]);
      expect(frames).toEqual(
        Array.from({ length: 1000 }, (_, i) => echoOk('room:defaults', i + 2)),
      );
      expect(app.gateway.stats.rateLimitedMessages).toBe(limited);
    });
  });

  describe('the real phoenix client', () => {
    async function connected(mount: string): Promise<Socket> {
      const socket = new Socket(app.endpoint(mount), {
        transport: WebSocket as unknown as TransportConstructor,
        reconnectAfterMs: () => 60_000,
      });
      sockets.push(socket);
      socket.connect();
      await until(() => socket.isConnected(), 'socket open');
      return socket;
    }

    async function joined(socket: Socket, topic: string): Promise<Channel> {
      const channel = socket.channel(topic);
      expect(await replyOf(channel.join())).toEqual(OK_EMPTY);
      app.clock.advance(INTERVAL_MS);
      return channel;
    }

    it('34: the 11th push of a burst receives "error" with the rate_limited payload; the channel stays joined and a later push succeeds', async () => {
      const socket = await connected('/tight');
      const channel = await joined(socket, 'room:phx-burst');
      const pushes = Array.from({ length: 11 }, (_, i) => replyOf(channel.push('echo', { i })));
      const replies = await Promise.all(pushes);
      expect(replies.slice(0, 10)).toEqual(
        Array.from({ length: 10 }, (_, i) => ({ status: 'ok', response: { i } })),
      );
      const { retry_after_ms } = expectDenial(replies[10]);
      expect(channel.state).toBe('joined');
      app.clock.advance(retry_after_ms);
      expect(await replyOf(channel.push('echo', { again: true }))).toEqual({
        status: 'ok',
        response: { again: true },
      });
      expect(channel.state).toBe('joined');
      expect(socket.isConnected()).toBe(true);
    });

    it('heartbeats (socket.ping) beyond the limit are all answered; leave works while the rate is exhausted', async () => {
      const socket = await connected('/tight');
      const channel = await joined(socket, 'room:phx-hb');
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) => replyOf(channel.push('echo', { i }))),
      );
      expect(replies.every((reply) => reply.status === 'ok')).toBe(true);
      expectDenial(await replyOf(channel.push('echo', {})));
      const rtts = await Promise.all(
        Array.from(
          { length: 30 },
          () =>
            new Promise<number>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error('no heartbeat reply')), 5_000);
              expect(
                socket.ping((ms) => {
                  clearTimeout(timer);
                  resolve(ms);
                }),
              ).toBe(true);
            }),
        ),
      );
      expect(rtts).toHaveLength(30);
      expect(await replyOf(channel.leave())).toEqual(OK_EMPTY);
      expect(socket.isConnected()).toBe(true);
    });

    it('35: a flood closes the client\'s socket with 1008 "message flood"', async () => {
      const socket = await connected('/tight');
      const closes: CloseEventLike[] = [];
      socket.onClose((event) => closes.push(event));
      const channel = await joined(socket, 'room:phx-flood');
      const floods = app.gateway.stats.floods;
      const statuses: string[] = [];
      for (let i = 0; i < 30; i++)
        channel
          .push('echo', { i })
          .receive('ok', () => statuses.push('ok'))
          .receive('error', () => statuses.push('error'));
      const event = await until(() => closes[0], 'the close event');
      expect(event.code).toBe(1008);
      expect(event.reason).toBe('message flood');
      expect(statuses.filter((status) => status === 'error')).toHaveLength(
        answeredBeforeFlood(TIGHT.floodDenials),
      );
      expect(app.gateway.stats.floods - floods).toBe(1);
    });
  });

  describe('LongPoll', () => {
    it('34/35: the denial reply arrives through the poll; a flood ends the LongPoll session', async () => {
      const base = app.lpUrl('/tight');
      const token = await openSession(base);
      expect(
        (await post(base, token, [JSON.stringify(['1', '1', 'room:lp', 'phx_join', {}])])).body,
      ).toEqual({ status: 200 });
      expect(await collectUntil(base, token, (messages) => messages.length >= 1)).toEqual([
        ['1', '1', 'room:lp', 'phx_reply', OK_EMPTY],
      ]);
      app.clock.advance(INTERVAL_MS);

      const lines = Array.from({ length: 11 }, (_, i) => JSON.stringify(echo('room:lp', i + 2)));
      expect((await post(base, token, lines)).body).toEqual({ status: 200 });
      const messages = await collectUntil(base, token, (received) => received.length >= 11);
      expect(messages.slice(0, 10)).toEqual(
        Array.from({ length: 10 }, (_, i) => echoOk('room:lp', i + 2)),
      );
      const denial = messages[10] as unknown[];
      expect(denial.slice(0, 4)).toEqual(['1', '12', 'room:lp', 'phx_reply']);
      expectDenial(denial[4]);

      const sessions = app.gateway.stats.longpollSessions;
      const floods = app.gateway.stats.floods;
      const flood = Array.from({ length: 30 }, (_, i) => JSON.stringify(echo('room:lp', i + 100)));
      // The POST that floods is answered as for a session that ended.
      expect((await post(base, token, flood)).body).toEqual({ status: 410 });
      expect(app.gateway.stats.floods - floods).toBe(1);
      expect(app.gateway.stats.longpollSessions).toBe(sessions - 1);
      // The token no longer names a session: a POST with it is refused.
      expect((await post(base, token, [JSON.stringify(echo('room:lp', 200))])).body).toEqual({
        status: 410,
      });
    });
  });
});

describe('per-socket message rate, exact boundaries', () => {
  let app: App;
  beforeAll(async () => {
    app = await startApp({
      '/defaults': {},
      '/off': { messageRate: false },
      '/tight': { messageRate: TIGHT },
    });
  });
  afterAll(() => app?.close());

  it('defaults: exactly 1000 messages at one instant pass, the 1001st is denied with retry_after_ms 1; a flood of denials closes the socket', async () => {
    const client = await raw(app, '/defaults');
    expect(await client.join('room:d', '1')).toEqual(['1', '1', 'room:d', 'phx_reply', OK_EMPTY]);
    app.clock.advance(1_000); // the join's token is back
    for (let ref = 2; ref <= 1002; ref++) client.send(echo('room:d', ref));
    const frames = await client.take(1001, 10_000);
    expect(frames.slice(0, 1000)).toEqual(
      Array.from({ length: 1000 }, (_, i) => echoOk('room:d', i + 2)),
    );
    expect(frames[1000]).toEqual([
      '1',
      '1002',
      'room:d',
      'phx_reply',
      {
        status: 'error',
        response: {
          reason: 'rate_limited',
          policy: 'socket_messages',
          limit: 1000,
          window_ms: 1000,
          remaining: 0,
          reset_ms: 1,
          retry_after_ms: 1,
        },
      },
    ]);
    // More denials at the same instant until the flood closes the socket.
    for (let ref = 1003; ref <= 1060; ref++) client.send(echo('room:d', ref));
    expect(await client.closed).toEqual({ code: 1008, reason: 'message flood' });
    expect(client.frames.filter(isDenial)).toHaveLength(
      answeredBeforeFlood(MESSAGE_RATE_DEFAULTS.floodDenials) - 1,
    );
    expect(client.frames.filter(isOkReply)).toHaveLength(0);
  });

  it('waiting exactly retry_after_ms lets the next message through (retry-after is honest)', async () => {
    const client = await raw(app, '/tight');
    expect(await client.join('room:t', '1')).toEqual(['1', '1', 'room:t', 'phx_reply', OK_EMPTY]);
    app.clock.advance(1_000);
    for (let ref = 2; ref <= 12; ref++) client.send(echo('room:t', ref));
    const frames = await client.take(11);
    expect(frames[10]).toEqual([
      '1',
      '12',
      'room:t',
      'phx_reply',
      {
        status: 'error',
        response: {
          reason: 'rate_limited',
          policy: 'socket_messages',
          limit: 10,
          window_ms: 1000,
          remaining: 0,
          reset_ms: 100,
          retry_after_ms: 100,
        },
      },
    ]);
    app.clock.advance(99);
    expect(isDenial(await client.request(echo('room:t', 13)))).toBe(true);
    app.clock.advance(1);
    expect(await client.request(echo('room:t', 14))).toEqual(echoOk('room:t', 14));
    // Still 2 denials, below the flood threshold: the socket stays open.
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('messageRate: false at one instant: 2000 messages pass where the default denies the 1001st', async () => {
    const client = await raw(app, '/off');
    expect(await client.join('room:o', '1')).toEqual(['1', '1', 'room:o', 'phx_reply', OK_EMPTY]);
    for (let ref = 2; ref < 2002; ref++) client.send(echo('room:o', ref));
    const frames = await client.take(2000, 10_000);
    expect(frames.every(isOkReply)).toBe(true);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});
