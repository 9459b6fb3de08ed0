/**
 * NodeSelector (src/genapi/select/node-selector.ts): spec §7.3 and the §10 rows node_selector_test,
 * node_selector_nodes_test and node_selector_sticky_test, ported to live service instances, plus the
 * ⚠ fixes (per-config round robin, service-namespaced sticky table, nothing stored for a nil sticky
 * value) and the new `weighted` mode.
 */
import { describe, expect, it } from 'vitest';
import { NodeSelector } from '../../../src/genapi/select/node-selector.js';
import { stableHash } from '../../../src/genapi/select/hash.js';
import type {
  GenApiRequest,
  NodeMode,
  ResolvedFunConfig,
  ServiceInstance,
} from '../../../src/genapi/types.js';

// ── helpers ────────────────────────────────────────────────────────────────────────────────────────

/** mulberry32: a small seeded PRNG in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random source replaying `values`; fails the test if more are drawn. */
function scripted(...values: number[]): () => number {
  const queue = [...values];
  return () => {
    const v = queue.shift();
    if (v === undefined) throw new Error('scripted random exhausted');
    return v;
  };
}

const noRandom = (): number => {
  throw new Error('random must not be used in this mode');
};

class Clock {
  t = 0;
  readonly now = (): number => this.t;
}

function makeConfig(nodeMode: NodeMode, over: Partial<ResolvedFunConfig> = {}): ResolvedFunConfig {
  const service = over.service ?? 'chat';
  const requestType = over.requestType ?? 'send_message';
  return {
    service,
    requestType,
    version: null,
    nodes: 'nats',
    nodeMode,
    timeoutMs: 5000,
    args: null,
    argsAsMap: false,
    responseType: 'sync',
    permission: { kind: 'none' },
    permissionCallback: false,
    requestInfo: false,
    disabled: false,
    retry: null,
    retryOn: 'transport',
    beforeExecute: null,
    afterExecute: null,
    hookTimeoutMs: 5000,
    source: { service, request_type: requestType },
    ...over,
  };
}

let nextRequest = 0;
function makeRequest(over: Partial<GenApiRequest> = {}): GenApiRequest {
  nextRequest += 1;
  return {
    request_id: `req-${nextRequest}`,
    request_type: 'send_message',
    service: 'chat',
    version: null,
    args: {},
    user_id: null,
    device_id: null,
    user_roles: null,
    ...over,
  };
}

function inst(id: string, version = '1.0.0', service = 'chat'): ServiceInstance {
  return { id, service, version };
}

const ids = (list: readonly ServiceInstance[]): string[] => list.map((i) => i.id);

const A = inst('a');
const B = inst('b');
const C = inst('c');
const D = inst('d');
const ABC: readonly ServiceInstance[] = Object.freeze([A, B, C]);

const RANDOM: NodeMode = { kind: 'random' };
const HASH: NodeMode = { kind: 'hash' };
const ROUND_ROBIN: NodeMode = { kind: 'round_robin' };
const hashArg = (key: string): NodeMode => ({ kind: 'hash_arg', key });
const sticky = (key: string, ttlMs = 3_600_000): NodeMode => ({ kind: 'sticky', key, ttlMs });
const weighted = (weights: Record<string, number>, defaultWeight = 0): NodeMode => ({
  kind: 'weighted',
  weights: new Map(Object.entries(weights)),
  defaultWeight,
});

const ALL_MODES: readonly NodeMode[] = [
  RANDOM,
  HASH,
  hashArg('room_id'),
  hashArg('missing'),
  ROUND_ROBIN,
  sticky('user_id'),
  sticky('missing'),
  weighted({ '1.0.0': 90, '2.0.0': 10 }),
  weighted({}, 0),
];

/** Counts how often each instance id comes first over `runs` calls. */
function primaryCounts(run: () => ServiceInstance[], runs: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < runs; i++) {
    const id = run()[0]!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

// ── every mode ─────────────────────────────────────────────────────────────────────────────────────

describe('NodeSelector.order — every mode', () => {
  it('returns [] when there are no instances (PhoenixGenApi: :no_nodes_available)', () => {
    const selector = new NodeSelector({ random: seeded(1) });
    for (const mode of ALL_MODES) {
      expect(selector.order(makeConfig(mode), makeRequest({ user_id: 'u1' }), [])).toEqual([]);
    }
    expect(selector.stickySize()).toBe(0);
  });

  it('returns every instance exactly once (a permutation), never mutating the input', () => {
    const instances = Object.freeze([A, B, C, D, inst('e', '2.0.0'), inst('f', '2.0.0')]);
    const selector = new NodeSelector({ random: seeded(2) });
    for (const mode of ALL_MODES) {
      for (let i = 0; i < 50; i++) {
        const request = makeRequest({ user_id: `u${i % 7}`, args: { room_id: `room-${i}` } });
        const order = selector.order(makeConfig(mode), request, instances);
        expect(order).not.toBe(instances);
        expect([...ids(order)].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
      }
    }
    expect(ids(instances)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('returns the single instance when there is only one', () => {
    const selector = new NodeSelector({ random: seeded(3) });
    for (const mode of ALL_MODES) {
      for (let i = 0; i < 3; i++) {
        expect(selector.order(makeConfig(mode), makeRequest({ user_id: 'u1' }), [B])).toEqual([B]);
      }
    }
  });

  it('rejects an unknown mode with a TypeError', () => {
    const selector = new NodeSelector();
    const bogus = { kind: 'closest' } as unknown as NodeMode;
    expect(() => selector.order(makeConfig(bogus), makeRequest(), ABC)).toThrow(TypeError);
  });

  it('rejects a non-positive or fractional sticky capacity', () => {
    expect(() => new NodeSelector({ stickyCapacity: 0 })).toThrow(RangeError);
    expect(() => new NodeSelector({ stickyCapacity: 2.5 })).toThrow(RangeError);
    expect(() => new NodeSelector({ stickyCapacity: 1 })).not.toThrow();
  });
});

// ── random ─────────────────────────────────────────────────────────────────────────────────────────

describe('random mode', () => {
  it('draws the primary from the injected source', () => {
    const config = makeConfig(RANDOM);
    // the first draw picks the primary: floor(r * 3)
    expect(new NodeSelector({ random: scripted(0, 0) }).order(config, makeRequest(), ABC)[0]).toBe(
      A,
    );
    expect(
      new NodeSelector({ random: scripted(0.5, 0) }).order(config, makeRequest(), ABC)[0],
    ).toBe(B);
    expect(
      new NodeSelector({ random: scripted(0.99, 0) }).order(config, makeRequest(), ABC)[0],
    ).toBe(C);
  });

  it('picks the primary uniformly (seeded, 20 000 calls over 4 instances)', () => {
    const selector = new NodeSelector({ random: seeded(7) });
    const config = makeConfig(RANDOM);
    const counts = primaryCounts(() => selector.order(config, makeRequest(), [A, B, C, D]), 20_000);
    for (const id of ['a', 'b', 'c', 'd'])
      expect(Math.abs(counts.get(id)! - 5000)).toBeLessThan(250);
  });

  it('shuffles the fallbacks: all 6 orders of 3 instances appear about equally often', () => {
    const selector = new NodeSelector({ random: seeded(11) });
    const config = makeConfig(RANDOM);
    const counts = new Map<string, number>();
    for (let i = 0; i < 12_000; i++) {
      const key = ids(selector.order(config, makeRequest(), ABC)).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['abc', 'acb', 'bac', 'bca', 'cab', 'cba']);
    for (const c of counts.values()) expect(Math.abs(c - 2000)).toBeLessThan(200);
  });
});

// ── hash (request_id) ──────────────────────────────────────────────────────────────────────────────

describe('hash mode', () => {
  it('puts instances[stableHash(request_id) % n] first, then the rest in the given order', () => {
    const selector = new NodeSelector({ random: noRandom });
    const instances = [A, B, C, D];
    for (let i = 0; i < 40; i++) {
      const request = makeRequest({ request_id: `r-${i}` });
      const index = stableHash(`r-${i}`) % 4;
      const expected = [instances[index]!, ...instances.filter((_, j) => j !== index)];
      expect(selector.order(makeConfig(HASH), request, instances)).toEqual(expected);
    }
  });

  it('is deterministic for the same request_id and instance list, across selectors', () => {
    const request = makeRequest({ request_id: 'fixed-id' });
    const first = new NodeSelector({ random: seeded(1) }).order(makeConfig(HASH), request, ABC);
    for (let seed = 2; seed < 10; seed++) {
      expect(
        new NodeSelector({ random: seeded(seed) }).order(makeConfig(HASH), request, ABC),
      ).toEqual(first);
    }
  });

  it('spreads different request ids over the instances', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(HASH);
    let i = 0;
    const counts = primaryCounts(
      () => selector.order(config, makeRequest({ request_id: `id-${i++}` }), ABC),
      3000,
    );
    for (const id of ['a', 'b', 'c']) expect(Math.abs(counts.get(id)! - 1000)).toBeLessThan(150);
  });
});

// ── hash_arg ───────────────────────────────────────────────────────────────────────────────────────

describe('hash_arg mode', () => {
  it('hashes args[key]: the same value gives the same order whatever the request_id', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(hashArg('room_id'));
    const index = stableHash('room-7') % 3;
    const expected = [ABC[index]!, ...ABC.filter((_, j) => j !== index)];
    for (let i = 0; i < 20; i++) {
      expect(selector.order(config, makeRequest({ args: { room_id: 'room-7' } }), ABC)).toEqual(
        expected,
      );
    }
  });

  it('hashes non-string values as JSON', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(hashArg('k'));
    const instances = [A, B, C, D, inst('e'), inst('f'), inst('g')];
    for (const value of [42, true, { a: 1, b: [2, 3] }, [1, 'x'], 0, false]) {
      const index = stableHash(JSON.stringify(value)) % instances.length;
      expect(selector.order(config, makeRequest({ args: { k: value } }), instances)[0]).toBe(
        instances[index],
      );
    }
    // strings are hashed as-is, not JSON-quoted
    const index = stableHash('abc') % instances.length;
    expect(selector.order(config, makeRequest({ args: { k: 'abc' } }), instances)[0]).toBe(
      instances[index],
    );
  });

  it('falls back to random (random primary, shuffled rest) when the argument is missing or null', () => {
    const config = makeConfig(hashArg('room_id'));
    for (const args of [{}, { room_id: null }, { other: 'room-7' }]) {
      // primary from the first draw, then a Fisher–Yates shuffle of the rest
      expect(
        ids(
          new NodeSelector({ random: scripted(0.99, 0) }).order(config, makeRequest({ args }), ABC),
        ),
      ).toEqual(['c', 'b', 'a']);
      expect(
        ids(
          new NodeSelector({ random: scripted(0, 0.9) }).order(config, makeRequest({ args }), ABC),
        ),
      ).toEqual(['a', 'b', 'c']);
    }
  });

  it('consults only request.args, not request fields of the same name', () => {
    const config = makeConfig(hashArg('user_id'));
    const request = makeRequest({ user_id: 'u1', args: {} });
    // Random path: the outcome follows the injected source, so two sources disagree.
    const first = new NodeSelector({ random: scripted(0, 0) }).order(config, request, ABC)[0];
    const last = new NodeSelector({ random: scripted(0.99, 0) }).order(config, request, ABC)[0];
    expect([first, last]).toEqual([A, C]);
  });

  it('does not read inherited properties as arguments', () => {
    const config = makeConfig(hashArg('constructor'));
    const pickFirst = new NodeSelector({ random: scripted(0, 0) }).order(
      config,
      makeRequest({ args: {} }),
      ABC,
    );
    expect(pickFirst[0]).toBe(A); // random path taken, Object.prototype.constructor ignored
  });
});

// ── round_robin ────────────────────────────────────────────────────────────────────────────────────

describe('round_robin mode', () => {
  it('cycles, returning the list rotated so the current index comes first', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(ROUND_ROBIN);
    const seen = Array.from({ length: 7 }, () =>
      ids(selector.order(config, makeRequest(), ABC)).join(''),
    );
    expect(seen).toEqual(['abc', 'bca', 'cab', 'abc', 'bca', 'cab', 'abc']);
  });

  it('distributes exactly evenly', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(ROUND_ROBIN);
    const counts = primaryCounts(() => selector.order(config, makeRequest(), [A, B, C, D]), 4000);
    expect(Object.fromEntries(counts)).toEqual({ a: 1000, b: 1000, c: 1000, d: 1000 });
  });

  it('⚠ keeps one counter per config (service, request_type, version), not one global counter', () => {
    const selector = new NodeSelector({ random: noRandom });
    const send = makeConfig(ROUND_ROBIN, { requestType: 'send_message' });
    const edit = makeConfig(ROUND_ROBIN, { requestType: 'edit_message' });
    const sendV2 = makeConfig(ROUND_ROBIN, { requestType: 'send_message', version: '2.0.0' });
    const other = makeConfig(ROUND_ROBIN, { service: 'billing', requestType: 'send_message' });
    const primaries: string[] = [];
    for (let i = 0; i < 3; i++) {
      for (const config of [send, edit, sendV2, other])
        primaries.push(selector.order(config, makeRequest(), ABC)[0]!.id);
    }
    // With PhoenixGenApi's global counter this would be a,b,c,a,b,c,… ; here each config rotates alone.
    expect(primaries).toEqual(['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b', 'c', 'c', 'c', 'c']);
  });

  it('shares the counter between equal configs built separately', () => {
    const selector = new NodeSelector({ random: noRandom });
    expect(selector.order(makeConfig(ROUND_ROBIN), makeRequest(), ABC)[0]).toBe(A);
    expect(selector.order(makeConfig(ROUND_ROBIN), makeRequest(), ABC)[0]).toBe(B);
  });

  it('keeps counting when the instance list changes size', () => {
    const selector = new NodeSelector({ random: noRandom });
    const config = makeConfig(ROUND_ROBIN);
    expect(ids(selector.order(config, makeRequest(), ABC))).toEqual(['a', 'b', 'c']); // counter 0
    expect(ids(selector.order(config, makeRequest(), ABC))).toEqual(['b', 'c', 'a']); // counter 1
    expect(ids(selector.order(config, makeRequest(), [A, B, C, D]))).toEqual(['c', 'd', 'a', 'b']); // 2 % 4
    expect(ids(selector.order(config, makeRequest(), [A, B]))).toEqual(['b', 'a']); // 3 % 2
  });

  it('has independent counters per selector', () => {
    const config = makeConfig(ROUND_ROBIN);
    const one = new NodeSelector({ random: noRandom });
    one.order(config, makeRequest(), ABC);
    expect(new NodeSelector({ random: noRandom }).order(config, makeRequest(), ABC)[0]).toBe(A);
  });
});

// ── sticky ─────────────────────────────────────────────────────────────────────────────────────────

describe('sticky mode', () => {
  it('sends the same key value to the same instance, sticky instance first and the rest in order', () => {
    const selector = new NodeSelector({ random: seeded(5) });
    const config = makeConfig(sticky('user_id'));
    const first = selector.order(config, makeRequest({ user_id: 'u1' }), ABC);
    const expectedRest = ABC.filter((i) => i !== first[0]);
    expect(first.slice(1)).toEqual(expectedRest);
    for (let i = 0; i < 50; i++) {
      expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)).toEqual(first);
    }
    expect(selector.stickySize()).toBe(1);
  });

  it('pins different values independently', () => {
    const selector = new NodeSelector({ random: scripted(0, 0.99, 0.5) });
    const config = makeConfig(sticky('user_id'));
    expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(A);
    expect(selector.order(config, makeRequest({ user_id: 'u2' }), ABC)[0]).toBe(C);
    expect(selector.order(config, makeRequest({ user_id: 'u3' }), ABC)[0]).toBe(B);
    // no more draws: all three are reused
    expect(selector.order(config, makeRequest({ user_id: 'u2' }), ABC)[0]).toBe(C);
    expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(A);
    expect(selector.order(config, makeRequest({ user_id: 'u3' }), ABC)[0]).toBe(B);
    expect(selector.stickySize()).toBe(3);
  });

  it('takes the value from args first, then from the request field of that name', () => {
    const selector = new NodeSelector({ random: scripted(0.99) });
    const config = makeConfig(sticky('user_id'));
    // args.user_id "X" wins over request.user_id "Y" → stored under "X"
    expect(
      selector.order(config, makeRequest({ user_id: 'Y', args: { user_id: 'X' } }), ABC)[0],
    ).toBe(C);
    // a request whose user_id field is "X" (no arg) finds the same entry
    expect(selector.order(config, makeRequest({ user_id: 'X' }), ABC)[0]).toBe(C);
    // a null arg falls back to the field
    expect(
      selector.order(config, makeRequest({ user_id: 'X', args: { user_id: null } }), ABC)[0],
    ).toBe(C);
    expect(selector.stickySize()).toBe(1);
  });

  it('works with any request field (device_id, request_id) and any JSON arg', () => {
    const selector = new NodeSelector({ random: scripted(0.5, 0, 0.99) });
    expect(
      selector.order(makeConfig(sticky('device_id')), makeRequest({ device_id: 'd1' }), ABC)[0],
    ).toBe(B);
    expect(
      selector.order(makeConfig(sticky('request_id')), makeRequest({ request_id: 'r1' }), ABC)[0],
    ).toBe(A);
    expect(
      selector.order(
        makeConfig(sticky('room')),
        makeRequest({ args: { room: { id: 9 } } }),
        ABC,
      )[0],
    ).toBe(C);
    expect(
      selector.order(makeConfig(sticky('device_id')), makeRequest({ device_id: 'd1' }), ABC)[0],
    ).toBe(B);
    expect(
      selector.order(makeConfig(sticky('request_id')), makeRequest({ request_id: 'r1' }), ABC)[0],
    ).toBe(A);
    expect(
      selector.order(
        makeConfig(sticky('room')),
        makeRequest({ args: { room: { id: 9 } } }),
        ABC,
      )[0],
    ).toBe(C);
  });

  it('keeps the number 1 and the string "1" apart', () => {
    const selector = new NodeSelector({ random: scripted(0, 0.99) });
    const config = makeConfig(sticky('room'));
    expect(selector.order(config, makeRequest({ args: { room: 1 } }), ABC)[0]).toBe(A);
    expect(selector.order(config, makeRequest({ args: { room: '1' } }), ABC)[0]).toBe(C);
    expect(selector.stickySize()).toBe(2);
  });

  it('⚠ a missing value: random order (random primary, shuffled rest) and nothing stored', () => {
    const selector = new NodeSelector({ random: scripted(0.99, 0, 0, 0.9, 0.5) });
    const config = makeConfig(sticky('user_id'));
    expect(ids(selector.order(config, makeRequest({ user_id: null }), ABC))).toEqual([
      'c',
      'b',
      'a',
    ]);
    expect(
      ids(selector.order(config, makeRequest({ user_id: null, args: { user_id: null } }), ABC)),
    ).toEqual(['a', 'b', 'c']);
    expect(selector.stickySize()).toBe(0);
    // PhoenixGenApi stored the nil case under the key *name*; a user literally called "user_id" would
    // then inherit it. Here that user gets a fresh pick (the last scripted draw).
    expect(selector.order(config, makeRequest({ user_id: 'user_id' }), ABC)[0]).toBe(B);
    expect(selector.stickySize()).toBe(1);
  });

  it('⚠ namespaces the table by service: the same value in two services is pinned independently', () => {
    const selector = new NodeSelector({ random: scripted(0, 0.99) });
    const chat = makeConfig(sticky('user_id'), { service: 'chat' });
    const billing = makeConfig(sticky('user_id'), { service: 'billing' });
    const billingInstances = [
      inst('a', '1.0.0', 'billing'),
      inst('b', '1.0.0', 'billing'),
      inst('c', '1.0.0', 'billing'),
    ];
    expect(selector.order(chat, makeRequest({ user_id: 'u1' }), ABC)[0]!.id).toBe('a');
    expect(selector.order(billing, makeRequest({ user_id: 'u1' }), billingInstances)[0]!.id).toBe(
      'c',
    );
    expect(selector.order(chat, makeRequest({ user_id: 'u1' }), ABC)[0]!.id).toBe('a');
    expect(selector.order(billing, makeRequest({ user_id: 'u1' }), billingInstances)[0]!.id).toBe(
      'c',
    );
    expect(selector.stickySize()).toBe(2);
  });

  it('shares the entry between functions of the same service (the key is service + value)', () => {
    const selector = new NodeSelector({ random: scripted(0.5) });
    const send = makeConfig(sticky('user_id'), { requestType: 'send_message' });
    const edit = makeConfig(sticky('user_id'), { requestType: 'edit_message' });
    expect(selector.order(send, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(B);
    expect(selector.order(edit, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(B);
  });

  it('re-picks when the sticky instance is gone, and sticks to the new pick', () => {
    const selector = new NodeSelector({ random: scripted(0.99, 0) });
    const config = makeConfig(sticky('user_id'));
    expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(C);
    // c left: a fresh pick among the remaining (a)
    expect(ids(selector.order(config, makeRequest({ user_id: 'u1' }), [A, B]))).toEqual(['a', 'b']);
    // c is back, but the assignment moved to a
    expect(ids(selector.order(config, makeRequest({ user_id: 'u1' }), ABC))).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(selector.stickySize()).toBe(1);
  });

  it('expires an assignment ttlMs after the first pick; reuse does not extend it', () => {
    const clock = new Clock();
    const selector = new NodeSelector({ random: scripted(0, 0.99, 0.5), now: clock.now });
    const config = makeConfig(sticky('user_id', 1000));
    const first = (): ServiceInstance =>
      selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]!;
    clock.t = 10_000;
    expect(first()).toBe(A);
    clock.t = 10_500;
    expect(first()).toBe(A); // reused, expiry still 11 000
    clock.t = 10_999;
    expect(first()).toBe(A);
    clock.t = 11_000; // now - ts < ttl no longer holds
    expect(first()).toBe(C); // re-picked, expiry 12 000
    clock.t = 11_999;
    expect(first()).toBe(C);
    clock.t = 12_000;
    expect(first()).toBe(B);
  });

  it('uses each config’s ttlMs', () => {
    const clock = new Clock();
    const selector = new NodeSelector({ random: scripted(0, 0.99, 0.5), now: clock.now });
    const short = makeConfig(sticky('user_id', 100), { service: 's1' });
    const long = makeConfig(sticky('user_id', 10_000), { service: 's2' });
    expect(selector.order(short, makeRequest({ user_id: 'u' }), ABC)[0]).toBe(A);
    expect(selector.order(long, makeRequest({ user_id: 'u' }), ABC)[0]).toBe(C);
    clock.t = 5000;
    expect(selector.order(short, makeRequest({ user_id: 'u' }), ABC)[0]).toBe(B); // expired, re-picked
    expect(selector.order(long, makeRequest({ user_id: 'u' }), ABC)[0]).toBe(C); // still pinned
  });

  it('stickySize drops expired entries and keeps fresh ones; calling it again changes nothing', () => {
    const clock = new Clock();
    const selector = new NodeSelector({ random: seeded(9), now: clock.now });
    const config = makeConfig(sticky('user_id', 1000));
    selector.order(config, makeRequest({ user_id: 'old-1' }), ABC);
    selector.order(config, makeRequest({ user_id: 'old-2' }), ABC);
    clock.t = 600;
    const fresh = selector.order(config, makeRequest({ user_id: 'fresh' }), ABC)[0];
    expect(selector.stickySize()).toBe(3);
    clock.t = 1000;
    expect(selector.stickySize()).toBe(1);
    expect(selector.stickySize()).toBe(1);
    expect(selector.stickySize()).toBe(1);
    // the fresh entry survived the sweep
    for (let i = 0; i < 10; i++)
      expect(selector.order(config, makeRequest({ user_id: 'fresh' }), ABC)[0]).toBe(fresh);
    clock.t = 1600;
    expect(selector.stickySize()).toBe(0);
  });

  it('is bounded by stickyCapacity, evicting the least recently used assignment', () => {
    const selector = new NodeSelector({
      random: scripted(0, 0.5, 0.99, 0.5, 0.99),
      stickyCapacity: 3,
    });
    const config = makeConfig(sticky('user_id'));
    const primary = (user: string): string =>
      selector.order(config, makeRequest({ user_id: user }), ABC)[0]!.id;
    expect([primary('u1'), primary('u2'), primary('u3')]).toEqual(['a', 'b', 'c']);
    expect(primary('u1')).toBe('a'); // touch u1: u2 is now the least recently used
    expect(primary('u4')).toBe('b'); // 4th entry evicts u2
    expect(selector.stickySize()).toBe(3);
    expect(primary('u1')).toBe('a'); // kept
    expect(primary('u3')).toBe('c'); // kept
    expect(primary('u2')).toBe('c'); // evicted → fresh draw (0.99), evicting u4 this time
    expect(selector.stickySize()).toBe(3);
  });

  it('holds 100 000 assignments by default', () => {
    const selector = new NodeSelector({ random: seeded(4) });
    const config = makeConfig(sticky('user_id'));
    for (let i = 0; i < 100_050; i++)
      selector.order(config, makeRequest({ user_id: `u${i}` }), ABC);
    expect(selector.stickySize()).toBe(100_000);
  });

  it('clearSticky forgets every assignment', () => {
    const selector = new NodeSelector({ random: scripted(0, 0.99) });
    const config = makeConfig(sticky('user_id'));
    expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(A);
    selector.clearSticky();
    expect(selector.stickySize()).toBe(0);
    expect(selector.order(config, makeRequest({ user_id: 'u1' }), ABC)[0]).toBe(C);
  });
});

// ── weighted ───────────────────────────────────────────────────────────────────────────────────────

describe('weighted mode', () => {
  const stable = [inst('s1', '1.0.0'), inst('s2', '1.0.0'), inst('s3', '1.0.0')];
  const canary = inst('c1', '2.0.0');

  function versionShare(
    selector: NodeSelector,
    mode: NodeMode,
    instances: readonly ServiceInstance[],
    runs: number,
  ) {
    const counts = primaryCounts(
      () => selector.order(makeConfig(mode), makeRequest(), instances),
      runs,
    );
    const byVersion = new Map<string, number>();
    for (const instance of instances) {
      byVersion.set(
        instance.version,
        (byVersion.get(instance.version) ?? 0) + (counts.get(instance.id) ?? 0),
      );
    }
    return { counts, byVersion };
  }

  it('splits traffic 90/10 by version over 10 000 picks, whatever the instance counts', () => {
    const selector = new NodeSelector({ random: seeded(2024) });
    const mode = weighted({ '1.0.0': 90, '2.0.0': 10 });
    const { counts, byVersion } = versionShare(selector, mode, [...stable, canary], 10_000);
    expect(Math.abs(byVersion.get('2.0.0')! / 10_000 - 0.1)).toBeLessThan(0.015);
    expect(Math.abs(byVersion.get('1.0.0')! / 10_000 - 0.9)).toBeLessThan(0.015);
    // within a version, instances share evenly: 30 % each
    for (const s of stable) expect(Math.abs(counts.get(s.id)! / 10_000 - 0.3)).toBeLessThan(0.02);
  });

  it('gives a version its share regardless of how many instances run it (1 vs 4 instances at 50/50)', () => {
    const selector = new NodeSelector({ random: seeded(77) });
    const mode = weighted({ '1.0.0': 1, '2.0.0': 1 });
    const instances = [inst('old', '1.0.0'), ...[1, 2, 3, 4].map((i) => inst(`new${i}`, '2.0.0'))];
    const { counts } = versionShare(selector, mode, instances, 10_000);
    expect(Math.abs(counts.get('old')! / 10_000 - 0.5)).toBeLessThan(0.02);
    for (let i = 1; i <= 4; i++)
      expect(Math.abs(counts.get(`new${i}`)! / 10_000 - 0.125)).toBeLessThan(0.015);
  });

  it('gives unlisted versions defaultWeight', () => {
    const selector = new NodeSelector({ random: seeded(3) });
    const mode = weighted({ '2.0.0': 1 }, 3); // 1.0.0 unlisted → 3
    const { byVersion } = versionShare(selector, mode, [...stable, canary], 8000);
    expect(Math.abs(byVersion.get('1.0.0')! / 8000 - 0.75)).toBeLessThan(0.02);
  });

  it('never makes a zero-weight version primary, but keeps it as the last fallbacks', () => {
    const selector = new NodeSelector({ random: seeded(8) });
    const mode = weighted({ '1.0.0': 0 }, 1); // only the canary takes traffic
    for (let i = 0; i < 500; i++) {
      const order = selector.order(makeConfig(mode), makeRequest(), [...stable, canary]);
      expect(order[0]).toBe(canary);
      expect([...ids(order.slice(1))].sort()).toEqual(['s1', 's2', 's3']);
    }
  });

  it('orders fallbacks by descending instance weight, zero-weight last', () => {
    const selector = new NodeSelector({ random: seeded(12) });
    // per instance: v1 60/2 = 30, v2 30/1 = 30, v3 10/1 = 10, v0 0
    const mode = weighted({ v1: 60, v2: 30, v3: 10, v0: 0 });
    const instances = [
      inst('zero', 'v0'),
      inst('low', 'v3'),
      inst('mid-a', 'v1'),
      inst('mid-b', 'v1'),
      inst('hi', 'v2'),
    ];
    const weightOf: Record<string, number> = { zero: 0, low: 10, 'mid-a': 30, 'mid-b': 30, hi: 30 };
    for (let i = 0; i < 300; i++) {
      const order = ids(selector.order(makeConfig(mode), makeRequest(), instances));
      const rest = order.slice(1).map((id) => weightOf[id]!);
      expect(rest).toEqual([...rest].sort((a, b) => b - a));
      expect(order[order.length - 1]).toBe('zero');
    }
  });

  it('breaks fallback ties in random order', () => {
    const selector = new NodeSelector({ random: seeded(13) });
    const mode = weighted({ '1.0.0': 1, '2.0.0': 0 }); // s1..s3 tie at 1/3, c1 is zero
    const seen = new Set<string>();
    const secondCounts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const order = ids(selector.order(makeConfig(mode), makeRequest(), [...stable, canary]));
      expect(order[3]).toBe('c1');
      seen.add(order.join(','));
      secondCounts.set(order[1]!, (secondCounts.get(order[1]!) ?? 0) + 1);
    }
    expect(seen.size).toBe(6); // all orders of s1..s3
    for (const id of ['s1', 's2', 's3'])
      expect(Math.abs(secondCounts.get(id)! - 1000)).toBeLessThan(120);
  });

  it('picks uniformly over all instances when every weight is 0', () => {
    const selector = new NodeSelector({ random: seeded(21) });
    const mode = weighted({ '1.0.0': 0 }, 0);
    const { counts } = versionShare(selector, mode, [...stable, canary], 8000);
    for (const id of ['s1', 's2', 's3', 'c1'])
      expect(Math.abs(counts.get(id)! - 2000)).toBeLessThan(150);
  });

  it('treats negative and non-finite weights as 0', () => {
    const selector = new NodeSelector({ random: seeded(22) });
    const mode = weighted({
      '1.0.0': -5,
      '3.0.0': Number.NaN,
      '4.0.0': Number.POSITIVE_INFINITY,
      '2.0.0': 1,
    });
    const instances = [...stable, canary, inst('n', '3.0.0'), inst('i', '4.0.0')];
    for (let i = 0; i < 200; i++)
      expect(selector.order(makeConfig(mode), makeRequest(), instances)[0]).toBe(canary);
  });

  it('maps the random draw onto cumulative weights (boundary draws included)', () => {
    const mode = weighted({ '1.0.0': 3, '2.0.0': 1 }); // s1..s3 1 each, c1 1 → total 4
    const instances = [...stable, canary];
    const primary = (r: number): string =>
      new NodeSelector({ random: scripted(r, 0, 0, 0) }).order(
        makeConfig(mode),
        makeRequest(),
        instances,
      )[0]!.id;
    expect(primary(0)).toBe('s1');
    expect(primary(0.2499)).toBe('s1');
    expect(primary(0.25)).toBe('s2');
    expect(primary(0.74)).toBe('s3');
    expect(primary(0.75)).toBe('c1');
    expect(primary(0.9999)).toBe('c1');
    expect(primary(1)).toBe('c1'); // an out-of-contract 1 still lands on a positive-weight instance
  });
});
