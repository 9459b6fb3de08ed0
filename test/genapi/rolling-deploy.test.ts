/**
 * Rolling deploys: instances of two deployment versions with different function configs run side
 * by side. The gateway follows the newest deployment (no flapping between configs), skips pushes
 * from older instances unless forced, and falls back to the older config once the newer
 * instances are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { until } from '../support/wait.js';

const v1 = defineService({
  name: 'shop',
  version: '1.0.0',
  functions: { list: fn({ handler: () => 'v1 list' }), legacy: fn({ handler: () => 'old' }) },
});
const v2 = defineService({
  name: 'shop',
  version: '2.0.0',
  functions: { list: fn({ handler: () => 'v2 list' }), checkout: fn({ handler: () => 'new' }) },
});

let nats: NatsServer;
let app: GenApiApp;
const workers: Worker[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  // Fast pulls: a flapping config would show within the test.
  app = await startGenApiApp({ nats: nats.url, natsOptions: { sync: { pullIntervalMs: 100 } } });
});
afterAll(async () => {
  await app.close();
  for (const worker of workers) await worker.stop().catch(() => undefined);
  await nats.dispose();
});

const functions = () => Object.keys(app.genApi.registry.functions().shop ?? {}).sort();

describe('rolling deploy', () => {
  it('follows the newest live deployment and does not flap', async () => {
    workers.push(await startWorker(v1, nats.url));
    await until(() => functions().join() === 'legacy,list', 'v1 config');
    const newer = await startWorker(v2, nats.url);
    workers.push(newer);
    await until(() => functions().join() === 'checkout,list', 'v2 config');
    // Rounds that could make it flap, each run to its end: a discovery round (which pulls from
    // the instances it sees) and a pull of every service, with both instances live.
    const seen = new Set<string>();
    for (let round = 0; round < 5; round++) {
      await app.genApi.nats!.discovery.ping();
      seen.add(functions().join());
      await app.genApi.pullConfigs();
      seen.add(functions().join());
    }
    // And the periodic pulls (every 100 ms) keep running meanwhile: five more of them.
    const sync = app.genApi.nats!.sync;
    const rounds = new Set<number>();
    await until(() => {
      seen.add(functions().join());
      const at = sync.status().lastPull?.at;
      if (at !== undefined) rounds.add(at);
      return rounds.size >= 6;
    }, 'five periodic pulls');
    expect([...seen]).toEqual(['checkout,list']);
  });

  it('an older instance pushing again is skipped unless forced', async () => {
    const older = workers[0]!;
    const acks = await older.running.push();
    expect(acks).toContainEqual({
      gateway: app.gateway.nodeId,
      status: 'skipped',
      service: 'shop',
      reason: 'older_than_live',
    });
    expect(functions()).toEqual(['checkout', 'list']);
    const forced = await older.running.push(true);
    expect(forced[0]).toMatchObject({ status: 'accepted', config_version: v1.configVersion });
    // The newer deployment is still live, so the gateway goes back to it.
    await until(() => functions().join() === 'checkout,list', 'back to v2');
  });

  it('when the newer instances are gone, the older config takes over', async () => {
    const newer = workers.pop()!;
    await newer.stop();
    await until(() => functions().join() === 'legacy,list', 'v1 config again', 8_000);
  });
});
