/**
 * The validators compiled from protocol/schemas, as the gateway words their failures: the first
 * failing field in the documented order, and the leniencies the hand-written checks had (null
 * meaning the default in a policy, `shadow` read as `=== true`, an array passing as `socket`).
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/file.js';
import { validateFunConfig } from '../../src/genapi/config/validate.js';
import { Policy, PolicyError } from '../../src/ratelimit/policy.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import { fieldOf } from '../../src/schema/validate.js';

const base: PolicyConfig = { id: 'p', key: 'user_id', limit: 10, windowMs: 1000 };
const policyError = (config: unknown): string => {
  try {
    new Policy(config as PolicyConfig);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as Error).message;
  }
};

describe('rate-limit policies', () => {
  it('null in scope, algorithm, mode or fallback means the default', () => {
    const policy = new Policy({
      ...base,
      scope: null,
      algorithm: null,
      mode: null,
      fallback: null,
    } as unknown as PolicyConfig);
    expect([policy.scope, policy.algorithm.name, policy.mode, policy.fallback]).toEqual([
      'global',
      'sliding_log',
      'local',
      'local',
    ]);
  });

  it('shadow is true only when it is true', () => {
    expect(new Policy({ ...base, shadow: 'yes' as unknown as boolean }).shadow).toBe(false);
    expect(new Policy({ ...base, shadow: true }).shadow).toBe(true);
  });

  it('the first failing field is reported, in the documented order', () => {
    expect(policyError({ ...base, id: '.x', limit: 0 })).toMatch(/^policy id must match/);
    expect(policyError({ ...base, limit: 0, mode: 'x' })).toBe(
      'policy p: limit must be a positive integer, got 0',
    );
    expect(policyError({ ...base, cost: 20, mode: 'x' })).toBe(
      'policy p: cost 20 can never fit (it exceeds the limit)',
    );
    expect(policyError({ ...base, extra: 1, limit: 0 })).toBe('policy p: unknown option "extra"');
    expect(policyError({ ...base, scope: { service: 's', x: 1 } })).toBe(
      'policy p: scope: unknown option "x"',
    );
    expect(policyError({ ...base, scope: { service: '', x: 1 } })).toMatch(/scope must be/);
    expect(policyError({ ...base, key: { arg: 'a', x: 1 } })).toBe(
      'policy p: key: unknown option "x"',
    );
    expect(policyError([])).toBe('a policy must be an object');
  });
});

describe('function configs', () => {
  const ok = { service: 's', request_type: 'r' };
  it('errors come in the fixed field order, hook names checked in code', () => {
    const result = validateFunConfig(
      { ...ok, disabled: 1, timeout: 5, before_execute: 'nope', service: 'a.b' },
      { nodesDefault: 'nats', hookNames: new Set(['h']) },
    );
    expect(result).toEqual({
      ok: false,
      errors: [
        'service must be a non-empty string without whitespace, ".", "*" or ">"',
        'timeout must be an integer between 100 and 300000, or "infinity"',
        'before_execute must be null or the name of a registered hook',
        'disabled must be a boolean',
      ],
    });
  });

  it('a control character is no subject token; a Map is no JSON object', () => {
    const errors = (raw: unknown) => {
      const result = validateFunConfig(raw, { nodesDefault: 'nats' });
      return result.ok ? [] : result.errors;
    };
    expect(errors({ ...ok, service: 'a\u0001' })).toHaveLength(1);
    expect(errors({ ...ok, choose_node_mode: new Map() })).toHaveLength(1);
    expect(
      errors({ ...ok, arg_types: { a: { type: 'string', allow_nil: true, 'allow_nil?': false } } }),
    ).toEqual(['argument validation failed: invalid arg_types configuration for: ["a"]']);
  });
});

describe('the config file', () => {
  const error = (config: unknown): string => {
    try {
      validateConfig('f.json', config);
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('the first problem in the documented order', () => {
    expect(error({ port: -1, bogus: 1 })).toBe('f.json: unknown setting "bogus"');
    expect(error({ port: -1, setup: 1 })).toBe('f.json: "setup" must be a function, got 1');
    expect(error({ host: 5 })).toBe('f.json: "host" must be a string, got 5');
    expect(error({ genApi: { tpoics: [] } })).toBe('f.json: unknown setting "genApi.tpoics"');
    expect(error({ drain: [] })).toBe('f.json: "drain" must be an object');
    expect(error({ admin: {} })).toBe(
      'f.json: "admin.token" must be a string of at least 16 characters',
    );
    expect(error({ nats: { servers: [1] } })).toBe(
      'f.json: "nats.servers" must be a URL or a list of URLs',
    );
  });

  it('an array has always passed as socket', () => {
    expect(error({ socket: [] })).toBe('ok');
    expect(error({ socket: 5 })).toBe('f.json: "socket" must be an object');
  });
});

describe('fieldOf', () => {
  it('reads the first path segment, or the missing property at the root', () => {
    const error = { instancePath: '/a~1b/c', schemaPath: '', keyword: 'type', params: {} };
    expect(fieldOf(error)).toBe('a/b');
    expect(fieldOf({ ...error, instancePath: '', params: { missingProperty: 'id' } })).toBe('id');
  });
});
