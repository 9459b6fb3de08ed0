/**
 * Stream back-pressure wakes on the socket's drain, not on a timer (protocol/gen_api.md §6): while
 * a client does not read, the gateway withholds a stream's credit and waits for the socket's send
 * buffer to fall to half the high water. That wait is woken by the transport (a frame written out),
 * so nothing in the gateway schedules a timer while it waits, and the stream moves on as soon as
 * the client reads again.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useGenApi } from '../support/genapi-app.js';
import { ApiClient, response, streamChunks, type ApiResponse } from '../support/genapi-client.js';
import { collectUntil, openSession, post } from '../support/longpoll-client.js';
import { streamProbe, streamService, type StreamProbe } from '../support/genapi-services.js';
import { realTime, until } from '../support/wait.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

describe('stream back-pressure by drain events', () => {
  let probe: StreamProbe;
  const env = useGenApi('embedded', () => {
    probe = streamProbe();
    return [streamService(probe)];
  });
  const clients: ApiClient[] = [];

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const client of clients.splice(0)) client.terminate();
    await until(
      () => env.app.genApi.health().executor.streams === 0,
      'no stream left on the gateway',
    );
  });

  it('a stream blocked on a client that stops reading schedules no timer while it waits, and resumes once the client reads', async () => {
    const N = 4_000;
    const SIZE = 8_192;
    const c = await ApiClient.connect(env.app.wsUrl('user_id=u1&device_id=d1'));
    clients.push(c);
    c.call({
      request_id: 'drain',
      service: 'streams',
      request_type: 'flood',
      args: { n: N, size: SIZE },
    });
    await c.until(() => c.pushes('drain').length >= 12, 'the first chunks');
    c.pause();
    const written = () => probe.written.get('drain') ?? 0;
    // Wait until the worker's writes block (no progress for 500 ms): the gateway now waits for
    // the socket to drain before it grants more credit.
    let last = written();
    let stableSince = performance.now();
    await until(
      () => {
        const now = written();
        if (now !== last) {
          last = now;
          stableSince = performance.now();
        }
        return performance.now() - stableSince >= 500;
      },
      "the worker's writes to block",
      { intervalMs: 50 },
    );
    expect(last, 'blocked well before the end').toBeLessThan(N / 2);

    // Every timer the gateway's own code schedules while the stream waits (a polling wait would
    // schedule one every few milliseconds).
    const gatewayTimers: string[] = [];
    const realSetTimeout = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(
      (...args: Parameters<typeof setTimeout>) => {
        const stack = new Error().stack ?? '';
        const frame = stack.split('\n').find((line) => line.includes(SRC));
        if (frame !== undefined) gatewayTimers.push(frame.trim());
        return realSetTimeout(...args);
      },
    );
    await realTime(300, 'a span in which the blocked stream waits for the drain');
    vi.restoreAllMocks();
    expect(gatewayTimers, 'timers the gateway scheduled while the stream waited').toEqual([]);
    expect(written(), 'still blocked').toBe(last);

    c.resume();
    await until(() => written() > last, 'the worker to get credit again once the client reads');
    const pushes = await c.streamDone('drain', 30_000);
    const chunks = streamChunks(pushes) as { i: number }[];
    expect(chunks.length).toBe(N);
    expect(chunks.every((ch, k) => ch.i === k + 1)).toBe(true);
    expect(pushes.at(-1)).toEqual(response('drain', { async: true }));
  }, 40_000);

  it('LongPoll: a stream blocked while its client does not poll goes on once polls take the buffer', async () => {
    const N = 400;
    const base = `http://127.0.0.1:${env.app.port}/socket/longpoll`;
    const token = await openSession(base, 'vsn=2.0.0&user_id=u1&device_id=d1');
    const topic = 'gen_api:lobby';
    expect(
      (await post(base, token, [JSON.stringify(['1', '1', topic, 'phx_join', {}])])).http,
    ).toBe(200);
    const request = {
      request_id: 'lp',
      service: 'streams',
      request_type: 'flood',
      args: { n: N, size: 8_192 },
    };
    expect(
      (await post(base, token, [JSON.stringify(['1', '2', topic, 'phoenix_gen_api', request])]))
        .http,
    ).toBe(200);
    // No poll yet: the session buffer passes the high water and the worker's writes block.
    const written = () => probe.written.get('lp') ?? 0;
    let last = written();
    let stableSince = performance.now();
    await until(
      () => {
        const now = written();
        if (now !== last) {
          last = now;
          stableSince = performance.now();
        }
        return now > 0 && performance.now() - stableSince >= 300;
      },
      "the worker's writes to block",
      { intervalMs: 50 },
    );
    expect(last, 'blocked well before the end').toBeLessThan(N / 2);

    const pushes = (): ApiResponse[] =>
      messages
        .filter((m): m is unknown[] => Array.isArray(m) && m[3] === 'phoenix_gen_api')
        .map((m) => m[4] as ApiResponse)
        .filter((p) => p.request_id === 'lp');
    let messages: unknown[] = [];
    messages = await collectUntil(
      base,
      token,
      (sofar) => {
        messages = sofar;
        const last = pushes().at(-1);
        return last !== undefined && last.async && !last.has_more && last.result === null;
      },
      30_000,
    );
    const chunks = streamChunks(pushes()) as { i: number }[];
    expect(chunks.length).toBe(N);
    expect(chunks.every((ch, k) => ch.i === k + 1)).toBe(true);
  }, 40_000);
});
