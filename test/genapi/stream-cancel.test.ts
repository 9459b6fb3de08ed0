/**
 * Cancelling gen_api streams (protocol/gen_api.md §2 Cancel, §6; protocol/nats.md §7 control
 * `cancel`: "the gateway sends it within milliseconds of the cause"), embedded and on NATS. The
 * moment the worker learns it must stop is measured in the handler itself (ctx.signal abort or
 * StreamClosedError from ctx.stream.write) against the moment the client acted: it must be the
 * client's act that stopped it, well before the function's own 10 s timeout could (a bound that
 * holds on a loaded machine; the milliseconds of the promise are not a test assertion).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useGenApi } from '../support/genapi-app.js';
import { ApiClient, response } from '../support/genapi-client.js';
import { streamProbe, streamService, type StreamProbe } from '../support/genapi-services.js';
import { until } from '../support/wait.js';

const SERVICE = 'streams';
/** Half the `endless` function's 10 s timeout: a stop before it was caused by the client. */
const CANCEL_WITHIN_MS = 5_000;
const endless = (id: string) => ({
  request_id: id,
  service: SERVICE,
  request_type: 'endless',
  args: { interval_ms: 20 },
});

describe.each(['embedded', 'nats'] as const)('stream cancel (%s)', (mode) => {
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
  let seq = 0;

  afterEach(async () => {
    for (const client of clients.splice(0)) client.terminate();
    await until(
      () => env.app.genApi.health().executor.streams === 0,
      'the gateway to drop the streams of the test',
    );
  });

  async function client(): Promise<ApiClient> {
    const c = await ApiClient.connect(env.app.wsUrl('user_id=u1&device_id=d1'));
    clients.push(c);
    return c;
  }

  /** Starts `count` endless streams on `c` and waits until each has delivered 3 chunks. */
  async function running(c: ApiClient, count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, () => `e${mode}-${++seq}`);
    for (const id of ids) c.call(endless(id));
    await c.until(
      () => ids.every((id) => c.pushes(id).length >= 5),
      'three chunks of every stream',
    );
    return ids;
  }

  /** Waits until the worker saw the stop of `id`; returns how long after `t0` that was. */
  async function stopDelay(c: ApiClient, id: string, t0: number): Promise<number> {
    const stopped = await c.until(
      () => probe.stopped.get(id),
      `the worker of ${id} to be told to stop`,
      CANCEL_WITHIN_MS * 2,
    );
    return stopped.at - t0;
  }

  it('the cancel event: the worker stops at once, the client gets the end push and {cancelled: true}; other streams go on', async () => {
    const c = await client();
    const [victim, other] = await running(c, 2);
    const t0 = performance.now();
    const ref = c.cancel(victim);
    expect(await stopDelay(c, victim!, t0)).toBeLessThan(CANCEL_WITHIN_MS);
    expect(await c.reply(ref)).toEqual({ status: 'ok', response: { cancelled: true } });
    const pushes = await c.streamDone(victim);
    expect(pushes.at(-1)).toEqual(response(victim, { async: true }));
    expect(pushes.slice(2, -1).every((p) => p.has_more && p.success)).toBe(true);
    const count = c.pushes(victim).length;
    const otherCount = c.pushes(other).length;
    // The other stream keeps running: three more chunks, sent after the end push of the victim
    // (so anything sent for the victim before them is here too).
    await c.until(() => c.pushes(other).length >= otherCount + 3, 'three more chunks of the other');
    // Nothing follows the end push.
    expect(c.pushes(victim)).toHaveLength(count);
    expect(probe.stopped.has(other!)).toBe(false);
    // Cancelling the same id again: it is no longer running.
    expect(await c.reply(c.cancel(victim))).toEqual({
      status: 'error',
      response: 'Unknown request',
    });
  });

  it('a second stream under a running request_id takes its place: the first is stopped, the second can be cancelled, and none is left counted', async () => {
    const c = await client();
    const [id] = await running(c, 1);
    c.call(endless(id!));
    await c.until(
      () => probe.stopped.has(id!),
      'the worker of the first stream to be told to stop',
    );
    const count = c.pushes(id).length;
    await c.until(() => c.pushes(id).length >= count + 3, 'chunks of the second stream');
    expect(await c.reply(c.cancel(id))).toEqual({ status: 'ok', response: { cancelled: true } });
    await c.until(
      () => env.app.genApi.health().executor.streams === 0,
      'the gateway to drop the stream',
    );
  });

  it('cancel of an unknown request_id: error reply `Unknown request`', async () => {
    const c = await client();
    expect(await c.reply(c.cancel('nope'))).toEqual({
      status: 'error',
      response: 'Unknown request',
    });
  });

  it('leaving the channel stops every stream of it at once', async () => {
    const c = await client();
    const ids = await running(c, 3);
    const t0 = performance.now();
    const ref = c.leave();
    for (const id of ids) expect(await stopDelay(c, id, t0), id).toBeLessThan(CANCEL_WITHIN_MS);
    expect(await c.reply(ref)).toEqual({ status: 'ok', response: {} });
    await c.until(
      () => env.app.genApi.health().executor.streams === 0,
      'the gateway to drop the streams',
    );
  });

  it('the client closing its socket stops every stream of it at once', async () => {
    const c = await client();
    const ids = await running(c, 3);
    const t0 = performance.now();
    c.close();
    for (const id of ids) expect(await stopDelay(c, id, t0), id).toBeLessThan(CANCEL_WITHIN_MS);
    await c.until(
      () => env.app.genApi.health().executor.streams === 0,
      'the gateway to drop the streams',
    );
  });

  it('the client connection dropping (TCP reset, no close frame) stops every stream of it at once', async () => {
    const c = await client();
    const ids = await running(c, 3);
    const t0 = performance.now();
    c.terminate();
    for (const id of ids) expect(await stopDelay(c, id, t0), id).toBeLessThan(CANCEL_WITHIN_MS);
    await c.until(
      () => env.app.genApi.health().executor.streams === 0,
      'the gateway to drop the streams',
    );
  });

  it('a stream on one socket is not touched when another socket of the same user leaves', async () => {
    const a = await client();
    const b = await client();
    const [idA] = await running(a, 1);
    const [idB] = await running(b, 1);
    expect(await b.reply(b.leave())).toEqual({ status: 'ok', response: {} });
    // The leave took effect: b's stream was stopped.
    await b.until(() => probe.stopped.get(idB!), "the worker of b's stream to be told to stop");
    // a's stream goes on after it: three more chunks.
    const n = a.pushes(idA).length;
    await a.until(() => a.pushes(idA).length >= n + 3, "three more chunks of a's stream");
    expect(probe.stopped.has(idA!)).toBe(false);
  });
});
