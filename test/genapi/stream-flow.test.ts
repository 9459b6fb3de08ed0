/**
 * gen_api streams through the real stack (protocol/gen_api.md §2 sequences, §6 streams;
 * protocol/nats.md §7), embedded (LocalBus) and on NATS (real nats-server, SDK worker):
 * ordering and completeness under concurrency, the last-chunk form, failing handlers, the idle
 * timeout, and credit-based back-pressure from a client that stops reading.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useGenApi } from '../support/genapi-app.js';
import { ApiClient, response, streamChunks } from '../support/genapi-client.js';
import { streamProbe, streamService, type StreamProbe } from '../support/genapi-services.js';
import { realTime, until } from '../support/wait.js';

const SERVICE = 'streams';
const req = (id: string, requestType: string, args: Record<string, unknown> = {}) => ({
  request_id: id,
  service: SERVICE,
  request_type: requestType,
  args,
});
const init = (id: string) => response(id, { result: 'init', async: true, has_more: true });
const started = (id: string) =>
  response(id, { result: response(id, { result: 'started' }), async: true, has_more: true });
const chunk = (id: string, result: unknown) =>
  response(id, { result, async: true, has_more: true });
const end = (id: string) => response(id, { async: true });

let markers = 0;
/**
 * Runs a short stream to its end on `c`: the gateway sends a socket's frames in order, so
 * whatever it sent on `c` before the marker's end has arrived once that end is here.
 */
async function marker(c: ApiClient): Promise<void> {
  const id = `marker-${++markers}`;
  c.call(req(id, 'finale'));
  await c.streamDone(id);
}

describe.each(['embedded', 'nats'] as const)('streams (%s)', (mode) => {
  let probe: StreamProbe;
  const env = useGenApi(
    mode,
    () => {
      probe = streamProbe();
      return [streamService(probe)];
    },
    { worker: { drainTimeoutMs: 1_000 } },
  );
  const clients: ApiClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    // The gateway has seen the disconnects and cancelled what still ran, before the next test.
    await until(
      () => env.app.genApi.health().executor.streams === 0,
      'no stream left on the gateway',
    );
  });

  async function client(): Promise<ApiClient> {
    const c = await ApiClient.connect(env.app.wsUrl('user_id=u1&device_id=d1'));
    clients.push(c);
    return c;
  }

  it('20 concurrent streams × 200 chunks on 4 sockets: every chunk arrives, in order, then the end push', async () => {
    const sockets = await Promise.all([client(), client(), client(), client()]);
    const calls: { c: ApiClient; id: string; ref: string }[] = [];
    for (let s = 0; s < 5; s++) {
      for (const [k, c] of sockets.entries()) {
        const id = `t${k}-${s}`;
        calls.push({ c, id, ref: c.call(req(id, 'ticks', { n: 200 })) });
      }
    }
    await Promise.all(calls.map(({ c, id }) => c.streamDone(id, 30_000)));
    const expected = Array.from({ length: 200 }, (_, i) => i + 1);
    for (const { c, id, ref } of calls) {
      const pushes = c.pushes(id);
      expect(pushes[0], id).toEqual(init(id));
      expect(pushes[1], id).toEqual(started(id));
      expect(streamChunks(pushes), id).toEqual(expected);
      expect(
        pushes.slice(2, -1).every((p) => p.async && p.has_more && p.success),
        id,
      ).toBe(true);
      expect(pushes.at(-1), id).toEqual(end(id));
      expect(pushes.length, id).toBe(203);
      expect(c.replies(ref), id).toEqual([{ status: 'ok', response: 'ticks' }]);
    }
    // Nothing trails the end pushes.
    const counts = calls.map(({ c, id }) => c.pushes(id).length);
    await Promise.all(sockets.map(marker));
    expect(calls.map(({ c, id }) => c.pushes(id).length)).toEqual(counts);
    expect(env.app.genApi.health().executor.streams).toBe(0);
  });

  it('30 concurrent streams on one socket: all complete, and no MaxListenersExceededWarning (listeners on the channel signal)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => {
      if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      const c = await client();
      const ids = Array.from({ length: 30 }, (_, i) => `many-${i}`);
      for (const id of ids) c.call(req(id, 'ticks', { n: 20, interval_ms: 5 }));
      await Promise.all(ids.map((id) => c.streamDone(id, 20_000)));
      for (const id of ids)
        expect(streamChunks(c.pushes(id)), id).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      // process.emitWarning emits on the next tick: let it.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('a handler that returns a value: that value is the last chunk (has_more false), no end marker after it', async () => {
    const c = await client();
    const ref = c.call(req('fin', 'finale'));
    const pushes = await c.streamDone('fin');
    await marker(c);
    expect(c.pushes('fin')).toEqual([
      init('fin'),
      started('fin'),
      chunk('fin', 1),
      chunk('fin', 2),
      response('fin', { result: { done: true }, async: true }),
    ]);
    expect(pushes.at(-1)!.has_more).toBe(false);
    expect(c.replies(ref)).toEqual([{ status: 'ok', response: 'finale' }]);
  });

  it('a handler that throws before writing: init, reply ok, then an Internal Server Error push', async () => {
    const c = await client();
    const ref = c.call(req('b0', 'boom'));
    await c.streamDone('b0');
    await marker(c);
    expect(c.pushes('b0')).toEqual([
      init('b0'),
      response('b0', { success: false, error: 'Internal Server Error' }),
    ]);
    expect(c.replies(ref)).toEqual([{ status: 'ok', response: 'boom' }]);
  });

  it('a handler that throws after two chunks: the chunks, then an Internal Server Error push ends the stream', async () => {
    const c = await client();
    c.call(req('b2', 'boom_later'));
    await c.streamDone('b2');
    await marker(c);
    expect(c.pushes('b2')).toEqual([
      init('b2'),
      started('b2'),
      chunk('b2', 1),
      chunk('b2', 2),
      response('b2', { success: false, error: 'Internal Server Error' }),
    ]);
  });

  it('a worker holding credit that sends nothing for its 300 ms timeout: `Stream timed out`, and the worker is told to stop', async () => {
    const c = await client();
    c.call(req('idle', 'stall'));
    const pushes = await c.streamDone('idle');
    expect(pushes).toEqual([
      init('idle'),
      started('idle'),
      chunk('idle', 1),
      response('idle', { success: false, error: 'Stream timed out' }),
    ]);
    const times = c.pushTimes('idle');
    // It waited for the idle timeout (a lower bound: it cannot flake under load).
    expect(times[3]! - times[2]!).toBeGreaterThanOrEqual(250);
    // The gateway cancels the worker's stream when it times it out (nats.md §7: cancel on timeout).
    await c.until(() => probe.stopped.get('idle'), 'the worker to be told to stop');
    await marker(c);
    expect(c.pushes('idle')).toHaveLength(4);
  });

  it('a handler that sends nothing at all for longer than its 300 ms timeout: an error push, and the handler is told to stop', async () => {
    const c = await client();
    const t0 = performance.now();
    const ref = c.call(req('mute', 'silent'));
    const pushes = await c.streamDone('mute');
    expect(c.replies(ref)).toEqual([{ status: 'ok', response: 'silent' }]);
    expect(pushes[0]).toEqual(init('mute'));
    const final = pushes.at(-1)!;
    expect(final.success).toBe(false);
    // Its own 300 ms timeout, not the 5 s default (lower bound exact, upper bound generous).
    const endedAfter = c.pushTimes('mute').at(-1)! - t0;
    expect(endedAfter).toBeGreaterThanOrEqual(250);
    expect(endedAfter).toBeLessThan(5_000);
    // gen_api.md §6: a worker holding credit (it got the initial credit with the request) that
    // sends nothing for the timeout ends with `Stream timed out`.
    expect
      .soft(final, 'the final push')
      .toEqual(response('mute', { success: false, error: 'Stream timed out' }));
    // Whatever the message, the handler must not be left running for ever.
    const stopped = await c
      .until(() => probe.stopped.get('mute'), 'the handler to be told to stop')
      .catch(() => null);
    expect(
      stopped,
      'the silent handler was never told to stop (ctx.signal not aborted)',
    ).not.toBeNull();
  });

  it('a client that stops reading slows the worker (credit), instead of growing the gateway; resuming completes every chunk in order', async () => {
    const N = 4_000;
    const SIZE = 8_192;
    const c = await client();
    c.call(req('flood', 'flood', { n: N, size: SIZE }));
    await c.until(() => c.pushes('flood').length >= 12, 'the first chunks');
    const frameBytes = Buffer.byteLength(
      JSON.stringify([
        '1',
        null,
        'gen_api:lobby',
        'phoenix_gen_api',
        chunk('flood', { i: 1000, pad: 'x'.repeat(SIZE) }),
      ]),
    );
    c.pause();
    const writtenAt = () => probe.written.get('flood') ?? 0;
    const atPause = writtenAt();
    // Wait until the worker's writes block (no progress for 500 ms).
    let last = atPause;
    let stableSince = performance.now();
    await until(
      () => {
        const now = writtenAt();
        if (now !== last) {
          last = now;
          stableSince = performance.now();
        }
        return performance.now() - stableSince >= 500;
      },
      "the worker's writes to block",
      { intervalMs: 50 },
    );
    // What the worker has written but the client has not read: the chunks in flight.
    const read = streamChunks(c.pushes('flood')).length;
    const inFlight = last - read;
    // Blocked well before the end: an unthrottled worker writes all N chunks in well under a second.
    expect(last, `worker wrote ${last}/${N} chunks while the client was paused`).toBeLessThan(
      N / 2,
    );
    // Bounded by the credit window plus what the socket holds: the gateway's high water
    // (256 KiB) and the kernel's TCP buffers between gateway and client (about 4.6 MiB measured
    // on loopback; 8 MiB allowed).
    const kernelAllowance = 8 * 1024 * 1024;
    const bound = 32 + Math.ceil((262_144 + kernelAllowance) / frameBytes);
    expect(
      inFlight,
      `chunks in flight while paused (frame ${frameBytes} B, bound ${bound})`,
    ).toBeLessThanOrEqual(bound);
    // Still blocked a while later: the writes wait for credit, nothing piles up.
    await realTime(400, 'a span in which the blocked worker must not write');
    expect(writtenAt()).toBe(last);
    c.resume();
    const pushes = await c.streamDone('flood', 30_000);
    const chunks = streamChunks(pushes) as { i: number; pad: string }[];
    expect(chunks.length).toBe(N);
    expect(chunks.every((ch, k) => ch.i === k + 1 && ch.pad.length === SIZE)).toBe(true);
    expect(pushes.at(-1)).toEqual(end('flood'));
  }, 40_000);
});
