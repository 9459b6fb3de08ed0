/**
 * The replica state machine of cluster presence (src/cluster/presence-replica.ts) with a manual
 * clock: deltas in sequence, gap detection, state transfer, epochs, goodbye, expiry and the
 * return of a node, limits. No NATS: the test plays the other nodes.
 */
import { describe, expect, it } from 'vitest';
import { ReplicaStore, type NodeSnapshot } from '../../src/cluster/presence-replica.js';
import type { DeltaMessage, WireChange } from '../../src/cluster/presence-wire.js';
import type { PresenceMeta, PresenceState } from '../../src/presence/tracker.js';
import { manualClock } from '../support/clock.js';
import {
  CLUSTER_PRESENCE_DEFAULTS,
  clusterPresenceOptions,
} from '../../src/cluster/presence-options.js';
import { OutOfRangeError } from '../../src/errors.js';
import { createGateway } from '../../src/index.js';

interface Diff {
  topic: string;
  joins: string[];
  leaves: string[];
}

function harness(limits: Partial<ConstructorParameters<typeof ReplicaStore>[1]> = {}) {
  const clock = manualClock(1000);
  const diffs: Diff[] = [];
  const syncs: string[] = [];
  const store = new ReplicaStore(
    clock.now,
    { downAfterMs: 3000, maxEntriesPerNode: 100, maxNodes: 10, maxPendingDeltas: 100, ...limits },
    {
      diff: (topic, joins, leaves) =>
        diffs.push({
          topic,
          joins: joins.map(([key, meta]) => `${key}@${String(meta.phx_ref)}`),
          leaves: leaves.map(([key, meta]) => `${key}@${String(meta.phx_ref)}`),
        }),
      requestSync: (node) => syncs.push(node),
    },
  );
  const list = (topic: string): Record<string, string[]> => {
    const state: PresenceState = Object.create(null) as PresenceState;
    store.mergeInto(topic, state, (s, key, metas) => {
      s[key] = { metas };
    });
    const out: Record<string, string[]> = {};
    for (const [key, { metas }] of Object.entries(state))
      out[key] = metas.map((m: PresenceMeta) => String(m.phx_ref)).sort();
    return out;
  };
  return { clock, diffs, syncs, store, list };
}

const join = (ref: string, key = 'alice', topic = 'room:1'): WireChange => ({
  op: 'join',
  topic,
  key,
  ref,
  meta: { n: ref },
});
const leave = (ref: string, key = 'alice', topic = 'room:1'): WireChange => ({
  op: 'leave',
  topic,
  key,
  ref,
});
const delta = (seq: number, changes: WireChange[], epoch = 'e1', node = 'A'): DeltaMessage => ({
  node,
  epoch,
  seq,
  changes,
});
const snapshot = (
  seq: number,
  refs: [string, string][],
  epoch = 'e1',
  topic = 'room:1',
): NodeSnapshot => ({
  epoch,
  seq,
  entries: refs.map(([key, ref]) => ({ topic, key, ref, meta: { n: ref } })),
});

/** A store that knows node A at epoch e1, seq `seq`, with `refs` (alice). */
function synced(refs: string[] = [], seq = 0) {
  const h = harness();
  h.store.heartbeat({ node: 'A', epoch: 'e1', seq });
  expect(h.syncs).toEqual(['A']);
  h.store.syncDone(
    'A',
    snapshot(
      seq,
      refs.map((ref) => ['alice', ref]),
    ),
  );
  h.syncs.length = 0;
  h.diffs.length = 0;
  return h;
}

describe('cluster presence replicas', () => {
  it('a new node is synced first; its snapshot arrives as one diff of joins', () => {
    const h = harness();
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 4 });
    expect(h.syncs).toEqual(['A']);
    h.store.syncDone(
      'A',
      snapshot(4, [
        ['alice', 'r1'],
        ['bob', 'r2'],
      ]),
    );
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: ['alice@r1', 'bob@r2'], leaves: [] }]);
    expect(h.list('room:1')).toEqual({ alice: ['r1'], bob: ['r2'] });
    expect(h.store.nodeSeqs().get('A')).toEqual({ epoch: 'e1', seq: 4, entries: 2 });
  });

  it('deltas in sequence apply one diff each; duplicates change nothing', () => {
    const h = synced();
    h.store.delta(delta(1, [join('r1')]));
    h.store.delta(delta(2, [join('r2', 'bob'), leave('r1')]));
    h.store.delta(delta(2, [join('r2', 'bob'), leave('r1')]));
    expect(h.diffs).toEqual([
      { topic: 'room:1', joins: ['alice@r1'], leaves: [] },
      { topic: 'room:1', joins: ['bob@r2'], leaves: ['alice@r1'] },
    ]);
    expect(h.list('room:1')).toEqual({ bob: ['r2'] });
    expect(h.syncs).toEqual([]);
  });

  it('an update is one diff: the new meta joins (phx_ref_prev), the old one leaves', () => {
    const h = synced(['r1']);
    h.store.delta(
      delta(1, [
        { op: 'update', topic: 'room:1', key: 'alice', ref: 'r2', prev_ref: 'r1', meta: {} },
      ]),
    );
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: ['alice@r2'], leaves: ['alice@r1'] }]);
    const state: PresenceState = {};
    h.store.mergeInto('room:1', state, (s, key, metas) => (s[key] = { metas }));
    expect(state.alice!.metas).toEqual([{ phx_ref: 'r2', phx_ref_prev: 'r1' }]);
  });

  it('a seq gap holds the delta and asks for the state; held deltas apply after it', () => {
    const h = synced(['r1']);
    h.store.delta(delta(2, [join('r3')])); // seq 1 was lost
    expect(h.syncs).toEqual(['A']);
    expect(h.diffs).toEqual([]);
    h.store.delta(delta(3, [join('r4')]));
    expect(h.syncs).toEqual(['A']); // one transfer at a time
    // The state at seq 1: r1 left, r2 joined.
    h.store.syncDone('A', snapshot(1, [['alice', 'r2']]));
    expect(h.diffs).toEqual([
      { topic: 'room:1', joins: ['alice@r2'], leaves: ['alice@r1'] },
      { topic: 'room:1', joins: ['alice@r3'], leaves: [] },
      { topic: 'room:1', joins: ['alice@r4'], leaves: [] },
    ]);
    expect(h.list('room:1')).toEqual({ alice: ['r2', 'r3', 'r4'] });
    expect(h.store.nodeSeqs().get('A')!.seq).toBe(3);
  });

  it('held deltas the snapshot already covers are skipped (no duplicates)', () => {
    const h = synced();
    h.store.delta(delta(2, [join('r2')]));
    h.store.syncDone(
      'A',
      snapshot(2, [
        ['alice', 'r1'],
        ['alice', 'r2'],
      ]),
    );
    expect(h.list('room:1')).toEqual({ alice: ['r1', 'r2'] });
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: ['alice@r1', 'alice@r2'], leaves: [] }]);
  });

  it('a heartbeat ahead of what was applied means lost deltas: sync', () => {
    const h = synced(['r1'], 3);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 3 });
    expect(h.syncs).toEqual([]);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 5 });
    expect(h.syncs).toEqual(['A']);
  });

  it('a failed transfer is retried at the next message of that node', () => {
    const h = synced([], 0);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 2 });
    expect(h.syncs).toEqual(['A']);
    h.store.syncFailed('A');
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 2 });
    expect(h.syncs).toEqual(['A', 'A']);
  });

  it('a new epoch (the node restarted) drops the old entries and syncs the new state', () => {
    const h = synced(['r1', 'r2'], 2);
    h.store.heartbeat({ node: 'A', epoch: 'e2', seq: 0 });
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: [], leaves: ['alice@r1', 'alice@r2'] }]);
    expect(h.syncs).toEqual(['A']);
    h.store.syncDone('A', snapshot(0, [['alice', 'r9']], 'e2'));
    expect(h.list('room:1')).toEqual({ alice: ['r9'] });
  });

  it('goodbye drops the node at once; a late delta of that epoch brings no ghost back', () => {
    const h = synced(['r1'], 1);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 1, bye: true });
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: [], leaves: ['alice@r1'] }]);
    expect(h.list('room:1')).toEqual({});
    expect(h.store.stats()).toMatchObject({ nodes: 0, departed: 1 });
  });

  it('a silent node expires after downAfterMs, and comes back through a state transfer', () => {
    const h = synced(['r1'], 1);
    h.clock.advance(2999);
    expect(h.store.expire()).toBe(0);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 1 });
    h.clock.advance(2999);
    expect(h.store.expire()).toBe(0);
    h.clock.advance(1);
    expect(h.store.expire()).toBe(1);
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: [], leaves: ['alice@r1'] }]);
    expect(h.list('room:1')).toEqual({});
    // The partition heals: same epoch, it missed nothing, but we dropped it: full state again.
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 2 });
    expect(h.syncs).toEqual(['A']);
    h.store.syncDone(
      'A',
      snapshot(2, [
        ['alice', 'r1'],
        ['bob', 'r5'],
      ]),
    );
    expect(h.list('room:1')).toEqual({ alice: ['r1'], bob: ['r5'] });
    expect(h.store.stats()).toMatchObject({ nodes: 1, entries: 2, expired: 1 });
  });

  it('a transfer that completes after its node expired is ignored', () => {
    const h = harness();
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 0 });
    h.clock.advance(3000);
    h.store.expire();
    h.store.syncDone('A', snapshot(0, [['alice', 'r1']]));
    expect(h.list('room:1')).toEqual({});
  });

  it('a snapshot replaces the replica: entries gone during the gap leave, kept ones stay quiet', () => {
    const h = synced(['r1', 'r2'], 1);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 9 });
    h.store.syncDone(
      'A',
      snapshot(9, [
        ['alice', 'r2'],
        ['alice', 'r3'],
      ]),
    );
    expect(h.diffs).toEqual([{ topic: 'room:1', joins: ['alice@r3'], leaves: ['alice@r1'] }]);
  });

  it('caps entries per node and the number of nodes (counted)', () => {
    const h = harness({ maxEntriesPerNode: 2, maxNodes: 1 });
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 0 });
    h.store.syncDone('A', snapshot(0, []));
    h.store.delta(delta(1, [join('r1'), join('r2'), join('r3')]));
    expect(h.list('room:1')).toEqual({ alice: ['r1', 'r2'] });
    h.store.heartbeat({ node: 'B', epoch: 'e1', seq: 0 });
    expect(h.store.knows('B')).toBe(false);
    expect(h.store.stats().overLimit).toBe(2);
  });

  it('too many held deltas start a fresh transfer instead of growing', () => {
    const h = harness({ maxPendingDeltas: 2 });
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 0 });
    for (let seq = 1; seq <= 5; seq++) h.store.delta(delta(seq, [join(`r${seq}`)]));
    // The snapshot is from before seq 4: held 5 alone leaves a gap at 4 → sync again.
    h.store.syncDone(
      'A',
      snapshot(3, [
        ['alice', 'r1'],
        ['alice', 'r2'],
        ['alice', 'r3'],
      ]),
    );
    expect(h.syncs).toEqual(['A', 'A']);
    h.store.syncDone(
      'A',
      snapshot(
        5,
        [1, 2, 3, 4, 5].map((n) => ['alice', `r${n}`] as [string, string]),
      ),
    );
    expect(h.list('room:1')).toEqual({ alice: ['r1', 'r2', 'r3', 'r4', 'r5'] });
  });

  it('after this node reconnects every known node is synced again', () => {
    const h = synced(['r1'], 1);
    h.store.resyncAll();
    expect(h.syncs).toEqual(['A']);
  });

  it('a transfer answered by the previous epoch is discarded and asked again', () => {
    const h = synced(['r1'], 1);
    h.store.heartbeat({ node: 'A', epoch: 'e1', seq: 3 });
    expect(h.syncs).toEqual(['A']);
    h.store.heartbeat({ node: 'A', epoch: 'e2', seq: 0 }); // restarted while we were asking
    h.store.syncDone(
      'A',
      snapshot(
        3,
        [
          ['alice', 'r1'],
          ['alice', 'r2'],
        ],
        'e1',
      ),
    );
    expect(h.syncs).toEqual(['A', 'A']);
    expect(h.list('room:1')).toEqual({});
    h.store.syncDone('A', snapshot(0, [['alice', 'n1']], 'e2'));
    expect(h.list('room:1')).toEqual({ alice: ['n1'] });
  });
});

describe('cluster presence options', () => {
  it('defaults apply; values out of range are refused with the option named', () => {
    expect(clusterPresenceOptions()).toEqual(CLUSTER_PRESENCE_DEFAULTS);
    expect(CLUSTER_PRESENCE_DEFAULTS).toMatchObject({ heartbeatMs: 1000, downAfterMs: 3000 });
    expect(clusterPresenceOptions({ downAfterMs: 5000 }).downAfterMs).toBe(5000);
    expect(() => clusterPresenceOptions({ heartbeatMs: 0 })).toThrow(/heartbeatMs/);
    expect(() => clusterPresenceOptions({ maxNodes: 1.5 })).toThrow(OutOfRangeError);
    expect(() => clusterPresenceOptions({ heartbeatMs: 1000, downAfterMs: 1000 })).toThrow(
      /downAfterMs .* must exceed heartbeatMs/,
    );
  });

  it('a gateway refuses bad presence options and node ids at construction', () => {
    expect(() =>
      createGateway({ logger: false, presence: { cluster: { syncTimeoutMs: -1 } } }),
    ).toThrow(OutOfRangeError);
    expect(() => createGateway({ logger: false, nodeId: '' })).toThrow(/nodeId/);
    expect(() => createGateway({ logger: false, nodeId: 'n'.repeat(257) })).toThrow(/nodeId/);
    expect(createGateway({ logger: false, nodeId: 'n'.repeat(256) }).nodeId).toHaveLength(256);
  });
});
