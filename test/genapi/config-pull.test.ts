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
import {
  startGenApiApp,
  startWorker,
  until,
  type GenApiApp,
  type Worker,
} from '../support/genapi-app.js';
import { sleep } from '../support/genapi-client.js';
import { NatsServer } from '../support/nats.js';

const SERVICE = 'pulled';
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/**
 * A service instance from the plain NATS client: answers `$SRV.PING` (advertising `advertised`
 * as its config version) and pulls on `genapi.inst.<id>.config` according to `mode`.
 */
class FakeInstance {
  readonly pulls: number[] = [];
  mode: 'fail' | 'ok' = 'fail';
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
    nc.subscribe('$SRV.PING', { callback: (err, msg) => (err ? undefined : instance.ping(msg)) });
    nc.subscribe(`genapi.inst.${instance.id}.config`, {
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

  it('failed periodic pulls back off (interval × 2^failures, capped), and the interval returns after a success', async () => {
    // The instance advertises v2 but serves v1: the gateway never holds v2, so every periodic
    // pull asks it again and the schedule shows in the pulls' arrival times.
    fake = await FakeInstance.start(nats.url, 'v2', 'v1');
    app = await gateway(150, 1_000);
    const sync = app.genApi.nats!.sync;
    // The pull on discovery (before connectNats returned) failed; nothing is known.
    expect(fake.pulls).toHaveLength(1);
    expect(known()).toBe(false);

    // Periodic pulls at +150 (fail 1) → +300 (fail 2) → +600 (fail 3) → +1000 (capped) → +1000.
    await until(() => fake!.pulls.length >= 6, 'five periodic pulls', 8_000);
    const backoff = fake.gaps(1);
    expect(sync.status().failures).toBeGreaterThanOrEqual(4);
    const expected = [300, 600, 1_000, 1_000];
    backoff.slice(0, 4).forEach((gap, i) => {
      expect(gap, `gap ${i + 1}: ${backoff.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(
        expected[i]! - 20,
      );
      expect(gap, `gap ${i + 1}: ${backoff.map(Math.round).join(', ')}`).toBeLessThan(
        expected[i]! + 250,
      );
    });
    expect(known()).toBe(false);
    expect(app.genApi.failed.count()).toBe(0); // unreadable answers are pull failures, not rejected configs

    // Recovery: the next periodic pull succeeds, the config is applied, the interval is 150 ms again.
    fake.mode = 'ok';
    await until(() => known(), 'the config after the instance recovers', 2_000);
    const recoveredAt = fake.pulls.length - 1;
    await until(() => fake!.pulls.length >= recoveredAt + 4, 'three more pulls', 3_000);
    for (const gap of fake.gaps(recoveredAt).slice(0, 3)) {
      expect(gap).toBeGreaterThanOrEqual(130);
      expect(gap).toBeLessThan(400);
    }
    expect(sync.status()).toMatchObject({
      pullIntervalMs: 150,
      failures: 0,
      lastPull: { ok: true },
    });
    expect(sync.status().nextPullAt).toBeGreaterThan(Date.now() - 50);
  }, 20_000);

  it('the periodic pull fetches what the pull on discovery missed; a held version is not pulled again', async () => {
    fake = await FakeInstance.start(nats.url, 'v1');
    app = await gateway(200, 5_000);
    expect(fake.pulls).toHaveLength(1);
    expect(known()).toBe(false);
    fake.mode = 'ok';
    const t0 = performance.now();
    await until(() => known(), 'the config from the periodic pull', 2_000);
    expect(performance.now() - t0).toBeLessThan(600);
    expect(app.genApi.receiver.verify(SERVICE, 'v1')).toBe('matched');
    const pulls = fake.pulls.length;
    await sleep(700); // three more periods
    expect(fake.pulls).toHaveLength(pulls);
  });

  it('manual pulls do not add timer chains: the periodic cadence stays the same', async () => {
    fake = await FakeInstance.start(nats.url, 'v2', 'v1');
    fake.mode = 'ok';
    app = await gateway(250, 5_000);
    for (let i = 0; i < 5; i++) expect(await app.genApi.pullConfigs()).toBe(true);
    const from = fake.pulls.length;
    await sleep(1_300);
    // ~5 periodic pulls in 1.3 s at 250 ms; five extra chains would make it ~30.
    const periodic = fake.pulls.length - from;
    expect(periodic).toBeGreaterThanOrEqual(4);
    expect(periodic).toBeLessThanOrEqual(6);
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
