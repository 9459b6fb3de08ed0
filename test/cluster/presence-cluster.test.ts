/**
 * Cluster presence with real processes: `gen-gateway` processes (the demo's `room:*` channel,
 * which tracks each joiner) on a real NATS cluster, and the real `phoenix` client with its
 * `Presence` helper on different gateways. Every client must list the same members exactly once:
 * after joins, after a kill -9 (within downAfterMs + slack), after a graceful stop (at once,
 * before downAfterMs could act), across a restart with the same node id (new epoch), and across a
 * route partition and its healing. Convergence times are printed for the benchmark.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CLUSTER_PRESENCE_DEFAULTS } from '../../src/cluster/presence-options.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { NatsCluster } from '../support/nats.js';
import { until } from '../support/wait.js';
import { converge, joinMember, leave, type Member } from './presence-support.js';

const TOPIC = 'room:lobby';
const { downAfterMs, heartbeatMs } = CLUSTER_PRESENCE_DEFAULTS;
/** Generous room on top of downAfterMs for a loaded machine (expiry runs every heartbeat/4). */
const SLACK_MS = 5000;

const startGateway = (nodeId: string, nats: string) =>
  GatewayProcess.start({ config: { demo: true, nodeId }, nats, logLevel: 'info' });

/** Route connections closed so far, as a server logged them. */
const routesClosed = (cluster: NatsCluster, i: number): number =>
  cluster.servers[i]!.log.match(/Router? connection closed/g)?.length ?? 0;

const members: Member[] = [];
afterEach(() => leave(members.splice(0)));

async function member(gateway: GatewayProcess, name: string): Promise<Member> {
  const joined = await joinMember(gateway.socketUrl, TOPIC, name);
  members.push(joined);
  return joined;
}

/** No client ever listed a key twice (every name here has one session). */
function expectNoDuplicates(list: readonly Member[]): void {
  for (const m of list) expect(m.duplicates, `${m.name} saw duplicates`).toEqual([]);
}

describe('cluster presence: three gateway processes on a 3-server NATS cluster', () => {
  let cluster: NatsCluster;
  const gateways: (GatewayProcess | null)[] = [];
  let nc: NatsConnection;

  beforeAll(async () => {
    cluster = await NatsCluster.start({ size: 3 });
    gateways.push(
      ...(await Promise.all([0, 1, 2].map((i) => startGateway(`gw-${i}`, cluster.urls[i]!)))),
    );
    nc = await connect({ servers: cluster.urls[0]! });
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await Promise.all(gateways.filter((g): g is GatewayProcess => g !== null).map((g) => g.kill()));
    await cluster?.dispose();
  }, 30_000);

  const gw = (i: number) => gateways[i]!;

  it('clients on three gateways converge; a late joiner shows up everywhere', async () => {
    const alice = await member(gw(0), 'alice');
    const bob = await member(gw(1), 'bob');
    const carol = await member(gw(2), 'carol');
    await converge([alice, bob, carol], ['alice', 'bob', 'carol'], 'three gateways converge');
    const started = performance.now();
    const dave = await member(gw(2), 'dave');
    await converge(
      [alice, bob, carol, dave],
      ['alice', 'bob', 'carol', 'dave'],
      'dave on every gateway',
    );
    console.log(
      `presence convergence after a join (3 gateway processes): ${(performance.now() - started).toFixed(0)} ms (join included)`,
    );
    // A worker's view over NATS, from any gateway of the queue group.
    const reply = await nc.request(
      'genapi.presence.get',
      new TextEncoder().encode(JSON.stringify({ topic: TOPIC })),
      {
        timeout: 5000,
      },
    );
    const state = JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    expect(Object.keys(state).sort()).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectNoDuplicates([alice, bob, carol, dave]);
  }, 60_000);

  it('kill -9 of a gateway: its entries leave everywhere within downAfterMs (+ slack), no ghosts', async () => {
    const alice = await member(gw(0), 'alice');
    const bob = await member(gw(1), 'bob');
    await member(gw(2), 'carol');
    await member(gw(2), 'dave');
    await converge(members, ['alice', 'bob', 'carol', 'dave'], 'before the kill');
    const started = performance.now();
    await gw(2).kill();
    gateways[2] = null;
    const ms = await converge(
      [alice, bob],
      ['alice', 'bob'],
      'carol and dave leave after the kill',
      downAfterMs + SLACK_MS,
    );
    console.log(
      `presence convergence after kill -9 (downAfterMs ${downAfterMs}, heartbeat ${heartbeatMs}): ${(performance.now() - started).toFixed(0)} ms (converge ${ms.toFixed(0)} ms)`,
    );
    expectNoDuplicates([alice, bob]);
  }, 60_000);

  it('a gateway restarted with the same node id (new epoch) brings no duplicates', async () => {
    gateways[2] = await startGateway('gw-2', cluster.urls[2]!);
    const alice = await member(gw(0), 'alice');
    const carol = await member(gw(2), 'carol');
    await converge([alice, carol], ['alice', 'carol'], 'gw-2 is back');
    // Die and return at once: the others may still hold the old epoch's entries.
    await gw(2).kill();
    gateways[2] = await startGateway('gw-2', cluster.urls[2]!);
    members.splice(members.indexOf(carol), 1);
    carol.socket.disconnect();
    const carol2 = await member(gw(2), 'carol');
    const bob = await member(gw(1), 'bob');
    await converge([alice, carol2, bob], ['alice', 'bob', 'carol'], 'one carol everywhere');
    expectNoDuplicates([alice, bob, carol2]);
  }, 60_000);

  it('graceful stop: its entries leave at once (goodbye), well before downAfterMs', async () => {
    const alice = await member(gw(0), 'alice');
    const bob = await member(gw(1), 'bob');
    await member(gw(2), 'carol');
    await converge(members, ['alice', 'bob', 'carol'], 'before the stop');
    const started = performance.now();
    await gw(2).stop();
    gateways[2] = null;
    // Expiry alone could not do it this fast: it needs downAfterMs of silence.
    await converge([alice, bob], ['alice', 'bob'], 'carol leaves on goodbye', downAfterMs - 500);
    console.log(
      `presence convergence after a graceful stop: ${(performance.now() - started).toFixed(0)} ms (stop included)`,
    );
    expectNoDuplicates([alice, bob]);
  }, 60_000);
});

describe('cluster presence: a route partition between two NATS servers, and its healing', () => {
  let cluster: NatsCluster;
  const gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    cluster = await NatsCluster.start({ size: 2, proxiedRoutes: true });
    gateways.push(
      ...(await Promise.all([0, 1].map((i) => startGateway(`gp-${i}`, cluster.urls[i]!)))),
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.kill()));
    await cluster?.dispose();
  }, 30_000);

  it('each side drops the other after downAfterMs; healed, both converge with changes from both sides', async () => {
    const [g0, g1] = gateways as [GatewayProcess, GatewayProcess];
    const p0 = await member(g0, 'p0');
    const p1 = await member(g1, 'p1');
    const r1 = await member(g1, 'r1');
    await converge([p0, p1, r1], ['p0', 'p1', 'r1'], 'before the partition');

    const closedBefore = [routesClosed(cluster, 0), routesClosed(cluster, 1)];
    cluster.isolate(0);
    cluster.isolate(1);
    await until(
      () =>
        routesClosed(cluster, 0) > closedBefore[0]! && routesClosed(cluster, 1) > closedBefore[1]!,
      'routes closed on both servers',
    );
    // Each side alone: the other side's entries expire (the clients stay connected).
    await converge([p0], ['p0'], 'side 0 alone', downAfterMs + SLACK_MS);
    await converge([p1, r1], ['p1', 'r1'], 'side 1 alone', downAfterMs + SLACK_MS);
    // Changes while split: q0 joins on side 0, p1 leaves on side 1.
    const q0 = await member(g0, 'q0');
    members.splice(members.indexOf(p1), 1);
    p1.socket.disconnect();
    await converge([p0, q0], ['p0', 'q0'], 'side 0 sees q0');
    await converge([r1], ['r1'], 'side 1 sees p1 leave');

    const started = performance.now();
    cluster.heal();
    await converge([p0, q0, r1], ['p0', 'q0', 'r1'], 'healed: one view, no ghost of p1', 30_000);
    console.log(
      `presence convergence after healing a route partition: ${(performance.now() - started).toFixed(0)} ms (route re-formation included)`,
    );
    expectNoDuplicates([p0, q0, r1]);
  }, 60_000);
});
