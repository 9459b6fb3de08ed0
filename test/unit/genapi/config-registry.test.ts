/**
 * ConfigRegistry — PhoenixGenApi config_cache/config_cache_test (ConfigDb, spec §6.1 / §10): add/get,
 * versions, delete, functions/services, disable/enable, get_latest (semver), get_fast, plus the
 * get_fast cache, resolve(), onChange and semver ordering.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigRegistry } from '../../../src/genapi/config/registry.js';
import { compareVersions } from '../../../src/genapi/config/semver.js';
import { validateFunConfig } from '../../../src/genapi/config/validate.js';
import type { ResolvedFunConfig } from '../../../src/genapi/types.js';

function cfg(overrides: Record<string, unknown> = {}): ResolvedFunConfig {
  const result = validateFunConfig(
    { service: 'Test', request_type: 'test_request', timeout: 5000, ...overrides },
    { nodesDefault: 'nats' },
  );
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.config;
}

let db: ConfigRegistry;
beforeEach(() => {
  db = new ConfigRegistry();
});

describe('ConfigRegistry: add / get', () => {
  it('add then get (unversioned)', () => {
    const config = cfg();
    db.add(config);
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: true, config });
    const got = db.get('Test', 'test_request', null);
    expect(got.ok && got.config).toBe(config);
  });

  it('add then get with a custom version; other versions are not_found', () => {
    const config = cfg({ version: '1.0.0' });
    db.add(config);
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: true, config });
    expect(db.get('Test', 'test_request', '0.0.0')).toEqual({ ok: false, reason: 'not_found' });
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: false, reason: 'not_found' });
  });

  it('add replaces the config under the same key (update)', () => {
    db.add(cfg({ timeout: 1000 }));
    const updated = cfg({ timeout: 2000 });
    db.add(updated);
    expect(db.count()).toBe(1);
    const got = db.get('Test', 'test_request', null);
    expect(got.ok && got.config.timeoutMs).toBe(2000);
  });

  it('a config under another service is another key', () => {
    db.add(cfg());
    const other = cfg({ service: 'new_service' });
    db.add(other);
    expect(db.get('new_service', 'test_request', null)).toEqual({ ok: true, config: other });
    expect(db.count()).toBe(2);
  });

  it('get returns not_found for unsupported versions', () => {
    db.add(cfg({ version: '1.0.0' }));
    for (const v of ['2.0.0', '0.0.0', '99.99.99']) {
      expect(db.get('Test', 'test_request', v)).toEqual({ ok: false, reason: 'not_found' });
    }
  });

  it('"" and "0.0.0" address the unversioned key (the same normalisation as FunConfig.version)', () => {
    const config = cfg();
    db.add(config);
    expect(db.get('Test', 'test_request', '')).toEqual({ ok: true, config });
    expect(db.get('Test', 'test_request', '0.0.0')).toEqual({ ok: true, config });
  });

  it('a directly built config with version "0.0.0" is stored unversioned', () => {
    db.add({ ...cfg(), version: '0.0.0' });
    expect(db.functions()).toEqual({ Test: { test_request: [null] } });
    const got = db.get('Test', 'test_request', null);
    expect(got.ok && got.config.version).toBeNull();
  });

  it('service and request_type are exact (case-sensitive)', () => {
    db.add(cfg());
    expect(db.get('test', 'test_request', null).ok).toBe(false);
    expect(db.get('Test', 'Test_request', null).ok).toBe(false);
  });

  it('multiple versions coexist independently', () => {
    db.add(cfg({ version: '1.0.0', timeout: 5000 }));
    db.add(cfg({ version: '2.0.0', timeout: 10_000 }));
    db.add(cfg({ version: '3.0.0', timeout: 15_000 }));
    const timeouts = ['1.0.0', '2.0.0', '3.0.0'].map((v) => {
      const got = db.get('Test', 'test_request', v);
      return got.ok ? got.config.timeoutMs : null;
    });
    expect(timeouts).toEqual([5000, 10_000, 15_000]);
  });
});

describe('ConfigRegistry: delete', () => {
  it('delete removes the key; true when something was removed, false otherwise', () => {
    db.add(cfg());
    expect(db.delete('Test', 'test_request', null)).toBe(true);
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: false, reason: 'not_found' });
    expect(db.delete('Test', 'test_request', null)).toBe(false);
    expect(db.count()).toBe(0);
    expect(db.services()).toEqual([]);
  });

  it('delete of one version leaves the others', () => {
    db.add(cfg({ version: '1.0.0' }));
    const v2 = cfg({ version: '2.0.0' });
    db.add(v2);
    expect(db.delete('Test', 'test_request', '1.0.0')).toBe(true);
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: false, reason: 'not_found' });
    expect(db.get('Test', 'test_request', '2.0.0')).toEqual({ ok: true, config: v2 });
  });

  it('deleteService removes every function and version of that service only', () => {
    db.add(cfg({ service: 'A', request_type: 'x' }));
    db.add(cfg({ service: 'A', request_type: 'x', version: '1.0.0' }));
    db.add(cfg({ service: 'A', request_type: 'y' }));
    db.add(cfg({ service: 'B', request_type: 'x' }));
    expect(db.deleteService('A')).toBe(3);
    expect(db.deleteService('A')).toBe(0);
    expect(db.services()).toEqual(['B']);
    expect(db.count()).toBe(1);
  });

  it('clear empties everything', () => {
    db.add(cfg({ service: 'A' }));
    db.add(cfg({ service: 'B', version: '1.0.0' }));
    db.getFast('A', 'test_request');
    db.clear();
    expect(db.count()).toBe(0);
    expect(db.services()).toEqual([]);
    expect(db.getFast('A', 'test_request')).toEqual({ ok: false, reason: 'not_found' });
  });
});

describe('ConfigRegistry: functions / services / list / count', () => {
  it('functions() of a single unversioned config', () => {
    db.add(cfg({ service: 'Test1', request_type: 'test_request_1' }));
    expect(db.functions()).toEqual({ Test1: { test_request_1: [null] } });
  });

  it('functions() lists every version, disabled ones included', () => {
    db.add(cfg({ service: 'Test1', request_type: 'test_request_1', version: '1.0.0' }));
    db.add(cfg({ service: 'Test1', request_type: 'test_request_1', version: '2.0.0' }));
    db.disable('Test1', 'test_request_1', '1.0.0');
    expect(db.functions()).toEqual({ Test1: { test_request_1: ['1.0.0', '2.0.0'] } });
  });

  it('services() lists every service', () => {
    db.add(cfg({ service: 'Test1', request_type: 'a' }));
    db.add(cfg({ service: 'Test2', request_type: 'b' }));
    db.add(cfg({ service: 'Test1', request_type: 'c' }));
    expect(db.services()).toEqual(['Test1', 'Test2']);
  });

  it('a service named __proto__ is an ordinary key in functions()', () => {
    db.add(cfg({ service: '__proto__', request_type: 'constructor' }));
    const functions = db.functions();
    expect(Object.keys(functions)).toEqual(['__proto__']);
    expect(functions['__proto__']?.['constructor']).toEqual([null]);
  });

  it('list() returns every config, list(service) those of one service', () => {
    const a1 = cfg({ service: 'A', request_type: 'x' });
    const a2 = cfg({ service: 'A', request_type: 'y', version: '1.0.0' });
    const b1 = cfg({ service: 'B', request_type: 'x' });
    for (const c of [a1, a2, b1]) db.add(c);
    expect(db.list()).toEqual([a1, a2, b1]);
    expect(db.list('A')).toEqual([a1, a2]);
    expect(db.list('C')).toEqual([]);
    expect(db.count()).toBe(3);
  });
});

describe('ConfigRegistry: disable / enable', () => {
  it('disable → get says disabled; enable restores it', () => {
    const config = cfg();
    db.add(config);
    expect(db.disable('Test', 'test_request', null)).toBe(true);
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: false, reason: 'disabled' });
    expect(db.enable('Test', 'test_request', null)).toBe(true);
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: true, config });
  });

  it('disable/enable of an unknown config return false', () => {
    expect(db.disable('Test', 'nonexistent', null)).toBe(false);
    expect(db.enable('Test', 'nonexistent', null)).toBe(false);
    db.add(cfg({ version: '1.0.0' }));
    expect(db.disable('Test', 'test_request', '2.0.0')).toBe(false);
  });

  it('disable sets the stored disabled field; enable clears it', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.disable('Test', 'test_request', '1.0.0');
    expect(db.peek('Test', 'test_request', '1.0.0')?.disabled).toBe(true);
    expect(db.list()[0]?.disabled).toBe(true);
    db.enable('Test', 'test_request', '1.0.0');
    expect(db.peek('Test', 'test_request', '1.0.0')?.disabled).toBe(false);
  });

  it('disable only affects the given version', () => {
    const v1 = cfg({ version: '1.0.0' });
    const v3 = cfg({ version: '3.0.0' });
    db.add(v1);
    db.add(cfg({ version: '2.0.0' }));
    db.add(v3);
    db.disable('Test', 'test_request', '2.0.0');
    expect(db.get('Test', 'test_request', '2.0.0')).toEqual({ ok: false, reason: 'disabled' });
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: true, config: v1 });
    expect(db.get('Test', 'test_request', '3.0.0')).toEqual({ ok: true, config: v3 });
  });

  it('a disabled state persists when other versions are added', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.disable('Test', 'test_request', '1.0.0');
    const v2 = cfg({ version: '2.0.0' });
    db.add(v2);
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: false, reason: 'disabled' });
    expect(db.get('Test', 'test_request', '2.0.0')).toEqual({ ok: true, config: v2 });
  });

  it('disable/enable across several versions', () => {
    db.add(cfg({ version: '1.0.0' }));
    const v2 = cfg({ version: '2.0.0' });
    db.add(v2);
    db.disable('Test', 'test_request', '1.0.0');
    db.disable('Test', 'test_request', '2.0.0');
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: false, reason: 'disabled' });
    expect(db.get('Test', 'test_request', '2.0.0')).toEqual({ ok: false, reason: 'disabled' });
    expect(db.getLatest('Test', 'test_request')).toEqual({ ok: false, reason: 'not_found' });
    db.enable('Test', 'test_request', '2.0.0');
    expect(db.get('Test', 'test_request', '2.0.0')).toEqual({ ok: true, config: v2 });
    expect(db.get('Test', 'test_request', '1.0.0')).toEqual({ ok: false, reason: 'disabled' });
  });

  it('a config that arrives with disabled: true is stored disabled', () => {
    db.add(cfg({ disabled: true }));
    expect(db.get('Test', 'test_request', null)).toEqual({ ok: false, reason: 'disabled' });
    expect(db.enable('Test', 'test_request', null)).toBe(true);
    expect(db.get('Test', 'test_request', null).ok).toBe(true);
  });

  it('disabled defaults to false', () => {
    expect(cfg().disabled).toBe(false);
  });
});

describe('ConfigRegistry: getLatest', () => {
  it('returns the highest version', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.add(cfg({ version: '2.0.0' }));
    db.add(cfg({ version: '1.5.0' }));
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('2.0.0');
  });

  it('compares by semver, not lexically: 10.0.0 > 9.0.0', () => {
    db.add(cfg({ version: '10.0.0' }));
    db.add(cfg({ version: '9.0.0' }));
    db.add(cfg({ version: '9.10.0' }));
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('10.0.0');
  });

  it('skips disabled configs', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.add(cfg({ version: '2.0.0' }));
    db.disable('Test', 'test_request', '2.0.0');
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('1.0.0');
  });

  it('skips unversioned configs', () => {
    db.add(cfg({ timeout: 500 }));
    db.add(cfg({ version: '1.0.0', timeout: 1000 }));
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('1.0.0');
  });

  it('not_found when only unversioned configs exist', () => {
    db.add(cfg());
    expect(db.getLatest('Test', 'test_request')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('not_found when all versioned configs are disabled (the unversioned one is ignored)', () => {
    db.add(cfg({ timeout: 500 }));
    db.add(cfg({ version: '1.0.0' }));
    db.disable('Test', 'test_request', '1.0.0');
    expect(db.getLatest('Test', 'test_request')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('not_found when nothing exists', () => {
    expect(db.getLatest('Test', 'nonexistent_request')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('an unparsable version counts as 0.0.0 (below any real version)', () => {
    db.add(cfg({ version: 'banana' }));
    db.add(cfg({ version: '0.0.1' }));
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('0.0.1');
    db.delete('Test', 'test_request', '0.0.1');
    const only = db.getLatest('Test', 'test_request');
    expect(only.ok && only.config.version).toBe('banana');
  });

  it('a pre-release orders below its release', () => {
    db.add(cfg({ version: '2.0.0' }));
    db.add(cfg({ version: '2.0.0-rc.1' }));
    db.add(cfg({ version: '1.9.9' }));
    const latest = db.getLatest('Test', 'test_request');
    expect(latest.ok && latest.config.version).toBe('2.0.0');
    db.delete('Test', 'test_request', '2.0.0');
    const rc = db.getLatest('Test', 'test_request');
    expect(rc.ok && rc.config.version).toBe('2.0.0-rc.1');
  });
});

describe('ConfigRegistry: getFast (no version requested)', () => {
  it('the sole unversioned config', () => {
    const config = cfg();
    db.add(config);
    expect(db.getFast('Test', 'test_request')).toEqual({ ok: true, config });
  });

  it('the latest versioned config when several versions exist', () => {
    db.add(cfg({ version: '1.0.0', timeout: 1000 }));
    db.add(cfg({ version: '2.0.0', timeout: 2000 }));
    const got = db.getFast('Test', 'test_request');
    expect(got.ok && got.config.version).toBe('2.0.0');
  });

  it('prefers a versioned config over the unversioned one when both exist (PhoenixGenApi rule, spec §11.6)', () => {
    db.add(cfg({ timeout: 500 }));
    db.add(cfg({ version: '1.0.0', timeout: 1000 }));
    const got = db.getFast('Test', 'test_request');
    expect(got.ok && got.config.version).toBe('1.0.0');
  });

  it('the unversioned one when every versioned config is disabled', () => {
    const unversioned = cfg({ timeout: 500 });
    db.add(unversioned);
    db.add(cfg({ version: '1.0.0' }));
    db.disable('Test', 'test_request', '1.0.0');
    expect(db.getFast('Test', 'test_request')).toEqual({ ok: true, config: unversioned });
  });

  it('disabled configs are filtered first: a sole disabled config is not_found (not "disabled")', () => {
    db.add(cfg());
    db.disable('Test', 'test_request', null);
    expect(db.getFast('Test', 'test_request')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('semver order: 10.0.0 over 9.0.0, release over pre-release, unparsable lowest', () => {
    for (const v of ['9.0.0', 'not-a-version', '10.0.0-beta', '10.0.0', '2.0'])
      db.add(cfg({ version: v }));
    const got = db.getFast('Test', 'test_request');
    expect(got.ok && got.config.version).toBe('10.0.0');
  });

  it('not_found for unknown names', () => {
    expect(db.getFast('Nope', 'x')).toEqual({ ok: false, reason: 'not_found' });
    db.add(cfg());
    expect(db.getFast('Test', 'x')).toEqual({ ok: false, reason: 'not_found' });
  });
});

describe('ConfigRegistry: getFast cache invalidation', () => {
  function fastVersion(): string | null | undefined {
    const got = db.getFast('Test', 'test_request');
    return got.ok ? got.config.version : undefined;
  }

  it('a cached answer is the same object on every hit', () => {
    db.add(cfg({ version: '1.0.0' }));
    const first = db.getFast('Test', 'test_request');
    expect(db.getFast('Test', 'test_request')).toBe(first);
    expect(db.resolve('Test', 'test_request', null)).toBe(first);
  });

  it('is invalidated by add, disable, enable, delete, deleteService and clear', () => {
    db.add(cfg({ version: '1.0.0' }));
    expect(fastVersion()).toBe('1.0.0');
    db.add(cfg({ version: '2.0.0' }));
    expect(fastVersion()).toBe('2.0.0');
    db.disable('Test', 'test_request', '2.0.0');
    expect(fastVersion()).toBe('1.0.0');
    db.enable('Test', 'test_request', '2.0.0');
    expect(fastVersion()).toBe('2.0.0');
    db.delete('Test', 'test_request', '2.0.0');
    expect(fastVersion()).toBe('1.0.0');
    db.deleteService('Test');
    expect(fastVersion()).toBeUndefined();
    db.add(cfg({ version: '3.0.0' }));
    expect(fastVersion()).toBe('3.0.0');
    db.clear();
    expect(fastVersion()).toBeUndefined();
  });

  it('a replacement under the same key is seen at once', () => {
    db.add(cfg({ timeout: 1000 }));
    expect(db.getFast('Test', 'test_request').ok).toBe(true);
    db.add(cfg({ timeout: 2000 }));
    const got = db.getFast('Test', 'test_request');
    expect(got.ok && got.config.timeoutMs).toBe(2000);
  });

  it('invalidation is per (service, request_type): names that concatenate alike do not collide', () => {
    db.add(cfg({ service: 'ab', request_type: 'c', timeout: 1000 }));
    db.add(cfg({ service: 'a', request_type: 'bc', timeout: 2000 }));
    const first = db.getFast('ab', 'c');
    const second = db.getFast('a', 'bc');
    expect(first.ok && first.config.timeoutMs).toBe(1000);
    expect(second.ok && second.config.timeoutMs).toBe(2000);
    db.disable('a', 'bc', null);
    expect(db.getFast('ab', 'c')).toBe(first);
    expect(db.getFast('a', 'bc')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('stays correct beyond the cache capacity', () => {
    const small = new ConfigRegistry({ cacheMax: 2 });
    for (let i = 0; i < 5; i++) small.add(cfg({ request_type: `f${i}`, timeout: 1000 + i }));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) {
        const got = small.getFast('Test', `f${i}`);
        expect(got.ok && got.config.timeoutMs).toBe(1000 + i);
      }
    }
  });
});

describe('ConfigRegistry: resolve (the executor rule)', () => {
  it('an explicit version → exact get (disabled is reported as disabled)', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.add(cfg({ version: '2.0.0' }));
    const got = db.resolve('Test', 'test_request', '1.0.0');
    expect(got.ok && got.config.version).toBe('1.0.0');
    db.disable('Test', 'test_request', '1.0.0');
    expect(db.resolve('Test', 'test_request', '1.0.0')).toEqual({ ok: false, reason: 'disabled' });
    expect(db.resolve('Test', 'test_request', '9.9.9')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('no version (null, "" or "0.0.0") → getFast', () => {
    db.add(cfg({ timeout: 500 }));
    db.add(cfg({ version: '1.0.0' }));
    for (const v of [null, '', '0.0.0']) {
      const got = db.resolve('Test', 'test_request', v);
      expect(got.ok && got.config.version).toBe('1.0.0');
    }
  });

  it('disabling one version leaves the others resolvable', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.add(cfg({ version: '2.0.0' }));
    db.disable('Test', 'test_request', '2.0.0');
    expect(db.resolve('Test', 'test_request', '1.0.0').ok).toBe(true);
    const latest = db.resolve('Test', 'test_request', null);
    expect(latest.ok && latest.config.version).toBe('1.0.0');
  });

  it('with an explicit version, a hit returns a pre-built answer (no allocation)', () => {
    db.add(cfg({ version: '1.0.0' }));
    const a = db.resolve('Test', 'test_request', '1.0.0');
    expect(db.resolve('Test', 'test_request', '1.0.0')).toBe(a);
  });
});

describe('ConfigRegistry: onChange', () => {
  it('reports every change with (service, request_type); unsubscribe stops it', () => {
    const seen: string[] = [];
    const off = db.onChange((service, requestType) => seen.push(`${service}/${requestType}`));
    db.add(cfg({ service: 'A', request_type: 'x' }));
    db.disable('A', 'x', null);
    db.disable('A', 'x', null); // already disabled: no change
    db.enable('A', 'x', null);
    db.disable('A', 'missing', null); // not found: no change
    db.delete('A', 'x', null);
    db.delete('A', 'x', null); // already gone: no change
    db.add(cfg({ service: 'B', request_type: 'y' }));
    db.add(cfg({ service: 'B', request_type: 'z' }));
    db.deleteService('B');
    db.add(cfg({ service: 'C', request_type: 'w' }));
    db.clear();
    expect(seen).toEqual(['A/x', 'A/x', 'A/x', 'A/x', 'B/y', 'B/z', 'B/y', 'B/z', 'C/w', 'C/w']);
    off();
    db.add(cfg());
    expect(seen).toHaveLength(10);
  });

  it('a throwing listener neither breaks the change nor silences other listeners', () => {
    const onListenerError = vi.fn();
    const registry = new ConfigRegistry({ onListenerError });
    const other = vi.fn();
    registry.onChange(() => {
      throw new Error('boom');
    });
    registry.onChange(other);
    registry.add(cfg());
    expect(registry.get('Test', 'test_request', null).ok).toBe(true);
    expect(other).toHaveBeenCalledWith('Test', 'test_request');
    expect(onListenerError).toHaveBeenCalledWith(expect.objectContaining({ message: 'boom' }));
  });

  it('a listener sees the registry already changed (and the cache invalidated)', () => {
    db.add(cfg({ version: '1.0.0' }));
    db.getFast('Test', 'test_request');
    const versions: (string | null | undefined)[] = [];
    db.onChange(() => {
      const got = db.getFast('Test', 'test_request');
      versions.push(got.ok ? got.config.version : undefined);
    });
    db.add(cfg({ version: '2.0.0' }));
    db.delete('Test', 'test_request', '2.0.0');
    expect(versions).toEqual(['2.0.0', '1.0.0']);
  });
});

describe('compareVersions (semver)', () => {
  it.each([
    ['1.0.0', '2.0.0', -1],
    ['10.0.0', '9.0.0', 1],
    ['1.10.0', '1.9.0', 1],
    ['1.0.10', '1.0.9', 1],
    ['1.0.0', '1.0.0', 0],
    ['1.0.0-alpha', '1.0.0', -1],
    ['1.0.0-alpha', '1.0.0-alpha.1', -1],
    ['1.0.0-alpha.1', '1.0.0-alpha.beta', -1],
    ['1.0.0-alpha.beta', '1.0.0-beta', -1],
    ['1.0.0-beta.2', '1.0.0-beta.11', -1],
    ['1.0.0-rc.1', '1.0.0', -1],
    ['1.0.0+build.1', '1.0.0+build.2', 0],
    ['garbage', '0.0.0', 0],
    ['1.0', '0.0.1', -1],
    ['01.0.0', '0.0.1', -1],
    ['99999999999999999999.0.0', '99999999999999999998.0.0', 1],
  ])('compare(%s, %s) = %d', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
    expect(compareVersions(b, a)).toBe(expected === 0 ? 0 : -expected);
  });
});
