/**
 * Executor acceptance: retries and fallback (protocol/gen_api.md §4, spec §7.4 / retry_test),
 * through a real gateway, the gen_api channel over raw WebSocket frames, and SDK workers on a
 * real nats-server. Handlers record every call (which instance, when) so the tests count
 * attempts and see where they went.
 */
import { describe, expect, it } from 'vitest';
import {
  defineService,
  fn,
  ServiceError,
  type FunctionDefinition,
} from '../../src/worker/define.js';
import {
  errorResp,
  useExecEnv,
  hang,
  instanceCount,
  ready,
  resp,
  sleepOrAbort,
  subscriptionsGone,
  type GenApiClient,
} from '../support/genapi-exec.js';
import { until } from '../support/wait.js';

type Behaviour = 'ok' | 'hang' | 'fail' | 'deadline';

interface Call {
  rt: string;
  label: string;
  at: number;
}

/** Shared by every instance of the test service: what the k-th call of a function does, and the calls seen. */
class Plan {
  readonly calls: Call[] = [];
  private readonly plans = new Map<string, (k: number, label: string) => Behaviour>();

  set(rt: string, plan: (k: number, label: string) => Behaviour): void {
    this.plans.set(rt, plan);
  }

  of(rt: string): Call[] {
    return this.calls.filter((c) => c.rt === rt);
  }

  async run(rt: string, label: string, signal: AbortSignal): Promise<unknown> {
    const k = this.of(rt).length;
    this.calls.push({ rt, label, at: performance.now() });
    const behaviour = this.plans.get(rt)?.(k, label) ?? 'ok';
    if (behaviour === 'hang') await hang(signal);
    if (behaviour === 'deadline') await sleepOrAbort(60_000, signal); // gives up exactly at its deadline
    if (behaviour === 'fail') throw new ServiceError(`business failure on call ${k + 1}`);
    return { label, call: k + 1 };
  }
}

const TIMEOUT = 300;

function retryService(label: string, plan: Plan) {
  const make = (extra: Partial<FunctionDefinition>, rt: string): FunctionDefinition =>
    fn({ timeout: TIMEOUT, ...extra, handler: (_args, ctx) => plan.run(rt, label, ctx.signal) });
  return defineService({
    name: 'retry',
    version: '1.0.0',
    functions: {
      no_retry: make({}, 'no_retry'),
      retry2: make({ retry: 2 }, 'retry2'),
      retry2_any: make({ retry: 2, retryOn: 'any' }, 'retry2_any'),
      same_node: make({ retry: { sameNode: 2 } }, 'same_node'),
      all_nodes: make({ retry: { allNodes: 2 } }, 'all_nodes'),
      rr: make({ chooseNode: 'round_robin', timeout: LONG_TIMEOUT }, 'rr'),
      slow_rr: make({ chooseNode: 'round_robin', timeout: LONG_TIMEOUT }, 'slow_rr'),
      marker: make({}, 'marker'),
    },
  });
}

/** The timeout of functions whose calls must not wait for one: they end well below it. */
const LONG_TIMEOUT = 10_000;

/**
 * A marker call, sent after a request ended: the gateway sends it to the worker after any attempt
 * of that request, on the same connection, so once it is answered every attempt has been seen.
 */
async function marker(client: GenApiClient, id: string): Promise<void> {
  const result = await client.call(req(id, 'marker'));
  expect(result.pushes[0]!.success).toBe(true);
}

const req = (id: string, rt: string, args: Record<string, unknown> = {}) => ({
  request_id: id,
  service: 'retry',
  request_type: rt,
  args,
});

describe('exec: retries over NATS', () => {
  const env = useExecEnv();

  async function setup(instances = 1) {
    const plan = new Plan();
    const app = await env.gateway();
    const workers = [];
    for (let i = 0; i < instances; i++)
      workers.push(await env.worker(retryService(String.fromCharCode(65 + i), plan)));
    await ready(app, 'retry', 'no_retry', instances);
    const client = await env.client(app);
    return { plan, app, workers, client };
  }

  it('no retry: a timed-out call is attempted once and ends in Internal Server Error', async () => {
    const { plan, client } = await setup();
    plan.set('no_retry', () => 'hang');
    const result = await client.call(req('nr-1', 'no_retry'));
    expect(result.pushes).toEqual([errorResp('nr-1', 'Internal Server Error')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'no_retry' });
    expect(result.order).toEqual(['push', 'reply']);
    expect(result.ms).toBeGreaterThanOrEqual(TIMEOUT - 10);
    await marker(client, 'nr-marker');
    expect(plan.of('no_retry')).toHaveLength(1);
  });

  it('retry 2: two transport timeouts, then success on the 3rd attempt', async () => {
    const { plan, client } = await setup();
    plan.set('retry2', (k) => (k < 2 ? 'hang' : 'ok'));
    const result = await client.call(req('r2-1', 'retry2'));
    expect(result.pushes).toEqual([resp('r2-1', { result: { label: 'A', call: 3 } })]);
    expect(result.reply).toEqual({ status: 'ok', response: 'retry2' });
    const calls = plan.of('retry2');
    expect(calls).toHaveLength(3);
    // Each retry waits for the timeout, then a backoff (≥ 50 ms with jitter).
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(TIMEOUT + 40);
    expect(calls[2]!.at - calls[1]!.at).toBeGreaterThanOrEqual(TIMEOUT + 40);
  });

  it('retry 2: a business error (ServiceError) is not retried by default', async () => {
    const { plan, client } = await setup();
    plan.set('retry2', () => 'fail');
    const result = await client.call(req('r2-b', 'retry2'));
    expect(result.pushes).toEqual([errorResp('r2-b', 'Internal Server Error')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'retry2' });
    await marker(client, 'r2-b-marker');
    expect(plan.of('retry2')).toHaveLength(1);
  });

  it('retry 2 with retry_on "any": a business error is retried (3 calls), with observable backoff', async () => {
    const { plan, client } = await setup();
    plan.set('retry2_any', () => 'fail');
    const result = await client.call(req('r2-any', 'retry2_any'));
    expect(result.pushes).toEqual([errorResp('r2-any', 'Internal Server Error')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'retry2_any' });
    const calls = plan.of('retry2_any');
    expect(calls).toHaveLength(3);
    // backoff(2) = 200 ms × (0.5, 1.5], then backoff(1) = 100 ms × (0.5, 1.5]: the attempts wait
    // at least the lower ends (exact values: test/unit/genapi/select-backoff.test.ts).
    const gap1 = calls[1]!.at - calls[0]!.at;
    const gap2 = calls[2]!.at - calls[1]!.at;
    expect(gap1).toBeGreaterThanOrEqual(95);
    expect(gap2).toBeGreaterThanOrEqual(45);
    expect(gap1 + gap2).toBeGreaterThanOrEqual(145);
    await marker(client, 'r2-any-marker');
    expect(plan.of('retry2_any')).toHaveLength(3);
  });

  it('retry 2 with retry_on "any": two business errors, then success', async () => {
    const { plan, client } = await setup();
    plan.set('retry2_any', (k) => (k < 2 ? 'fail' : 'ok'));
    const result = await client.call(req('r2-any-ok', 'retry2_any'));
    expect(result.pushes).toEqual([resp('r2-any-ok', { result: { label: 'A', call: 3 } })]);
    expect(plan.of('retry2_any')).toHaveLength(3);
  });

  it('exhausted retries: 3 timed-out attempts, then Internal Server Error (can_retry false)', async () => {
    const { plan, client } = await setup();
    plan.set('retry2', () => 'hang');
    const result = await client.call(req('r2-x', 'retry2'));
    expect(result.pushes).toEqual([errorResp('r2-x', 'Internal Server Error')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'retry2' });
    expect(plan.of('retry2')).toHaveLength(3);
    // 3 timeouts + 2 backoffs (≥ 100 + 50 ms).
    expect(result.ms).toBeGreaterThanOrEqual(3 * TIMEOUT + 140);
    await marker(client, 'r2-x-marker');
    expect(plan.of('retry2')).toHaveLength(3);
  });

  it('same_node: every retry goes to the instance of the first attempt', async () => {
    const { plan, client } = await setup(2);
    for (let round = 0; round < 3; round++) {
      plan.set('same_node', (k) => (k < 3 * round + 2 ? 'hang' : 'ok'));
      const result = await client.call(req(`sn-${round}`, 'same_node'));
      const calls = plan.of('same_node').slice(3 * round);
      expect(calls).toHaveLength(3);
      const labels = new Set(calls.map((c) => c.label));
      expect(labels.size).toBe(1);
      expect(result.pushes).toEqual([
        resp(`sn-${round}`, { result: { label: calls[0]!.label, call: 3 * round + 3 } }),
      ]);
    }
  });

  it('all_nodes: a retry moves to the next instance', async () => {
    const { plan, client } = await setup(2);
    for (let round = 0; round < 3; round++) {
      plan.set('all_nodes', (k) => (k < 3 * round + 2 ? 'hang' : 'ok'));
      const result = await client.call(req(`an-${round}`, 'all_nodes'));
      const calls = plan.of('all_nodes').slice(3 * round);
      expect(calls).toHaveLength(3);
      expect(calls[1]!.label).not.toBe(calls[0]!.label);
      expect(result.pushes[0]!.success).toBe(true);
    }
  });

  it('a handler that gives up exactly at its deadline (ctx.signal) is still a timeout, and is retried', async () => {
    // The SDK aborts ctx.signal at the deadline; an idiomatic handler then rejects and the worker
    // replies 500 at the same moment the gateway's timer fires. protocol/nats.md §5: "No reply
    // before Genapi-Timeout is a timeout for the gateway" — the attempt must count as a timeout.
    const { plan, client } = await setup();
    plan.set('retry2', (k) => (k < 2 ? 'deadline' : 'ok'));
    const result = await client.call(req('dl-1', 'retry2'));
    expect(result.pushes).toEqual([resp('dl-1', { result: { label: 'A', call: 3 } })]);
    expect(plan.of('retry2')).toHaveLength(3);
  });

  it('no live instance at all: retries, then Service temporarily unavailable with can_retry', async () => {
    const { plan, app, workers, client } = await setup();
    await workers[0]!.crash();
    await until(() => instanceCount(app, 'retry') === 0, 'instance gone');
    const result = await client.call(req('gone-1', 'retry2'));
    expect(result.pushes).toEqual([errorResp('gone-1', 'Service temporarily unavailable', true)]);
    expect(result.reply).toEqual({ status: 'ok', response: 'retry2' });
    expect(plan.of('retry2')).toHaveLength(0);
  });
});

describe('exec: fallback across instances over NATS', () => {
  const env = useExecEnv();

  it('a crashed instance: requests aimed at it fall through to the other at once (no responders)', async () => {
    const plan = new Plan();
    // Discovery pings as usual but keeps silent instances for a minute: only the no-responders
    // fallback can take A out of the selection during this test.
    const app = await env.gateway({
      natsOptions: { discovery: { intervalMs: 200, ttlMs: 60_000, pingWaitMs: 100 } },
    });
    const a = await env.worker(retryService('A', plan));
    await env.worker(retryService('B', plan));
    await ready(app, 'retry', 'rr', 2);
    const client = await env.client(app);
    // Warm up: round_robin alternates, both instances answer.
    const warm = [await client.call(req('w1', 'rr')), await client.call(req('w2', 'rr'))];
    expect(new Set(warm.map((r) => (r.pushes[0]!.result as { label: string }).label))).toEqual(
      new Set(['A', 'B']),
    );

    await a.crash();
    // nats-server has dropped A's subscriptions: until then it could route a request to the dying
    // connection, where it is lost (no "no responders"; the call would wait out its timeout).
    await subscriptionsGone(env.url, a.running.id);
    // Discovery still lists A (TTL 60 s): round_robin aims one of the next two requests at it.
    expect(instanceCount(app, 'retry')).toBe(2);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await client.call(req(`fb-${i}`, 'rr')));
    for (const [i, result] of results.entries()) {
      expect(result.pushes).toEqual([
        resp(`fb-${i}`, { result: expect.objectContaining({ label: 'B' }) }),
      ]);
      expect(result.reply).toEqual({ status: 'ok', response: 'rr' });
      // At once: well below the function's timeout (10 s).
      expect(result.ms).toBeLessThan(LONG_TIMEOUT / 2);
    }
    expect(plan.of('rr').filter((c) => c.label === 'A')).toHaveLength(1);
    // A left the selection through the no-responders fallback (discovery would keep it 60 s).
    expect(instanceCount(app, 'retry')).toBe(1);
  });

  it('an instance without the function (404: its config lacks it) makes the request fall through to one that has it', async () => {
    const app = await env.gateway();
    const lacking = defineService({
      name: 'fb404',
      functions: { a: fn({ handler: () => ({ label: 'old' }) }) },
    });
    const having = defineService({
      name: 'fb404',
      functions: {
        a: fn({ handler: () => ({ label: 'new' }) }),
        b: fn({
          chooseNode: 'round_robin',
          timeout: LONG_TIMEOUT,
          handler: () => ({ label: 'new' }),
        }),
      },
    });
    await env.worker(lacking);
    await ready(app, 'fb404', 'a', 1);
    await env.worker(having);
    await ready(app, 'fb404', 'b', 2);
    const client = await env.client(app);
    for (let i = 0; i < 4; i++) {
      const result = await client.call({
        request_id: `nf-${i}`,
        service: 'fb404',
        request_type: 'b',
        args: {},
      });
      expect(result.pushes).toEqual([resp(`nf-${i}`, { result: { label: 'new' } })]);
      // At once: well below the function's timeout.
      expect(result.ms).toBeLessThan(LONG_TIMEOUT / 2);
    }
    // 404 means "not here", not "gone": the instance stays in the selection.
    expect(instanceCount(app, 'fb404')).toBe(2);
  });

  it('a draining instance (503) makes requests fall through to the other instance', async () => {
    const plan = new Plan();
    const app = await env.gateway();
    const a = await env.worker(retryService('A', plan));
    await env.worker(retryService('B', plan));
    await ready(app, 'retry', 'rr', 2);
    const client = await env.client(app);
    // A slow call keeps A draining (it answers 503 to new work while it finishes).
    plan.set('slow_rr', (_k, label) => (label === 'A' ? 'hang' : 'ok'));
    const first = client.start(req('slow-a', 'slow_rr'));
    const second = client.start(req('slow-b', 'slow_rr'));
    await until(() => plan.of('slow_rr').length === 2, 'both slow calls running');
    const stopping = a.running.stop();
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await client.call(req(`dr-${i}`, 'rr')));
    for (const result of results) {
      expect(result.pushes[0]).toMatchObject({ success: true, result: { label: 'B' } });
      // At once: well below the function's timeout.
      expect(result.ms).toBeLessThan(LONG_TIMEOUT / 2);
    }
    await Promise.all([first.done(), second.done(), stopping]);
  });
});

describe('exec: retries in-process (embedded: about the executor, not NATS)', () => {
  const env = useExecEnv();

  it('embedded: a handler that gives up exactly at its deadline is a timeout, and is retried', async () => {
    const plan = new Plan();
    plan.set('retry2', (k) => (k < 2 ? 'deadline' : 'ok'));
    const app = await env.gateway({ local: [retryService('E', plan)] }, true);
    const client = await env.client(app);
    const result = await client.call(req('edl-1', 'retry2'));
    expect(result.pushes).toEqual([resp('edl-1', { result: { label: 'E', call: 3 } })]);
    expect(plan.of('retry2')).toHaveLength(3);
  });

  it('embedded: retry 2 with retry_on "any" makes 3 calls; without it a business error is final', async () => {
    const plan = new Plan();
    plan.set('retry2_any', () => 'fail');
    plan.set('retry2', () => 'fail');
    const app = await env.gateway({ local: [retryService('E', plan)] }, true);
    const client = await env.client(app);
    expect((await client.call(req('e-any', 'retry2_any'))).pushes).toEqual([
      errorResp('e-any', 'Internal Server Error'),
    ]);
    expect((await client.call(req('e-tr', 'retry2'))).pushes).toEqual([
      errorResp('e-tr', 'Internal Server Error'),
    ]);
    await marker(client, 'e-marker');
    expect(plan.of('retry2_any')).toHaveLength(3);
    expect(plan.of('retry2')).toHaveLength(1);
  });
});
