/**
 * The gateway's NATS request/reply (src/bus/nats/requester.ts) against a real nats-server:
 * requests of one turn leave together, cancellation by signal, no responders, timeouts.
 */
import { getEventListeners } from 'node:events';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RequestFailure, Requester } from '../../src/bus/nats/requester.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { NatsServer } from '../support/nats.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let server: NatsServer;
let nc: NatsConnection;
let worker: NatsConnection;
let requester: Requester;
const received: string[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  worker = await connect({ servers: server.url });
  worker.subscribe('echo', {
    callback: (_err, msg) => {
      received.push(decoder.decode(msg.data));
      msg.respond(msg.data);
    },
  });
  // A responder that never answers (timeouts).
  worker.subscribe('silent', { callback: () => undefined });
  await worker.flush();
  requester = new Requester(nc, new TimerWheel(5));
});

afterAll(async () => {
  requester.close();
  await nc.close();
  await worker.close();
  await server.stop();
});

const body = (text: string) => encoder.encode(text);

describe('Requester', () => {
  it('answers many requests made in one turn, each with its own reply', async () => {
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        requester.request('echo', body(`m${i}`), natsHeaders(), 5_000),
      ),
    );
    expect(replies.map((msg) => decoder.decode(msg.data))).toEqual(
      Array.from({ length: 200 }, (_, i) => `m${i}`),
    );
    expect(requester.size).toBe(0);
  });

  it('a request aborted before its turn ends is never published', async () => {
    received.length = 0;
    const controller = new AbortController();
    const aborted = requester.request(
      'echo',
      body('never'),
      natsHeaders(),
      5_000,
      controller.signal,
    );
    const kept = requester.request('echo', body('kept'), natsHeaders(), 5_000);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ reason: 'cancelled' });
    expect(decoder.decode((await kept).data)).toBe('kept');
    expect(received).toEqual(['kept']);
  });

  it('one signal carries many requests with a single abort listener; aborting fails them all at once', async () => {
    const controller = new AbortController();
    const pending = Array.from({ length: 50 }, () =>
      requester.request('silent', body('x'), natsHeaders(), 60_000, controller.signal),
    );
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    expect(requester.size).toBe(50);
    controller.abort();
    const results = await Promise.allSettled(pending);
    // All of them by the abort (reason cancelled), none by their 60 s timeout.
    expect(
      results.every(
        (r) => r.status === 'rejected' && (r.reason as RequestFailure).reason === 'cancelled',
      ),
    ).toBe(true);
    expect(requester.size).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('settled requests leave their signal: nothing fires for them later', async () => {
    const controller = new AbortController();
    await requester.request('echo', body('done'), natsHeaders(), 5_000, controller.signal);
    expect(requester.size).toBe(0);
    controller.abort();
    expect(requester.size).toBe(0);
  });

  it('an already aborted signal fails at once', async () => {
    await expect(
      requester.request('echo', body('x'), natsHeaders(), 5_000, AbortSignal.abort()),
    ).rejects.toMatchObject({ reason: 'cancelled' });
  });

  it('no responders fails at once, not at the timeout', async () => {
    const started = performance.now();
    await expect(
      requester.request('nobody.listens', body('x'), natsHeaders(), 10_000),
    ).rejects.toMatchObject({ reason: 'no_responders' });
    // Well below the 10 s timeout.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a request without an answer times out on the wheel', async () => {
    const started = performance.now();
    await expect(requester.request('silent', body('x'), natsHeaders(), 100)).rejects.toMatchObject({
      reason: 'timeout',
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(requester.size).toBe(0);
  });
});
