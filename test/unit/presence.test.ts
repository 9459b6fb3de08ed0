/**
 * Presence (protocol spec §5): track/update/untrack produce exactly the diffs the JS Presence
 * helper consumes, broadcast through the PubSub as one `presence_diff` each.
 */
import { beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { LocalPubSub, type Broadcast, type Subscriber } from '../../src/channel/pubsub.js';
import type { Channel } from '../../src/channel/types.js';
import type { Gateway } from '../../src/gateway.js';
import {
  LocalPresence,
  type Presence,
  type PresenceChange,
  type PresenceDiff,
  type PresenceState,
} from '../../src/presence/presence.js';

const REF = /^[A-Za-z0-9_-]{16}$/;

class Recorder implements Subscriber {
  readonly received: { topic: string; event: string; payload: unknown }[] = [];
  deliver(broadcast: Broadcast): void {
    this.received.push({
      topic: broadcast.topic,
      event: broadcast.event,
      payload: broadcast.payload,
    });
  }
  /** The diffs received so far, round-tripped through JSON like the wire does. */
  diffs(): PresenceDiff[] {
    return this.received.map((m) => JSON.parse(JSON.stringify(m.payload)) as PresenceDiff);
  }
  take(): PresenceDiff[] {
    const out = this.diffs();
    this.received.length = 0;
    return out;
  }
}

function fakeChannel(topic: string): Channel {
  return { topic } as unknown as Channel;
}

let pubsub: LocalPubSub;
let presence: Presence;
let lobby: Recorder;
const TOPIC = 'presence:lobby';

beforeEach(() => {
  pubsub = new LocalPubSub();
  presence = new LocalPresence(pubsub, { nodeId: 'node-a' });
  lobby = new Recorder();
  pubsub.subscribe(TOPIC, lobby);
});

describe('Presence: the spec §5 / cases 81–84 sequence', () => {
  it('track, second track, update, untrack', () => {
    const a = fakeChannel(TOPIC);
    const b = fakeChannel(TOPIC);

    // 81: alice joins — state before tracking is empty, then one diff.
    expect(presence.list(TOPIC)).toEqual({});
    const r1 = presence.track(a, 'alice', { online_at: 1 });
    expect(r1).toMatch(REF);
    expect(lobby.received.map((m) => [m.topic, m.event])).toEqual([[TOPIC, 'presence_diff']]);
    expect(lobby.take()).toEqual([
      { joins: { alice: { metas: [{ online_at: 1, phx_ref: r1 }] } }, leaves: {} },
    ]);

    // 82: bob joins — the state contains alice, the diff joins bob.
    expect(presence.list(TOPIC)).toEqual({ alice: { metas: [{ online_at: 1, phx_ref: r1 }] } });
    const r2 = presence.track(b, 'bob', { online_at: 1 });
    expect(r2).not.toBe(r1);
    expect(lobby.take()).toEqual([
      { joins: { bob: { metas: [{ online_at: 1, phx_ref: r2 }] } }, leaves: {} },
    ]);

    // 83: bob updates — ONE diff with the new meta (phx_ref_prev) as a join and the old as a leave.
    const r3 = presence.update(b, 'bob', { status: 'away' });
    expect(r3).toMatch(REF);
    expect(new Set([r1, r2, r3]).size).toBe(3);
    expect(lobby.take()).toEqual([
      {
        joins: { bob: { metas: [{ status: 'away', phx_ref: r3, phx_ref_prev: r2 }] } },
        leaves: { bob: { metas: [{ online_at: 1, phx_ref: r2 }] } },
      },
    ]);
    expect(presence.get(TOPIC, 'bob')).toEqual({
      metas: [{ status: 'away', phx_ref: r3, phx_ref_prev: r2 }],
    });

    // 84: bob leaves — the leave carries the last meta, phx_ref_prev included.
    expect(presence.untrack(b, 'bob')).toBe(true);
    expect(lobby.take()).toEqual([
      {
        joins: {},
        leaves: { bob: { metas: [{ status: 'away', phx_ref: r3, phx_ref_prev: r2 }] } },
      },
    ]);
    expect(presence.list(TOPIC)).toEqual({ alice: { metas: [{ online_at: 1, phx_ref: r1 }] } });
    expect(presence.size).toBe(1);
  });

  it('a second update leaves the previous meta with its own phx_ref_prev', () => {
    const a = fakeChannel(TOPIC);
    const r1 = presence.track(a, 'alice', { v: 1 });
    const r2 = presence.update(a, 'alice', { v: 2 });
    lobby.take();
    const r3 = presence.update(a, 'alice', (current) => ({ ...current, v: 3 }));
    expect(lobby.take()).toEqual([
      {
        joins: { alice: { metas: [{ v: 3, phx_ref: r3, phx_ref_prev: r2 }] } },
        leaves: { alice: { metas: [{ v: 2, phx_ref: r2, phx_ref_prev: r1 }] } },
      },
    ]);
  });

  it('an updater function gets a copy of the current meta (without phx_ref)', () => {
    const a = fakeChannel(TOPIC);
    presence.track(a, 'alice', { n: 1 });
    let seen: unknown;
    presence.update(a, 'alice', (current) => {
      seen = current;
      current.n = 99;
      return { n: 2 };
    });
    expect(seen).toEqual({ n: 99 });
    expect(presence.get(TOPIC, 'alice')?.metas[0]).toMatchObject({ n: 2 });
  });

  it('the tracked meta is copied: mutating the caller object later changes nothing', () => {
    const a = fakeChannel(TOPIC);
    const meta: Record<string, unknown> = { online_at: 1 };
    presence.track(a, 'alice', meta);
    meta.online_at = 2;
    meta.phx_ref = 'forged';
    expect(presence.get(TOPIC, 'alice')?.metas[0]?.online_at).toBe(1);
    expect(presence.get(TOPIC, 'alice')?.metas[0]?.phx_ref).not.toBe('forged');
  });
});

describe('Presence: several metas per key and untrackAll', () => {
  it('the same key from several channels lists every meta, in track order', () => {
    const c1 = fakeChannel(TOPIC);
    const c2 = fakeChannel(TOPIC);
    const r1 = presence.track(c1, 'alice', { device: 'phone' });
    const r2 = presence.track(c2, 'alice', { device: 'laptop' });
    expect(presence.list(TOPIC)).toEqual({
      alice: {
        metas: [
          { device: 'phone', phx_ref: r1 },
          { device: 'laptop', phx_ref: r2 },
        ],
      },
    });
    expect(presence.size).toBe(2);
    lobby.take();
    // Leaving from one device removes only that meta.
    presence.untrackAll(c1);
    expect(lobby.take()).toEqual([
      { joins: {}, leaves: { alice: { metas: [{ device: 'phone', phx_ref: r1 }] } } },
    ]);
    expect(presence.list(TOPIC)).toEqual({ alice: { metas: [{ device: 'laptop', phx_ref: r2 }] } });
  });

  it('untrackAll sends one diff per topic holding every key the channel tracked there', () => {
    const other = new Recorder();
    pubsub.subscribe('presence:other', other);
    const c = fakeChannel(TOPIC);
    const ra = presence.track(c, 'alice', { a: 1 });
    const rb = presence.track(c, 'bob', { b: 1 });
    const ro = presence.track(c, 'alice', { o: 1 }, 'presence:other');
    lobby.take();
    other.take();
    presence.untrackAll(c);
    expect(lobby.take()).toEqual([
      {
        joins: {},
        leaves: {
          alice: { metas: [{ a: 1, phx_ref: ra }] },
          bob: { metas: [{ b: 1, phx_ref: rb }] },
        },
      },
    ]);
    expect(other.take()).toEqual([
      { joins: {}, leaves: { alice: { metas: [{ o: 1, phx_ref: ro }] } } },
    ]);
    expect(presence.size).toBe(0);
    expect(presence.list(TOPIC)).toEqual({});
    // Idempotent: a second call broadcasts nothing.
    presence.untrackAll(c);
    expect(lobby.received).toEqual([]);
  });

  it('untrackAll for an owner that tracked nothing broadcasts nothing', () => {
    presence.untrackAll(fakeChannel(TOPIC));
    expect(lobby.received).toEqual([]);
  });

  it('track twice for the same key on the same channel and topic throws; untrack/update of an untracked key', () => {
    const c = fakeChannel(TOPIC);
    presence.track(c, 'alice');
    expect(() => presence.track(c, 'alice')).toThrow(/already tracked/);
    expect(presence.untrack(c, 'nobody')).toBe(false);
    expect(() => presence.update(c, 'nobody', {})).toThrow(/not tracked/);
    expect(presence.untrack(fakeChannel(TOPIC), 'alice')).toBe(false);
    expect(presence.size).toBe(1);
  });

  it('track with no meta tracks an empty meta', () => {
    const c = fakeChannel(TOPIC);
    const ref = presence.track(c, 'alice');
    expect(presence.list(TOPIC)).toEqual({ alice: { metas: [{ phx_ref: ref }] } });
  });

  it('only subscribers of the topic get the diff', () => {
    const other = new Recorder();
    pubsub.subscribe('presence:other', other);
    presence.track(fakeChannel(TOPIC), 'alice');
    expect(other.received).toEqual([]);
    expect(lobby.received).toHaveLength(1);
  });
});

describe('Presence: keys are any string, "__proto__" included', () => {
  it('"__proto__" and Object.prototype member names are ordinary keys in state and diffs', () => {
    const c = fakeChannel(TOPIC);
    const r1 = presence.track(c, '__proto__', { x: 1 });
    const r2 = presence.track(c, 'constructor', { y: 1 });
    const r3 = presence.track(c, 'toString', { z: 1 });
    const [d1] = lobby.received.map((m) => m.payload as PresenceDiff);
    expect(JSON.stringify(d1)).toBe(
      `{"joins":{"__proto__":{"metas":[{"x":1,"phx_ref":"${r1}"}]}},"leaves":{}}`,
    );

    const state = presence.list(TOPIC);
    expect(Object.keys(state)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(state, '__proto__')?.value).toEqual({
      metas: [{ x: 1, phx_ref: r1 }],
    });
    expect(JSON.parse(JSON.stringify(state))).toEqual(
      JSON.parse(
        `{"__proto__":{"metas":[{"x":1,"phx_ref":"${r1}"}]},"constructor":{"metas":[{"y":1,"phx_ref":"${r2}"}]},"toString":{"metas":[{"z":1,"phx_ref":"${r3}"}]}}`,
      ),
    );
    expect(({} as Record<string, unknown>).metas).toBeUndefined();
    expect(presence.get(TOPIC, '__proto__')).toEqual({ metas: [{ x: 1, phx_ref: r1 }] });

    lobby.take();
    presence.update(c, '__proto__', { x: 2 });
    const [update] = lobby.received.map((m) => m.payload as PresenceDiff);
    expect(Object.keys(update!.joins)).toEqual(['__proto__']);
    expect(Object.keys(update!.leaves)).toEqual(['__proto__']);
    presence.untrackAll(c);
    expect(presence.size).toBe(0);
    expect(({} as Record<string, unknown>).metas).toBeUndefined();
  });

  it('meta keys named __proto__ do not reach the prototype', () => {
    const c = fakeChannel(TOPIC);
    const meta = JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as Record<string, unknown>;
    presence.track(c, 'alice', meta);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const listed = presence.list(TOPIC).alice?.metas[0];
    expect(listed?.ok).toBe(1);
  });
});

describe('Presence: options', () => {
  it('fetch adds fields next to metas in presence_state and in both sides of every diff', () => {
    const users: Record<string, { name: string }> = { u1: { name: 'Ann' }, u2: { name: 'Bo' } };
    const fetchCalls: string[] = [];
    presence = new LocalPresence(pubsub, {
      fetch: (topic, state) => {
        fetchCalls.push(topic);
        const out: PresenceState = {};
        for (const [key, value] of Object.entries(state))
          out[key] = { ...value, user: users[key] ?? null };
        return out;
      },
    });
    const c = fakeChannel(TOPIC);
    const r1 = presence.track(c, 'u1', { online_at: 1 });
    expect(lobby.take()).toEqual([
      {
        joins: { u1: { metas: [{ online_at: 1, phx_ref: r1 }], user: { name: 'Ann' } } },
        leaves: {},
      },
    ]);
    expect(presence.list(TOPIC)).toEqual({
      u1: { metas: [{ online_at: 1, phx_ref: r1 }], user: { name: 'Ann' } },
    });
    const r2 = presence.update(c, 'u1', { online_at: 2 });
    expect(lobby.take()).toEqual([
      {
        joins: {
          u1: { metas: [{ online_at: 2, phx_ref: r2, phx_ref_prev: r1 }], user: { name: 'Ann' } },
        },
        leaves: { u1: { metas: [{ online_at: 1, phx_ref: r1 }], user: { name: 'Ann' } } },
      },
    ]);
    expect(fetchCalls.every((topic) => topic === TOPIC)).toBe(true);
  });

  it('custom event names', () => {
    presence = new LocalPresence(pubsub, { events: { state: 'ps', diff: 'pd' } });
    expect(presence.stateEvent).toBe('ps');
    expect(presence.diffEvent).toBe('pd');
    presence.track(fakeChannel(TOPIC), 'alice');
    expect(lobby.received[0]?.event).toBe('pd');
  });

  it('default event names match the JS Presence helper', () => {
    expect(presence.stateEvent).toBe('presence_state');
    expect(presence.diffEvent).toBe('presence_diff');
  });

  it('a diff is broadcast as a fastlane broadcast: [null, null, topic, "presence_diff", diff] on V2', async () => {
    const { v2Serializer } = await import('../../src/wire/v2-json.js');
    const frames: string[] = [];
    pubsub.subscribe(TOPIC, { deliver: (b) => frames.push(b.frame(v2Serializer) as string) });
    const ref = presence.track(fakeChannel(TOPIC), 'alice', { online_at: 1 });
    expect(JSON.parse(frames[0]!)).toEqual([
      null,
      null,
      TOPIC,
      'presence_diff',
      { joins: { alice: { metas: [{ online_at: 1, phx_ref: ref }] } }, leaves: {} },
    ]);
  });
});

describe('Presence: the replication boundary (the Presence interface, onLocalChange)', () => {
  it('new LocalPresence(...) is the node-local implementation of the Presence interface', () => {
    expect(presence).toBeInstanceOf(LocalPresence);
    expectTypeOf(presence).toEqualTypeOf<Presence>();
    expectTypeOf(new LocalPresence(pubsub)).toEqualTypeOf<LocalPresence>();
    expectTypeOf<Gateway['presence']>().toEqualTypeOf<Presence>();
    expect((presence as LocalPresence).node).toBe('node-a');
  });

  it("streams this node's joins, updates and leaves with their node-unique refs, after each diff", () => {
    const changes: PresenceChange[] = [];
    const diffsSeen: number[] = [];
    presence.onLocalChange((change) => {
      changes.push(change);
      diffsSeen.push(lobby.received.length);
    });
    const a = fakeChannel(TOPIC);
    const r1 = presence.track(a, 'alice', { online_at: 1 });
    const r2 = presence.update(a, 'alice', { online_at: 2 });
    expect(presence.untrack(a, 'alice')).toBe(true);
    expect(changes).toEqual([
      { kind: 'join', node: 'node-a', topic: TOPIC, key: 'alice', ref: r1, meta: { online_at: 1 } },
      {
        kind: 'update',
        node: 'node-a',
        topic: TOPIC,
        key: 'alice',
        ref: r2,
        prevRef: r1,
        meta: { online_at: 2 },
        prevMeta: { online_at: 1 },
      },
      {
        kind: 'leave',
        node: 'node-a',
        topic: TOPIC,
        key: 'alice',
        ref: r2,
        meta: { online_at: 2 },
      },
    ]);
    // Each change is reported once its diff has been broadcast.
    expect(diffsSeen).toEqual([1, 2, 3]);
  });

  it('a channel ending (untrackAll) streams one leave per entry, on every topic it tracked', () => {
    const changes: PresenceChange[] = [];
    presence.onLocalChange((change) => changes.push(change));
    const a = fakeChannel(TOPIC);
    const r1 = presence.track(a, 'alice');
    const r2 = presence.track(a, 'alice', { device: 'tablet' }, 'presence:other');
    changes.length = 0;
    presence.untrackAll(a);
    expect(changes).toEqual([
      { kind: 'leave', node: 'node-a', topic: TOPIC, key: 'alice', ref: r1, meta: {} },
      {
        kind: 'leave',
        node: 'node-a',
        topic: 'presence:other',
        key: 'alice',
        ref: r2,
        meta: { device: 'tablet' },
      },
    ]);
  });

  it('changes carry copies: a listener mutating them changes nothing tracked', () => {
    presence.onLocalChange((change) => {
      change.meta.online_at = 'mutated';
    });
    const ref = presence.track(fakeChannel(TOPIC), 'alice', { online_at: 1 });
    expect(presence.get(TOPIC, 'alice')).toEqual({ metas: [{ online_at: 1, phx_ref: ref }] });
  });

  it('unsubscribing stops the stream; other listeners keep theirs', () => {
    const first: string[] = [];
    const second: string[] = [];
    const stop = presence.onLocalChange((change) => first.push(change.kind));
    presence.onLocalChange((change) => second.push(change.kind));
    const a = fakeChannel(TOPIC);
    presence.track(a, 'alice');
    stop();
    stop(); // idempotent
    presence.untrack(a, 'alice');
    expect(first).toEqual(['join']);
    expect(second).toEqual(['join', 'leave']);
  });

  it('a throwing listener does not undo the change or stop the others; the error goes to onChangeError', () => {
    const errors: [unknown, PresenceChange['kind']][] = [];
    presence = new LocalPresence(pubsub, {
      nodeId: 'node-b',
      onChangeError: (err, change) => errors.push([err, change.kind]),
    });
    const seen: string[] = [];
    presence.onLocalChange(() => {
      throw new Error('replication down');
    });
    presence.onLocalChange((change) => seen.push(`${change.node} ${change.kind}`));
    const ref = presence.track(fakeChannel(TOPIC), 'alice');
    expect(presence.get(TOPIC, 'alice')).toEqual({ metas: [{ phx_ref: ref }] });
    expect(lobby.take()).toEqual([{ joins: { alice: { metas: [{ phx_ref: ref }] } }, leaves: {} }]);
    expect(seen).toEqual(['node-b join']);
    expect(errors).toEqual([[new Error('replication down'), 'join']]);
  });

  it('entries of two nodes never share a ref: the node identity is in every ref', () => {
    const other = new LocalPresence(new LocalPubSub(), { nodeId: 'node-b' });
    const refsA = new Set<string>();
    const refsB = new Set<string>();
    for (let i = 0; i < 50; i++) {
      refsA.add(presence.track(fakeChannel(TOPIC), `a${i}`));
      refsB.add(other.track(fakeChannel(TOPIC), `b${i}`));
    }
    expect(refsA.size).toBe(50);
    expect([...refsA].some((ref) => refsB.has(ref))).toBe(false);
    // Bytes 6–7 of a ref are the node's identity: equal within a node, different across these two.
    const nodeBytes = (ref: string) => Buffer.from(ref, 'base64url').subarray(6, 8).toString('hex');
    expect(new Set([...refsA].map(nodeBytes)).size).toBe(1);
    expect(nodeBytes([...refsA][0]!)).not.toBe(nodeBytes([...refsB][0]!));
  });
});
