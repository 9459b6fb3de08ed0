/**
 * convertArgs (spec §3; PhoenixGenApi argument_handler_test / argument_handler_edge_test):
 * extra-argument rejection, the nil/default matrix, per-type checks and conversion, global and
 * per-rule limits, and the exact client-facing message texts.
 */
import { describe, expect, it } from 'vitest';
import {
  convertArgs,
  DEFAULT_ARG_LIMITS,
  type ArgLimits,
} from '../../../src/genapi/args/convert.js';
import { ArgumentError } from '../../../src/genapi/args/errors.js';
import type { ArgRule, ArgType } from '../../../src/genapi/types.js';

const RT = 'get_user';

function rule(name: string, type: ArgType, extra: Partial<ArgRule> = {}): ArgRule {
  return {
    name,
    type,
    allowNil: false,
    defaultValue: undefined,
    hasParams: false,
    required: [],
    accept: [],
    ...extra,
  };
}

/** The ArgumentError message convertArgs throws (fails the test if it returns). */
function errorOf(
  rules: readonly ArgRule[] | null,
  args: Record<string, unknown>,
  limits?: ArgLimits,
): string {
  try {
    convertArgs(rules, args, RT, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as Error).name).toBe('ArgumentError');
    return (error as Error).message;
  }
  throw new Error('expected convertArgs to throw');
}

/** Converts a single argument `x` of the given rule. */
function one(r: ArgRule, value: unknown, limits?: ArgLimits): unknown {
  return convertArgs([r], { [r.name]: value }, RT, limits)[r.name];
}

function oneError(r: ArgRule, value: unknown, limits?: ArgLimits): string {
  return errorOf([r], { [r.name]: value }, limits);
}

const limits = (over: Partial<ArgLimits>): ArgLimits => ({ ...DEFAULT_ARG_LIMITS, ...over });

const UUID_V4 = '6ba7b810-9dad-41d1-80b4-00c04fd430c8';

describe('defaults and errors', () => {
  it('global limits default to PhoenixGenApi: 3000 bytes, 1000 list items, 1000 map items', () => {
    expect(DEFAULT_ARG_LIMITS).toEqual({
      stringMaxBytes: 3000,
      listMaxItems: 1000,
      mapMaxItems: 1000,
    });
  });

  it('ArgumentError is an Error named "ArgumentError"', () => {
    const error = new ArgumentError('boom');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ArgumentError');
    expect(error.message).toBe('boom');
  });
});

describe('declared vs. undeclared arguments', () => {
  it('rules === null passes the args through unchecked (same object)', () => {
    const args = { anything: { nested: [1, { deep: true }] }, n: null, s: 'x'.repeat(10_000) };
    expect(convertArgs(null, args, RT)).toBe(args);
  });

  it('rules === [] ("no arguments") accepts only an empty args object', () => {
    expect(convertArgs([], {}, RT)).toEqual({});
    expect(errorOf([], { city: 'Hanoi' })).toBe('extra arguments for "get_user", extra: ["city"]');
  });

  it('lists every extra key, in the order they appear', () => {
    const rules = [rule('name', 'string')];
    expect(errorOf(rules, { zeta: 1, name: 'a', alpha: 2, mid: null })).toBe(
      'extra arguments for "get_user", extra: ["zeta", "alpha", "mid"]',
    );
  });

  it('checks extra arguments before missing ones', () => {
    expect(errorOf([rule('name', 'string')], { other: 1 })).toBe(
      'extra arguments for "get_user", extra: ["other"]',
    );
  });

  it('quotes the request type with Elixir escapes', () => {
    expect(() => convertArgs([], { a: 1 }, 'we"ird')).toThrow(
      'extra arguments for "we\\"ird", extra: ["a"]',
    );
  });

  it('returns every declared argument in declaration order, and only those', () => {
    const rules = [
      rule('b', 'num'),
      rule('a', 'string'),
      rule('c', 'boolean', { defaultValue: true }),
    ];
    const args = { a: 'x', b: 2 };
    const result = convertArgs(rules, args, RT);
    expect(result).toEqual({ b: 2, a: 'x', c: true });
    expect(Object.keys(result)).toEqual(['b', 'a', 'c']);
    expect(result).not.toBe(args);
  });

  it('keeps an argument named __proto__ as a plain own key', () => {
    const args = JSON.parse('{"__proto__": "x"}') as Record<string, unknown>;
    const result = convertArgs([rule('__proto__', 'string')], args, RT);
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toBe('x');
    expect(errorOf([], args)).toBe('extra arguments for "get_user", extra: ["__proto__"]');
  });
});

describe('nil / default matrix', () => {
  it('missing + default → the default', () => {
    expect(convertArgs([rule('age', 'num', { defaultValue: 18 })], {}, RT)).toEqual({ age: 18 });
  });

  it('missing + default + allowNil → the default', () => {
    const r = rule('age', 'num', { defaultValue: 18, allowNil: true });
    expect(convertArgs([r], {}, RT)).toEqual({ age: 18 });
  });

  it('missing + allowNil + no default → null', () => {
    const result = convertArgs([rule('email', 'string', { allowNil: true })], {}, RT);
    expect(result).toEqual({ email: null });
    expect(Object.hasOwn(result, 'email')).toBe(true);
  });

  it('explicit null + allowNil → null, even when a default exists', () => {
    const r = rule('age', 'num', { allowNil: true, defaultValue: 18 });
    expect(convertArgs([r], { age: null }, RT)).toEqual({ age: null });
  });

  it('explicit null without allowNil → missing or nil, even when a default exists', () => {
    const r = rule('age', 'num', { defaultValue: 18 });
    expect(errorOf([r], { age: null })).toBe('missing or nil argument "age" in "get_user"');
  });

  it('missing, no default, no allowNil → missing or nil', () => {
    expect(errorOf([rule('name', 'string')], {})).toBe(
      'missing or nil argument "name" in "get_user"',
    );
  });

  it('a null default counts as no default', () => {
    expect(errorOf([rule('n', 'num', { defaultValue: null })], {})).toBe(
      'missing or nil argument "n" in "get_user"',
    );
    expect(convertArgs([rule('n', 'num', { defaultValue: null, allowNil: true })], {}, RT)).toEqual(
      { n: null },
    );
  });

  it('defaults are validated and converted like client values', () => {
    const when = rule('at', 'datetime', { defaultValue: '2024-01-15T10:30:00+07:00' });
    expect(convertArgs([when], {}, RT)).toEqual({ at: '2024-01-15T03:30:00Z' });
    expect(errorOf([rule('n', 'num', { defaultValue: 'ten' })], {})).toBe(
      'invalid argument type for "n", expected :num, got "ten"',
    );
  });

  it('allowNil does not loosen the type check for non-null values', () => {
    expect(oneError(rule('n', 'num', { allowNil: true }), 'x')).toBe(
      'invalid argument type for "n", expected :num, got "x"',
    );
  });

  it('reports the first failing argument in declaration order', () => {
    const rules = [rule('a', 'num'), rule('b', 'boolean')];
    expect(errorOf(rules, { b: 'no', a: 'no' })).toBe(
      'invalid argument type for "a", expected :num, got "no"',
    );
  });
});

describe(':boolean', () => {
  it('accepts only true and false', () => {
    expect(one(rule('x', 'boolean'), true)).toBe(true);
    expect(one(rule('x', 'boolean'), false)).toBe(false);
  });

  it.each([
    ['true', '"true"'],
    [1, '1'],
    [0, '0'],
    [[], '[]'],
  ])('rejects %j', (value, shown) => {
    expect(oneError(rule('x', 'boolean'), value)).toBe(
      `invalid argument type for "x", expected :boolean, got ${shown}`,
    );
  });
});

describe(':num', () => {
  it('accepts integers and floats unchanged', () => {
    expect(one(rule('x', 'num'), 42)).toBe(42);
    expect(one(rule('x', 'num'), -1.5)).toBe(-1.5);
    expect(one(rule('x', 'num'), 0)).toBe(0);
  });

  it.each([
    ['1', '"1"'],
    [true, 'true'],
    [[1], '[1]'],
    [{ v: 1 }, '%{"v" => 1}'],
    [Number.NaN, 'NaN'],
  ])('rejects %j', (value, shown) => {
    expect(oneError(rule('x', 'num'), value)).toBe(
      `invalid argument type for "x", expected :num, got ${shown}`,
    );
  });
});

describe(':string', () => {
  it('rejects non-strings with a type error (not Erlang\'s "not a bitstring")', () => {
    expect(oneError(rule('x', 'string'), 123)).toBe(
      'invalid argument type for "x", expected :string, got 123',
    );
    expect(oneError(rule('x', 'string'), { a: 1 })).toBe(
      'invalid argument type for "x", expected :string, got %{"a" => 1}',
    );
  });

  it('enforces the global 3000-byte limit', () => {
    expect(one(rule('x', 'string'), 'a'.repeat(3000))).toBe('a'.repeat(3000));
    expect(oneError(rule('x', 'string'), 'a'.repeat(3001))).toBe(
      'invalid argument size for "x", max 3000 bytes',
    );
  });

  it('counts UTF-8 bytes, not characters', () => {
    expect(one(rule('x', 'string'), 'é'.repeat(1500))).toBe('é'.repeat(1500)); // 3000 bytes
    expect(oneError(rule('x', 'string'), 'é'.repeat(1501))).toBe(
      'invalid argument size for "x", max 3000 bytes',
    );
    const r = rule('x', 'string', { hasParams: true, maxBytes: 4 });
    expect(one(r, '😀')).toBe('😀'); // 4 bytes, 2 UTF-16 units
    expect(oneError(r, 'éé!')).toBe('invalid argument size for "x", max 4 bytes'); // 3 chars, 5 bytes
  });

  it('uses the configured global limit', () => {
    expect(oneError(rule('x', 'string'), 'abcdef', limits({ stringMaxBytes: 5 }))).toBe(
      'invalid argument size for "x", max 5 bytes',
    );
    expect(one(rule('x', 'string'), 'abcde', limits({ stringMaxBytes: 5 }))).toBe('abcde');
  });

  it('a rule with params uses its own max_bytes, above or below the global one', () => {
    const small = rule('x', 'string', { hasParams: true, maxBytes: 5 });
    expect(oneError(small, 'abcdef')).toBe('invalid argument size for "x", max 5 bytes');
    const big = rule('x', 'string', { hasParams: true, maxBytes: 10 });
    expect(one(big, 'a'.repeat(10), limits({ stringMaxBytes: 3 }))).toBe('a'.repeat(10));
  });

  it('a rule with params but no max_bytes falls back to the global limit', () => {
    const r = rule('x', 'string', { hasParams: true, allowNil: true });
    expect(oneError(r, 'abcd', limits({ stringMaxBytes: 3 }))).toBe(
      'invalid argument size for "x", max 3 bytes',
    );
  });

  it('without params, a stray maxBytes is ignored (the global limit applies)', () => {
    const r = rule('x', 'string', { hasParams: false, maxBytes: 2 });
    expect(one(r, 'abcd')).toBe('abcd');
  });

  it('a limit of 0 allows only the empty string', () => {
    const r = rule('x', 'string', { hasParams: true, maxBytes: 0 });
    expect(one(r, '')).toBe('');
    expect(oneError(r, 'a')).toBe('invalid argument size for "x", max 0 bytes');
    expect(oneError(rule('x', 'string'), 'a', limits({ stringMaxBytes: 0 }))).toBe(
      'invalid argument size for "x", max 0 bytes',
    );
  });
});

describe(':uuid', () => {
  it.each([
    UUID_V4,
    '6BA7B810-9DAD-11D1-80B4-00C04FD430C8',
    '6ba7B810-9dad-11d1-80b4-00C04fd430c8',
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '018f3c1e-7b2a-7cde-9f00-123456789abc',
    '6ba7b8109dad11d180b400c04fd430c8',
    'urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8',
    'urn:uuid:6ba7b8109dad11d180b400c04fd430c8',
  ])('accepts %s and returns it as given', (value) => {
    expect(one(rule('id', 'uuid'), value)).toBe(value);
  });

  it.each([
    ['not-a-uuid'],
    ['6ba7b810-9dad-11d1-80b4-00c04fd430c'],
    ['6ba7b810-9dad-11d1-80b4-00c04fd430c8a'],
    ['6ba7b810-9dad-11d1-80b4-00c04fd430cg'],
    ['6ba7b8109-dad-11d1-80b4-00c04fd430c8'],
    ['{6ba7b810-9dad-11d1-80b4-00c04fd430c8}'],
    ['URN:UUID:6ba7b810-9dad-11d1-80b4-00c04fd430c8'],
    [' 6ba7b810-9dad-11d1-80b4-00c04fd430c8'],
    [''],
    [123],
    [true],
    [[UUID_V4]],
  ])('rejects %j', (value) => {
    expect(oneError(rule('id', 'uuid'), value)).toBe(
      'invalid argument value for "id", require a UUID format string',
    );
  });

  it('a uuid rule with params validates like a plain one', () => {
    const r = rule('id', 'uuid', { hasParams: true, maxBytes: 3 });
    expect(one(r, UUID_V4)).toBe(UUID_V4);
  });
});

describe(':datetime and :naive_datetime', () => {
  it('converts an offset datetime to a UTC ISO string, Z included', () => {
    expect(one(rule('at', 'datetime'), '2024-01-15T10:30:00+07:00')).toBe('2024-01-15T03:30:00Z');
    expect(one(rule('at', 'datetime'), '2024-01-15T10:30:00Z')).toBe('2024-01-15T10:30:00Z');
    expect(one(rule('at', 'datetime'), '2024-01-15T10:30:00.123456-05:30')).toBe(
      '2024-01-15T16:00:00.123456Z',
    );
  });

  it('rejects a datetime without offset, or an invalid one', () => {
    expect(oneError(rule('at', 'datetime'), '2024-01-15T10:30:00')).toBe(
      'invalid datetime format for "2024-01-15T10:30:00": missing_offset',
    );
    expect(oneError(rule('at', 'datetime'), '2024-02-30T10:30:00Z')).toBe(
      'invalid datetime format for "2024-02-30T10:30:00Z": invalid_format',
    );
  });

  it('requires a string', () => {
    expect(oneError(rule('at', 'datetime'), 1705312200)).toBe(
      'invalid argument type for "at", expected :datetime (ISO 8601 string), got 1705312200',
    );
    expect(oneError(rule('at', 'naive_datetime'), { y: 2024 })).toBe(
      'invalid argument type for "at", expected :naive_datetime (ISO 8601 string), got %{"y" => 2024}',
    );
  });

  it('converts a naive datetime, dropping any offset', () => {
    expect(one(rule('t', 'naive_datetime'), '2024-01-15 10:30:00')).toBe('2024-01-15T10:30:00');
    expect(one(rule('t', 'naive_datetime'), '2024-01-15T10:30:00.5+07:00')).toBe(
      '2024-01-15T10:30:00.5',
    );
    expect(oneError(rule('t', 'naive_datetime'), 'yesterday')).toBe(
      'invalid naive_datetime format for "yesterday": invalid_format',
    );
  });
});

describe(':map', () => {
  it('requires a plain object', () => {
    expect(oneError(rule('m', 'map'), [])).toBe(
      'invalid argument type for "m", expected :map, got []',
    );
    expect(oneError(rule('m', 'map'), 'x')).toBe(
      'invalid argument type for "m", expected :map, got "x"',
    );
    expect(oneError(rule('m', 'map'), 5)).toBe(
      'invalid argument type for "m", expected :map, got 5',
    );
  });

  it('without params: only the key count is checked, values are not inspected', () => {
    const value = { nested: { deep: [1, [2]] }, long: 'x'.repeat(5000), nil: null };
    expect(one(rule('m', 'map'), value)).toBe(value);
  });

  it('enforces the global map item limit', () => {
    const m = { a: 1, b: 2, c: 3 };
    expect(one(rule('m', 'map'), m, limits({ mapMaxItems: 3 }))).toEqual(m);
    expect(oneError(rule('m', 'map'), m, limits({ mapMaxItems: 2 }))).toBe(
      'invalid argument size for "m" in "get_user", max 2 items',
    );
    const big = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i]));
    expect(oneError(rule('m', 'map'), big)).toBe(
      'invalid argument size for "m" in "get_user", max 1000 items',
    );
  });

  it('a rule with params uses its own max_items (including 0)', () => {
    const r = rule('m', 'map', { hasParams: true, maxItems: 5 });
    const four = { a: 1, b: 2, c: 3, d: 4 };
    expect(one(r, four, limits({ mapMaxItems: 2 }))).toEqual(four);
    const zero = rule('m', 'map', { hasParams: true, maxItems: 0 });
    expect(one(zero, {})).toEqual({});
    expect(oneError(zero, { a: 1 })).toBe(
      'invalid argument size for "m" in "get_user", max 0 items',
    );
  });

  it('required keys: lists the missing ones in the order they are declared', () => {
    const r = rule('m', 'map', { hasParams: true, required: ['name', 'age', 'email'] });
    expect(oneError(r, { email: 'e' })).toBe(
      'map argument "m" missing required keys: ["name", "age"] in "get_user"',
    );
    // a key present with null counts as present
    expect(one(r, { name: 'n', age: null, email: 'e', extra: true })).toEqual({
      name: 'n',
      age: null,
      email: 'e',
      extra: true,
    });
  });

  it('accept: lists keys outside the accepted set, in key order', () => {
    const r = rule('m', 'map', { hasParams: true, accept: ['name', 'email'] });
    expect(one(r, { name: 'n' })).toEqual({ name: 'n' });
    expect(one(r, {})).toEqual({});
    expect(oneError(r, { zz: 1, name: 'n', aa: 2 })).toBe(
      'map argument "m" contains rejected keys: ["zz", "aa"] in "get_user"',
    );
  });

  it('an empty accept list accepts any key', () => {
    const r = rule('m', 'map', { hasParams: true, required: ['id'], accept: [] });
    expect(one(r, { id: 1, whatever: 2 })).toEqual({ id: 1, whatever: 2 });
  });

  it('required + accept + max_items: size first, then required, then accept', () => {
    const r = rule('m', 'map', {
      hasParams: true,
      maxItems: 2,
      required: ['name'],
      accept: ['name', 'email'],
    });
    expect(one(r, { name: 'n', email: 'e' })).toEqual({ name: 'n', email: 'e' });
    expect(oneError(r, { bad1: 1, bad2: 2, bad3: 3 })).toBe(
      'invalid argument size for "m" in "get_user", max 2 items',
    );
    expect(oneError(r, { bad: 1 })).toBe(
      'map argument "m" missing required keys: ["name"] in "get_user"',
    );
    expect(oneError(r, { name: 'n', bad: 1 })).toBe(
      'map argument "m" contains rejected keys: ["bad"] in "get_user"',
    );
  });

  describe('flat-value check (maps with params)', () => {
    const r = rule('m', 'map', { hasParams: true });

    it('accepts booleans, numbers, strings, flat lists and null', () => {
      const value = { b: false, n: 1.5, s: 'hé', l: [1, 'two', true], z: null };
      expect(one(r, value)).toEqual(value);
    });

    it('rejects a nested map', () => {
      expect(oneError(r, { a: 1, inner: { x: 1 } })).toBe('nested map is not supported yet');
    });

    it('limits string values to the global string_max_bytes (bytes)', () => {
      expect(one(r, { bio: 'éé' }, limits({ stringMaxBytes: 4 }))).toEqual({ bio: 'éé' });
      expect(oneError(r, { bio: 'ééa' }, limits({ stringMaxBytes: 4 }))).toBe(
        'nested map string value exceeds max byte size for key "bio"',
      );
      expect(oneError(r, { bio: 'x'.repeat(3001) })).toBe(
        'nested map string value exceeds max byte size for key "bio"',
      );
    });

    it('limits list values to the global list_max_items', () => {
      expect(oneError(r, { tags: [1, 2, 3] }, limits({ listMaxItems: 2 }))).toBe(
        'nested map list value exceeds max items for key "tags"',
      );
      expect(oneError(r, { tags: Array(1001).fill(0) })).toBe(
        'nested map list value exceeds max items for key "tags"',
      );
    });

    it('checks the items of a list value like :list items', () => {
      expect(oneError(r, { l: [1, [2]] })).toBe('nested list is not supported yet');
      expect(oneError(r, { l: [{ a: 1 }] })).toBe('nested map is not supported yet');
      expect(oneError(r, { l: ['ok', null] })).toBe('unsupported type nil');
      expect(oneError(r, { l: ['abcd'] }, limits({ stringMaxBytes: 3 }))).toBe(
        'string item in list exceeds max byte size',
      );
    });

    it('rejects any other value type', () => {
      expect(oneError(r, { k: undefined })).toBe('unsupported type nil in map for key "k"');
      expect(oneError(r, { big: 10n })).toBe('unsupported type 10 in map for key "big"');
    });

    it('a legacy {:map, n} rule (hasParams + maxItems) runs the flat check too', () => {
      const legacy = rule('m', 'map', { hasParams: true, maxItems: 10 });
      expect(oneError(legacy, { inner: {} })).toBe('nested map is not supported yet');
    });
  });
});

describe(':list', () => {
  it('accepts flat lists of booleans, numbers and strings', () => {
    const value = [true, 1, 2.5, 'x', ''];
    expect(one(rule('l', 'list'), value)).toBe(value);
    expect(one(rule('l', 'list'), [])).toEqual([]);
  });

  it('requires an array', () => {
    expect(oneError(rule('l', 'list'), 'a,b')).toBe(
      'invalid argument type for "l", expected :list, got "a,b"',
    );
    expect(oneError(rule('l', 'list'), { 0: 'a' })).toBe(
      'invalid argument type for "l", expected :list, got %{"0" => "a"}',
    );
  });

  it('enforces global and per-rule item limits (including 0)', () => {
    expect(oneError(rule('l', 'list'), [1, 2, 3], limits({ listMaxItems: 2 }))).toBe(
      'invalid argument size for "l" in "get_user", max 2 items',
    );
    expect(oneError(rule('l', 'list'), Array(1001).fill(1))).toBe(
      'invalid argument size for "l" in "get_user", max 1000 items',
    );
    const r = rule('l', 'list', { hasParams: true, maxItems: 3 });
    expect(one(r, [1, 2, 3], limits({ listMaxItems: 1 }))).toEqual([1, 2, 3]);
    expect(oneError(r, [1, 2, 3, 4])).toBe(
      'invalid argument size for "l" in "get_user", max 3 items',
    );
    const zero = rule('l', 'list', { hasParams: true, maxItems: 0 });
    expect(one(zero, [])).toEqual([]);
    expect(oneError(zero, [1])).toBe('invalid argument size for "l" in "get_user", max 0 items');
  });

  it('without params, a stray maxItems is ignored', () => {
    expect(one(rule('l', 'list', { maxItems: 1 }), [1, 2, 3])).toEqual([1, 2, 3]);
  });

  it('rejects nested maps, nested lists and nulls, reporting the first bad item', () => {
    expect(oneError(rule('l', 'list'), [1, { a: 1 }, [2]])).toBe('nested map is not supported yet');
    expect(oneError(rule('l', 'list'), [1, [2], { a: 1 }])).toBe(
      'nested list is not supported yet',
    );
    expect(oneError(rule('l', 'list'), ['a', null])).toBe('unsupported type nil');
  });

  it('limits string items to the global string_max_bytes', () => {
    expect(oneError(rule('l', 'list'), ['ok', 'x'.repeat(3001)])).toBe(
      'string item in list exceeds max byte size',
    );
    expect(oneError(rule('l', 'list'), ['éé'], limits({ stringMaxBytes: 3 }))).toBe(
      'string item in list exceeds max byte size',
    );
  });
});

describe('typed lists', () => {
  it.each([
    ['list_string', ['a', 'é', '']],
    ['list_num', [1, -2.5, 0]],
    ['list_uuid', [UUID_V4, UUID_V4.toUpperCase(), '6ba7b8109dad11d180b400c04fd430c8']],
    ['list_map', [{}, { a: { deep: [1] } }]],
  ] as const)('%s accepts valid items unchanged', (type, value) => {
    expect(one(rule('l', type), value)).toBe(value);
  });

  it.each([
    ['list_string', ['a', 1], '1'],
    ['list_string', [null], 'nil'],
    ['list_string', [['a']], '["a"]'],
    ['list_num', [1, '2'], '"2"'],
    ['list_num', [true], 'true'],
    ['list_uuid', [UUID_V4, 'nope'], '"nope"'],
    ['list_uuid', [42], '42'],
    ['list_map', [{}, []], '[]'],
    ['list_map', ['x'], '"x"'],
  ] as const)('%s rejects %j (item %s)', (type, value, shown) => {
    expect(oneError(rule('l', type), value)).toBe(`unsupported type of ${shown} in list`);
  });

  it.each(['list_string', 'list_num', 'list_uuid', 'list_map'] as const)(
    '%s requires an array',
    (type) => {
      expect(oneError(rule('l', type), 'x')).toBe(
        `invalid argument type for "l", expected :${type}, got "x"`,
      );
      expect(oneError(rule('l', type), { a: 1 })).toBe(
        `invalid argument type for "l", expected :${type}, got %{"a" => 1}`,
      );
    },
  );

  it.each([
    ['list_string', 'a'],
    ['list_num', 1],
    ['list_uuid', UUID_V4],
    ['list_map', {}],
  ] as const)('%s enforces global and per-rule item limits', (type, item) => {
    expect(one(rule('l', type), [item, item], limits({ listMaxItems: 2 }))).toEqual([item, item]);
    expect(oneError(rule('l', type), [item, item, item], limits({ listMaxItems: 2 }))).toBe(
      'invalid argument size for "l" in "get_user", max 2 items',
    );
    expect(
      one(
        rule('l', type, { hasParams: true, maxItems: 3 }),
        [item, item, item],
        limits({ listMaxItems: 2 }),
      ),
    ).toEqual([item, item, item]);
    const r = rule('l', type, { hasParams: true, maxItems: 0 });
    expect(one(r, [])).toEqual([]);
    expect(oneError(r, [null])).toBe('invalid argument size for "l" in "get_user", max 0 items');
  });

  it('list_string: items are limited by max_item_bytes (with params) or string_max_bytes', () => {
    const r = rule('l', 'list_string', { hasParams: true, maxItemBytes: 4 });
    expect(one(r, ['éé', 'abcd'])).toEqual(['éé', 'abcd']);
    expect(oneError(r, ['ok', 'ééé'])).toBe('unsupported type of "ééé" in list');
    expect(oneError(rule('l', 'list_string'), ['abc'], limits({ stringMaxBytes: 2 }))).toBe(
      'unsupported type of "abc" in list',
    );
    // with params but no max_item_bytes: the global string limit
    const noItemLimit = rule('l', 'list_string', { hasParams: true, maxItems: 5 });
    expect(oneError(noItemLimit, ['abc'], limits({ stringMaxBytes: 2 }))).toBe(
      'unsupported type of "abc" in list',
    );
  });

  it('list_string: max_items and max_item_bytes combine', () => {
    const r = rule('l', 'list_string', { hasParams: true, maxItems: 2, maxItemBytes: 3 });
    expect(oneError(r, ['a', 'b', 'c'])).toBe(
      'invalid argument size for "l" in "get_user", max 2 items',
    );
    expect(oneError(r, ['a', 'bcde'])).toBe('unsupported type of "bcde" in list');
  });
});

describe(':any', () => {
  it.each([
    [{ nested: { deep: [1, [2, { x: null }]] } }],
    [[[1], [2]]],
    ['x'.repeat(10_000)],
    [0],
    [false],
  ])('passes %j through unchanged', (value) => {
    expect(one(rule('a', 'any'), value)).toBe(value);
  });

  it('still applies the nil rules', () => {
    expect(errorOf([rule('a', 'any')], { a: null })).toBe(
      'missing or nil argument "a" in "get_user"',
    );
    expect(convertArgs([rule('a', 'any', { allowNil: true })], { a: null }, RT)).toEqual({
      a: null,
    });
  });
});

describe('a realistic config', () => {
  it('converts a mixed argument set in one call', () => {
    const rules = [
      rule('user_id', 'uuid'),
      rule('name', 'string', { hasParams: true, maxBytes: 50 }),
      rule('age', 'num', { defaultValue: 18 }),
      rule('email', 'string', { allowNil: true, hasParams: true, maxBytes: 255 }),
      rule('tags', 'list_string', {
        defaultValue: [],
        hasParams: true,
        maxItems: 10,
        maxItemBytes: 20,
      }),
      rule('since', 'datetime'),
      rule('meta', 'map', { hasParams: true, required: ['source'], accept: ['source', 'ref'] }),
    ];
    const result = convertArgs(
      rules,
      {
        user_id: UUID_V4,
        name: 'Nguyễn',
        since: '2024-06-01T07:00:00+07:00',
        meta: { source: 'web' },
      },
      RT,
    );
    expect(result).toEqual({
      user_id: UUID_V4,
      name: 'Nguyễn',
      age: 18,
      email: null,
      tags: [],
      since: '2024-06-01T00:00:00Z',
      meta: { source: 'web' },
    });
  });
});
