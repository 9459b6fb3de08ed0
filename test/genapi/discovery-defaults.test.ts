/**
 * The timing promises of issue 3 with the gateway's shipped discovery and pull settings
 * (DISCOVERY_DEFAULTS, CONFIG_SYNC_DEFAULTS; protocol/nats.md §3, §4), not the harness's short
 * ones: a dead worker instance leaves the selection within 5 s, and a gateway started after the
 * workers learns every config within 1 s. Real nats-server, workers in their own processes (so a
 * test can SIGKILL or SIGSTOP one) and in this one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DISCOVERY_DEFAULTS } from '../../src/bus/nats/discovery.js';
import { CONFIG_SYNC_DEFAULTS } from '../../src/bus/nats/config-sync.js';
import { defineService, fn } from '../../src/worker/define.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { slowService, streamProbe, streamService } from '../support/genapi-services.js';
import { NatsServer } from '../support/nats.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { until } from '../support/wait.js';

const LEAVE_WITHIN_MS = 5_000;
const LEARN_WITHIN_MS = 1_000;

function discService(label: string) {
  return defineService({
    name: 'disc',
    functions: {
      rr: fn({ chooseNode: 'round_robin', timeout: 500, handler: () => ({ label }) }),
      any: fn({ timeout: 500, handler: () => ({ label }) }),
    },
  });
}

describe('discovery and config pull with the default settings', () => {
  let nats: NatsServer;
  let apps: GenApiApp[] = [];
  let workers: Worker[] = [];
  let processes: Spawned[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const app of apps) await app.close();
    for (const worker of workers) await worker.stop();
    for (const proc of processes) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await proc.exited;
    }
    apps = [];
    workers = [];
    processes = [];
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  async function gateway(): Promise<GenApiApp> {
    const app = await startGenApiApp({ nats: nats.url, discovery: 'defaults' });
    apps.push(app);
    return app;
  }
  /** A worker process; resolves once it serves, with its instance id. */
  async function spawnWorker(label: string): Promise<{ proc: Spawned; id: string }> {
    const proc = spawnTs('test/support/exec-worker-process.ts', [nats.url, label]);
    processes.push(proc);
    const ready = await proc.logLine('ready', 20_000);
    return { proc, id: String(ready.id) };
  }
  const instances = (app: GenApiApp, service: string) =>
    app.genApi.nats!.discovery.instances(service).length;

  it('the defaults are the documented ones', () => {
    expect(DISCOVERY_DEFAULTS).toEqual({ intervalMs: 1_000, ttlMs: 2_500, pingWaitMs: 250 });
    expect(CONFIG_SYNC_DEFAULTS).toEqual({
      pullIntervalMs: 30_000,
      maxPullIntervalMs: 300_000,
      pullTimeoutMs: 2_000,
    });
    // Worst case for an instance that stops answering: seen just before it died, the first ping
    // after the TTL drops it, and that ping collects answers for up to pingWaitMs.
    expect(
      DISCOVERY_DEFAULTS.ttlMs + DISCOVERY_DEFAULTS.intervalMs + DISCOVERY_DEFAULTS.pingWaitMs,
    ).toBeLessThan(LEAVE_WITHIN_MS);
  });

  // Both at once (one killed, one frozen): each is timed on its own, and the file waits once.
  it('an instance killed (SIGKILL) and one frozen (SIGSTOP: connection open, no answers) each leave the selection within 5 s, with no traffic to notice them', async () => {
    const [app, killed, frozen, local] = await Promise.all([
      gateway(),
      spawnWorker('K'),
      spawnWorker('F'),
      startWorker(discService('L'), nats.url),
    ]);
    workers.push(local);
    await until(() => instances(app, 'disc') === 3, 'the three instances discovered');
    killed.proc.kill('SIGKILL');
    frozen.proc.kill('SIGSTOP');
    const t0 = performance.now();
    const discovery = app.genApi.nats!.discovery;
    const leftAfter = await Promise.all(
      [killed, frozen].map(({ id }) =>
        until(
          () => discovery.get(id) === undefined && performance.now() - t0,
          `instance ${id} to leave`,
          { timeoutMs: LEAVE_WITHIN_MS + 5_000 },
        ),
      ),
    );
    // The promise of protocol/nats.md §3 (worst case by the defaults: 3.75 s).
    expect(leftAfter[0], 'the killed instance left after (ms)').toBeLessThan(LEAVE_WITHIN_MS);
    expect(leftAfter[1], 'the frozen instance left after (ms)').toBeLessThan(LEAVE_WITHIN_MS);
    // The live one stays.
    expect(discovery.instances('disc').map((i) => i.id)).toEqual([local.running.id]);
  }, 30_000);

  it('a gateway started after the workers of three services learns every config within 1 s', async () => {
    const [, ...sdkWorkers] = await Promise.all([
      spawnWorker('P'),
      startWorker(slowService('S', { calls: 0, inflight: 0 }), nats.url),
      startWorker(streamService(streamProbe()), nats.url),
    ]);
    workers.push(...sdkWorkers);
    const expected = [
      ['disc', 'rr'],
      ['disc', 'any'],
      ['slowsvc', 'slow'],
      ['slowsvc', 'echo'],
      ['streams', 'ticks'],
      ['streams', 'finale'],
    ] as const;
    const t0 = performance.now();
    const app = await gateway();
    await until(
      () => expected.every(([service, rt]) => app.genApi.registry.resolve(service, rt, null).ok),
      'every config',
    );
    const elapsed = performance.now() - t0;
    expect(elapsed, `learned after ${Math.round(elapsed)} ms`).toBeLessThan(LEARN_WITHIN_MS);
    expect(app.genApi.registry.services().sort()).toEqual(['disc', 'slowsvc', 'streams']);
    expect(Object.keys(app.genApi.receiver.pushedServices()).sort()).toEqual([
      'disc',
      'slowsvc',
      'streams',
    ]);
  }, 30_000);
});
