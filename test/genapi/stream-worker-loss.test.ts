/**
 * A worker instance that dies in the middle of a stream (protocol/gen_api.md §6: "a lost worker
 * instance … ends it with Internal Server Error"): the client gets an error push instead of a
 * stream that hangs until its timeout. NATS only (an embedded service cannot die on its own).
 * The worker is a real process (test/support/genapi-worker-main.ts) killed with SIGKILL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { ApiClient, response } from '../support/genapi-client.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { until } from '../support/wait.js';

/** The `endless` function's timeout: a lost stream must end well before it. */
const ENDLESS_TIMEOUT_MS = 10_000;

describe('a worker instance dying mid-stream (nats)', () => {
  // One nats-server for the file: the tests kill workers, never the server.
  let nats: NatsServer;
  let worker: WorkerProcess | null = null;
  let app: GenApiApp | null = null;
  let client: ApiClient | null = null;

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    client?.terminate();
    await app?.close();
    await worker?.kill();
    client = null;
    app = null;
    worker = null;
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  async function setup(): Promise<ApiClient> {
    [worker, app] = await Promise.all([
      startWorkerProcess(nats.url, 'streams'),
      startGenApiApp({ nats: nats.url }),
    ]);
    client = await ApiClient.connect(app.wsUrl('user_id=u1'));
    return client;
  }

  /**
   * A request the gateway answers at once (the service does not exist): once its push is here,
   * every frame the gateway sent the client before it is here too.
   */
  async function marker(c: ApiClient): Promise<void> {
    await c.sync({ request_id: 'marker', service: 'no_such_service', request_type: 'x' });
  }

  it('SIGKILL while it streams: the stream ends with an Internal Server Error push (not a hang, not `Stream timed out`)', async () => {
    const c = await setup();
    // endless: a chunk every 20 ms, function timeout 10 s.
    c.call({
      request_id: 'doomed',
      service: 'streams',
      request_type: 'endless',
      args: { interval_ms: 20 },
    });
    await c.until(() => c.pushes('doomed').length >= 6, 'a few chunks');
    const t0 = performance.now();
    await worker!.kill();
    const pushes = await c.streamDone('doomed');
    const elapsed = c.pushTimes('doomed').at(-1)! - t0;
    expect(pushes.at(-1)).toEqual(
      response('doomed', { success: false, error: 'Internal Server Error' }),
    );
    // Chunks up to the kill are intact and in order.
    const chunks = pushes.slice(2, -1).map((p) => p.result);
    expect(chunks).toEqual(Array.from({ length: chunks.length }, (_, i) => i + 1));
    // Discovery drops the instance within its TTL (1 s in these tests), far before the 10 s timeout.
    expect(elapsed).toBeLessThan(ENDLESS_TIMEOUT_MS / 2);
    await marker(c);
    expect(c.pushes('doomed')).toHaveLength(pushes.length);
    expect(app!.genApi.health().executor.streams).toBe(0);
    expect(app!.genApi.health().nats!.streams).toBe(0);
  });

  it('SIGKILL while its stream waits for credit (client paused): the client still gets the error push', async () => {
    const c = await setup();
    c.call({
      request_id: 'blocked',
      service: 'streams',
      request_type: 'flood',
      args: { n: 100_000, size: 8_192 },
    });
    await c.until(() => c.pushes('blocked').length >= 12, 'the first chunks');
    c.pause();
    // The pipeline fills and the worker blocks on credit: its written count stops moving (asked
    // of the worker process itself) for 500 ms.
    let last = -1;
    let stableSince = performance.now();
    await until(
      async () => {
        const written = (await worker!.answers()).blocked ?? 0;
        if (written !== last) {
          last = written;
          stableSince = performance.now();
        }
        return performance.now() - stableSince >= 500;
      },
      'the worker to block on credit',
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    expect(last).toBeLessThan(100_000);
    await worker!.kill();
    c.resume();
    const pushes = await c.streamDone('blocked', 20_000);
    expect(pushes.at(-1)).toEqual(
      response('blocked', { success: false, error: 'Internal Server Error' }),
    );
    const chunks = pushes.slice(2, -1).map((p) => (p.result as { i: number }).i);
    expect(chunks).toEqual(Array.from({ length: chunks.length }, (_, i) => i + 1));
    expect(chunks.length).toBeLessThan(100_000);
  }, 30_000);

  it('a worker whose NATS connection closes mid-stream survives it (SDK) and the client gets the error push', async () => {
    const c = await setup();
    c.call({
      request_id: 'cut',
      service: 'streams',
      request_type: 'endless',
      args: { interval_ms: 20 },
    });
    await c.until(() => c.pushes('cut').length >= 6, 'a few chunks');
    await worker!.closeConnection();
    const pushes = await c.streamDone('cut');
    expect(pushes.at(-1)).toEqual(
      response('cut', { success: false, error: 'Internal Server Error' }),
    );
    // The handler's next write meets the closed connection: the process must not die of it. The
    // handler ends, then (a later turn of its event loop) the process still answers a signal.
    await worker!.settled('cut');
    await worker!.answers();
    expect(worker!.alive).toBe(true);
  });
});
