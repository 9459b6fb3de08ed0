/**
 * protocol/vectors/presence.json stays true: every message conforms to its schema, the
 * subjects are the ones the gateway builds, the decoders accept the messages, and a receiver fed
 * the documented sequence broadcasts the documented diffs and answers the documented state.
 */
import { describe, expect, it } from 'vitest';
import { ReplicaStore } from '../../src/cluster/presence-replica.js';
import {
  decodeDelta,
  decodeGetRequest,
  decodeHeartbeat,
  decodeSyncChunk,
  type Decoded,
} from '../../src/cluster/presence-wire.js';
import { Subjects } from '../../src/nats/subjects.js';
import { topicToken } from '../../src/nats/topic-token.js';
import type { PresenceMeta, PresenceState } from '../../src/presence/tracker.js';
import { manualClock } from '../support/clock.js';
import { conforms, loadProtocol } from '../support/protocol.js';

function expectSchema(file: string, value: unknown): void {
  expect(conforms(file, value), file).toBe('valid');
}

const vectors = loadProtocol('vectors/presence.json') as Record<string, unknown> & {
  prefix: string;
  subjects: Record<string, unknown> & { sync_node_with_dots: { node: string; subject: string } };
  sync_reply: unknown[];
};
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
function ok<T>(decoded: Decoded<T>): T {
  if (!decoded.ok) throw new Error(`vector refused: ${decoded.why}`);
  return decoded.value;
}
const MAX = 1024 * 1024;

describe('protocol/vectors/presence.json', () => {
  it('messages conform to the schemas, subjects to Subjects', () => {
    for (const name of ['hello', 'heartbeat', 'goodbye'])
      expectSchema('presence-heartbeat.schema.json', vectors[name]);
    for (const name of ['delta_1', 'delta_2'])
      expectSchema('presence-delta.schema.json', vectors[name]);
    for (const chunk of vectors.sync_reply) expectSchema('presence-sync-chunk.schema.json', chunk);
    expectSchema('presence-sync-request.schema.json', vectors.sync_request);
    expectSchema('presence-get-request.schema.json', vectors.get_request);
    expectSchema('presence-state.schema.json', vectors.get_reply);
    const subjects = new Subjects(vectors.prefix);
    expect(vectors.subjects.delta).toBe(subjects.presenceDelta);
    expect(vectors.subjects.heartbeat).toBe(subjects.presenceHeartbeat);
    expect(vectors.subjects.get).toBe(subjects.presenceGet);
    expect(vectors.subjects.sync_gw_a).toBe(subjects.presenceSync(topicToken('gw-a')));
    const dotted = vectors.subjects.sync_node_with_dots;
    expect(dotted.subject).toBe(subjects.presenceSync(topicToken(dotted.node)));
  });

  it('a receiver fed the sequence broadcasts the documented diffs and state', () => {
    const diffs: { topic: string; payload: { joins: PresenceState; leaves: PresenceState } }[] = [];
    const group = (items: readonly (readonly [string, PresenceMeta])[]): PresenceState => {
      const state: PresenceState = {};
      for (const [key, meta] of items) (state[key] ??= { metas: [] }).metas.push(meta);
      return state;
    };
    const syncs: string[] = [];
    const store = new ReplicaStore(
      manualClock().now,
      { downAfterMs: 3000, maxEntriesPerNode: 100, maxNodes: 10, maxPendingDeltas: 10 },
      {
        diff: (topic, joins, leaves) =>
          diffs.push({ topic, payload: { joins: group(joins), leaves: group(leaves) } }),
        requestSync: (node) => syncs.push(node),
      },
    );
    store.heartbeat(ok(decodeHeartbeat(bytes(vectors.hello), MAX)));
    expect(syncs).toEqual(['gw-a']);
    const chunks = vectors.sync_reply.map((chunk) => ok(decodeSyncChunk(bytes(chunk), MAX)));
    store.syncDone('gw-a', {
      epoch: chunks[0]!.epoch,
      seq: chunks[0]!.seq,
      entries: chunks.flatMap((c) => c.entries),
    });
    expect(diffs.splice(0)).toEqual([vectors.diff_after_sync]);

    store.delta(ok(decodeDelta(bytes(vectors.delta_1), MAX)));
    expect(diffs.splice(0)).toEqual([vectors.diff_after_delta_1]);
    store.heartbeat(ok(decodeHeartbeat(bytes(vectors.heartbeat), MAX)));
    expect(syncs).toHaveLength(1); // in step: no transfer

    const topic = ok(decodeGetRequest(bytes(vectors.get_request), MAX));
    const state: PresenceState = {};
    store.mergeInto(topic, state, (s, key, metas) => (s[key] = { metas }));
    expect(state).toEqual(vectors.get_reply);

    store.delta(ok(decodeDelta(bytes(vectors.delta_2), MAX)));
    diffs.length = 0;
    store.heartbeat(ok(decodeHeartbeat(bytes(vectors.goodbye), MAX)));
    expect(diffs).toEqual([vectors.diff_after_goodbye]);
  });
});
