/**
 * Cluster presence with in-process gateways on one real nats-server: the wire contract of
 * protocol/presence.md seen from a plain NATS client (deltas, heartbeats, state transfer,
 * `<p>.presence.get`), updates as one diff, chunked state transfer and malformed input. The
 * process-level scenarios (kill -9, graceful stop, partitions, restarts) are in
 * presence-cluster.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Msg } from '@nats-io/nats-core';
import { createGateway, defineChannel, ok, type Gateway } from '../../src/index.js';
import type { ClusterPresence } from '../../src/cluster/presence.js';
import type { ClusterPresenceOptions } from '../../src/presence/presence.js';
import { NatsServer } from '../support/nats.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { manualClock } from '../support/clock.js';
import type { Clock } from '../../src/util/clock.js';
import { deferred, eventually, until, within } from '../support/wait.js';
import { converge, joinMember, leave, view, type Member } from './presence-support.js';
import { conforms } from '../support/protocol.js';

// The documented schemas (protocol/schemas/presence-*.schema.json) hold for what gateways send.
function expectSchema(file: string, value: unknown): void {
  expect(conforms(file, value)).toBe('valid');
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));
const parse = (msg: Msg) => JSON.parse(decoder.decode(msg.data)) as Record<string, unknown>;

let nats: NatsServer;
let nc: NatsConnection;
const gateways: Gateway[] = [];
const members: Member[] = [];

/** A gateway on the shared NATS with a `room:*` channel: join `{name}` tracks it, `update` updates. */
async function startGateway(
  nodeId: string,
  cluster: ClusterPresenceOptions = {},
  servers: string = nats.url,
  clock?: Clock,
): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway({
    logger: false,
    nodeId,
    presence: { cluster },
    ...(clock ? { clock } : {}),
  });
  const room = defineChannel<{ name?: string }>({
    join(_topic, payload, channel) {
      channel.assign({ name: String((payload as { name?: unknown }).name) });
      return undefined;
    },
    afterJoin(channel) {
      channel.push('presence_state', gateway.presence.list(channel.topic));
      gateway.presence.track(channel, channel.assigns.name!, { from: nodeId });
    },
    handleIn(event, payload, channel) {
      if (event === 'update') {
        gateway.presence.update(channel, channel.assigns.name!, payload as Record<string, unknown>);
        return ok();
      }
      if (event === 'track') {
        // Several tracks in one turn: replicated as one delta.
        const { keys, topic } = payload as { keys: string[]; topic: string };
        for (const key of keys)
          gateway.presence.track(channel, key, { pad: 'x'.repeat(40) }, topic);
        return ok();
      }
      return undefined;
    },
  });
  gateway.socket('/socket').channel('room:*', room);
  const { port } = await gateway.listen(0, '127.0.0.1');
  await gateway.connectCluster({ servers });
  gateways.push(gateway);
  return { gateway, url: `ws://127.0.0.1:${port}/socket` };
}

const statsOf = (gateway: Gateway) => (gateway.presence as ClusterPresence).stats();

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
});
afterEach(async () => {
  leave(members.splice(0));
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

describe('cluster presence (in-process gateways, one nats-server)', () => {
  it('clients on three gateways converge; list/get answer cluster-wide; presence.get over NATS', async () => {
    const a = await startGateway('gw-a');
    const b = await startGateway('gw-b');
    const c = await startGateway('gw-c');
    const topic = 'room:lobby';
    members.push(await joinMember(a.url, topic, 'alice'));
    members.push(await joinMember(b.url, topic, 'bob'));
    members.push(await joinMember(c.url, topic, 'carol'));
    const ms = await converge(members, ['alice', 'bob', 'carol'], 'three clients converge');
    console.log(`presence convergence after three joins (in-process): ${ms.toFixed(0)} ms`);

    for (const gateway of gateways) {
      expect(Object.keys(gateway.presence.list(topic)).sort()).toEqual(['alice', 'bob', 'carol']);
      expect(gateway.presence.get(topic, 'carol')?.metas).toHaveLength(1);
      expect(gateway.presence.get(topic, 'carol')?.metas[0]).toMatchObject({ from: 'gw-c' });
    }

    // A plain NATS client (a worker in any language) asks one gateway of the queue group.
    const reply = await nc.request('genapi.presence.get', json({ topic }), { timeout: 5000 });
    const state = parse(reply) as Record<string, { metas: { phx_ref: string; from: string }[] }>;
    expect(Object.keys(state).sort()).toEqual(['alice', 'bob', 'carol']);
    expectSchema('presence-state.schema.json', state);
    expectSchema('presence-get-request.schema.json', { topic });
    expect(state.bob!.metas).toHaveLength(1);
    expect(state.bob!.metas[0]!.from).toBe('gw-b');
    expect(typeof state.bob!.metas[0]!.phx_ref).toBe('string');
    const empty = await nc.request('genapi.presence.get', json({ topic: 'room:none' }));
    expect(parse(empty)).toEqual({});
    const bad = await nc.request('genapi.presence.get', json({ topic: 42 }));
    expect(bad.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(bad.data.length).toBe(0);
  });

  it('an update reaches other gateways as one diff: new meta joins (phx_ref_prev), old leaves', async () => {
    const a = await startGateway('gw-a');
    const b = await startGateway('gw-b');
    const alice = await joinMember(a.url, 'room:u', 'alice');
    const bob = await joinMember(b.url, 'room:u', 'bob');
    members.push(alice, bob);
    await converge(members, ['alice', 'bob'], 'both listed');
    const before = bob.presence.state.alice!.metas[0]!.phx_ref;
    const diffs = bob.diffs.length;
    alice.channel.push('update', { mood: 'happy' });
    await until(() => bob.presence.state.alice?.metas[0]?.mood === 'happy', 'bob sees the update');
    const diff = bob.diffs[diffs] as {
      joins: Record<string, { metas: Record<string, unknown>[] }>;
      leaves: Record<string, { metas: Record<string, unknown>[] }>;
    };
    expect(bob.diffs).toHaveLength(diffs + 1);
    expect(diff.joins.alice!.metas).toHaveLength(1);
    const joined = diff.joins.alice!.metas[0]!;
    expect(joined.mood).toBe('happy');
    expect(joined.phx_ref_prev).toBe(before);
    expect(joined.phx_ref).not.toBe(before);
    expect(diff.leaves.alice!.metas).toEqual([{ from: 'gw-a', phx_ref: before }]);
    expect(view(bob)).toEqual({ alice: 1, bob: 1 });
  });

  it('a plain NATS client can play a node: heartbeat → state transfer; a seq gap → another', async () => {
    const a = await startGateway('gw-a');
    const alice = await joinMember(a.url, 'room:w', 'alice');
    members.push(alice);
    // The fake node answers state transfers with whatever `state` holds.
    let state: { seq: number; entries: unknown[] } = {
      seq: 1,
      entries: [{ topic: 'room:w', key: 'zed', ref: 'zed-ref-1', meta: { from: 'fake' } }],
    };
    let transfers = 0;
    const sub = nc.subscribe('genapi.presence.sync.fake-node', {
      callback: (_err, msg) => {
        transfers++;
        expect(parse(msg)).toEqual({ node: 'gw-a' });
        msg.respond(json({ node: 'fake-node', epoch: 'E1', chunk: 0, chunks: 1, ...state }));
      },
    });
    nc.publish('genapi.presence.hb', json({ node: 'fake-node', epoch: 'E1', seq: 1 }));
    await converge([alice], ['alice', 'zed'], 'the fake node’s entry arrives by state transfer');
    expect(transfers).toBe(1);

    // seq 2 in order: applied as a delta, no transfer.
    nc.publish(
      'genapi.presence.delta',
      json({
        node: 'fake-node',
        epoch: 'E1',
        seq: 2,
        changes: [{ op: 'join', topic: 'room:w', key: 'yan', ref: 'yan-ref-1', meta: {} }],
      }),
    );
    await converge([alice], ['alice', 'zed', 'yan'], 'delta 2 applied');
    expect(transfers).toBe(1);

    // seq 4 (3 lost): the gateway asks for the state, which now lacks zed and yan.
    state = {
      seq: 4,
      entries: [{ topic: 'room:w', key: 'xia', ref: 'xia-ref-1', meta: {} }],
    };
    nc.publish(
      'genapi.presence.delta',
      json({
        node: 'fake-node',
        epoch: 'E1',
        seq: 4,
        changes: [{ op: 'join', topic: 'room:w', key: 'xia', ref: 'xia-ref-1', meta: {} }],
      }),
    );
    await converge([alice], ['alice', 'xia'], 'the gap healed by a state transfer');
    expect(transfers).toBe(2);

    // Goodbye: gone at once.
    nc.publish('genapi.presence.hb', json({ node: 'fake-node', epoch: 'E1', seq: 4, bye: true }));
    await converge([alice], ['alice'], 'goodbye drops the fake node');
    sub.unsubscribe();
  });

  it('a gateway tracks nodes by heartbeat: hello is answered, deltas are clocked and batched', async () => {
    const heartbeats: Record<string, unknown>[] = [];
    const deltas: Record<string, unknown>[] = [];
    const hbSub = nc.subscribe('genapi.presence.hb', {
      callback: (_e, m) => void heartbeats.push(parse(m)),
    });
    const dSub = nc.subscribe('genapi.presence.delta', {
      callback: (_e, m) => void deltas.push(parse(m)),
    });
    await nc.flush();
    // Beats far apart: any heartbeat gw-a sends after its hello answers someone.
    const a = await startGateway('gw-a', { heartbeatMs: 60_000, downAfterMs: 120_000 });
    const hello = await until(
      () => heartbeats.find((h) => h.node === 'gw-a' && h.hello === true),
      'gw-a says hello on start',
    );
    expectSchema('presence-heartbeat.schema.json', hello);
    expect(hello.seq).toBe(0);
    expect(typeof hello.epoch).toBe('string');
    const alice = await joinMember(a.url, 'room:c', 'alice');
    members.push(alice);
    const first = await until(() => deltas.find((d) => d.node === 'gw-a'), 'a delta');
    expect(first).toMatchObject({
      epoch: hello.epoch,
      seq: 1,
      changes: [{ op: 'join', topic: 'room:c', key: 'alice', meta: { from: 'gw-a' } }],
    });
    // Several changes in one turn go out as one delta.
    alice.channel.push('track', { keys: ['k1', 'k2', 'k3'], topic: 'room:other' });
    const second = await until(() => deltas[1], 'second delta');
    expect(second).toMatchObject({ seq: 2 });
    expectSchema('presence-delta.schema.json', first);
    expectSchema('presence-delta.schema.json', second);
    expect((second.changes as { key: string }[]).map((c) => c.key)).toEqual(['k1', 'k2', 'k3']);
    // Another node says hello: gw-a answers with a heartbeat carrying its last seq.
    const count = heartbeats.length;
    nc.publish('genapi.presence.hb', json({ node: 'newcomer', epoch: 'N1', seq: 0, hello: true }));
    const answer = await until(
      () => heartbeats.slice(count).find((h) => h.node === 'gw-a'),
      'gw-a answers the hello',
    );
    expect(answer).toMatchObject({ epoch: hello.epoch, seq: deltas.length });
    expect(answer.hello).toBeUndefined();
    expectSchema('presence-heartbeat.schema.json', answer);
    hbSub.unsubscribe();
    dSub.unsubscribe();
  });

  it('a large state is transferred in chunks under the message budget', async () => {
    const big = await startGateway('gw-big', { maxMessageBytes: 2048 });
    const owner = await joinMember(big.url, 'room:big', 'owner');
    members.push(owner);
    const keys = Array.from({ length: 120 }, (_, i) => `k${i}`);
    owner.channel.push('track', { keys, topic: 'room:big' });
    await until(() => big.gateway.presence.size === 121, 'the owner tracks 121 entries');
    const chunks: number[] = [];
    const spy = deferred();
    // A plain client asks for the state and counts the chunks.
    const inbox = nc.subscribe('_INBOX.presence-test', {
      callback: (_e, m) => {
        const chunk = parse(m);
        expectSchema('presence-sync-chunk.schema.json', chunk);
        chunks.push((chunk.entries as unknown[]).length);
        expect(m.data.length).toBeLessThanOrEqual(2048);
        if (chunks.length === chunk.chunks) spy.resolve();
      },
    });
    expectSchema('presence-sync-request.schema.json', { node: 'tester' });
    nc.publish('genapi.presence.sync.gw-big', json({ node: 'tester' }), {
      reply: '_INBOX.presence-test',
    });
    await within(spy.promise, 'all chunks', 10_000);
    inbox.unsubscribe();
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.reduce((s, n) => s + n, 0)).toBe(121);

    // A gateway that joins later gets all of it.
    const late = await startGateway('gw-late', { maxMessageBytes: 2048 });
    await eventually(
      () => expect(Object.keys(late.gateway.presence.list('room:big'))).toHaveLength(121),
      'the late gateway replicates the big state',
    );
  });

  it('state transfers served per second are bounded (maxSyncServesPerSecond); the rest are counted', async () => {
    const clock = manualClock(10_000);
    const a = await startGateway('gw-a', { maxSyncServesPerSecond: 2 }, nats.url, clock.now);
    let replies = 0;
    const inbox = nc.subscribe('_INBOX.presence-bound', { callback: () => void replies++ });
    const ask = () =>
      nc.publish('genapi.presence.sync.gw-a', json({ node: 'tester' }), {
        reply: '_INBOX.presence-bound',
      });
    for (let i = 0; i < 5; i++) ask();
    await eventually(
      () => expect(statsOf(a.gateway)).toMatchObject({ syncsServed: 2, syncsRefused: 3 }),
      'two served, three refused',
    );
    await until(() => replies === 2, 'two replies');
    clock.advance(1000);
    ask();
    await until(() => replies === 3, 'a new second serves again');
    inbox.unsubscribe();
  });

  it('malformed replication messages are dropped and counted; the gateway keeps working', async () => {
    const a = await startGateway('gw-a', { maxMessageBytes: 64 * 1024 });
    const b = await startGateway('gw-b');
    const bad: [string, Uint8Array][] = [
      ['genapi.presence.delta', encoder.encode('not json')],
      ['genapi.presence.delta', json([1, 2])],
      ['genapi.presence.delta', json({ node: 'x', epoch: 'e', seq: 0, changes: [] })],
      ['genapi.presence.delta', json({ node: 'x', epoch: 'e', seq: 1, changes: [{ op: 'nope' }] })],
      [
        'genapi.presence.delta',
        json({ node: 'x', epoch: 'e', seq: 1, changes: [{ op: 'join', topic: 't', key: 'k' }] }),
      ],
      ['genapi.presence.delta', json({ node: 'x'.repeat(300), epoch: 'e', seq: 1, changes: [] })],
      ['genapi.presence.delta', new Uint8Array(100 * 1024).fill(32)],
      ['genapi.presence.hb', json({ node: 'x', epoch: 'e', seq: -1 })],
      ['genapi.presence.hb', json({ node: 'x', epoch: 'e', seq: 1, bye: 'yes' })],
      ['genapi.presence.hb', json(null)],
    ];
    const before = statsOf(a.gateway).dropped;
    for (const [subject, data] of bad) nc.publish(subject, data);
    await nc.flush();
    await eventually(
      () => expect(statsOf(a.gateway).dropped - before).toBe(bad.length),
      'every malformed message counted',
    );
    expect(statsOf(a.gateway).nodes).toBe(1); // only gw-b: nothing from "x" was taken
    members.push(await joinMember(a.url, 'room:m', 'alice'));
    members.push(await joinMember(b.url, 'room:m', 'bob'));
    await converge(members, ['alice', 'bob'], 'still replicating');
    // Keys are client data: "__proto__" replicates as a plain key, touching no prototype.
    members[0]!.channel.push('track', { keys: ['__proto__', 'constructor'], topic: 'room:m' });
    await eventually(
      () =>
        expect(Object.keys(b.gateway.presence.list('room:m')).sort()).toEqual([
          '__proto__',
          'alice',
          'bob',
          'constructor',
        ]),
      'odd keys replicated',
    );
    expect(b.gateway.presence.get('room:m', '__proto__')?.metas).toHaveLength(1);
    expect(({} as Record<string, unknown>).metas).toBeUndefined();
  });

  it('a gateway that loses NATS keeps its local presence and reconciles when NATS returns', async () => {
    const fast = { heartbeatMs: 200, downAfterMs: 800 };
    const proxy = await TcpProxy.start(nats.port);
    try {
      const a = await startGateway('gw-a', fast, proxy.url);
      const b = await startGateway('gw-b', fast);
      const alice = await joinMember(a.url, 'room:o', 'alice');
      const bob = await joinMember(b.url, 'room:o', 'bob');
      members.push(alice, bob);
      await converge([alice, bob], ['alice', 'bob'], 'before the outage');

      proxy.cut();
      // Each side drops the other after downAfterMs; gw-a serves its own sockets meanwhile.
      await converge([alice], ['alice'], 'gw-a alone');
      await converge([bob], ['bob'], 'gw-b dropped gw-a');
      const amy = await joinMember(a.url, 'room:o', 'amy');
      members.push(amy);
      await converge([alice, amy], ['alice', 'amy'], 'a local join during the outage');
      members.splice(members.indexOf(bob), 1);
      bob.socket.disconnect();
      const ben = await joinMember(b.url, 'room:o', 'ben');
      members.push(ben);
      await converge([ben], ['ben'], 'bob left and ben joined on gw-b');

      proxy.restore();
      await converge([alice, amy, ben], ['alice', 'amy', 'ben'], 'reconciled after the outage');
      expect(a.gateway.clusterHealth()?.reconnects).toBeGreaterThanOrEqual(1);
      expect(statsOf(a.gateway).expired).toBeGreaterThanOrEqual(1);
      for (const m of [alice, amy, ben]) expect(m.duplicates, m.name).toEqual([]);
    } finally {
      await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
      await proxy.close();
    }
  }, 60_000);
});
