/**
 * A worker instance that dies in the middle of a stream (protocol/gen_api.md §6: "a lost worker
 * instance … ends it with Internal Server Error"): the client gets an error push instead of a
 * stream that hangs until its timeout. NATS only (an embedded service cannot die on its own).
 * The worker is a real process (test/support/genapi-worker-main.ts) killed with SIGKILL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { ApiClient, response, sleep } from '../support/genapi-client.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';

describe('a worker instance dying mid-stream (nats)', () => {
  let nats: NatsServer | null = null;
  let worker: WorkerProcess | null = null;
  let app: GenApiApp | null = null;
  let client: ApiClient | null = null;

  afterEach(async () => {
    client?.terminate();
    await app?.close();
    await worker?.kill();
    await nats?.dispose();
    client = null;
    app = null;
    worker = null;
    nats = null;
  });

  async function setup(): Promise<ApiClient> {
    nats = await NatsServer.start();
    worker = await startWorkerProcess(nats.url, 'streams');
    app = await startGenApiApp({ nats: nats.url });
    client = await ApiClient.connect(app.wsUrl('user_id=u1'));
    return client;
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
    const pushes = await c.streamDone('doomed', 8_000);
    const elapsed = c.pushTimes('doomed').at(-1)! - t0;
    expect(pushes.at(-1)).toEqual(
      response('doomed', { success: false, error: 'Internal Server Error' }),
    );
    // Chunks up to the kill are intact and in order.
    const chunks = pushes.slice(2, -1).map((p) => p.result);
    expect(chunks).toEqual(Array.from({ length: chunks.length }, (_, i) => i + 1));
    // Discovery drops the instance within its TTL (1 s in these tests), far before the 10 s timeout.
    expect(elapsed).toBeLessThan(3_000);
    await sleep(200);
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
    await sleep(1_500); // the pipeline fills and the worker blocks on credit
    await worker!.kill();
    c.resume();
    const pushes = await c.streamDone('blocked', 10_000);
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
    const pushes = await c.streamDone('cut', 8_000);
    expect(pushes.at(-1)).toEqual(
      response('cut', { success: false, error: 'Internal Server Error' }),
    );
    // The handler's next write meets the closed connection: the process must not die of it.
    await sleep(500);
    expect(
      worker!.alive,
      `worker process exited; stderr: ${worker!.proc.stderr().slice(0, 800)}`,
    ).toBe(true);
  });
});
