/**
 * FunConfig validation and resolution — PhoenixGenApi structs/fun_config_test (spec §10), adapted to
 * the gateway's JSON field forms (nodes "local"/"nats", hooks by name, permission_callback boolean,
 * no mfa), plus the port's fixes: documented defaults, "" / "0.0.0" versions are unversioned,
 * argument errors carry their detail.
 */
import { describe, expect, it } from 'vitest';
import { validateFunConfig, type ValidateOptions } from '../../../src/genapi/config/validate.js';
import type { ResolvedFunConfig } from '../../../src/genapi/types.js';

const OPTS: ValidateOptions = { nodesDefault: 'nats' };

const base = { service: 'users', request_type: 'get_user' };

function ok(raw: Record<string, unknown>, options: ValidateOptions = OPTS): ResolvedFunConfig {
  const result = validateFunConfig(raw, options);
  if (!result.ok) throw new Error(`expected valid, got ${JSON.stringify(result.errors)}`);
  return result.config;
}

function errors(raw: unknown, options: ValidateOptions = OPTS): string[] {
  const result = validateFunConfig(raw, options);
  if (result.ok) throw new Error('expected invalid');
  return result.errors;
}

const E = {
  requestType: 'request_type must be a non-empty string without whitespace, ".", "*" or ">"',
  service: 'service must be a non-empty string without whitespace, ".", "*" or ">"',
  nodes: 'nodes must be "local" or "nats"',
  chooseNodeMode:
    'choose_node_mode must be "random", "hash", "round_robin", {"hash": key}, {"sticky": key, "ttl_ms"?: ms} or {"weighted": {version: weight}}',
  timeout: 'timeout must be an integer between 100 and 300000, or "infinity"',
  responseType: 'response_type must be "sync", "async", "stream" or "none"',
  checkPermission:
    'check_permission must be false, "any_authenticated", {"arg": name} or {"role": [roles]}',
  permissionCallback: 'permission_callback must be a boolean',
  requestInfo: 'request_info must be a boolean',
  version: 'version must be a string',
  retry: 'retry must be null, a positive number, {"same_node": n} or {"all_nodes": n}',
  retryOn: 'retry_on must be "transport" or "any"',
  beforeExecute: 'before_execute must be null or the name of a registered hook',
  afterExecute: 'after_execute must be null or the name of a registered hook',
  hookTimeout: 'hook_timeout must be a positive integer',
  disabled: 'disabled must be a boolean',
};

describe('validateFunConfig: minimal config and documented defaults (⚠ fix)', () => {
  it('service + request_type alone is valid and gets every documented default', () => {
    const config = ok(base);
    expect(config).toMatchObject({
      service: 'users',
      requestType: 'get_user',
      version: null,
      nodes: 'nats',
      nodeMode: { kind: 'random' },
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
    });
  });

  it('nodes defaults to options.nodesDefault', () => {
    expect(ok(base, { nodesDefault: 'local' }).nodes).toBe('local');
    expect(ok(base, { nodesDefault: 'nats' }).nodes).toBe('nats');
    expect(ok({ ...base, nodes: 'local' }, { nodesDefault: 'nats' }).nodes).toBe('local');
  });

  it('source keeps what the worker sent (known fields only), with the version normalised, and no defaults injected', () => {
    const raw = {
      ...base,
      version: '0.0.0',
      timeout: 1000,
      unknown_field: 1,
      arg_types: { a: 'string' },
    };
    const config = ok(raw);
    expect(config.source).toEqual({
      service: 'users',
      request_type: 'get_user',
      version: null,
      timeout: 1000,
      arg_types: { a: 'string' },
    });
    expect(ok(base).source).toEqual({ ...base, version: null });
    expect(ok({ ...base, version: '2.1.0' }).source.version).toBe('2.1.0');
  });

  it('the source is a copy: mutating the input afterwards changes nothing', () => {
    const raw = { ...base, arg_types: { a: 'string' } as Record<string, unknown> };
    const config = ok(raw);
    raw.arg_types.b = 'num';
    expect(config.source.arg_types).toEqual({ a: 'string' });
  });

  it('the resolved config is frozen', () => {
    expect(Object.isFrozen(ok(base))).toBe(true);
  });

  it('a non-object is rejected', () => {
    for (const raw of [null, undefined, 'x', 1, [base]])
      expect(errors(raw)).toEqual(['fun_config must be an object']);
  });

  it('unknown fields are ignored (e.g. PhoenixGenApi mfa)', () => {
    expect(ok({ ...base, mfa: ['Mod', 'fun', []], whatever: { deep: true } }).requestType).toBe(
      'get_user',
    );
  });
});

describe('validateFunConfig: all errors, collected in the fixed order', () => {
  it('every field wrong at once → every message, in order', () => {
    const raw = {
      request_type: '',
      service: null,
      nodes: 'remote',
      choose_node_mode: 'sticky',
      timeout: 99,
      arg_types: { a: 'string' },
      arg_orders: ['b'],
      response_type: 'stream_all',
      check_permission: true,
      permission_callback: 'yes',
      request_info: 1,
      version: 1,
      retry: 0,
      retry_on: 'all',
      before_execute: 42,
      after_execute: '',
      hook_timeout: 0,
      disabled: 'no',
    };
    expect(errors(raw)).toEqual([
      E.requestType,
      E.service,
      E.nodes,
      E.chooseNodeMode,
      E.timeout,
      'argument validation failed: arg mismatch, missing: ["a"], extra: ["b"]',
      E.responseType,
      E.checkPermission,
      E.permissionCallback,
      E.requestInfo,
      E.version,
      E.retry,
      E.retryOn,
      E.beforeExecute,
      E.afterExecute,
      E.hookTimeout,
      E.disabled,
    ]);
  });

  it('a single bad field gives a single error', () => {
    expect(errors({ ...base, timeout: 'slow' })).toEqual([E.timeout]);
  });
});

describe('validateFunConfig: request_type and service (NATS subject tokens)', () => {
  it.each(['', ' ', 'get user', 'get.user', 'get*', 'get>', 'a\tb', 'a\nb', 'a\u0000b'])(
    'request_type %j is rejected',
    (requestType) => {
      expect(errors({ ...base, request_type: requestType })).toEqual([E.requestType]);
    },
  );

  it.each([undefined, null, 1, ['x'], { a: 1 }])(
    'request_type %j (not a string) is rejected',
    (requestType) => {
      expect(errors({ service: 'users', request_type: requestType })).toEqual([E.requestType]);
    },
  );

  it.each(['', 'my service', 'a.b', '*', '>', 'svc\r'])('service %j is rejected', (service) => {
    expect(errors({ ...base, service })).toEqual([E.service]);
  });

  it('service must be present (PhoenixGenApi "service must not be nil")', () => {
    expect(errors({ request_type: 'x' })).toEqual([E.service]);
  });

  it('usual names, including "-", "_", ":", upper case and non-ASCII, are accepted', () => {
    expect(ok({ service: 'Chat-Service_v2', request_type: 'user:get_Ünïcode' }).requestType).toBe(
      'user:get_Ünïcode',
    );
  });
});

describe('validateFunConfig: nodes', () => {
  it.each(['local', 'nats'])('nodes %j is valid', (nodes) => {
    expect(ok({ ...base, nodes }).nodes).toBe(nodes);
  });
  it.each([null, [], ['node@host'], 'remote', { m: 'f' }])('nodes %j is rejected', (nodes) => {
    expect(errors({ ...base, nodes })).toEqual([E.nodes]);
  });
});

describe('validateFunConfig: choose_node_mode', () => {
  it('simple modes', () => {
    expect(ok({ ...base, choose_node_mode: 'random' }).nodeMode).toEqual({ kind: 'random' });
    expect(ok({ ...base, choose_node_mode: 'hash' }).nodeMode).toEqual({ kind: 'hash' });
    expect(ok({ ...base, choose_node_mode: 'round_robin' }).nodeMode).toEqual({
      kind: 'round_robin',
    });
  });

  it('{hash: key} → hash_arg', () => {
    expect(ok({ ...base, choose_node_mode: { hash: 'user_id' } }).nodeMode).toEqual({
      kind: 'hash_arg',
      key: 'user_id',
    });
  });

  it('{sticky: key} → sticky with the default ttl of 1 h; ttl_ms overrides', () => {
    expect(ok({ ...base, choose_node_mode: { sticky: 'room' } }).nodeMode).toEqual({
      kind: 'sticky',
      key: 'room',
      ttlMs: 3_600_000,
    });
    expect(ok({ ...base, choose_node_mode: { sticky: 'room', ttl_ms: 60_000 } }).nodeMode).toEqual({
      kind: 'sticky',
      key: 'room',
      ttlMs: 60_000,
    });
  });

  it('{weighted: {...}} → weights map, "*" is the default weight (0 when absent)', () => {
    const mode = ok({
      ...base,
      choose_node_mode: { weighted: { '1.0.0': 90, '1.1.0': 10, '*': 1 } },
    }).nodeMode;
    expect(mode.kind).toBe('weighted');
    if (mode.kind !== 'weighted') return;
    expect([...mode.weights]).toEqual([
      ['1.0.0', 90],
      ['1.1.0', 10],
    ]);
    expect(mode.defaultWeight).toBe(1);
    const noDefault = ok({ ...base, choose_node_mode: { weighted: { '2.0.0': 0.5 } } }).nodeMode;
    expect(noDefault).toMatchObject({ kind: 'weighted', defaultWeight: 0 });
    const zero = ok({ ...base, choose_node_mode: { weighted: { '2.0.0': 0 } } }).nodeMode;
    expect(zero.kind === 'weighted' && zero.weights.get('2.0.0')).toBe(0);
  });

  it.each([
    ['null', null],
    ['an unknown mode', 'least_loaded'],
    ['"sticky" without a key', 'sticky'],
    ['an empty hash key', { hash: '' }],
    ['a non-string hash key', { hash: 1 }],
    ['an empty sticky key', { sticky: '' }],
    ['a zero ttl_ms', { sticky: 'k', ttl_ms: 0 }],
    ['a fractional ttl_ms', { sticky: 'k', ttl_ms: 1.5 }],
    ['a negative weight', { weighted: { '1.0.0': -1 } }],
    ['a string weight', { weighted: { '1.0.0': '5' } }],
    ['empty weights', { weighted: {} }],
    ['weights as a list', { weighted: [1, 2] }],
    ['two modes at once', { hash: 'a', sticky: 'b' }],
    ['an unknown extra key', { hash: 'a', ttl_ms: 5 }],
    ['an empty object', {}],
    ['a list', ['hash', 'k']],
  ])('%s is rejected', (_label, mode) => {
    expect(errors({ ...base, choose_node_mode: mode })).toEqual([E.chooseNodeMode]);
  });
});

describe('validateFunConfig: timeout', () => {
  it('integer bounds 100 and 300000 are inclusive', () => {
    expect(ok({ ...base, timeout: 100 }).timeoutMs).toBe(100);
    expect(ok({ ...base, timeout: 300_000 }).timeoutMs).toBe(300_000);
    expect(ok({ ...base, timeout: 5000 }).timeoutMs).toBe(5000);
  });
  it('"infinity" → 25 000 ms per attempt', () => {
    expect(ok({ ...base, timeout: 'infinity' }).timeoutMs).toBe(25_000);
  });
  it.each([99, 300_001, 0, -5, 150.5, '5000', null, 'Infinity'])(
    'timeout %j is rejected',
    (timeout) => {
      expect(errors({ ...base, timeout })).toEqual([E.timeout]);
    },
  );
});

describe('validateFunConfig: arguments', () => {
  it('arg rules are resolved; argsAsMap from arg_orders "map"', () => {
    const config = ok({
      ...base,
      arg_types: { id: 'uuid', name: ['string', 10] },
      arg_orders: ['name', 'id'],
    });
    expect(config.args?.map((r) => r.name)).toEqual(['name', 'id']);
    expect(config.argsAsMap).toBe(false);
    const asMap = ok({ ...base, arg_types: { id: 'uuid' }, arg_orders: 'map' });
    expect(asMap.argsAsMap).toBe(true);
  });

  it('args null when arg_types is undeclared, [] when {}', () => {
    expect(ok(base).args).toBeNull();
    expect(ok({ ...base, arg_types: {}, arg_orders: [] }).args).toEqual([]);
  });

  it('valid with uuid/list_uuid/list_map in simple and extended formats', () => {
    const config = ok({
      ...base,
      arg_types: {
        a: 'uuid',
        b: { type: 'uuid' },
        c: 'list_uuid',
        d: { type: 'list_uuid', max_items: 5 },
        e: 'list_map',
        f: { type: 'list_map', max_items: 100 },
      },
    });
    expect(config.args?.map((r) => r.type)).toEqual([
      'uuid',
      'uuid',
      'list_uuid',
      'list_uuid',
      'list_map',
      'list_map',
    ]);
  });

  it('⚠ the argument error includes the detail (PhoenixGenApi hides it)', () => {
    expect(errors({ ...base, arg_types: { a: 'string', b: 'num' }, arg_orders: ['a'] })).toEqual([
      'argument validation failed: arg_types count (2) does not match arg_orders count (1)',
    ]);
    expect(errors({ ...base, arg_types: { a: 'integer' } })).toEqual([
      'argument validation failed: invalid arg_types configuration for: ["a"]',
    ]);
    expect(errors({ ...base, arg_orders: ['a'] })).toEqual([
      'argument validation failed: arg_types is nil but arg_orders is not empty',
    ]);
  });

  it('⚠ fix: list/datetime/naive_datetime/any are accepted', () => {
    const config = ok({
      ...base,
      arg_types: { a: 'list', b: 'datetime', c: 'naive_datetime', d: 'any' },
      arg_orders: ['a', 'b', 'c', 'd'],
    });
    expect(config.args?.map((r) => r.type)).toEqual(['list', 'datetime', 'naive_datetime', 'any']);
  });

  it('default type mismatch is accepted; missing type is rejected; unknown options are ignored', () => {
    expect(
      ok({ ...base, arg_types: { n: { type: 'num', default_value: 'x' } } }).args?.[0]
        ?.defaultValue,
    ).toBe('x');
    expect(errors({ ...base, arg_types: { n: { default_value: 1 } } })).toHaveLength(1);
    expect(
      ok({ ...base, arg_types: { n: { type: 'num', unknown_option: true } } }).args?.[0]?.type,
    ).toBe('num');
  });
});

describe('validateFunConfig: response_type', () => {
  it.each(['sync', 'async', 'stream', 'none'])('%s is valid', (responseType) => {
    expect(ok({ ...base, response_type: responseType }).responseType).toBe(responseType);
  });
  it.each(['invalid', null, true, 'SYNC'])('%j is rejected', (responseType) => {
    expect(errors({ ...base, response_type: responseType })).toEqual([E.responseType]);
  });
});

describe('validateFunConfig: check_permission', () => {
  it('false → none', () => {
    expect(ok({ ...base, check_permission: false }).permission).toEqual({ kind: 'none' });
  });
  it('"any_authenticated"', () => {
    expect(ok({ ...base, check_permission: 'any_authenticated' }).permission).toEqual({
      kind: 'any_authenticated',
    });
  });
  it('{arg: name}', () => {
    expect(ok({ ...base, check_permission: { arg: 'user_id' } }).permission).toEqual({
      kind: 'arg',
      arg: 'user_id',
    });
  });
  it('{role: [roles]}, including an empty list', () => {
    expect(ok({ ...base, check_permission: { role: ['admin', 'mod'] } }).permission).toEqual({
      kind: 'role',
      roles: ['admin', 'mod'],
    });
    expect(ok({ ...base, check_permission: { role: [] } }).permission).toEqual({
      kind: 'role',
      roles: [],
    });
  });
  it.each([
    ['true', true],
    ['null', null],
    ['an unknown string', 'authenticated'],
    ['{arg} with an empty name', { arg: '' }],
    ['{arg} with a number', { arg: 1 }],
    ['{role} not a list', { role: 'admin' }],
    ['{role} with a non-string', { role: ['admin', 1] }],
    ['an unknown object', { user: 'x' }],
    ['{arg} with an extra key', { arg: 'a', role: ['x'] }],
  ])('%s is rejected', (_label, value) => {
    expect(errors({ ...base, check_permission: value })).toEqual([E.checkPermission]);
  });
});

describe('validateFunConfig: permission_callback, request_info, disabled', () => {
  it('permission_callback: boolean; null means false', () => {
    expect(ok({ ...base, permission_callback: true }).permissionCallback).toBe(true);
    expect(ok({ ...base, permission_callback: false }).permissionCallback).toBe(false);
    expect(ok({ ...base, permission_callback: null }).permissionCallback).toBe(false);
    expect(errors({ ...base, permission_callback: ['Mod', 'fun'] })).toEqual([
      E.permissionCallback,
    ]);
    expect(errors({ ...base, permission_callback: 'true' })).toEqual([E.permissionCallback]);
  });
  it('request_info: true/false valid; anything else rejected', () => {
    expect(ok({ ...base, request_info: true }).requestInfo).toBe(true);
    expect(ok({ ...base, request_info: false }).requestInfo).toBe(false);
    expect(errors({ ...base, request_info: 'yes' })).toEqual([E.requestInfo]);
    expect(errors({ ...base, request_info: null })).toEqual([E.requestInfo]);
  });
  it('disabled: true/false valid; anything else rejected', () => {
    expect(ok({ ...base, disabled: true }).disabled).toBe(true);
    expect(ok({ ...base, disabled: false }).disabled).toBe(false);
    expect(errors({ ...base, disabled: 1 })).toEqual([E.disabled]);
  });
});

describe('validateFunConfig: version', () => {
  it('a semver string is kept', () => {
    expect(ok({ ...base, version: '1.0.0' }).version).toBe('1.0.0');
  });
  it('any other non-empty string is kept too', () => {
    expect(ok({ ...base, version: 'v2-beta' }).version).toBe('v2-beta');
  });
  it('⚠ null, absent, "" and the sentinel "0.0.0" all mean unversioned (PhoenixGenApi rejects "" and "0.0.0")', () => {
    expect(ok({ ...base, version: null }).version).toBeNull();
    expect(ok(base).version).toBeNull();
    expect(ok({ ...base, version: '' }).version).toBeNull();
    expect(ok({ ...base, version: '0.0.0' }).version).toBeNull();
  });
  it.each([1, true, ['1.0.0'], { v: 1 }])('version %j is rejected', (version) => {
    expect(errors({ ...base, version })).toEqual([E.version]);
  });
});

describe('validateFunConfig: retry and retry_on', () => {
  it('null/absent → no retry', () => {
    expect(ok({ ...base, retry: null }).retry).toBeNull();
    expect(ok(base).retry).toBeNull();
  });
  it('a number n → all_nodes n (floats truncated)', () => {
    expect(ok({ ...base, retry: 3 }).retry).toEqual({ kind: 'all_nodes', attempts: 3 });
    expect(ok({ ...base, retry: 2.7 }).retry).toEqual({ kind: 'all_nodes', attempts: 2 });
  });
  it('{same_node: n} and {all_nodes: n} keep their kind, truncated', () => {
    expect(ok({ ...base, retry: { same_node: 2 } }).retry).toEqual({
      kind: 'same_node',
      attempts: 2,
    });
    expect(ok({ ...base, retry: { all_nodes: 5 } }).retry).toEqual({
      kind: 'all_nodes',
      attempts: 5,
    });
    expect(ok({ ...base, retry: { same_node: 1.9 } }).retry).toEqual({
      kind: 'same_node',
      attempts: 1,
    });
    expect(ok({ ...base, retry: { all_nodes: 4.2 } }).retry).toEqual({
      kind: 'all_nodes',
      attempts: 4,
    });
  });
  it.each([
    ['zero', 0],
    ['a negative number', -1],
    ['a string', '3'],
    ['{same_node: 0}', { same_node: 0 }],
    ['{all_nodes: -2}', { all_nodes: -2 }],
    ['an unknown kind', { other_node: 1 }],
    ['two kinds', { same_node: 1, all_nodes: 1 }],
    ['a tuple-like list', ['same_node', 1]],
    ['a string count', { same_node: '1' }],
    ['true', true],
  ])('%s is rejected', (_label, retry) => {
    expect(errors({ ...base, retry })).toEqual([E.retry]);
  });
  it('retry_on: "transport" (default) or "any"', () => {
    expect(ok({ ...base, retry_on: 'any' }).retryOn).toBe('any');
    expect(ok({ ...base, retry_on: 'transport' }).retryOn).toBe('transport');
    expect(errors({ ...base, retry_on: 'all' })).toEqual([E.retryOn]);
    expect(errors({ ...base, retry_on: null })).toEqual([E.retryOn]);
  });
});

describe('validateFunConfig: hooks and hook_timeout', () => {
  it('null/absent hooks are valid', () => {
    const config = ok({ ...base, before_execute: null, after_execute: null });
    expect(config.beforeExecute).toBeNull();
    expect(config.afterExecute).toBeNull();
  });
  it('a hook name is kept when no registry of names is given', () => {
    const config = ok({ ...base, before_execute: 'audit', after_execute: 'redact' });
    expect(config.beforeExecute).toBe('audit');
    expect(config.afterExecute).toBe('redact');
  });
  it('with hookNames, names must be registered', () => {
    const options: ValidateOptions = { nodesDefault: 'nats', hookNames: new Set(['audit']) };
    expect(
      ok({ ...base, before_execute: 'audit', after_execute: 'audit' }, options).beforeExecute,
    ).toBe('audit');
    expect(errors({ ...base, before_execute: 'unknown' }, options)).toEqual([E.beforeExecute]);
    expect(errors({ ...base, after_execute: 'unknown' }, options)).toEqual([E.afterExecute]);
  });
  it.each([
    ['an empty name', ''],
    ['a number', 1],
    ['an MFA-like list', ['Mod', 'fun']],
  ])('a hook as %s is rejected', (_label, hook) => {
    expect(errors({ ...base, before_execute: hook, after_execute: hook })).toEqual([
      E.beforeExecute,
      E.afterExecute,
    ]);
  });
  it('hook_timeout: default 5000, positive integers accepted', () => {
    expect(ok(base).hookTimeoutMs).toBe(5000);
    expect(ok({ ...base, hook_timeout: 1 }).hookTimeoutMs).toBe(1);
    expect(ok({ ...base, hook_timeout: 10_000 }).hookTimeoutMs).toBe(10_000);
  });
  it.each([0, -1, 1.5, '5000', null])('hook_timeout %j is rejected', (hookTimeout) => {
    expect(errors({ ...base, hook_timeout: hookTimeout })).toEqual([E.hookTimeout]);
  });
});
