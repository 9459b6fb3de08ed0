/**
 * FailedConfigs — PhoenixGenApi config_failed_test (ConfigFailed, spec §6.4 / §10): record with a
 * string or list reason and each source, list filters/limit/order, count, summary, cleanup, clear;
 * plus expiry without cleanup() and the maxEntries bound.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { FailedConfigs } from '../../../src/genapi/config/failed.js';

const DAY = 86_400_000;

let clock: number;
const now = (): number => clock;
let failed: FailedConfigs;

const config = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  service: 's',
  request_type: 'a',
  ...overrides,
});

beforeEach(() => {
  clock = 1_000_000;
  failed = new FailedConfigs({ now });
});

describe('FailedConfigs.record', () => {
  it('records a config with a string reason (wrapped in a list)', () => {
    const raw = config({ service: 'bad_service', request_type: 'bad_action', version: '1.2.0' });
    const entry = failed.record(
      raw,
      'request_type must be a non-empty string',
      'pull',
      'node@host',
    );
    expect(entry).toEqual({
      id: expect.any(Number) as unknown,
      service: 'bad_service',
      request_type: 'bad_action',
      version: '1.2.0',
      source: 'pull',
      origin: 'node@host',
      reasons: ['request_type must be a non-empty string'],
      config: raw,
      insertedAt: 1_000_000,
      expiresAt: 1_000_000 + DAY,
    });
  });

  it('records a list of reasons, push source, no origin', () => {
    const reasons = ['service must not be nil', 'request_type must be a non-empty string'];
    const entry = failed.record({ request_type: '', service: null }, reasons, 'push');
    expect(entry.source).toBe('push');
    expect(entry.origin).toBeNull();
    expect(entry.reasons).toEqual(reasons);
    expect(entry.service).toBeNull();
    expect(entry.request_type).toBe('');
  });

  it('records the local source', () => {
    expect(failed.record(config(), 'hook not registered', 'local').source).toBe('local');
  });

  it('service/request_type/version are best effort: non-strings → null, "" and "0.0.0" versions → null', () => {
    const a = failed.record({ service: 42, request_type: ['x'], version: 3 }, 'r', 'push');
    expect([a.service, a.request_type, a.version]).toEqual([null, null, null]);
    expect(failed.record(config({ version: '0.0.0' }), 'r', 'push').version).toBeNull();
    expect(failed.record(config({ version: '' }), 'r', 'push').version).toBeNull();
    const b = failed.record('not even an object', 'r', 'push');
    expect([b.service, b.request_type, b.version, b.config]).toEqual([
      null,
      null,
      null,
      'not even an object',
    ]);
  });

  it('ids increase', () => {
    const ids = [1, 2, 3].map(() => failed.record(config(), 'r', 'pull').id);
    expect(ids[1]).toBeGreaterThan(ids[0] as number);
    expect(ids[2]).toBeGreaterThan(ids[1] as number);
  });

  it('keeps a copy of the config and of the reasons', () => {
    const raw = config({ arg_types: { a: 'string' } });
    const reasons = ['r1'];
    const entry = failed.record(raw, reasons, 'push');
    (raw.arg_types as Record<string, string>).b = 'num';
    reasons.push('r2');
    expect(entry.config).toEqual(config({ arg_types: { a: 'string' } }));
    expect(entry.reasons).toEqual(['r1']);
    expect(Object.isFrozen(entry)).toBe(true);
  });
});

describe('FailedConfigs.list', () => {
  it('is empty when nothing was recorded', () => {
    expect(failed.list()).toEqual([]);
  });

  it('returns the recorded entries', () => {
    failed.record(config(), 'reason1', 'pull');
    failed.record(config(), 'reason2', 'push');
    expect(failed.list().map((e) => e.reasons[0])).toEqual(['reason2', 'reason1']);
  });

  it('filters by source', () => {
    failed.record(config(), 'reason1', 'pull');
    failed.record(config(), 'reason2', 'push');
    failed.record(config(), 'reason3', 'local');
    expect(failed.list({ source: 'pull' }).map((e) => e.reasons[0])).toEqual(['reason1']);
    expect(failed.list({ source: 'push' }).map((e) => e.reasons[0])).toEqual(['reason2']);
    expect(failed.list({ source: 'local' }).map((e) => e.reasons[0])).toEqual(['reason3']);
  });

  it('filters by service, and by service and source together', () => {
    failed.record(config({ service: 'svc1', request_type: 'a1' }), 'r', 'pull');
    failed.record(config({ service: 'svc2', request_type: 'a2' }), 'r', 'pull');
    failed.record(config({ service: 'svc1', request_type: 'a3' }), 'r', 'push');
    expect(failed.list({ service: 'svc1' }).map((e) => e.request_type)).toEqual(['a3', 'a1']);
    expect(failed.list({ service: 'svc1', source: 'pull' }).map((e) => e.request_type)).toEqual([
      'a1',
    ]);
    expect(failed.list({ service: 'svc3' })).toEqual([]);
  });

  it('respects limit (default 100)', () => {
    for (let i = 1; i <= 5; i++) failed.record(config(), `reason${i}`, 'pull');
    expect(failed.list({ limit: 3 }).map((e) => e.reasons[0])).toEqual([
      'reason5',
      'reason4',
      'reason3',
    ]);
    expect(failed.list({ limit: 10 })).toHaveLength(5);
    expect(failed.list({ limit: 0 })).toEqual([]);
    for (let i = 6; i <= 150; i++) failed.record(config(), `reason${i}`, 'pull');
    expect(failed.list()).toHaveLength(100);
  });

  it('orders newest first by default, oldest first on request', () => {
    failed.record(config(), 'oldest', 'pull');
    clock += 10;
    failed.record(config(), 'middle', 'pull');
    clock += 10;
    failed.record(config(), 'newest', 'pull');
    expect(failed.list().map((e) => e.reasons[0])).toEqual(['newest', 'middle', 'oldest']);
    expect(failed.list({ order: 'newest_first' })[0]?.reasons).toEqual(['newest']);
    expect(failed.list({ order: 'oldest_first' }).map((e) => e.reasons[0])).toEqual([
      'oldest',
      'middle',
      'newest',
    ]);
  });

  it('entries recorded in the same millisecond keep their recording order', () => {
    failed.record(config(), 'first', 'pull');
    failed.record(config(), 'second', 'pull');
    expect(failed.list().map((e) => e.reasons[0])).toEqual(['second', 'first']);
    expect(failed.list({ order: 'oldest_first' }).map((e) => e.reasons[0])).toEqual([
      'first',
      'second',
    ]);
  });
});

describe('FailedConfigs.count', () => {
  it('0 when empty', () => {
    expect(failed.count()).toBe(0);
  });
  it('counts entries', () => {
    for (let i = 1; i <= 3; i++) failed.record(config(), `reason${i}`, 'pull');
    expect(failed.count()).toBe(3);
  });
});

describe('FailedConfigs.summary', () => {
  it('counts by source and service, with the oldest and newest entries', () => {
    const first = failed.record(config({ service: 's' }), 'reason1', 'pull');
    clock += 1;
    failed.record(config({ service: 's' }), 'reason2', 'push');
    clock += 1;
    failed.record(config({ service: 't' }), 'reason3', 'pull');
    clock += 1;
    const last = failed.record({ request_type: 'x' }, 'reason4', 'local');
    expect(failed.summary()).toEqual({
      total: 4,
      pull: 2,
      push: 1,
      local: 1,
      byService: { s: 2, t: 1, '': 1 },
      oldest: first,
      newest: last,
    });
  });

  it('is all zeros and nulls when empty', () => {
    expect(failed.summary()).toEqual({
      total: 0,
      push: 0,
      pull: 0,
      local: 0,
      byService: {},
      oldest: null,
      newest: null,
    });
  });
});

describe('FailedConfigs expiry', () => {
  it('entries expire after the TTL (24 h by default) without calling cleanup', () => {
    failed.record(config({ service: 'old' }), 'r', 'pull');
    clock += DAY - 1;
    expect(failed.count()).toBe(1);
    failed.record(config({ service: 'new' }), 'r', 'push');
    clock += 1; // the first one: expiresAt <= now
    expect(failed.count()).toBe(1);
    expect(failed.list().map((e) => e.service)).toEqual(['new']);
    expect(failed.list({ service: 'old' })).toEqual([]);
    expect(failed.summary()).toMatchObject({ total: 1, pull: 0, push: 1, byService: { new: 1 } });
  });

  it('cleanup removes expired entries and returns how many', () => {
    failed.record(config(), 'r', 'pull');
    failed.record(config(), 'r', 'pull');
    clock += DAY;
    failed.record(config(), 'fresh', 'push'); // also drops the expired ones it finds
    clock += 10;
    expect(failed.cleanup()).toBe(0);
    expect(failed.count()).toBe(1);
    clock += DAY;
    expect(failed.count()).toBe(0);
    expect(failed.cleanup()).toBe(1);
    expect(failed.cleanup()).toBe(0);
  });

  it('cleanup removes expired entries even when the clock stepped back in between', () => {
    clock = 5_000;
    failed.record(config(), 'later', 'pull');
    clock = 1_000; // wall clock stepped back
    failed.record(config(), 'earlier', 'pull');
    clock = 5_000 + DAY;
    expect(failed.count()).toBe(0);
    expect(failed.cleanup()).toBe(2);
  });

  it('a custom TTL', () => {
    const short = new FailedConfigs({ ttlMs: 1000, now });
    const entry = short.record(config(), 'r', 'pull');
    expect(entry.expiresAt - entry.insertedAt).toBe(1000);
    clock += 999;
    expect(short.count()).toBe(1);
    clock += 1;
    expect(short.count()).toBe(0);
    expect(short.list()).toEqual([]);
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const small = new FailedConfigs({ maxEntries: 3, now });
    for (let i = 1; i <= 5; i++) small.record(config(), `r${i}`, 'pull');
    expect(small.count()).toBe(3);
    expect(small.list({ order: 'oldest_first' }).map((e) => e.reasons[0])).toEqual([
      'r3',
      'r4',
      'r5',
    ]);
  });

  it('rejects nonsensical options', () => {
    expect(() => new FailedConfigs({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new FailedConfigs({ maxEntries: 0 })).toThrow(RangeError);
  });

  it('defaults to the real clock', () => {
    const real = new FailedConfigs();
    const before = Date.now();
    const entry = real.record(config(), 'r', 'pull');
    expect(entry.insertedAt).toBeGreaterThanOrEqual(before);
    expect(entry.expiresAt).toBe(entry.insertedAt + DAY);
  });
});

describe('FailedConfigs.clear', () => {
  it('removes every entry', () => {
    for (let i = 1; i <= 5; i++) failed.record(config(), `reason${i}`, 'pull');
    expect(failed.count()).toBe(5);
    failed.clear();
    expect(failed.count()).toBe(0);
    expect(failed.list()).toEqual([]);
  });
});
