/**
 * Bounded work per client (issue 12, "Why" point 3): the default frame size, the inbound byte
 * rate checked before parsing, slow consumers judged over time rather than by one write, and
 * the maximum broadcast size. Real sockets against in-process gateways. The JSON bomb (30 clients
 * at the max frame size next to a bystander) is in json-bomb.test.ts.
 */
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createGateway,
  defineChannel,
  error,
  ok,
  type Gateway,
  type SocketOptions,
} from '../../src/index.js';
import { collect, openSession, post } from '../support/longpoll-client.js';
import { RawClient } from '../support/ws-client.js';
import { realTime, until } from '../support/wait.js';
import { expectEmpty } from './helpers.js';

const OK = { status: 'ok', response: {} };

const opened: RawClient[] = [];
afterEach(() => {
  for (const client of opened.splice(0)) client.ws.terminate();
});

async function connect(url: string): Promise<RawClient> {
  const client = await RawClient.connect(url);
  opened.push(client);
  return client;
}

/**
 * `room:*`: `echo` replies its payload; `big` broadcasts a server-made payload of `bytes`
 * characters (the sender's frame stays small); `big_caught` does the same but answers a refused
 * broadcast with an error reply.
 */
const bigRoom = defineChannel({
  join: () => ok(),
  handleIn(event, payload, channel) {
    const { bytes } = payload as { bytes?: number };
    if (event === 'echo') return ok(payload);
    if (event === 'big') {
      channel.broadcast('big', { data: 'x'.repeat(bytes ?? 0) });
      return ok();
    }
    if (event === 'big_caught') {
      try {
        channel.broadcast('big', { data: 'x'.repeat(bytes ?? 0) });
      } catch (err) {
        return error({ reason: 'broadcast_too_large', code: (err as { code: string }).code });
      }
      return ok();
    }
    return error({ reason: 'unknown event' });
  },
});

async function ownGateway(options: SocketOptions): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway({ logger: false });
  gateway.socket('/socket', options).channel('room:*', bigRoom);
  const address: AddressInfo = await gateway.listen(0, '127.0.0.1');
  return { gateway, url: `ws://127.0.0.1:${address.port}/socket/websocket?vsn=2.0.0` };
}

/** A valid echo frame of exactly `size` bytes. */
function echoFrame(size: number, ref = '2'): string {
  const base = JSON.stringify(['1', ref, 'room:a', 'echo', { pad: '' }]);
  const frame = JSON.stringify([
    '1',
    ref,
    'room:a',
    'echo',
    { pad: 'p'.repeat(size - base.length) },
  ]);
  expect(Buffer.byteLength(frame)).toBe(size);
  return frame;
}

describe('maxFrameSize defaults to 64 KiB', () => {
  let gateway: Gateway;
  let url: string;
  beforeAll(async () => {
    ({ gateway, url } = await ownGateway({}));
  });
  afterAll(() => gateway.close());

  it('a frame of 65 536 bytes is processed; 65 537 bytes close the socket with 1009', async () => {
    const client = await connect(url);
    expect(await client.join('room:a', '1')).toEqual(['1', '1', 'room:a', 'phx_reply', OK]);
    client.sendText(echoFrame(65_536));
    expect(((await client.next()) as unknown[]).slice(0, 4)).toEqual([
      '1',
      '2',
      'room:a',
      'phx_reply',
    ]);
    const before = gateway.stats.invalidFrames;
    client.sendText(echoFrame(65_537, '3'));
    expect((await client.closed).code).toBe(1009);
    expect(client.frames).toEqual([]);
    expect(gateway.stats.invalidFrames).toBe(before + 1);
    await expectEmpty(gateway);
  });
});

describe('inboundByteRate closes a socket that floods bytes, before parsing its frames', () => {
  let gateway: Gateway;
  let url: string;
  beforeAll(async () => {
    // 60 kB frames: the burst pays for two, the refill (1 kB/s) for nothing more in this test.
    ({ gateway, url } = await ownGateway({
      inboundByteRate: { bytesPerSecond: 1_000, burstBytes: 130_000 },
      longpoll: { maxBodyBytes: 1_000_000 },
    }));
  });
  afterAll(() => gateway.close());

  it('the frame the bucket cannot pay for closes with 1008 "byte rate exceeded"; it and later frames are not processed', async () => {
    const flooder = await connect(url);
    const bystander = await connect(url);
    expect(await flooder.join('room:a', '1')).toEqual(['1', '1', 'room:a', 'phx_reply', OK]);
    expect(await bystander.join('room:a', '1')).toEqual(['1', '1', 'room:a', 'phx_reply', OK]);
    const floodsBefore = gateway.stats.floods;
    for (let i = 0; i < 10; i++) flooder.sendText(echoFrame(60_000, `f${i}`));
    const info = await flooder.closed;
    expect(info).toEqual({ code: 1008, reason: 'byte rate exceeded' });
    // The join reply was read by join(); the two frames the burst paid for were answered.
    const refs = flooder.frames.map((frame) => (frame as unknown[])[1]);
    expect(refs).toEqual(['f0', 'f1']);
    expect(gateway.stats.floods).toBe(floodsBefore + 1);
    // The bystander on the same gateway is untouched.
    expect(
      ((await bystander.request(['1', 'b', 'room:a', 'echo', { hi: 1 }])) as unknown[]).slice(0, 4),
    ).toEqual(['1', 'b', 'room:a', 'phx_reply']);
    bystander.close();
    await bystander.closed;
    await expectEmpty(gateway);
  });

  it('LongPoll: a POST whose lines the bucket cannot pay for ends the session (410)', async () => {
    const base = url.replace('ws://', 'http://').replace('/websocket?vsn=2.0.0', '/longpoll');
    const token = await openSession(base);
    const floodsBefore = gateway.stats.floods;
    const line = (ref: string): string => echoFrame(60_000, ref).replace('"1"', 'null');
    const lines = [line('a'), line('b'), line('c')];
    expect((await post(base, token, lines)).body).toEqual({ status: 410 });
    expect(gateway.stats.floods).toBe(floodsBefore + 1);
    expect((await post(base, token, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
      status: 410,
    });
  });

  it('a socket within its rate is never closed', async () => {
    const floodsBefore = gateway.stats.floods;
    const client = await connect(url);
    expect(await client.join('room:a', '1')).toEqual(['1', '1', 'room:a', 'phx_reply', OK]);
    for (let i = 0; i < 20; i++) {
      expect(
        ((await client.request(['1', `s${i}`, 'room:a', 'echo', { i }])) as unknown[])[1],
      ).toBe(`s${i}`);
    }
    expect(gateway.stats.floods).toBe(floodsBefore);
    expect(gateway.stats.sockets).toBe(1);
  });
});

describe('slow consumers are judged over time, not by one write', () => {
  it('a 5 MB broadcast reaches 10 fast readers (default options) and disconnects none', async () => {
    const { gateway, url } = await ownGateway({});
    try {
      const readers = await Promise.all(Array.from({ length: 10 }, () => connect(url)));
      for (const reader of readers) {
        expect(await reader.join('room:five', '1')).toEqual([
          '1',
          '1',
          'room:five',
          'phx_reply',
          OK,
        ]);
      }
      const data = 'z'.repeat(5_000_000);
      gateway.broadcast('room:five', 'big', { data });
      for (const reader of readers) {
        const [frame] = (await reader.take(1, 20_000)) as unknown[][];
        expect((frame![4] as { data: string }).data.length).toBe(5_000_000);
      }
      expect(gateway.stats.slowConsumers).toBe(0);
      expect(gateway.stats.sockets).toBe(10);
    } finally {
      await gateway.close();
    }
  });

  it('fast readers of a channel broadcast over maxBufferedBytes survive past the grace period', async () => {
    const { gateway, url } = await ownGateway({ slowConsumerGraceMs: 300 });
    try {
      const readers = await Promise.all(Array.from({ length: 10 }, () => connect(url)));
      for (const reader of readers) {
        expect(await reader.join('room:b', '1')).toEqual(['1', '1', 'room:b', 'phx_reply', OK]);
      }
      // A client's small frame makes the channel broadcast 5 MB (within maxBroadcastBytes).
      readers[0]!.send(['1', 'go', 'room:b', 'big', { bytes: 5_000_000 }]);
      for (const reader of readers) {
        const frames = (await reader.take(reader === readers[0] ? 2 : 1, 20_000)) as unknown[][];
        const big = frames.find((frame) => frame[3] === 'big')!;
        expect((big[4] as { data: string }).data.length).toBe(5_000_000);
      }
      // Each reader's backlog deadline (armed by the 5 MB write) must fire and find it taken.
      await realTime(1_000, 'the backlog deadlines (300 ms, 250 ms ticks) must pass');
      expect(gateway.stats.slowConsumers).toBe(0);
      for (const reader of readers) {
        expect(await reader.request([null, 'hb', 'phoenix', 'heartbeat', {}])).toEqual([
          null,
          'hb',
          'phoenix',
          'phx_reply',
          OK,
        ]);
      }
    } finally {
      await gateway.close();
    }
  });

  it('a paused reader is dropped once its backlog outlives slowConsumerGraceMs; a reading one keeps receiving', async () => {
    const graceMs = 1_500;
    const { gateway, url } = await ownGateway({
      maxBufferedBytes: 64 * 1024,
      slowConsumerGraceMs: graceMs,
    });
    try {
      const normal = await connect(url);
      const slow = await connect(url);
      expect(await normal.join('room:p', '1')).toEqual(['1', '1', 'room:p', 'phx_reply', OK]);
      expect(await slow.join('room:p', '1')).toEqual(['1', '1', 'room:p', 'phx_reply', OK]);
      slow.pauseReading();
      // 16 MB in one turn: more than the kernel buffers absorb, less than maxBufferedBytesHard.
      const data = 'q'.repeat(256 * 1024);
      const start = performance.now();
      for (let n = 0; n < 64; n++) gateway.broadcast('room:p', 'chunk', { n, data });
      // Still in the same turn: one write never drops anyone.
      expect(gateway.stats.slowConsumers).toBe(0);
      const frames = (await normal.take(64, 30_000)) as unknown[][];
      expect(frames.map((frame) => (frame[4] as { n: number }).n)).toEqual(
        Array.from({ length: 64 }, (_, n) => n),
      );
      await until(
        () => gateway.stats.slowConsumers === 1,
        'the paused reader dropped as a slow consumer',
      );
      // The wheel never fires early: the drop came a grace period after the backlog began.
      expect(performance.now() - start).toBeGreaterThanOrEqual(graceMs - 1);
      expect(gateway.stats.sockets).toBe(1);
      gateway.broadcast('room:p', 'after', { ok: true });
      expect(await normal.next()).toEqual([null, null, 'room:p', 'after', { ok: true }]);
      slow.resumeReading();
      expect((await slow.closed).code).toBe(1006);
    } finally {
      await gateway.close();
    }
  });

  it('a backlog over maxBufferedBytesHard drops the reader at once, within the same turn', async () => {
    const { gateway, url } = await ownGateway({
      maxBufferedBytes: 64 * 1024,
      maxBufferedBytesHard: 8 * 1024 * 1024,
    });
    try {
      const slow = await connect(url);
      expect(await slow.join('room:h', '1')).toEqual(['1', '1', 'room:h', 'phx_reply', OK]);
      slow.pauseReading();
      const data = 'h'.repeat(1024 * 1024);
      // Kernel buffers take a few MB; 64 MB cannot all fit, whatever they take.
      for (let n = 0; n < 64 && gateway.stats.slowConsumers === 0; n++) {
        gateway.broadcast('room:h', 'chunk', { n, data });
      }
      expect(gateway.stats.slowConsumers).toBe(1);
      expect(gateway.stats.sockets).toBe(0);
      slow.resumeReading();
      expect((await slow.closed).code).toBe(1006);
    } finally {
      await gateway.close();
    }
  });
});

describe('LongPoll slow consumers are judged over time too', () => {
  it('a frame over maxBufferedBytes waits for the next poll; a session that does not poll within the grace period is closed', async () => {
    const graceMs = 1_500;
    const gateway = createGateway({ logger: false });
    gateway
      .socket('/socket', { maxBufferedBytes: 4_096, slowConsumerGraceMs: graceMs })
      .channel('room:*', bigRoom);
    const address: AddressInfo = await gateway.listen(0, '127.0.0.1');
    const base = `http://127.0.0.1:${address.port}/socket/longpoll`;
    try {
      async function joinedOn(topic: string): Promise<string> {
        const token = await openSession(base);
        expect(
          (await post(base, token, [JSON.stringify(['1', '1', topic, 'phx_join', {}])])).body,
        ).toEqual({ status: 200 });
        expect(await collect(base, token, 1)).toEqual([['1', '1', topic, 'phx_reply', OK]]);
        return token;
      }
      const polling = await joinedOn('room:lp');
      const idle = await joinedOn('room:lp');
      const start = performance.now();
      gateway.broadcast('room:lp', 'big', { data: 'l'.repeat(10_000) });
      // One frame 2.5 × the limit: nobody is dropped for it at once.
      expect(gateway.stats.slowConsumers).toBe(0);
      const [frame] = (await collect(base, polling, 1)) as unknown[][];
      expect((frame![4] as { data: string }).data.length).toBe(10_000);
      await until(() => gateway.stats.slowConsumers === 1, 'the idle session closed');
      expect(performance.now() - start).toBeGreaterThanOrEqual(graceMs - 1);
      expect(gateway.pubsub.subscriberCount('room:lp')).toBe(1);
      expect((await post(base, idle, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
        status: 410,
      });
      expect((await post(base, polling, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
        status: 200,
      });
    } finally {
      await gateway.close();
    }
  });
});

describe('maxBroadcastBytes', () => {
  let gateway: Gateway;
  let url: string;
  beforeAll(async () => {
    ({ gateway, url } = await ownGateway({ maxBroadcastBytes: 100_000 }));
  });
  afterAll(() => gateway.close());

  it('a handler that catches the error answers its sender; nobody receives the broadcast', async () => {
    const sender = await connect(url);
    const other = await connect(url);
    expect(await sender.join('room:m', '1')).toEqual(['1', '1', 'room:m', 'phx_reply', OK]);
    expect(await other.join('room:m', '1')).toEqual(['1', '1', 'room:m', 'phx_reply', OK]);
    expect(await sender.request(['1', '2', 'room:m', 'big_caught', { bytes: 200_000 }])).toEqual([
      '1',
      '2',
      'room:m',
      'phx_reply',
      {
        status: 'error',
        response: { reason: 'broadcast_too_large', code: 'ERR_CHANNEL_BROADCAST_TOO_LARGE' },
      },
    ]);
    // Within the limit, the same call broadcasts (the other client's next frame is that one).
    expect(
      await sender.request(['1', '3', 'room:m', 'big_caught', { bytes: 50_000 }]),
    ).toMatchObject([null, null, 'room:m', 'big', {}]);
    const [frame] = (await other.take(1)) as unknown[][];
    expect((frame![4] as { data: string }).data.length).toBe(50_000);
  });

  it("uncaught, the error crashes only the sender's channel (phx_error); the socket stays", async () => {
    const sender = await connect(url);
    const other = await connect(url);
    expect(await sender.join('room:n', '1')).toEqual(['1', '1', 'room:n', 'phx_reply', OK]);
    expect(await other.join('room:n', '1')).toEqual(['1', '1', 'room:n', 'phx_reply', OK]);
    expect(await sender.request(['1', '2', 'room:n', 'big', { bytes: 200_000 }])).toEqual([
      '1',
      '1',
      'room:n',
      'phx_error',
      { reason: 'channel_crash' },
    ]);
    // The other client got nothing and is still joined; the sender may rejoin.
    gateway.broadcast('room:n', 'small', { ok: 1 });
    expect(await other.next()).toEqual([null, null, 'room:n', 'small', { ok: 1 }]);
    expect(await sender.join('room:n', '3')).toEqual(['3', '3', 'room:n', 'phx_reply', OK]);
  });
});
