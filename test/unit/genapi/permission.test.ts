/**
 * checkPermission / permissionLabel (src/genapi/permission.ts): spec §4 items 2–6 and the §10 rows
 * permission_test / permission_extra_test that apply to them (the callback, PermissionDenied and
 * remote-check rows belong to the executor).
 */
import { describe, expect, it } from 'vitest';
import { checkPermission, permissionLabel } from '../../../src/genapi/permission.js';
import type { GenApiRequest, PermissionMode } from '../../../src/genapi/types.js';

const NONE: PermissionMode = { kind: 'none' };
const ANY: PermissionMode = { kind: 'any_authenticated' };
const arg = (name: string): PermissionMode => ({ kind: 'arg', arg: name });
const role = (...roles: string[]): PermissionMode => ({ kind: 'role', roles });

function req(over: Partial<GenApiRequest> = {}): GenApiRequest {
  return {
    request_id: 'req-1',
    request_type: 'get_profile',
    service: 'users',
    version: null,
    args: {},
    user_id: 'user_123',
    device_id: 'device_456',
    user_roles: null,
    ...over,
  };
}

/** checkPermission with the args taken from the request. */
function check(mode: PermissionMode, request: GenApiRequest, argsAsMap = false): boolean {
  return checkPermission(mode, request, request.args, argsAsMap);
}

/** A user_id of a type the wire type does not allow (PhoenixGenApi's integer / atom cases). */
const odd = (value: unknown): string => value as string;

describe('none (check_permission: false)', () => {
  it('allows everyone, authenticated or not, whatever the args', () => {
    expect(check(NONE, req())).toBe(true);
    expect(check(NONE, req({ user_id: null }))).toBe(true);
    expect(check(NONE, req({ user_id: '', args: {} }))).toBe(true);
    expect(check(NONE, req({ user_id: null, args: { user_id: 'someone_else' } }))).toBe(true);
  });
});

describe('any_authenticated', () => {
  it('allows a non-empty string user_id', () => {
    expect(check(ANY, req({ user_id: 'user_123' }))).toBe(true);
    expect(check(ANY, req({ user_id: ' ' }))).toBe(true); // non-empty is all that is asked
  });

  it('denies null and the empty string', () => {
    expect(check(ANY, req({ user_id: null }))).toBe(false);
    expect(check(ANY, req({ user_id: '' }))).toBe(false);
  });

  it('denies non-string user ids (integer, atom-like values, objects)', () => {
    for (const value of [
      123,
      0,
      true,
      Symbol('user'),
      { id: 'user_123' },
      ['user_123'],
      undefined,
    ]) {
      expect(check(ANY, req({ user_id: odd(value) }))).toBe(false);
    }
  });

  it('ignores roles and args', () => {
    expect(check(ANY, req({ user_id: null, user_roles: ['admin'], args: { user_id: 'x' } }))).toBe(
      false,
    );
  });
});

describe('arg {arg}: standard lookup', () => {
  it('allows when args[arg] equals user_id', () => {
    expect(check(arg('user_id'), req({ args: { user_id: 'user_123' } }))).toBe(true);
    expect(check(arg('owner'), req({ args: { owner: 'user_123', other: 1 } }))).toBe(true);
  });

  it('denies a mismatch', () => {
    expect(check(arg('user_id'), req({ args: { user_id: 'user_999' } }))).toBe(false);
  });

  it('denies a missing or null argument, and empty args', () => {
    expect(check(arg('user_id'), req({ args: { other: 'user_123' } }))).toBe(false);
    expect(check(arg('user_id'), req({ args: { user_id: null } }))).toBe(false);
    expect(check(arg('user_id'), req({ args: {} }))).toBe(false);
  });

  it('compares strictly: the number 123 does not match "123"', () => {
    expect(check(arg('user_id'), req({ user_id: '123', args: { user_id: 123 } }))).toBe(false);
    expect(check(arg('user_id'), req({ user_id: '123', args: { user_id: '123' } }))).toBe(true);
    expect(check(arg('user_id'), req({ user_id: 'true', args: { user_id: true } }))).toBe(false);
    expect(check(arg('user_id'), req({ args: { user_id: ['user_123'] } }))).toBe(false);
    expect(check(arg('user_id'), req({ args: { user_id: 'USER_123' } }))).toBe(false);
  });

  it('denies when user_id is null, empty or not a string, even if the arg "matches"', () => {
    expect(check(arg('user_id'), req({ user_id: null, args: { user_id: null } }))).toBe(false);
    expect(check(arg('user_id'), req({ user_id: '', args: { user_id: '' } }))).toBe(false);
    expect(check(arg('user_id'), req({ user_id: odd(123), args: { user_id: 123 } }))).toBe(false);
    const sym = Symbol('user');
    expect(check(arg('user_id'), req({ user_id: odd(sym), args: { user_id: sym } }))).toBe(false);
  });

  it('matches argument names exactly (case-sensitive, no key conversion)', () => {
    expect(check(arg('userId'), req({ args: { user_id: 'user_123' } }))).toBe(false);
    expect(check(arg('User_id'), req({ args: { user_id: 'user_123' } }))).toBe(false);
  });

  it('does not look one level deep when args are not a map (arg_orders ≠ "map")', () => {
    expect(check(arg('user_id'), req({ args: { params: { user_id: 'user_123' } } }), false)).toBe(
      false,
    );
  });

  it('never reads inherited properties', () => {
    const request = req({ user_id: 'function Object() { [native code] }', args: {} });
    expect(check(arg('constructor'), request)).toBe(false);
    expect(check(arg('constructor'), request, true)).toBe(false);
  });

  it('checks the args it is given, not request.args', () => {
    const request = req({ args: { user_id: 'user_999' } });
    expect(checkPermission(arg('user_id'), request, { user_id: 'user_123' }, false)).toBe(true);
    expect(checkPermission(arg('user_id'), req({ args: { user_id: 'user_123' } }), {}, false)).toBe(
      false,
    );
  });
});

describe('arg {arg} with arg_orders: "map" (argsAsMap)', () => {
  const mapCheck = (
    args: Record<string, unknown>,
    userId: string | null = 'user_123',
    name = 'user_id',
  ) => check(arg(name), req({ user_id: userId, args }), true);

  it('uses a top-level value when present', () => {
    expect(mapCheck({ user_id: 'user_123' })).toBe(true);
    expect(mapCheck({ user_id: 'user_999' })).toBe(false);
  });

  it('finds the value one level deep inside a map argument', () => {
    expect(mapCheck({ params: { user_id: 'user_123', name: 'Bob' } })).toBe(true);
    expect(mapCheck({ params: { user_id: 'user_999', name: 'Bob' } })).toBe(false);
  });

  it('denies when the key is nowhere, or args are empty', () => {
    expect(mapCheck({ params: { name: 'Bob' } })).toBe(false);
    expect(mapCheck({})).toBe(false);
  });

  it('prefers the top-level value: a top-level match wins over a nested mismatch', () => {
    expect(mapCheck({ user_id: 'user_123', params: { user_id: 'user_999' } })).toBe(true);
  });

  it('prefers the top-level value: a top-level mismatch is not rescued by a nested match', () => {
    expect(mapCheck({ user_id: 'user_999', params: { user_id: 'user_123' } })).toBe(false);
    expect(mapCheck({ user_id: 123, params: { user_id: 'user_123' } })).toBe(false);
    expect(mapCheck({ user_id: false, params: { user_id: 'user_123' } })).toBe(false);
  });

  it('searches nested maps when the top-level value is null', () => {
    expect(mapCheck({ user_id: null, params: { user_id: 'user_123' } })).toBe(true);
  });

  it('skips non-map values (strings, numbers, arrays, null) while searching', () => {
    expect(mapCheck({ params: 'string_value', data: { user_id: 'user_123' } })).toBe(true);
    expect(mapCheck({ count: 42, label: 'hello', nested: { user_id: 'user_123' } })).toBe(true);
    expect(mapCheck({ list: [{ user_id: 'user_123' }] })).toBe(false); // a list is not a map
    expect(mapCheck({ nothing: null, data: { user_id: 'user_123' } })).toBe(true);
  });

  it('takes the second map when the first lacks the key (or holds null for it)', () => {
    expect(mapCheck({ first: { name: 'Bob' }, second: { user_id: 'user_123' } })).toBe(true);
    expect(mapCheck({ first: { user_id: null }, second: { user_id: 'user_123' } })).toBe(true);
  });

  it('takes the first map holding the key even when its value mismatches', () => {
    expect(mapCheck({ first: { user_id: 'user_999' }, second: { user_id: 'user_123' } })).toBe(
      false,
    );
    expect(mapCheck({ first: { user_id: 'user_123' }, second: { user_id: 'user_999' } })).toBe(
      true,
    );
    expect(mapCheck({ first: { user_id: 123 }, second: { user_id: 'user_123' } })).toBe(false);
  });

  it('searches only one level deep', () => {
    expect(mapCheck({ outer: { inner: { user_id: 'user_123' } } })).toBe(false);
  });

  it('still requires a non-empty string user_id', () => {
    expect(mapCheck({ params: { user_id: 'user_123' } }, null)).toBe(false);
    expect(mapCheck({ user_id: '' }, '')).toBe(false);
    expect(mapCheck({ params: { user_id: '' } }, '')).toBe(false);
  });

  it('matches nested names exactly, and never through a nested prototype', () => {
    expect(mapCheck({ params: { userId: 'user_123' } })).toBe(false);
    expect(mapCheck({ params: {} }, 'function Object() { [native code] }', 'constructor')).toBe(
      false,
    );
  });
});

describe('role {roles}', () => {
  it('allows when the user has an allowed role (one of several, or exactly one)', () => {
    expect(check(role('admin', 'moderator'), req({ user_roles: ['user', 'moderator'] }))).toBe(
      true,
    );
    expect(check(role('admin'), req({ user_roles: ['admin'] }))).toBe(true);
    expect(check(role('admin', 'ops'), req({ user_roles: ['ops', 'admin'] }))).toBe(true);
  });

  it('denies without a shared role', () => {
    expect(check(role('admin', 'moderator'), req({ user_roles: ['user', 'guest'] }))).toBe(false);
  });

  it('compares exactly: case, whitespace and non-string roles do not match', () => {
    expect(check(role('admin'), req({ user_roles: ['Admin'] }))).toBe(false);
    expect(check(role('admin'), req({ user_roles: [' admin'] }))).toBe(false);
    expect(check(role('1'), req({ user_roles: [odd(1)] }))).toBe(false);
    expect(check(role('admin'), req({ user_roles: [odd(Symbol('admin'))] }))).toBe(false);
  });

  it('denies when user_roles is null, empty or not an array', () => {
    expect(check(role('admin'), req({ user_roles: null }))).toBe(false);
    expect(check(role('admin'), req({ user_roles: [] }))).toBe(false);
    expect(check(role('admin'), req({ user_roles: odd('admin') as unknown as string[] }))).toBe(
      false,
    );
    expect(
      check(role('admin'), req({ user_roles: { 0: 'admin', length: 1 } as unknown as string[] })),
    ).toBe(false);
  });

  it('denies when the allowed list is empty', () => {
    expect(check(role(), req({ user_roles: ['admin'] }))).toBe(false);
  });

  it('does not consult user_id (roles come from the authenticated socket)', () => {
    expect(check(role('service'), req({ user_id: null, user_roles: ['service'] }))).toBe(true);
  });

  it('never takes roles from args', () => {
    expect(
      check(
        role('admin'),
        req({ user_roles: null, args: { user_roles: ['admin'], role: 'admin' } }),
      ),
    ).toBe(false);
  });
});

describe('invalid modes', () => {
  it('deny (a malformed config value at runtime)', () => {
    const bogus = [
      { kind: 'everyone' },
      { kind: 'callback' },
      { kind: 'arg' }, // {:arg} without a name
      { kind: 'role' }, // no roles list
      { kind: 'role', roles: 'admin' },
    ] as unknown as PermissionMode[];
    const request = req({
      user_roles: ['admin'],
      args: { user_id: 'user_123', undefined: 'user_123' },
    });
    for (const mode of bogus) {
      expect(checkPermission(mode, request, request.args, false)).toBe(false);
      expect(checkPermission(mode, request, request.args, true)).toBe(false);
    }
  });
});

describe('permissionLabel', () => {
  it('describes each mode briefly', () => {
    expect(permissionLabel(NONE)).toBe('none');
    expect(permissionLabel(ANY)).toBe('any_authenticated');
    expect(permissionLabel(arg('user_id'))).toBe('arg:user_id');
    expect(permissionLabel(role('admin', 'ops'))).toBe('role:admin,ops');
    expect(permissionLabel(role())).toBe('role:');
    expect(permissionLabel({ kind: 'bogus' } as unknown as PermissionMode)).toBe('invalid:bogus');
  });
});
