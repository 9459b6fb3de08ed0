import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localBroadcaster } from '../../src/bus/local.js';
import { H } from '../../src/nats/headers.js';
import { topicToken } from '../../src/nats/topic-token.js';
import { defineService, fn } from '../../src/worker/define.js';
import { runCall } from '../../src/worker/runtime.js';
import {
  BroadcastTooLargeError,
  createPublisher,
  InvalidArgumentError,
  NoGatewayError,
  PresenceRequestError,
  serve,
  type RunningService,
} from '../../src/worker/index.js';
import { NatsServer } from '../support/nats.js';
import { until } from '../support/wait.js';

const decoder = new TextDecoder();

/** Every message on `subject`, as a plain NATS client (no SDK) sees it. */
class Tap {
  private constructor(
    readonly sub: Subscription,
    readonly messages: Msg[],
  ) {}
  static async on(nc: NatsConnection, subject: string): Promise<Tap> {
    const messages: Msg[] = [];
    const sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        messages.push(msg);
      },
    });
    const tap = new Tap(sub, messages);
    await nc.flush();
    return tap;
  }
  json(i: number): unknown {
    return JSON.parse(decoder.decode(this.messages[i]!.data));
  }
  async count(n: number): Promise<void> {
    await until(() => this.messages.length >= n, `${n} messages on ${this.sub.getSubject()}`);
  }
}

describe('pushes from backends (worker SDK, client side)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let observer: NatsConnection;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url });
    observer = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await observer?.close();
    await server?.dispose();
  });

  it('createPublisher().broadcast publishes the documented envelope on <p>.topic.<token>', async () => {
    const tap = await Tap.on(observer, 'genapi.topic.>');
    const publisher = createPublisher(nc);
    publisher.broadcast('room:lobby', 'announcement', { message: 'hi', n: 1 });
    publisher.broadcast('room:lobby', 'bare');
    publisher.broadcast('room:a.b', 'dotted', null);
    await tap.count(3);
    expect(tap.messages[0]!.subject).toBe('genapi.topic.room:lobby');
    expect(tap.json(0)).toEqual({ event: 'announcement', payload: { message: 'hi', n: 1 } });
    expect(tap.json(1)).toEqual({ event: 'bare', payload: {} });
    expect(tap.messages[2]!.subject).toBe(`genapi.topic.${topicToken('room:a.b')}`);
    expect(tap.messages[2]!.subject).toBe('genapi.topic.~cm9vbTphLmI');
    expect(tap.json(2)).toEqual({ event: 'dotted', payload: null });
    tap.sub.unsubscribe();
  });

  it('binary payloads travel raw, the event in the Genapi-Event header; prefixes apply', async () => {
    const tap = await Tap.on(observer, 'acme.topic.>');
    const publisher = createPublisher(nc, { prefix: 'acme' });
    publisher.broadcast('room:bin', 'frame', new Uint8Array([0, 1, 2, 255]));
    await tap.count(1);
    const msg = tap.messages[0]!;
    expect(msg.subject).toBe('acme.topic.room:bin');
    expect(msg.headers?.get(H.broadcastEvent)).toBe('frame');
    expect([...msg.data]).toEqual([0, 1, 2, 255]);
    tap.sub.unsubscribe();
  });

  it('disconnect publishes {"id"} on <p>.socket.disconnect', async () => {
    const tap = await Tap.on(observer, 'genapi.socket.disconnect');
    createPublisher(nc).disconnect('user:42');
    await tap.count(1);
    expect(tap.json(0)).toEqual({ id: 'user:42' });
    tap.sub.unsubscribe();
  });

  it('rejects bad input with typed errors before anything is published', () => {
    const publisher = createPublisher(nc, { maxTopicBytes: 16 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: [string, () => void][] = [
      ['topic not a string', () => publisher.broadcast(42 as unknown as string, 'e', {})],
      ['empty event', () => publisher.broadcast('room:x', '', {})],
      ['event not a string', () => publisher.broadcast('room:x', null as unknown as string)],
      ['function payload', () => publisher.broadcast('room:x', 'e', () => 1)],
      ['cyclic payload', () => publisher.broadcast('room:x', 'e', cyclic)],
      ['bigint payload', () => publisher.broadcast('room:x', 'e', { n: 1n })],
      ['topic token too long', () => publisher.broadcast('room:' + 'x'.repeat(20), 'e')],
      ['lone surrogate', () => publisher.broadcast('room:\ud800', 'e')],
      [
        'binary event with a line break',
        () => publisher.broadcast('r', 'a\r\nb', new Uint8Array(1)),
      ],
      ['empty socket id', () => publisher.disconnect('')],
      ['socket id too long', () => publisher.disconnect('x'.repeat(5000))],
    ];
    for (const [label, call] of bad) {
      expect(call, label).toThrow(InvalidArgumentError);
    }
  });

  it("refuses a broadcast over the server's max_payload (BroadcastTooLargeError)", () => {
    const max = nc.info!.max_payload;
    const publisher = createPublisher(nc);
    let caught: unknown;
    try {
      publisher.broadcast('room:big', 'e', new Uint8Array(max + 1));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BroadcastTooLargeError);
    expect((caught as BroadcastTooLargeError).code).toBe('ERR_BROADCAST_TOO_LARGE');
    expect(() => publisher.broadcast('room:big', 'e', { s: 'x'.repeat(max) })).toThrow(
      BroadcastTooLargeError,
    );
  });

  describe('presence(topic)', () => {
    it('asks one gateway on <p>.presence.get and returns the state', async () => {
      const asked: unknown[] = [];
      const responder = observer.subscribe('genapi.presence.get', {
        queue: 'genapi',
        callback: (_err, msg) => {
          asked.push(JSON.parse(msg.string()));
          msg.respond(JSON.stringify({ alice: { metas: [{ phx_ref: 'F1', online_at: 1 }] } }));
        },
      });
      await observer.flush();
      const state = await createPublisher(nc).presence('room:lobby');
      expect(state).toEqual({ alice: { metas: [{ phx_ref: 'F1', online_at: 1 }] } });
      expect(asked).toEqual([{ topic: 'room:lobby' }]);
      responder.unsubscribe();
      await observer.flush();
    });

    it('NoGatewayError when no gateway listens', async () => {
      const err = await createPublisher(nc, { prefix: 'nobody' })
        .presence('room:lobby')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NoGatewayError);
      expect((err as NoGatewayError).code).toBe('ERR_NO_GATEWAY');
    });

    it('a timeout, an error answer and a malformed answer are PresenceRequestErrors', async () => {
      const subs = [
        observer.subscribe('p1.presence.get', { callback: () => undefined }),
        observer.subscribe('p2.presence.get', {
          callback: (_err, msg) => {
            msg.respond('[1,2]');
          },
        }),
        observer.subscribe('p3.presence.get', {
          callback: (_err, msg) => {
            msg.respond(JSON.stringify({ bob: { metas: 'nope' } }));
          },
        }),
        observer.subscribe('p4.presence.get', {
          callback: (_err, msg) => {
            msg.respond(new Uint8Array(0), {
              headers: headersOf([[H.serviceError, 'presence unavailable']]),
            });
          },
        }),
      ];
      await observer.flush();
      const reason = async (prefix: string) => {
        const err = await createPublisher(nc, { prefix, presenceTimeoutMs: 300 })
          .presence('room:x')
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PresenceRequestError);
        return (err as PresenceRequestError).reason;
      };
      expect(await reason('p1')).toBe('timeout');
      expect(await reason('p2')).toBe('invalid_reply');
      expect(await reason('p3')).toBe('invalid_reply');
      expect(await reason('p4')).toBe('failed');
      for (const sub of subs) sub.unsubscribe();
    });

    it('rejects a topic that is not a string', async () => {
      await expect(createPublisher(nc).presence(7 as unknown as string)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    });
  });

  describe('serve(): running.broadcast outside requests, ctx.broadcast inside', () => {
    let running: RunningService;

    beforeAll(async () => {
      const service = defineService({
        name: 'pushy',
        version: '1.0.0',
        functions: {
          shout: fn({
            args: { room: 'string' },
            handler: ({ room }, ctx) => {
              ctx.broadcast(`room:${room}`, 'shouted', { by: ctx.userId });
              return { ok: true };
            },
          }),
          kick: fn({
            args: { id: 'string' },
            handler: ({ id }, ctx) => {
              ctx.disconnect(id);
              return null;
            },
          }),
          bad: fn({
            handler: (_args, ctx) => {
              ctx.broadcast('room:x', '', {});
              return null;
            },
          }),
        },
      });
      running = await serve(service, { nats: nc, pushOnStart: false });
    });

    afterAll(async () => {
      await running?.stop();
    });

    it('running.broadcast and running.disconnect', async () => {
      const topics = await Tap.on(observer, 'genapi.topic.room:outside');
      const kicks = await Tap.on(observer, 'genapi.socket.disconnect');
      running.broadcast('room:outside', 'tick', { n: 1 });
      running.disconnect('user:7');
      await topics.count(1);
      await kicks.count(1);
      expect(topics.json(0)).toEqual({ event: 'tick', payload: { n: 1 } });
      expect(kicks.json(0)).toEqual({ id: 'user:7' });
      topics.sub.unsubscribe();
      kicks.sub.unsubscribe();
    });

    it('ctx.broadcast / ctx.disconnect inside a handler, before the reply', async () => {
      const topics = await Tap.on(observer, 'genapi.topic.room:inside');
      const kicks = await Tap.on(observer, 'genapi.socket.disconnect');
      const reply = await observer.request(
        'genapi.fn.pushy.shout',
        JSON.stringify({ room: 'inside' }),
        { timeout: 5000, headers: headersOf([[H.userId, 'alice']]) },
      );
      expect(JSON.parse(reply.string())).toEqual({ ok: true });
      await topics.count(1);
      expect(topics.json(0)).toEqual({ event: 'shouted', payload: { by: 'alice' } });
      await observer.request('genapi.fn.pushy.kick', JSON.stringify({ id: 'user:9' }), {
        timeout: 5000,
      });
      await kicks.count(1);
      expect(kicks.json(0)).toEqual({ id: 'user:9' });
      topics.sub.unsubscribe();
      kicks.sub.unsubscribe();
    });

    it('a handler whose broadcast is invalid fails like any throw (500)', async () => {
      const reply = await observer.request('genapi.fn.pushy.bad', '{}', { timeout: 5000 });
      expect(reply.headers?.get(H.serviceErrorCode)).toBe('500');
      expect(reply.headers?.get(H.serviceError)).toMatch(/non-empty string/);
    });
  });
});

function headersOf(entries: [string, string][]): MsgHdrs {
  const h = natsHeaders();
  for (const [name, value] of entries) h.set(name, value);
  return h;
}

describe('in-process pushes (LocalBus: ctx.broadcast through the gateway)', () => {
  const meta = {
    requestId: 'r',
    service: 'local',
    requestType: 'op',
    version: null,
    userId: 'u1',
    deviceId: null,
    roles: [],
    responseType: 'sync' as const,
    deadline: Date.now() + 60_000,
    gateway: null,
  };

  it('ctx.broadcast and ctx.disconnect reach the gateway, checked like a NATS worker', async () => {
    const sent: unknown[][] = [];
    const pushes = localBroadcaster({
      broadcast: (topic, event, payload) => sent.push(['broadcast', topic, event, payload]),
      disconnect: (id) => sent.push(['disconnect', id]),
    });
    const service = defineService({
      name: 'local',
      functions: {
        op: fn({
          handler: (_args, ctx) => {
            ctx.broadcast('room:1', 'hello', { from: ctx.userId });
            ctx.broadcast('room:1', 'bare');
            ctx.disconnect('user:2');
            return 'done';
          },
        }),
        bad: fn({
          handler: (_args, ctx) => {
            ctx.broadcast('room:1', '');
          },
        }),
      },
    });
    expect(await runCall(service.functions.get('op')!, {}, meta, undefined, pushes)).toEqual({
      ok: true,
      result: 'done',
    });
    expect(sent).toEqual([
      ['broadcast', 'room:1', 'hello', { from: 'u1' }],
      ['broadcast', 'room:1', 'bare', {}],
      ['disconnect', 'user:2'],
    ]);
    expect(await runCall(service.functions.get('bad')!, {}, meta, undefined, pushes)).toMatchObject(
      { ok: false, code: 500 },
    );
    expect(() => pushes.disconnect('')).toThrow(InvalidArgumentError);
  });

  it('without a broadcaster, ctx.broadcast is an InvalidStateError (a transport that cannot push)', async () => {
    const service = defineService({
      name: 'local',
      functions: { op: fn({ handler: (_args, ctx) => ctx.broadcast('room:1', 'x') }) },
    });
    expect(await runCall(service.functions.get('op')!, {}, meta)).toEqual({
      ok: false,
      error: 'this transport cannot broadcast',
      code: 500,
    });
  });
});
