/**
 * Config push — PhoenixGenApi structs/push_config_test and config_cache/config_receiver_test
 * (spec §6.3, push token §8.3, §10): accept, skip on the same version, force, invalid pushes,
 * partial acceptance, push token, verify, pushedServices, forget; plus the port's fixes: the service
 * name is enforced, and a replacing push removes the functions the previous one had and it lacks.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { FailedConfigs } from '../../../src/genapi/config/failed.js';
import {
  ConfigReceiver,
  type PushConfig,
  type PushResult,
} from '../../../src/genapi/config/push.js';
import { ConfigRegistry } from '../../../src/genapi/config/registry.js';
import { validateFunConfig } from '../../../src/genapi/config/validate.js';

let registry: ConfigRegistry;
let failed: FailedConfigs;
let receiver: ConfigReceiver;

beforeEach(() => {
  registry = new ConfigRegistry();
  failed = new FailedConfigs();
  receiver = new ConfigReceiver(registry, failed, { nodesDefault: 'nats' });
});

const fun = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  service: 'test_service',
  request_type: 'test_request',
  timeout: 5000,
  arg_types: {},
  arg_orders: [],
  response_type: 'sync',
  version: '1.0.0',
  ...overrides,
});

const push = (
  overrides: Partial<Record<keyof PushConfig, unknown>> = {},
): Record<string, unknown> => ({
  service: 'test_service',
  config_version: '1.0.0',
  fun_configs: [fun()],
  ...overrides,
});

function accepted(result: PushResult): Extract<PushResult, { status: 'accepted' }> {
  if (result.status !== 'accepted')
    throw new Error(`expected accepted, got ${JSON.stringify(result)}`);
  return result;
}

describe('ConfigReceiver.receive: accept', () => {
  it('accepts a valid push and reports what was accepted', () => {
    expect(receiver.receive(push())).toEqual({
      status: 'accepted',
      service: 'test_service',
      config_version: '1.0.0',
      accepted: [{ request_type: 'test_request', version: '1.0.0' }],
      rejected: [],
    });
  });

  it('stores the function configs in the registry, resolved', () => {
    accepted(receiver.receive(push()));
    const got = registry.get('test_service', 'test_request', '1.0.0');
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    expect(got.config).toMatchObject({
      service: 'test_service',
      requestType: 'test_request',
      version: '1.0.0',
      nodes: 'nats',
      timeoutMs: 5000,
      args: [],
    });
  });

  it('decodes plain JSON (a push as it arrives over the wire)', () => {
    const wire = JSON.parse(
      JSON.stringify(push({ fun_configs: [fun(), fun({ request_type: 'other' })] })),
    ) as unknown;
    expect(accepted(receiver.receive(wire)).accepted).toHaveLength(2);
    expect(registry.count()).toBe(2);
  });

  it('uses the receiver options: nodesDefault and hookNames', () => {
    const local = new ConfigReceiver(registry, failed, {
      nodesDefault: 'local',
      hookNames: new Set(['audit']),
    });
    const result = accepted(
      local.receive(
        push({
          fun_configs: [
            fun({ request_type: 'a', before_execute: 'audit' }),
            fun({ request_type: 'b', before_execute: 'nope' }),
          ],
        }),
      ),
    );
    expect(result.accepted).toEqual([{ request_type: 'a', version: '1.0.0' }]);
    expect(result.rejected[0]?.errors).toEqual([
      'before_execute must be null or the name of a registered hook',
    ]);
    expect(registry.peek('test_service', 'a', '1.0.0')?.nodes).toBe('local');
  });

  it('⚠ the service name is enforced: fun_configs naming another service are registered under the push service', () => {
    const result = accepted(
      receiver.receive(
        push({
          fun_configs: [
            fun({ service: 'other_service' }),
            fun({ request_type: 'no_service', service: undefined }),
          ],
        }),
      ),
    );
    expect(result.accepted).toHaveLength(2);
    expect(registry.services()).toEqual(['test_service']);
    expect(registry.get('test_service', 'test_request', '1.0.0').ok).toBe(true);
    expect(registry.get('other_service', 'test_request', '1.0.0').ok).toBe(false);
    expect(registry.peek('test_service', 'test_request', '1.0.0')?.source.service).toBe(
      'test_service',
    );
  });

  it('function versions are normalised: "" and "0.0.0" are unversioned', () => {
    const result = accepted(
      receiver.receive(
        push({
          fun_configs: [
            fun({ request_type: 'a', version: '' }),
            fun({ request_type: 'b', version: '0.0.0' }),
          ],
        }),
      ),
    );
    expect(result.accepted).toEqual([
      { request_type: 'a', version: null },
      { request_type: 'b', version: null },
    ]);
    expect(registry.functions()).toEqual({ test_service: { a: [null], b: [null] } });
  });
});

describe('ConfigReceiver.receive: same version, force', () => {
  it('the same config_version again is skipped', () => {
    accepted(receiver.receive(push()));
    expect(receiver.receive(push())).toEqual({
      status: 'skipped',
      service: 'test_service',
      reason: 'version_matches',
    });
  });

  it('a skipped push changes nothing, even if its contents differ', () => {
    accepted(receiver.receive(push()));
    const result = receiver.receive(push({ fun_configs: [fun({ timeout: 9000 })] }));
    expect(result.status).toBe('skipped');
    expect(registry.peek('test_service', 'test_request', '1.0.0')?.timeoutMs).toBe(5000);
  });

  it('force applies a push with the stored version', () => {
    accepted(receiver.receive(push()));
    expect(receiver.receive(push(), { force: false }).status).toBe('skipped');
    accepted(receiver.receive(push({ fun_configs: [fun({ timeout: 9000 })] }), { force: true }));
    expect(registry.peek('test_service', 'test_request', '1.0.0')?.timeoutMs).toBe(9000);
  });

  it('a different config_version is applied', () => {
    accepted(receiver.receive(push()));
    accepted(
      receiver.receive(push({ config_version: '1.0.1', fun_configs: [fun({ timeout: 7000 })] })),
    );
    expect(registry.peek('test_service', 'test_request', '1.0.0')?.timeoutMs).toBe(7000);
  });

  it('the version is tracked per service', () => {
    accepted(receiver.receive(push()));
    accepted(receiver.receive(push({ service: 'other' })));
    expect(receiver.receive(push({ service: 'other' })).status).toBe('skipped');
  });
});

describe('ConfigReceiver.receive: invalid pushes', () => {
  it.each([
    ['a string', 'invalid'],
    ['a number', 123],
    ['null', null],
    ['undefined', undefined],
    ['a list', [push()]],
  ])('%s → invalid_push_config', (_label, raw) => {
    expect(receiver.receive(raw)).toEqual({
      status: 'error',
      error: 'invalid_push_config',
      messages: ['push config must be an object'],
    });
  });

  it('structural validation collects every message, in order', () => {
    expect(receiver.receive({})).toEqual({
      status: 'error',
      error: 'validation_failed',
      messages: [
        'service must be a non-empty string',
        'config_version must be a non-empty string',
        'fun_configs must be a non-empty list',
      ],
    });
  });

  it.each([
    ['a null service', { service: null }, 'service must be a non-empty string'],
    ['an empty service', { service: '' }, 'service must be a non-empty string'],
    ['an atom-like non-string service', { service: 1 }, 'service must be a non-empty string'],
    [
      'an empty config_version',
      { config_version: '' },
      'config_version must be a non-empty string',
    ],
    [
      'a null config_version',
      { config_version: null },
      'config_version must be a non-empty string',
    ],
    ['empty fun_configs', { fun_configs: [] }, 'fun_configs must be a non-empty list'],
    [
      'fun_configs not a list',
      { fun_configs: { a: fun() } },
      'fun_configs must be a non-empty list',
    ],
  ])('%s → validation_failed', (_label, overrides, message) => {
    expect(receiver.receive(push(overrides))).toEqual({
      status: 'error',
      error: 'validation_failed',
      messages: [message],
    });
    expect(registry.count()).toBe(0);
    expect(receiver.pushedServices()).toEqual({});
  });

  it('every fun_config invalid → all_invalid, nothing stored, each one recorded as failed', () => {
    const result = receiver.receive(
      push({
        fun_configs: [
          fun({ timeout: 1 }),
          'not a config',
          fun({ request_type: 'x.y', response_type: 'bad' }),
        ],
      }),
      { origin: 'inst-1' },
    );
    expect(result).toEqual({
      status: 'error',
      error: 'all_invalid',
      messages: [
        'fun_configs[0]: timeout must be an integer between 100 and 300000, or "infinity"',
        'fun_configs[1]: fun_config must be an object',
        'fun_configs[2]: request_type must be a non-empty string without whitespace, ".", "*" or ">"',
        'fun_configs[2]: response_type must be "sync", "async", "stream" or "none"',
      ],
    });
    expect(registry.count()).toBe(0);
    expect(receiver.verify('test_service', '1.0.0')).toBe('not_found');
    const entries = failed.list({ order: 'oldest_first' });
    expect(entries.map((e) => [e.source, e.origin, e.reasons.length])).toEqual([
      ['push', 'inst-1', 1],
      ['push', 'inst-1', 1],
      ['push', 'inst-1', 2],
    ]);
    expect(entries[0]?.service).toBe('test_service');
    expect(entries[2]?.request_type).toBe('x.y');
  });

  it('a push whose service is not a valid subject token rejects every function', () => {
    const result = receiver.receive(push({ service: 'bad service' }));
    expect(result).toMatchObject({ status: 'error', error: 'all_invalid' });
  });
});

describe('ConfigReceiver.receive: partial acceptance', () => {
  it('valid configs are registered, invalid ones rejected and recorded (source, origin, service enforced)', () => {
    const result = accepted(
      receiver.receive(
        push({
          fun_configs: [
            fun({ request_type: 'good' }),
            fun({ request_type: 'bad', service: 'elsewhere', timeout: 'forever' }),
            fun({ request_type: 'also_good', version: '2.0.0' }),
          ],
        }),
        { source: 'pull', origin: 'node-7' },
      ),
    );
    expect(result.accepted).toEqual([
      { request_type: 'good', version: '1.0.0' },
      { request_type: 'also_good', version: '2.0.0' },
    ]);
    expect(result.rejected).toEqual([
      {
        request_type: 'bad',
        version: '1.0.0',
        errors: ['timeout must be an integer between 100 and 300000, or "infinity"'],
      },
    ]);
    expect(registry.functions()).toEqual({
      test_service: { good: ['1.0.0'], also_good: ['2.0.0'] },
    });
    expect(receiver.verify('test_service', '1.0.0')).toBe('matched');
    const [entry] = failed.list();
    expect(entry).toMatchObject({
      source: 'pull',
      origin: 'node-7',
      service: 'test_service',
      request_type: 'bad',
      version: '1.0.0',
      reasons: ['timeout must be an integer between 100 and 300000, or "infinity"'],
    });
    expect((entry?.config as Record<string, unknown>).service).toBe('test_service');
  });

  it('the origin defaults to the push instance_id', () => {
    accepted(
      receiver.receive(
        push({
          instance_id: 'abc123',
          fun_configs: [fun(), fun({ request_type: 'bad', retry: 0 })],
        }),
      ),
    );
    expect(failed.list()[0]?.origin).toBe('abc123');
    expect(failed.list()[0]?.source).toBe('push');
  });

  it('a rejected non-object reports null request_type and version', () => {
    const result = accepted(receiver.receive(push({ fun_configs: [fun(), 42] })));
    expect(result.rejected).toEqual([
      { request_type: null, version: null, errors: ['fun_config must be an object'] },
    ]);
  });

  it('a duplicate (request_type, version) in one push: the first wins, the duplicate is rejected', () => {
    const result = accepted(
      receiver.receive(
        push({
          fun_configs: [fun({ timeout: 1000 }), fun({ timeout: 2000 }), fun({ version: '0.0.0' })],
        }),
      ),
    );
    expect(result.accepted).toEqual([
      { request_type: 'test_request', version: '1.0.0' },
      { request_type: 'test_request', version: null },
    ]);
    expect(result.rejected).toEqual([
      {
        request_type: 'test_request',
        version: '1.0.0',
        errors: ['duplicate fun_config for request_type "test_request" and version "1.0.0"'],
      },
    ]);
    expect(registry.peek('test_service', 'test_request', '1.0.0')?.timeoutMs).toBe(1000);
  });
});

describe('ConfigReceiver.receive: push token', () => {
  it('no token configured → any token (or none) is accepted', () => {
    for (const token of [undefined, null, '', 'anything', 42]) {
      expect(receiver.receive(push({ push_token: token }), { force: true }).status).toBe(
        'accepted',
      );
    }
  });

  describe('with a token configured', () => {
    let secured: ConfigReceiver;
    beforeEach(() => {
      secured = new ConfigReceiver(registry, failed, {
        nodesDefault: 'nats',
        pushToken: 's3cret-tøken',
      });
    });

    it('the equal token is accepted', () => {
      expect(secured.receive(push({ push_token: 's3cret-tøken' })).status).toBe('accepted');
    });

    it.each([
      ['missing', undefined],
      ['null', null],
      ['empty', ''],
      ['different, same length', 's3cret-tøkex'],
      ['a prefix', 's3cret'],
      ['longer', 's3cret-tøken!'],
      ['differently encoded (same UTF-16 length, different bytes)', 's3cret-token'],
      ['not a string', 123],
    ])('a %s token is rejected and nothing changes', (_label, token) => {
      expect(secured.receive(push({ push_token: token }))).toEqual({
        status: 'error',
        error: 'invalid_push_token',
        messages: ['invalid push token'],
      });
      expect(registry.count()).toBe(0);
      expect(secured.pushedServices()).toEqual({});
    });

    it('the token is checked before the version: a bad token is never "skipped"', () => {
      accepted(secured.receive(push({ push_token: 's3cret-tøken' })));
      expect(secured.receive(push({ push_token: 'wrong' })).status).toBe('error');
    });

    it('force does not bypass the token', () => {
      expect(secured.receive(push({ push_token: 'wrong' }), { force: true }).status).toBe('error');
    });
  });

  it('an empty configured token rejects every push (fail closed)', () => {
    const closed = new ConfigReceiver(registry, failed, { nodesDefault: 'nats', pushToken: '' });
    expect(closed.receive(push({ push_token: '' })).status).toBe('error');
    expect(closed.receive(push()).status).toBe('error');
  });
});

describe('ConfigReceiver: verify / pushedServices / forget', () => {
  it('verify: matched, mismatch, not_found', () => {
    accepted(receiver.receive(push()));
    expect(receiver.verify('test_service', '1.0.0')).toBe('matched');
    expect(receiver.verify('test_service', '2.0.0')).toBe('mismatch');
    expect(receiver.verify('unknown_service', '1.0.0')).toBe('not_found');
  });

  it('pushedServices: empty, then service → config_version', () => {
    expect(receiver.pushedServices()).toEqual({});
    accepted(receiver.receive(push()));
    accepted(receiver.receive(push({ service: 'other', config_version: 'abc' })));
    expect(receiver.pushedServices()).toEqual({ test_service: '1.0.0', other: 'abc' });
    accepted(receiver.receive(push({ config_version: '1.1.0' })));
    expect(receiver.pushedServices()).toEqual({ test_service: '1.1.0', other: 'abc' });
  });

  it('forget removes the service from the receiver state; false for an unknown service', () => {
    accepted(receiver.receive(push()));
    expect(receiver.forget('test_service')).toBe(true);
    expect(receiver.pushedServices()).toEqual({});
    expect(receiver.verify('test_service', '1.0.0')).toBe('not_found');
    expect(receiver.forget('test_service')).toBe(false);
    expect(receiver.forget('unknown_service')).toBe(false);
  });

  it('after forget, the same version is applied again; the registered functions stay until replaced', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    receiver.forget('test_service');
    expect(registry.count()).toBe(2);
    accepted(receiver.receive(push({ fun_configs: [fun({ request_type: 'a' })] })));
    expect(registry.functions()).toEqual({ test_service: { a: ['1.0.0'] } });
  });
});

describe('ConfigReceiver: ⚠ a replacing push removes stale functions', () => {
  it('a new config_version replaces the previous set (PhoenixGenApi kept both versions)', () => {
    accepted(receiver.receive(push()));
    accepted(
      receiver.receive(
        push({
          config_version: '2.0.0',
          fun_configs: [fun({ version: '2.0.0', timeout: 10_000 })],
        }),
      ),
    );
    expect(registry.get('test_service', 'test_request', '1.0.0')).toEqual({
      ok: false,
      reason: 'not_found',
    });
    const v2 = registry.get('test_service', 'test_request', '2.0.0');
    expect(v2.ok && v2.config.timeoutMs).toBe(10_000);
    expect(registry.functions()).toEqual({ test_service: { test_request: ['2.0.0'] } });
  });

  it('functions absent from the new push are deleted; kept ones are replaced; new ones added', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    accepted(
      receiver.receive(
        push({
          config_version: '2',
          fun_configs: [fun({ request_type: 'b', timeout: 700 }), fun({ request_type: 'c' })],
        }),
      ),
    );
    expect(registry.functions()).toEqual({ test_service: { b: ['1.0.0'], c: ['1.0.0'] } });
    expect(registry.peek('test_service', 'b', '1.0.0')?.timeoutMs).toBe(700);
  });

  it('a function that became invalid in the new push is removed (not left at its old config)', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    const result = accepted(
      receiver.receive(
        push({
          config_version: '2',
          fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b', timeout: 1 })],
        }),
      ),
    );
    expect(result.rejected).toHaveLength(1);
    expect(registry.functions()).toEqual({ test_service: { a: ['1.0.0'] } });
  });

  it('a rejected push (all_invalid, bad token, validation) removes nothing', () => {
    accepted(receiver.receive(push()));
    expect(
      receiver.receive(push({ config_version: '2', fun_configs: [fun({ timeout: 1 })] })).status,
    ).toBe('error');
    expect(receiver.receive(push({ config_version: '' })).status).toBe('error');
    expect(registry.get('test_service', 'test_request', '1.0.0').ok).toBe(true);
    expect(receiver.verify('test_service', '1.0.0')).toBe('matched');
  });

  it('functions registered directly on the registry are never deleted by the receiver', () => {
    const direct = validateFunConfig(
      { service: 'test_service', request_type: 'direct' },
      { nodesDefault: 'local' },
    );
    if (!direct.ok) throw new Error('setup');
    registry.add(direct.config);
    accepted(receiver.receive(push()));
    accepted(
      receiver.receive(
        push({ config_version: '2', fun_configs: [fun({ request_type: 'other' })] }),
      ),
    );
    expect(registry.functions()).toEqual({ test_service: { direct: [null], other: ['1.0.0'] } });
  });

  it('a pushed function later replaced directly on the registry is not deleted by a later push', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    const direct = validateFunConfig(
      { service: 'test_service', request_type: 'b', version: '1.0.0', timeout: 999 },
      { nodesDefault: 'local' },
    );
    if (!direct.ok) throw new Error('setup');
    registry.add(direct.config);
    accepted(
      receiver.receive(push({ config_version: '2', fun_configs: [fun({ request_type: 'a' })] })),
    );
    expect(registry.peek('test_service', 'b', '1.0.0')?.timeoutMs).toBe(999);
  });

  it('a pushed function that was disabled on the registry is still removed when dropped', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    registry.disable('test_service', 'b', '1.0.0');
    accepted(
      receiver.receive(push({ config_version: '2', fun_configs: [fun({ request_type: 'a' })] })),
    );
    expect(registry.peek('test_service', 'b', '1.0.0')).toBeUndefined();
  });

  it('another service is never touched', () => {
    accepted(receiver.receive(push({ service: 'other' })));
    accepted(receiver.receive(push()));
    accepted(
      receiver.receive(push({ config_version: '2', fun_configs: [fun({ request_type: 'z' })] })),
    );
    expect(registry.functions()).toEqual({
      other: { test_request: ['1.0.0'] },
      test_service: { z: ['1.0.0'] },
    });
  });

  it('push and pull results of the same service replace each other', () => {
    accepted(receiver.receive(push({ fun_configs: [fun({ request_type: 'pushed' })] })));
    accepted(
      receiver.receive(
        push({ config_version: 'p2', fun_configs: [fun({ request_type: 'pulled' })] }),
        { source: 'pull' },
      ),
    );
    expect(registry.functions()).toEqual({ test_service: { pulled: ['1.0.0'] } });
  });

  it('registry listeners see the changes of an accepted push', () => {
    accepted(
      receiver.receive(
        push({ fun_configs: [fun({ request_type: 'a' }), fun({ request_type: 'b' })] }),
      ),
    );
    const seen: string[] = [];
    registry.onChange((_service, requestType) => seen.push(requestType));
    accepted(
      receiver.receive(
        push({
          config_version: '2',
          fun_configs: [fun({ request_type: 'b' }), fun({ request_type: 'c' })],
        }),
      ),
    );
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });
});
