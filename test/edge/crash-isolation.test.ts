/**
 * The fault boundary per connection (issue 12, point 4): an error thrown or rejected by user code
 * (connect hook, channel callbacks, gen_api hooks, Presence callbacks) or by the gateway's own
 * handling of a frame costs only the socket (close 1011, or HTTP 500 for a connect) or the channel
 * (phx_error) it belongs to. Each case runs on one real gateway with 20 bystander sockets that
 * must keep their heartbeat round trip, their channel and their connection.
 *
 * Covered elsewhere: a throwing Presence `fetch` (test/e2e/presence-fetch-errors.test.ts); a
 * channel that throws in a timer or leaves a rejection un-awaited, which only the process can
 * catch (test/cli/gen-gateway.test.ts, "errors escaping user code").
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createGateway,
  createGenApi,
  defineChannel,
  ok,
  type Channel,
  type Gateway,
} from '../../src/index.js';
import { ChannelInstance } from '../../src/channel/instance.js';
import { defineService, fn } from '../../src/worker/define.js';
import { lp, openSession, post } from '../support/longpoll-client.js';
import { RawClient, type Frame } from '../support/ws-client.js';
import { deferred, until, type Deferred } from '../support/wait.js';

const BYSTANDERS = 20;
const OK = { status: 'ok', response: {} };

/** Every log line the gateway writes, parsed. */
const logs: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n'))
      if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

/** The first log line with message `msg` (and the given fields) written from index `from` on. */
function logLine(msg: string, from: number, fields: Record<string, unknown> = {}) {
  return until(
    () =>
      logs
        .slice(from)
        .find(
          (line) =>
            line.msg === msg && Object.entries(fields).every(([key, value]) => line[key] === value),
        ),
    `log line "${msg}"`,
  );
}

/** Fails the way `mode` says: a synchronous throw, or a rejected promise. */
function fail(mode: unknown, what: string): Promise<never> {
  if (mode === 'reject') return Promise.reject(new Error(`${what} rejected`));
  throw new Error(`${what} threw`);
}

interface Assigns {
  user_id: string | null;
  mode?: unknown;
}

/** Joins of `join:*` with `{hold: true}` wait for the test: the frames behind them queue up. */
let held: { entered: Deferred<void>; release: Deferred<void> } | null = null;
/** `term:*` channels whose terminate ran (topic/key), in order. */
const terminated: string[] = [];

let gateway: Gateway;
let port = 0;
const ws = (query = '') => `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0${query}`;
const longpoll = () => `http://127.0.0.1:${port}/socket/longpoll`;
const clients: RawClient[] = [];
const bystanders: RawClient[] = [];
let heartbeats = 0;

async function connect(query = ''): Promise<RawClient> {
  const client = await RawClient.connect(ws(query));
  clients.push(client);
  return client;
}

function reply(joinRef: string | null, ref: string, topic: string, response: unknown = {}) {
  return [joinRef, ref, topic, 'phx_reply', { status: 'ok', response }];
}

/** Every bystander still connected, answering a heartbeat and a message on its channel. */
async function bystandersServed(): Promise<void> {
  const round = ++heartbeats;
  await Promise.all(
    bystanders.map(async (client) => {
      expect(client.ws.readyState).toBe(client.ws.OPEN);
      expect(await client.request([null, `hb${round}`, 'phoenix', 'heartbeat', {}])).toEqual([
        null,
        `hb${round}`,
        'phoenix',
        'phx_reply',
        OK,
      ]);
      expect(await client.request(['b', `m${round}`, 'in:lobby', 'ping', {}])).toEqual(
        reply('b', `m${round}`, 'in:lobby', { event: 'ping' }),
      );
    }),
  );
  expect(gateway.stats.sockets).toBeGreaterThanOrEqual(BYSTANDERS);
}

/**
 * Every frame the gateway sent `client` before answering a heartbeat sent now (it handles a
 * socket's frames in order): proves the socket is served and returns what came before.
 */
async function untilHeartbeat(client: RawClient): Promise<Frame[]> {
  const ref = `marker-${++heartbeats}`;
  client.send([null, ref, 'phoenix', 'heartbeat', {}]);
  const before: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (Array.isArray(frame) && frame[1] === ref) {
      expect(frame).toEqual([null, ref, 'phoenix', 'phx_reply', OK]);
      return before;
    }
    before.push(frame);
  }
}

/** The phx_error a crashed channel sends: both refs are its join_ref. */
function phxError(joinRef: string, topic: string): Frame {
  return [joinRef, joinRef, topic, 'phx_error', { reason: 'channel_crash' }];
}

beforeAll(async () => {
  gateway = createGateway({ logger: pino({ level: 'warn' }, sink) });
  const mount = gateway.socket<Assigns>('/socket', {
    connect: ({ params }) => {
      if (params.crash !== undefined) return fail(params.crash, 'connect hook');
      const user = typeof params.user_id === 'string' ? params.user_id : null;
      return { assigns: { user_id: user }, id: user };
    },
  });
  mount
    .channel(
      'join:*',
      defineChannel<Assigns>({
        async join(_topic, payload, channel) {
          const { mode, after, hold } = payload as { mode?: string; after?: string; hold?: true };
          if (mode !== undefined) return fail(mode, 'join');
          channel.assign({ mode: after });
          if (hold && held) {
            held.entered.resolve();
            await held.release.promise;
          }
          return ok();
        },
        afterJoin(channel) {
          if (channel.assigns.mode !== undefined) return fail(channel.assigns.mode, 'afterJoin');
        },
        handleIn: (event) => ok({ event }),
      }),
    )
    .channel(
      'in:*',
      defineChannel<Assigns>({
        join: () => ok(),
        handleIn(event) {
          if (event === 'throw' || event === 'reject') return fail(event, 'handleIn');
          return ok({ event });
        },
      }),
    )
    .channel(
      'out:*',
      defineChannel<Assigns>({
        intercept: ['news'],
        join(_topic, payload, channel) {
          channel.assign({ mode: (payload as { explode?: string }).explode });
        },
        handleIn(event, _payload, channel) {
          if (event === 'shout') channel.broadcast('news', { n: 1 });
          return ok();
        },
        handleOut(event, payload, channel) {
          if (channel.assigns.mode !== undefined) return fail(channel.assigns.mode, 'handleOut');
          channel.push(event, payload);
        },
      }),
    )
    .channel(
      'term:*',
      defineChannel<Assigns>({
        join(topic, payload, channel: Channel<Assigns>) {
          const { key, term } = payload as { key: string; term?: string };
          gateway.presence.track(channel, key, {});
          channel.assign({ mode: term, user_id: key });
          return ok();
        },
        handleIn: () => ok(),
        terminate(_reason, channel) {
          terminated.push(`${channel.topic}/${channel.assigns.user_id}`);
          if (channel.assigns.mode !== undefined) return fail(channel.assigns.mode, 'terminate');
        },
      }),
    );

  const genApi = createGenApi(gateway);
  genApi
    .hook('before_throw', { before: () => fail('throw', 'before hook') })
    .hook('before_reject', { before: () => fail('reject', 'before hook') })
    .hook('before_null', {
      before: () => {
        // Hooks may throw anything; a non-Error must not become a different failure.
        throw null; // eslint-disable-line @typescript-eslint/only-throw-error
      },
    })
    .hook('after_throw', { after: () => fail('throw', 'after hook') })
    .hook('after_reject', { after: () => fail('reject', 'after hook') });
  const echo = (args: Record<string, unknown>) => ({ echoed: args });
  genApi.register(
    defineService({
      name: 'hooked',
      version: '1.0.0',
      functions: {
        before_throw: fn({ beforeExecute: 'before_throw', handler: echo }),
        before_reject: fn({ beforeExecute: 'before_reject', handler: echo }),
        before_null: fn({ beforeExecute: 'before_null', handler: echo }),
        after_throw: fn({ afterExecute: 'after_throw', handler: echo }),
        after_reject: fn({ afterExecute: 'after_reject', handler: echo }),
      },
    }),
  );
  genApi.mount(mount);

  port = (await gateway.listen(0, '127.0.0.1')).port;
  for (let i = 0; i < BYSTANDERS; i++) {
    const client = await RawClient.connect(ws(`&user_id=bystander-${i}`));
    expect(await client.join('in:lobby', 'b')).toEqual(reply('b', 'b', 'in:lobby'));
    bystanders.push(client);
  }
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const client of clients.splice(0)) client.close();
  // Each case ends with every bystander still served, and the next starts with only them.
  await bystandersServed();
  await until(
    () => gateway.stats.sockets === BYSTANDERS && gateway.stats.channels === BYSTANDERS,
    () => `only the bystanders left on the gateway: ${JSON.stringify(gateway.stats)}`,
  );
});

afterAll(async () => {
  for (const client of bystanders) client.close();
  await gateway.close();
});

describe('a channel callback that fails costs its channel only', () => {
  it('join: a sync throw and a rejection are each answered "join crashed"; the socket stays', async () => {
    const before = gateway.stats.channelErrors;
    const from = logs.length;
    const client = await connect('&user_id=joiner');
    for (const [ref, mode] of [
      ['1', 'throw'],
      ['2', 'reject'],
    ] as const) {
      expect(await client.join(`join:${mode}`, ref, { mode })).toEqual([
        ref,
        ref,
        `join:${mode}`,
        'phx_reply',
        { status: 'error', response: { reason: 'join crashed' } },
      ]);
    }
    expect(gateway.stats.channelErrors).toBe(before + 2);
    const logged = await logLine('channel join crashed', from, { topic: 'join:throw' });
    expect(logged).toMatchObject({ id: 'joiner', err: { message: 'join threw' } });
    await logLine('channel join crashed', from, { topic: 'join:reject' });
    // The same socket joins and is served.
    expect(await client.join('in:after', '3')).toEqual(reply('3', '3', 'in:after'));
    expect(await client.request(['3', '4', 'in:after', 'x', {}])).toEqual(
      reply('3', '4', 'in:after', { event: 'x' }),
    );
  });

  it('afterJoin: a throw and a rejection each crash their channel after the ok reply', async () => {
    const client = await connect();
    for (const [ref, after] of [
      ['1', 'throw'],
      ['2', 'reject'],
    ] as const) {
      const topic = `join:after-${after}`;
      client.send([ref, ref, topic, 'phx_join', { after }]);
      expect(await client.take(2)).toEqual([reply(ref, ref, topic), phxError(ref, topic)]);
    }
    await client.quiet();
  });

  it("handleIn: a throw and a rejection each send phx_error; the socket's other channels keep working", async () => {
    const before = gateway.stats.channelErrors;
    const from = logs.length;
    const client = await connect('&user_id=pusher');
    for (const topic of ['in:a', 'in:b', 'in:side'])
      expect(await client.join(topic, topic)).toEqual(reply(topic, topic, topic));
    expect(await client.request(['in:a', '1', 'in:a', 'throw', {}])).toEqual(
      phxError('in:a', 'in:a'),
    );
    expect(await client.request(['in:b', '2', 'in:b', 'reject', {}])).toEqual(
      phxError('in:b', 'in:b'),
    );
    expect(gateway.stats.channelErrors).toBe(before + 2);
    expect(await logLine('channel crashed', from, { topic: 'in:a' })).toMatchObject({
      id: 'pusher',
      err: { message: 'handleIn threw' },
    });
    // The crashed channels are gone (the client may rejoin them); the third one answers.
    expect(await client.request(['in:a', '3', 'in:a', 'x', {}])).toEqual([
      null,
      '3',
      'in:a',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
    expect(await client.request(['in:side', '4', 'in:side', 'x', {}])).toEqual(
      reply('in:side', '4', 'in:side', { event: 'x' }),
    );
    expect(await client.join('in:a', '5')).toEqual(reply('5', '5', 'in:a'));
  });

  it('handleOut (an intercepted broadcast): a throw and a rejection crash only the intercepting channel', async () => {
    const peer = await connect();
    const culprit = await connect();
    expect(await peer.join('out:room', 'p')).toEqual(reply('p', 'p', 'out:room'));
    for (const [topic, explode] of [
      ['out:room', 'throw'],
      ['out:other', 'reject'],
    ] as const)
      expect(await culprit.join(topic, explode, { explode })).toEqual(
        reply(explode, explode, topic),
      );
    expect(await culprit.join('in:side', 's')).toEqual(reply('s', 's', 'in:side'));

    // The broadcaster's own handleOut runs after its handleIn replied (mailbox order).
    peer.send(['p', '1', 'out:room', 'shout', {}]);
    expect(await peer.take(2)).toEqual([
      reply('p', '1', 'out:room'),
      ['p', null, 'out:room', 'news', { n: 1 }],
    ]);
    expect(await culprit.next()).toEqual(phxError('throw', 'out:room'));

    const other = await connect();
    expect(await other.join('out:other', 'o')).toEqual(reply('o', 'o', 'out:other'));
    other.send(['o', '1', 'out:other', 'shout', {}]);
    expect(await other.take(2)).toEqual([
      reply('o', '1', 'out:other'),
      ['o', null, 'out:other', 'news', { n: 1 }],
    ]);
    expect(await culprit.next()).toEqual(phxError('reject', 'out:other'));
    expect(await culprit.request(['s', '2', 'in:side', 'x', {}])).toEqual(
      reply('s', '2', 'in:side', { event: 'x' }),
    );
  });

  it('terminate: a throw or a rejection does not stop the teardown (other channels, presence, registry, gauges)', async () => {
    const watcher = await connect();
    for (const topic of ['term:one', 'term:two'])
      expect(await watcher.join(topic, topic, { key: 'watcher' })).toEqual(
        reply(topic, topic, topic),
      );
    const leaves = (frames: Frame[]) =>
      frames.filter(
        (frame) =>
          Array.isArray(frame) &&
          frame[3] === 'presence_diff' &&
          Object.keys((frame[4] as { leaves: object }).leaves).length > 0,
      );

    const sockets = gateway.stats.sockets;
    const channels = gateway.stats.channels;
    const errors = gateway.stats.channelErrors;
    const culprit = await connect('&user_id=terminator');
    // Two channels whose terminate fails (first a throw, then a rejection), then a plain one.
    expect(await culprit.join('term:one', '1', { key: 'c1', term: 'throw' })).toEqual(
      reply('1', '1', 'term:one'),
    );
    expect(await culprit.join('term:two', '2', { key: 'c2', term: 'reject' })).toEqual(
      reply('2', '2', 'term:two'),
    );
    expect(await culprit.join('term:three', '3', { key: 'c3' })).toEqual(
      reply('3', '3', 'term:three'),
    );
    expect(gateway.stats.channels).toBe(channels + 3);
    terminated.length = 0;

    // A leave: the client gets its reply and phx_close though terminate throws.
    const leave = await culprit.request(['1', '4', 'term:one', 'phx_leave', {}]);
    expect(leave).toEqual(reply('1', '4', 'term:one'));
    expect(await culprit.next()).toEqual(['1', '1', 'term:one', 'phx_close', {}]);
    expect(terminated).toEqual(['term:one/c1']);

    // The socket goes: every channel is ended whatever the first one's terminate does.
    culprit.ws.terminate();
    await until(() => gateway.stats.sockets === sockets, 'the culprit socket torn down');
    expect(terminated).toEqual(['term:one/c1', 'term:two/c2', 'term:three/c3']);
    expect(gateway.stats.channels).toBe(channels);
    await until(() => gateway.stats.channelErrors === errors + 2, 'both terminate failures');
    expect(gateway.presence.list('term:one')).not.toHaveProperty('c1');
    expect(gateway.presence.list('term:two')).not.toHaveProperty('c2');
    expect(gateway.disconnect('terminator')).toBe(0);
    // The watcher saw both leaves and is still served.
    expect(leaves(await untilHeartbeat(watcher))).toEqual([
      [
        null,
        null,
        'term:one',
        'presence_diff',
        { joins: {}, leaves: { c1: expect.anything() as unknown } },
      ],
      [
        null,
        null,
        'term:two',
        'presence_diff',
        { joins: {}, leaves: { c2: expect.anything() as unknown } },
      ],
    ]);
  });
});

describe('a connect hook that fails costs its connect only', () => {
  it('a sync throw and a rejection answer HTTP 500 on both transports, counted and logged', async () => {
    const before = gateway.stats.connectErrors;
    const from = logs.length;
    for (const crash of ['throw', 'reject']) {
      expect((await RawClient.handshake(ws(`&crash=${crash}`))).status).toBe(500);
      const refused = await lp(`${longpoll()}?vsn=2.0.0&crash=${crash}`);
      expect(refused.http).toBe(500);
    }
    expect(gateway.stats.connectErrors).toBe(before + 4);
    expect(await logLine('connect hook threw', from)).toMatchObject({
      transport: 'websocket',
      err: { message: 'connect hook threw' },
    });
    // The next client connects.
    const client = await connect();
    expect(await client.join('in:x', '1')).toEqual(reply('1', '1', 'in:x'));
  });
});

describe('gen_api hooks that fail cost their request only', () => {
  async function call(client: RawClient, id: string, requestType: string) {
    client.send([
      'g',
      id,
      'gen_api:lobby',
      'phoenix_gen_api',
      { request_id: id, service: 'hooked', request_type: requestType, args: { n: 1 } },
    ]);
    return client.take(2);
  }
  const response = (id: string, fields: object) => ({
    request_id: id,
    result: null,
    success: false,
    error: null,
    async: false,
    has_more: false,
    can_retry: false,
    ...fields,
  });

  it('a before hook that throws, rejects or throws a non-Error rejects the request with its message', async () => {
    const client = await connect('&user_id=caller');
    expect(await client.join('gen_api:lobby', 'g')).toEqual(reply('g', 'g', 'gen_api:lobby'));
    for (const [id, type, message] of [
      ['r1', 'before_throw', 'before hook threw'],
      ['r2', 'before_reject', 'before hook rejected'],
      ['r3', 'before_null', 'null'],
    ] as const) {
      expect(await call(client, id, type)).toEqual([
        [
          'g',
          null,
          'gen_api:lobby',
          'phoenix_gen_api',
          response(id, { error: `hook rejected: ${JSON.stringify(message)}` }),
        ],
        reply('g', id, 'gen_api:lobby', type),
      ]);
    }
  });

  it('an after hook that throws or rejects keeps the original response', async () => {
    const client = await connect('&user_id=caller');
    expect(await client.join('gen_api:lobby', 'g')).toEqual(reply('g', 'g', 'gen_api:lobby'));
    for (const [id, type] of [
      ['r4', 'after_throw'],
      ['r5', 'after_reject'],
    ] as const) {
      expect(await call(client, id, type)).toEqual([
        [
          'g',
          null,
          'gen_api:lobby',
          'phoenix_gen_api',
          response(id, { success: true, result: { echoed: { n: 1 } } }),
        ],
        reply('g', id, 'gen_api:lobby', type),
      ]);
    }
  });
});

describe('a failure inside the gateway while handling a frame costs its socket only (1011)', () => {
  /**
   * Every user callback is guarded where it is called, so no user code reaches this boundary any
   * more: a defect in dispatching one channel's message is simulated by making the channel's
   * mailbox entry point throw for the topic `in:defect`.
   */
  function breakDispatch(): void {
    // Called with the instance as `this` below.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = ChannelInstance.prototype.handleMessage;
    vi.spyOn(ChannelInstance.prototype, 'handleMessage').mockImplementation(function (
      this: ChannelInstance,
      ...args: Parameters<ChannelInstance['handleMessage']>
    ) {
      if (this.topic === 'in:defect') throw new Error('dispatch defect');
      return original.apply(this, args);
    });
  }

  it('dispatched at once (WebSocket): the socket is closed with 1011, logged with its id and counted', async () => {
    breakDispatch();
    const before = gateway.stats.internalErrors;
    const from = logs.length;
    const client = await connect('&user_id=defective');
    expect(await client.join('in:defect', '1')).toEqual(reply('1', '1', 'in:defect'));
    client.send(['1', '2', 'in:defect', 'x', {}]);
    expect(await client.closed).toEqual({ code: 1011, reason: 'internal error' });
    expect(gateway.stats.internalErrors).toBe(before + 1);
    expect(
      await logLine('handling a frame failed, closing the socket', from, { topic: 'in:defect' }),
    ).toMatchObject({ id: 'defective', err: { message: 'dispatch defect' } });
  });

  it('queued behind a pending join (Session.enqueue): the tail fails, the socket is closed with 1011', async () => {
    breakDispatch();
    const before = gateway.stats.internalErrors;
    const client = await connect();
    expect(await client.join('in:defect', '1')).toEqual(reply('1', '1', 'in:defect'));
    held = { entered: deferred(), release: deferred() };
    client.send(['2', '2', 'join:held', 'phx_join', { hold: true }]);
    await held.entered.promise;
    // Queued behind the join; the heartbeat after it must never be answered.
    client.send(['1', '3', 'in:defect', 'x', {}]);
    client.send([null, 'after', 'phoenix', 'heartbeat', {}]);
    held.release.resolve();
    held = null;
    expect(await client.next()).toEqual(reply('2', '2', 'join:held'));
    expect(await client.closed).toEqual({ code: 1011, reason: 'internal error' });
    expect(client.frames).toEqual([]);
    expect(gateway.stats.internalErrors).toBe(before + 1);
  });

  it('LongPoll: the POST is answered, the session ends', async () => {
    breakDispatch();
    const before = gateway.stats.internalErrors;
    const token = await openSession(longpoll());
    const join = JSON.stringify(['1', '1', 'in:defect', 'phx_join', {}]);
    expect((await post(longpoll(), token, [join])).body).toEqual({ status: 200 });
    const posted = await post(longpoll(), token, [
      JSON.stringify(['1', '2', 'in:defect', 'x', {}]),
    ]);
    expect(posted.body).toEqual({ status: 400, reason: 'invalid frame' });
    expect(gateway.stats.internalErrors).toBe(before + 1);
    // The session is gone: a POST with its token is answered 410 (a GET would open a new one).
    expect((await post(longpoll(), token, [join])).body).toEqual({ status: 410 });
  });
});

describe('Presence callbacks that fail during a teardown', () => {
  it('an onLocalChange listener and its onChangeError both throwing: the socket is still torn down', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => {
      if (warning.name === 'PresenceWarning') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    const own = createGateway({
      logger: false,
      presence: {
        onChangeError: (err) => {
          throw err;
        },
      },
    });
    try {
      own.socket('/socket').channel(
        'room:*',
        defineChannel({
          join(_topic, payload, channel) {
            own.presence.track(channel, (payload as { key: string }).key, {});
          },
        }),
      );
      own.presence.onLocalChange((change) => {
        if (change.kind === 'leave') throw new Error('listener boom');
      });
      const { port: ownPort } = await own.listen(0, '127.0.0.1');
      const url = `ws://127.0.0.1:${ownPort}/socket/websocket?vsn=2.0.0`;
      const watcher = await RawClient.connect(url);
      const leaving = await RawClient.connect(url);
      expect(await watcher.join('room:a', '1', { key: 'w' })).toEqual(reply('1', '1', 'room:a'));
      expect(await leaving.join('room:a', '1', { key: 'l' })).toEqual(reply('1', '1', 'room:a'));
      leaving.ws.terminate();
      await until(() => own.stats.sockets === 1, 'the leaving socket torn down');
      expect(own.stats.channels).toBe(1);
      expect(own.presence.list('room:a')).not.toHaveProperty('l');
      await until(() => warnings.length >= 2, 'the two presence warnings');
      expect(warnings[0]).toContain('presence onChangeError threw on leave room:a/l');
      expect(warnings[1]).toContain('listener boom');
      const seen = await untilHeartbeat(watcher);
      expect(seen.at(-1)).toEqual([
        null,
        null,
        'room:a',
        'presence_diff',
        { joins: {}, leaves: { l: expect.anything() as unknown } },
      ]);
      watcher.close();
    } finally {
      process.off('warning', onWarning);
      await own.close();
    }
  });
});
