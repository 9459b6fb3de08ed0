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
import {
  startGenApiApp,
  startWorker,
  until,
  type GenApiApp,
  type Worker,
} from '../support/genapi-app.js';
import { slowService, streamProbe, streamService } from '../support/genapi-services.js';
import { NatsServer } from '../support/nats.js';
import { spawnTs, type Spawned } from '../support/spawn.js';

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
  async function spawnWorker(label: string): Promise<Spawned> {
    const proc = spawnTs('test/support/exec-worker-process.ts', [nats.url, label]);
    processes.push(proc);
    await proc.logLine('ready', 15_000);
    return proc;
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

  it.each([
    ['killed (SIGKILL)', 'SIGKILL'],
    ['frozen (SIGSTOP: connection open, no answers)', 'SIGSTOP'],
  ] as const)(
    'an instance %s leaves the selection within 5 s, with no traffic to notice it',
    async (_name, signal) => {
      const app = await gateway();
      const proc = await spawnWorker('P');
      workers.push(await startWorker(discService('L'), nats.url));
      await until(() => instances(app, 'disc') === 2, 'both instances discovered', 5_000);
      proc.kill(signal);
      const t0 = performance.now();
      await until(
        () => instances(app, 'disc') === 1,
        'the dead instance to leave',
        LEAVE_WITHIN_MS + 2_000,
      );
      const elapsed = performance.now() - t0;
      expect(elapsed, `left after ${Math.round(elapsed)} ms`).toBeLessThan(LEAVE_WITHIN_MS);
      // The live one stays.
      expect(app.genApi.nats!.discovery.instances('disc').length).toBe(1);
    },
    30_000,
  );

  it('a gateway started after the workers of three services learns every config within 1 s', async () => {
    await spawnWorker('P');
    workers.push(await startWorker(slowService('S', { calls: 0, inflight: 0 }), nats.url));
    workers.push(await startWorker(streamService(streamProbe()), nats.url));
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
      LEARN_WITHIN_MS + 2_000,
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
