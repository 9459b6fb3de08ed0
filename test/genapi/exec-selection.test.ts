/**
 * Executor acceptance: node selection over real instances (protocol/gen_api.md §3
 * choose_node_mode, §7 item 14; spec §7.3). Several SDK workers of one service run on a real
 * nats-server; each handler returns its worker's label, so the frames the client receives show
 * which instance served each request.
 */
import { describe, expect, it } from 'vitest';
import type { ChooseNodeMode } from '../../src/genapi/types.js';
import { defineService, fn } from '../../src/worker/define.js';
import type { GenApiApp, Worker } from '../support/genapi-app.js';
import {
  useExecEnv,
  instanceCount,
  ready,
  subscriptionsGone,
  tally,
  type GenApiClient,
} from '../support/genapi-exec.js';

function selService(label: string, version = '1.0.0') {
  const labelled = (chooseNode: ChooseNodeMode) => fn({ chooseNode, handler: () => ({ label }) });
  return defineService({
    name: 'sel',
    version,
    functions: {
      hash: labelled('hash'),
      hash_arg: fn({
        chooseNode: { hash: 'key' },
        args: { key: 'string' },
        handler: () => ({ label }),
      }),
      rr: labelled('round_robin'),
      rr2: labelled('round_robin'),
      sticky: labelled({ sticky: 'user_id' }),
      weighted: labelled({ weighted: { '1.0.0': 9, '2.0.0': 1 } }),
      rr_checked: fn({
        chooseNode: 'round_robin',
        authorize: () => true,
        handler: () => ({ label }),
      }),
    },
  });
}

const req = (id: string, rt: string, args: Record<string, unknown> = {}) => ({
  request_id: id,
  service: 'sel',
  request_type: rt,
  args,
});

async function labelOf(
  client: GenApiClient,
  id: string,
  rt: string,
  args: Record<string, unknown> = {},
): Promise<string> {
  const result = await client.call(req(id, rt, args));
  const push = result.pushes[0]!;
  if (!push.success) throw new Error(`${id} failed: ${String(push.error)}`);
  return (push.result as { label: string }).label;
}

describe('exec: node selection over NATS', () => {
  const env = useExecEnv();

  async function setup(
    labels: string[],
    versions: string[] = [],
  ): Promise<{ app: GenApiApp; client: GenApiClient; workers: Map<string, Worker> }> {
    const app = await env.gateway();
    const workers = new Map<string, Worker>();
    for (const [i, label] of labels.entries())
      workers.set(label, await env.worker(selService(label, versions[i])));
    await ready(app, 'sel', 'hash', labels.length);
    return { app, client: await env.client(app), workers };
  }

  it('hash: the same request_id always reaches the same instance; different ids spread', async () => {
    const { client } = await setup(['A', 'B']);
    const same = [];
    for (let i = 0; i < 6; i++) same.push(await labelOf(client, 'one-and-the-same', 'hash'));
    expect(new Set(same).size).toBe(1);
    const spread = [];
    for (let i = 0; i < 24; i++) spread.push(await labelOf(client, `hash-${i}`, 'hash'));
    expect(new Set(spread)).toEqual(new Set(['A', 'B']));
    // Deterministic: asking again gives the same answers.
    for (let i = 0; i < 6; i++) expect(await labelOf(client, `hash-${i}`, 'hash')).toBe(spread[i]);
  });

  it('{hash: arg}: the same argument value reaches the same instance whatever the request_id', async () => {
    const { client } = await setup(['A', 'B']);
    const alice = [];
    for (let i = 0; i < 6; i++)
      alice.push(await labelOf(client, `ha-alice-${i}`, 'hash_arg', { key: 'alice' }));
    expect(new Set(alice).size).toBe(1);
    const byKey = new Map<string, string>();
    for (let i = 0; i < 24; i++)
      byKey.set(`k${i}`, await labelOf(client, `ha-${i}`, 'hash_arg', { key: `k${i}` }));
    expect(new Set(byKey.values())).toEqual(new Set(['A', 'B']));
    for (const [key, label] of [...byKey].slice(0, 6))
      expect(await labelOf(client, `ha-again-${key}`, 'hash_arg', { key })).toBe(label);
  });

  it('round_robin: alternates across 2 instances, with a counter per function', async () => {
    const { client } = await setup(['A', 'B']);
    const labels = [];
    for (let i = 0; i < 8; i++) labels.push(await labelOf(client, `rr-${i}`, 'rr'));
    for (let i = 1; i < labels.length; i++) expect(labels[i]).not.toBe(labels[i - 1]);
    expect(tally(labels)).toEqual({ A: 4, B: 4 });
    // Another function's rotation is its own (spec §7 item 14): interleaving rr2 does not skew rr.
    const interleaved = [];
    for (let i = 0; i < 4; i++) {
      interleaved.push(await labelOf(client, `rr-i-${i}`, 'rr'));
      await labelOf(client, `rr2-i-${i}`, 'rr2');
    }
    for (let i = 1; i < interleaved.length; i++)
      expect(interleaved[i]).not.toBe(interleaved[i - 1]);
  });

  it('round_robin still alternates for a function with a worker permission check (authorize)', async () => {
    const { client } = await setup(['A', 'B']);
    const labels = [];
    for (let i = 0; i < 6; i++) labels.push(await labelOf(client, `rrc-${i}`, 'rr_checked'));
    expect(tally(labels)).toEqual({ A: 3, B: 3 });
    for (let i = 1; i < labels.length; i++) expect(labels[i]).not.toBe(labels[i - 1]);
  });

  it('{sticky: "user_id"}: a user keeps its instance; when it dies the user moves and sticks to the new one', async () => {
    const { app, workers } = await setup(['A', 'B', 'C']);
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    const clients = new Map<string, GenApiClient>();
    for (const user of users) clients.set(user, await env.client(app, `user_id=${user}`));
    const home = new Map<string, string>();
    for (const user of users) {
      const labels = [];
      for (let i = 0; i < 4; i++)
        labels.push(await labelOf(clients.get(user)!, `st-${user}-${i}`, 'sticky'));
      expect(new Set(labels).size).toBe(1);
      home.set(user, labels[0]!);
    }
    // Kill u1's instance.
    const dead = home.get('u1')!;
    await workers.get(dead)!.crash();
    // nats-server has dropped its subscriptions: before that it could route a request to the dead
    // connection, where it is lost. From here a request aimed at it gets "no responders", which
    // moves it on and takes the instance out of the selection at once.
    await subscriptionsGone(env.url, workers.get(dead)!.running.id);
    const first = await clients.get('u1')!.call(req('st-u1-first', 'sticky', {}));
    expect(first.pushes[0]!.success).toBe(true);
    expect((first.pushes[0]!.result as { label: string }).label).not.toBe(dead);
    expect(instanceCount(app, 'sel')).toBe(2);
    const after = [];
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      after.push(await labelOf(clients.get('u1')!, `st-u1-after-${i}`, 'sticky'));
      // It did not wait for the dead instance: well below the function's 5 s timeout.
      expect(performance.now() - started).toBeLessThan(2_500);
    }
    expect(after).not.toContain(dead);
    // It sticks to its new instance.
    expect(new Set(after).size).toBe(1);
    expect(instanceCount(app, 'sel')).toBe(2);
    // Users of the live instances did not move.
    for (const user of users.slice(1)) {
      if (home.get(user) === dead) continue;
      expect(await labelOf(clients.get(user)!, `st-${user}-after`, 'sticky')).toBe(home.get(user));
    }
  });

  it('weighted by deployment version: {"1.0.0": 9, "2.0.0": 1} sends ~90 % of 300 requests to 1.0.0', async () => {
    const { client } = await setup(['v1', 'v2'], ['1.0.0', '2.0.0']);
    const labels: string[] = [];
    const total = 300;
    for (let batch = 0; batch < total / 25; batch++) {
      const pending = [];
      for (let i = 0; i < 25; i++) pending.push(client.start(req(`w-${batch}-${i}`, 'weighted')));
      for (const call of pending) {
        const result = await call.done();
        expect(result.pushes[0]!.success).toBe(true);
        labels.push((result.pushes[0]!.result as { label: string }).label);
      }
    }
    const counts = tally(labels);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(total);
    // Binomial(300, 0.9): mean 270, sd ≈ 5.2; allow ±4.5 sd.
    expect(counts.v1).toBeGreaterThanOrEqual(246);
    expect(counts.v1).toBeLessThanOrEqual(292);
    expect(counts.v2).toBeGreaterThanOrEqual(8);
  });
});
