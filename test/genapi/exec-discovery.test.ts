/**
 * Executor acceptance: discovery (protocol/nats.md §3) as the executor sees it. Worker instances
 * run in their own processes (test/support/exec-worker-process.ts) so the tests can kill them
 * (SIGKILL) or freeze them (SIGSTOP: the TCP connection stays open, nothing answers), or
 * in-process through the SDK. The harness gateway pings every 200 ms and drops instances not seen
 * for 1 s; the contract is "within 5 s" for any configuration of that order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import type { GenApiApp } from '../support/genapi-app.js';
import { until } from '../support/wait.js';
import { ExecEnv, instanceCount, ready, tally, type GenApiClient } from '../support/genapi-exec.js';
import { spawnTs, type Spawned } from '../support/spawn.js';

function discService(label: string) {
  return defineService({
    name: 'disc',
    functions: {
      rr: fn({ chooseNode: 'round_robin', timeout: 500, handler: () => ({ label }) }),
      any: fn({ timeout: 500, handler: () => ({ label }) }),
    },
  });
}

const req = (id: string, rt = 'rr') => ({
  request_id: id,
  service: 'disc',
  request_type: rt,
  args: {},
});

async function labels(client: GenApiClient, prefix: string, count: number): Promise<string[]> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const result = await client.call(req(`${prefix}-${i}`));
    const push = result.pushes[0]!;
    if (!push.success) throw new Error(`${prefix}-${i}: ${String(push.error)}`);
    out.push((push.result as { label: string }).label);
  }
  return out;
}

describe('exec: discovery over NATS', () => {
  let env: ExecEnv;
  let processes: Spawned[] = [];

  beforeAll(async () => {
    env = await ExecEnv.start();
  });
  afterEach(async () => {
    for (const proc of processes) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.kill('SIGKILL');
        await proc.exited;
      }
    }
    processes = [];
    await env.reset();
  });
  afterAll(async () => {
    await env?.dispose();
  });

  async function spawnWorker(label: string): Promise<{ proc: Spawned; id: string }> {
    const proc = spawnTs('test/support/exec-worker-process.ts', [env.url, label]);
    processes.push(proc);
    const line = await proc.logLine('ready', 15_000);
    return { proc, id: line.id as string };
  }

  const natsInstances = (app: GenApiApp) => app.genApi.health().nats?.instances ?? -1;

  it('an instance whose process is killed (SIGKILL) leaves the selection within 5 s (≈1–2 s here)', async () => {
    const app = await env.gateway();
    const { proc } = await spawnWorker('P');
    await env.worker(discService('L'));
    await ready(app, 'disc', 'rr', 2);
    expect(natsInstances(app)).toBe(2);
    const client = await env.client(app);
    expect(new Set(await labels(client, 'warm', 2))).toEqual(new Set(['P', 'L']));

    proc.kill('SIGKILL');
    await proc.exited;
    // How fast is discovery-defaults.test.ts's business (the 5 s promise, default settings).
    await until(() => natsInstances(app) === 1, 'the killed instance to leave');
    expect(instanceCount(app, 'disc')).toBe(1);
    expect(await labels(client, 'after', 4)).toEqual(['L', 'L', 'L', 'L']);
  });

  it('a frozen instance (SIGSTOP: connection open, no answers) leaves the selection by TTL; then every request goes to the live one', async () => {
    const app = await env.gateway();
    const { proc, id: frozenId } = await spawnWorker('P');
    await env.worker(discService('L'));
    await ready(app, 'disc', 'rr', 2);
    const client = await env.client(app);
    expect(new Set(await labels(client, 'warm', 2))).toEqual(new Set(['P', 'L']));

    proc.kill('SIGSTOP');
    await until(() => instanceCount(app, 'disc') === 1, 'the frozen instance to leave');
    // It is out of the selection: no request is sent to it (none can wait for it).
    expect(app.genApi.nats!.bus.instances('disc').map((i) => i.id)).not.toContain(frozenId);
    expect(await labels(client, 'after', 4)).toEqual(['L', 'L', 'L', 'L']);
  });

  it('a new instance joins the selection and gets traffic', async () => {
    const app = await env.gateway();
    await env.worker(discService('A'));
    await ready(app, 'disc', 'rr', 1);
    const client = await env.client(app);
    expect(await labels(client, 'one', 3)).toEqual(['A', 'A', 'A']);

    await env.worker(discService('B'));
    await until(() => natsInstances(app) === 2, 'the new instance to join');
    expect(tally(await labels(client, 'two', 6))).toEqual({ A: 3, B: 3 });
  });

  it('a new instance in its own process joins, and a gateway started later finds both', async () => {
    const app = await env.gateway();
    await env.worker(discService('A'));
    await ready(app, 'disc', 'rr', 1);
    await spawnWorker('P');
    await until(() => instanceCount(app, 'disc') === 2, 'the process instance to join');
    const client = await env.client(app);
    expect(new Set(await labels(client, 'mix', 4))).toEqual(new Set(['A', 'P']));

    const late = await env.gateway();
    expect(instanceCount(late, 'disc')).toBe(2); // the first discovery round runs before connectNats returns
    const lateClient = await env.client(late);
    expect(new Set(await labels(lateClient, 'late', 4))).toEqual(new Set(['A', 'P']));
  });
});
