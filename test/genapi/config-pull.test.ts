/**
 * Config pull (protocol/nats.md §4 Pull; PhoenixGenApi §6.2 ConfigPuller, §10 config_puller_test):
 * the periodic pull, its exponential backoff after failures (pullIntervalMs·2^failures, capped
 * at maxPullIntervalMs, back to pullIntervalMs after a success), manual pulls that leave the
 * schedule alone, and force pull. Real nats-server; the instance being pulled from is a fake
 * written with the plain NATS client, so the test controls every pull answer and sees when each
 * pull arrives.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { defineService, fn } from '../../src/worker/define.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { NatsServer } from '../support/nats.js';
import { until } from '../support/wait.js';
import type { ConfigSyncStatus } from '../../src/bus/nats/config-sync.js';

const SERVICE = 'pulled';
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/**
 * A service instance from the plain NATS client: answers `$SRV.PING` (advertising `advertised`
 * as its config version) and pulls on `genapi.inst.<service>.<id>.config` according to `mode`.
 */
class FakeInstance {
  readonly pulls: number[] = [];
  mode: 'fail' | 'ok' = 'fail';
  /** Called as each pull arrives (before it is answered). */
  onPull: (() => void) | null = null;
  private constructor(
    readonly nc: NatsConnection,
    readonly id: string,
    /** The version in ping metadata (what the gateway compares with the one it holds). */
    public advertised: string,
    /** The version of the config it answers with. */
    public served: string,
  ) {}

  static async start(url: string, advertised: string, served = advertised): Promise<FakeInstance> {
    const nc = await connect({ servers: url });
    const instance = new FakeInstance(
      nc,
      `FAKE${Math.random().toString(36).slice(2, 10).toUpperCase()}`,
      advertised,
      served,
    );
    for (const subject of ['$SRV.PING', `$SRV.PING.${SERVICE}.${instance.id}`])
      nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : instance.ping(msg)) });
    nc.subscribe(`genapi.inst.${SERVICE}.${instance.id}.config`, {
      callback: (err, msg) => (err ? undefined : instance.pull(msg)),
    });
    await nc.flush();
    return instance;
  }

  private ping(msg: Msg): void {
    msg.respond(
      encode({
        type: 'io.nats.micro.v1.ping_response',
        name: SERVICE,
        id: this.id,
        version: '1.0.0',
        metadata: {
          genapi_protocol: '1',
          genapi_prefix: 'genapi',
          genapi_config_version: this.advertised,
        },
      }),
    );
  }

  private pull(msg: Msg): void {
    this.pulls.push(performance.now());
    this.onPull?.();
    if (this.mode === 'fail') {
      msg.respond(new TextEncoder().encode('not a push config'));
      return;
    }
    msg.respond(
      encode({
        service: SERVICE,
        config_version: this.served,
        instance_id: this.id,
        service_version: '1.0.0',
        push_token: null,
        fun_configs: [
          {
            service: SERVICE,
            request_type: 'op',
            response_type: 'sync',
            timeout: 1000,
            arg_types: null,
          },
        ],
      }),
    );
  }

  /** Gaps between successive pulls from index `from` on, in ms. */
  gaps(from = 0): number[] {
    return this.pulls.slice(from + 1).map((at, i) => at - this.pulls[from + i]!);
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

describe('config pull', () => {
  let nats: NatsServer;
  let app: GenApiApp | null = null;
  let fake: FakeInstance | null = null;
  let worker: Worker | null = null;

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    await app?.close();
    await fake?.close();
    await worker?.stop();
    app = null;
    fake = null;
    worker = null;
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  const gateway = (pullIntervalMs: number, maxPullIntervalMs: number) =>
    startGenApiApp({
      nats: nats.url,
      natsOptions: { sync: { pullIntervalMs, maxPullIntervalMs, pullTimeoutMs: 500 } },
    });
  const known = () => app!.genApi.registry.resolve(SERVICE, 'op', null).ok;

  /**
   * The gateway's pull schedule as each pull arrives: its status then says when the previous
   * periodic pull ended (`lastPull.at`) and when it planned this one (`nextPullAt`), so their
   * difference is the delay it chose, exact whatever the machine's load did to the timers.
   */
  function recordPlans(instance: FakeInstance): { failures: number; delay: number }[] {
    const plans: { failures: number; delay: number }[] = [];
    instance.onPull = () => {
      const status: ConfigSyncStatus | undefined = app?.genApi.nats?.sync.status();
      if (status?.lastPull && status.nextPullAt !== null)
        plans.push({ failures: status.failures, delay: status.nextPullAt - status.lastPull.at });
    };
    return plans;
  }

  it('failed periodic pulls back off (interval × 2^failures, capped), and the interval returns after a success', async () => {
    // The instance advertises v2 but serves v1: the gateway never holds v2, so every periodic
    // pull asks it again and the schedule shows in the pulls' arrival times.
    fake = await FakeInstance.start(nats.url, 'v2', 'v1');
    const plans = recordPlans(fake);
    app = await gateway(50, 400);
    const sync = app.genApi.nats!.sync;
    // The pull on discovery (before connectNats returned) failed; nothing is known.
    expect(fake.pulls).toHaveLength(1);
    expect(known()).toBe(false);

    // Periodic pulls at +50 (fail 1) → +100 (fail 2) → +200 (fail 3) → +400 (capped) → +400.
    await until(() => fake!.pulls.length >= 6, 'five periodic pulls');
    const expected = [100, 200, 400, 400];
    const planned = plans.slice(0, 4);
    expect(planned.map((p) => p.failures)).toEqual([1, 2, 3, 4]);
    planned.forEach(({ delay }, i) => {
      // The delay the gateway planned (two clock reads in one chain of microtasks).
      expect(delay, `planned delay ${i + 1}: ${JSON.stringify(planned)}`).toBeGreaterThanOrEqual(
        expected[i]!,
      );
      expect(delay, `planned delay ${i + 1}: ${JSON.stringify(planned)}`).toBeLessThan(
        expected[i]! + 50,
      );
    });
    // And the pulls did wait that long (lower bounds only: timers may fire late, never early).
    const backoff = fake.gaps(1);
    backoff.slice(0, 4).forEach((gap, i) => {
      expect(gap, `gap ${i + 1}: ${backoff.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(
        expected[i]! - 20,
      );
    });
    expect(known()).toBe(false);
    expect(app.genApi.failed.count()).toBe(0); // unreadable answers are pull failures, not rejected configs

    // Recovery: the next periodic pull succeeds, the config is applied, the interval is 50 ms again.
    fake.mode = 'ok';
    await until(() => known(), 'the config after the instance recovers');
    const recoveredAt = fake.pulls.length - 1;
    const planIndex = plans.length;
    await until(() => fake!.pulls.length >= recoveredAt + 4, 'three more pulls');
    const after = plans.slice(planIndex, planIndex + 3);
    expect(after.map((p) => p.failures)).toEqual([0, 0, 0]);
    for (const { delay } of after) {
      expect(delay).toBeGreaterThanOrEqual(50);
      expect(delay).toBeLessThan(100);
    }
    for (const gap of fake.gaps(recoveredAt).slice(0, 3)) expect(gap).toBeGreaterThanOrEqual(30);
    expect(sync.status()).toMatchObject({
      pullIntervalMs: 50,
      failures: 0,
      lastPull: { ok: true },
    });
    expect(sync.status().nextPullAt).not.toBeNull();
  }, 20_000);

  it('the periodic pull fetches what the pull on discovery missed; a held version is not pulled again', async () => {
    fake = await FakeInstance.start(nats.url, 'v1');
    app = await gateway(50, 5_000);
    const sync = app.genApi.nats!.sync;
    expect(fake.pulls).toHaveLength(1);
    expect(known()).toBe(false);
    fake.mode = 'ok';
    await until(() => known(), 'the config from the periodic pull');
    // It came from a periodic pull: the second pull this instance saw.
    expect(fake.pulls).toHaveLength(2);
    expect(app.genApi.receiver.verify(SERVICE, 'v1')).toBe('matched');
    const pulls = fake.pulls.length;
    // Three more periodic rounds run to their end (each sets lastPull) without pulling v1 again.
    const rounds = new Set<number>();
    await until(() => {
      const at = sync.status().lastPull?.at;
      if (at !== undefined) rounds.add(at);
      return rounds.size >= 4;
    }, 'three more periodic rounds');
    expect(fake.pulls).toHaveLength(pulls);
  });

  it('manual pulls do not add timer chains: the periodic cadence stays the same', async () => {
    fake = await FakeInstance.start(nats.url, 'v2', 'v1');
    fake.mode = 'ok';
    app = await gateway(100, 5_000);
    for (let i = 0; i < 5; i++) expect(await app.genApi.pullConfigs()).toBe(true);
    const from = fake.pulls.length;
    await until(() => fake!.pulls.length >= from + 6, 'six periodic pulls');
    // One chain: every pull waited a full interval after the one before. Five extra chains,
    // started by the manual pulls a few ms apart, would fire in bunches (gaps near 0).
    const gaps = fake.gaps(from).slice(0, 5);
    for (const gap of gaps)
      expect(gap, `gaps ${gaps.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(80);
  });

  it('force pull re-applies an equal version (restores a function deleted on the gateway); a plain pull skips it', async () => {
    const definition = defineService({
      name: 'forced',
      functions: { a: fn({ handler: () => 'a' }), b: fn({ handler: () => 'b' }) },
    });
    app = await gateway(60_000, 300_000);
    worker = await startWorker(definition, nats.url);
    await until(() => app!.genApi.registry.resolve('forced', 'b', null).ok, 'the pushed config');
    const registry = app.genApi.registry;
    expect(registry.delete('forced', 'b', null)).toBe(true);
    expect(registry.resolve('forced', 'b', null).ok).toBe(false);

    await until(
      () => app!.genApi.nats!.discovery.instances('forced').length === 1,
      'the instance discovered',
    );
    expect(await app.genApi.pullConfigs()).toBe(true); // version held: nothing pulled
    expect(registry.resolve('forced', 'b', null).ok).toBe(false);

    expect(await app.genApi.pullConfigs({ force: true })).toBe(true);
    expect(registry.resolve('forced', 'b', null).ok).toBe(true);
    expect(registry.resolve('forced', 'a', null).ok).toBe(true);
  });

  it('pullConfigs without NATS resolves false', async () => {
    app = await startGenApiApp({});
    expect(await app.genApi.pullConfigs({ force: true })).toBe(false);
  });
});
