/**
 * A slow subscriber on one gateway never delays the others (issue 11, "Bad input and faults"):
 * broadcasts made on gateway B reach a paused client on gateway A, which A terminates as a slow
 * consumer, while A's reading client and B's client get every broadcast in order and B notices
 * nothing.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/index.js';
import { NatsServer } from '../support/nats.js';
import { roomChannel } from '../support/test-app.js';
import { RawClient } from '../support/ws-client.js';

const OK = { status: 'ok', response: {} };

describe('a slow subscriber on one gateway does not delay the cluster', () => {
  let server: NatsServer;
  let a: Gateway;
  let b: Gateway;
  let urlA: string;
  let urlB: string;

  async function gateway(): Promise<{ gateway: Gateway; url: string }> {
    const gateway = createGateway({ logger: false });
    gateway.socket('/socket', { maxBufferedBytes: 64 * 1024 }).channel('room:*', roomChannel);
    await gateway.connectCluster({ servers: server.url, prefix: 'slow' });
    const address: AddressInfo = await gateway.listen(0, '127.0.0.1');
    return { gateway, url: `ws://127.0.0.1:${address.port}/socket/websocket?vsn=2.0.0` };
  }

  beforeAll(async () => {
    server = await NatsServer.start();
    ({ gateway: a, url: urlA } = await gateway());
    ({ gateway: b, url: urlB } = await gateway());
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await server?.stop();
  });

  it("A terminates its paused client; A's reading client and B's client get every broadcast in order", async () => {
    const slow = await RawClient.connect(urlA);
    const readerA = await RawClient.connect(urlA);
    const readerB = await RawClient.connect(urlB);
    for (const client of [slow, readerA, readerB])
      expect(await client.join('room:flood', '1')).toEqual([
        '1',
        '1',
        'room:flood',
        'phx_reply',
        OK,
      ]);
    // A's subscription to the topic is on the server before B publishes (a first broadcast
    // that A's reader receives proves it).
    b.broadcast('room:flood', 'ready', {});
    expect(await readerB.next()).toEqual([null, null, 'room:flood', 'ready', {}]);
    expect(await readerA.next()).toEqual([null, null, 'room:flood', 'ready', {}]);
    slow.pauseReading();

    const payload = { data: 'x'.repeat(4 * 1024) };
    const batch = 4;
    let sent = 0;
    // Broadcast on B in small batches, each awaited by both readers, until A gives up on the
    // paused client (kernel buffers absorb a few MB first).
    while (a.stats.slowConsumers === 0 && sent < 40_000) {
      for (let i = 0; i < batch; i++)
        b.broadcast('room:flood', 'flood', { ...payload, n: sent + i });
      for (const reader of [readerB, readerA]) {
        const frames = (await reader.take(batch, 5_000)) as unknown[][];
        frames.forEach((frame, i) => {
          expect(frame.slice(0, 4)).toEqual([null, null, 'room:flood', 'flood']);
          expect((frame[4] as { n: number }).n).toBe(sent + i);
        });
      }
      sent += batch;
    }
    expect(a.stats.slowConsumers).toBe(1);
    expect(a.stats.sockets).toBe(1);
    // B never saw a slow consumer, and both keep serving.
    expect(b.stats.slowConsumers).toBe(0);
    b.broadcast('room:flood', 'after', { ok: true });
    expect(await readerA.next()).toEqual([null, null, 'room:flood', 'after', { ok: true }]);
    expect(await readerB.next()).toEqual([null, null, 'room:flood', 'after', { ok: true }]);
    // Nothing was dropped on the way between the gateways.
    expect(a.clusterHealth()?.pubsub).toMatchObject({ dropped: 0, received: sent + 2 });

    slow.resumeReading();
    expect((await slow.closed).code).toBe(1006);
    readerA.close();
    readerB.close();
    await readerA.closed;
    await readerB.closed;
  });
});
