/**
 * arg_types / arg_orders parsing (spec §2 "arg_types / arg_orders consistency", §3.1 spec forms),
 * PhoenixGenApi structs/fun_config_test "arg_types with extended format" and the argument-related
 * valid?/1 rows, plus the port's fixes: list/datetime/naive_datetime/any are valid types, and
 * non-empty arg_types with arg_orders null/absent is valid.
 */
import { describe, expect, it } from 'vitest';
import { parseArgTypes } from '../../../src/genapi/config/arg-spec.js';
import { ARG_TYPES, type ArgRule } from '../../../src/genapi/types.js';

function rules(argTypes: unknown, argOrders: unknown): ArgRule[] | null {
  const result = parseArgTypes(argTypes, argOrders);
  if (!result.ok) throw new Error(`expected ok, got ${result.detail}`);
  return result.rules;
}

function detail(argTypes: unknown, argOrders: unknown): string {
  const result = parseArgTypes(argTypes, argOrders);
  if (result.ok) throw new Error('expected an error');
  return result.detail;
}

describe('parseArgTypes: arg_types / arg_orders consistency', () => {
  it('arg_types null/undefined → rules null (undeclared) with arg_orders null, undefined or []', () => {
    expect(parseArgTypes(null, null)).toEqual({ ok: true, rules: null });
    expect(parseArgTypes(undefined, undefined)).toEqual({ ok: true, rules: null });
    expect(parseArgTypes(null, [])).toEqual({ ok: true, rules: null });
  });

  it('arg_types null with a non-empty arg_orders (or "map") is rejected', () => {
    expect(detail(null, ['a'])).toBe('arg_types is nil but arg_orders is not empty');
    expect(detail(undefined, 'map')).toBe('arg_types is nil but arg_orders is not empty');
  });

  it('arg_types {} → [] (declared: no arguments) with arg_orders null or []', () => {
    expect(parseArgTypes({}, [])).toEqual({ ok: true, rules: [] });
    expect(parseArgTypes({}, null)).toEqual({ ok: true, rules: [] });
    expect(parseArgTypes({}, undefined)).toEqual({ ok: true, rules: [] });
  });

  it('arg_types {} with arg_orders "map" or a non-empty list is rejected', () => {
    expect(detail({}, 'map')).toBe('arg_types is empty but arg_orders is not');
    expect(detail({}, ['a'])).toBe('arg_types is empty but arg_orders is not');
  });

  it('non-empty arg_types with arg_orders [] is valid (object key order)', () => {
    expect(rules({ b: 'num', a: 'string' }, [])?.map((r) => r.name)).toEqual(['b', 'a']);
  });

  it('⚠ fix: non-empty arg_types with arg_orders null/absent is valid (documented default [])', () => {
    expect(rules({ name: 'string' }, null)?.map((r) => r.name)).toEqual(['name']);
    expect(rules({ name: 'string', age: 'num' }, undefined)?.map((r) => r.name)).toEqual([
      'name',
      'age',
    ]);
  });

  it('arg_orders "map" is valid with non-empty arg_types', () => {
    expect(rules({ user: 'map', id: 'uuid' }, 'map')?.map((r) => [r.name, r.type])).toEqual([
      ['user', 'map'],
      ['id', 'uuid'],
    ]);
  });

  it('rules follow arg_orders when it is a list, not the object key order', () => {
    expect(
      rules({ a: 'string', b: 'num', c: 'boolean' }, ['c', 'a', 'b'])?.map((r) => r.name),
    ).toEqual(['c', 'a', 'b']);
  });

  it('count mismatch', () => {
    expect(detail({ a: 'string', b: 'num' }, ['a'])).toBe(
      'arg_types count (2) does not match arg_orders count (1)',
    );
    expect(detail({ a: 'string' }, ['a', 'b', 'c'])).toBe(
      'arg_types count (1) does not match arg_orders count (3)',
    );
  });

  it('name mismatch lists missing and extra names', () => {
    expect(detail({ name: 'string', age: 'num' }, ['name', 'city'])).toBe(
      'arg mismatch, missing: ["age"], extra: ["city"]',
    );
    // Duplicates in arg_orders: same length, but a name is missing.
    expect(detail({ a: 'string', b: 'num' }, ['a', 'a'])).toBe(
      'arg mismatch, missing: ["b"], extra: []',
    );
  });

  it.each([
    ['a string other than "map"', { a: 'string' }, 'list'],
    ['a number', { a: 'string' }, 3],
    ['a list with a non-string', { a: 'string' }, [1]],
    ['an object', { a: 'string' }, { a: 1 }],
  ])('arg_orders as %s is an invalid format', (_label, types, orders) => {
    expect(detail(types, orders)).toBe('invalid arg_types or arg_orders format');
  });

  it.each([
    ['a list', ['a']],
    ['a string', 'string'],
    ['a number', 1],
    ['a Map', new Map([['a', 'string']])],
  ])('arg_types as %s is an invalid format', (_label, types) => {
    expect(detail(types, [])).toBe('invalid arg_types or arg_orders format');
  });
});

describe('parseArgTypes: spec forms', () => {
  it('⚠ fix: every type of ARG_TYPES is valid in the simple form, including list, datetime, naive_datetime, any', () => {
    const types = Object.fromEntries(ARG_TYPES.map((t) => [`a_${t}`, t]));
    const parsed = rules(types, null);
    expect(parsed?.map((r) => r.type)).toEqual([...ARG_TYPES]);
    for (const rule of parsed ?? []) {
      expect(rule).toMatchObject({
        allowNil: false,
        defaultValue: undefined,
        hasParams: false,
        required: [],
        accept: [],
      });
      expect(rule.maxBytes).toBeUndefined();
      expect(rule.maxItems).toBeUndefined();
    }
    for (const t of ['list', 'datetime', 'naive_datetime', 'any']) {
      expect(rules({ x: { type: t } }, 'map')?.[0]?.type).toBe(t);
      expect(rules({ x: [t, 3] }, ['x'])?.[0]?.type).toBe(t);
    }
  });

  it('unknown types are rejected in every form, with the names listed', () => {
    expect(detail({ a: 'integer' }, ['a'])).toBe('invalid arg_types configuration for: ["a"]');
    expect(detail({ a: 'string', b: ['float', 3], c: { type: 'date' } }, null)).toBe(
      'invalid arg_types configuration for: ["b", "c"]',
    );
  });

  it('legacy tuple: string → maxBytes, list-like and map → maxItems', () => {
    const parsed = rules(
      {
        s: ['string', 100],
        l: ['list', 10],
        ls: ['list_string', 11],
        ln: ['list_num', 12],
        lu: ['list_uuid', 13],
        lm: ['list_map', 14],
        m: ['map', 15],
      },
      null,
    );
    const byName = new Map(parsed?.map((r) => [r.name, r]));
    expect(byName.get('s')).toMatchObject({ type: 'string', hasParams: true, maxBytes: 100 });
    expect(byName.get('s')?.maxItems).toBeUndefined();
    for (const [name, n] of [
      ['l', 10],
      ['ls', 11],
      ['ln', 12],
      ['lu', 13],
      ['lm', 14],
      ['m', 15],
    ] as const) {
      expect(byName.get(name)).toMatchObject({ hasParams: true, maxItems: n });
      expect(byName.get(name)?.maxBytes).toBeUndefined();
    }
  });

  it('legacy tuple of a type without parameters behaves like the plain type', () => {
    for (const t of ['num', 'boolean', 'uuid', 'datetime', 'naive_datetime', 'any']) {
      const rule = rules({ x: [t, 5] }, null)?.[0];
      expect(rule).toMatchObject({ type: t, hasParams: false });
      expect(rule?.maxBytes).toBeUndefined();
      expect(rule?.maxItems).toBeUndefined();
    }
  });

  it('legacy tuple ≡ extended form with the same limit', () => {
    const legacy = rules({ x: ['list', 10] }, null)?.[0];
    const extended = rules({ x: { type: 'list', max_items: 10 } }, null)?.[0];
    expect(legacy).toEqual(extended);
    expect(rules({ x: ['string', 7] }, null)?.[0]).toEqual(
      rules({ x: { type: 'string', max_bytes: 7 } }, null)?.[0],
    );
  });

  it.each([
    ['a negative n', ['string', -1]],
    ['a fractional n', ['list', 1.5]],
    ['a string n', ['string', '10']],
    ['three elements', ['string', 1, 2]],
    ['one element', ['string']],
    ['an unknown type', ['text', 3]],
  ])('legacy tuple with %s is invalid', (_label, spec) => {
    expect(detail({ x: spec }, null)).toBe('invalid arg_types configuration for: ["x"]');
  });

  it('extended form: every option', () => {
    const rule = rules(
      {
        meta: {
          type: 'map',
          allow_nil: true,
          default_value: { name: 'n' },
          max_items: 200,
          required: ['name'],
          accept: ['name', 'email'],
        },
      },
      'map',
    )?.[0];
    expect(rule).toEqual({
      name: 'meta',
      type: 'map',
      allowNil: true,
      defaultValue: { name: 'n' },
      hasParams: true,
      maxItems: 200,
      required: ['name'],
      accept: ['name', 'email'],
    });
    const tags = rules(
      { tags: { type: 'list_string', max_items: 10, max_item_bytes: 100 } },
      null,
    )?.[0];
    expect(tags).toMatchObject({
      hasParams: true,
      maxItems: 10,
      maxItemBytes: 100,
      allowNil: false,
    });
  });

  it('"allow_nil?" is an alias of allow_nil; conflicting values are invalid', () => {
    expect(rules({ x: { type: 'string', 'allow_nil?': true } }, null)?.[0]?.allowNil).toBe(true);
    expect(
      rules({ x: { type: 'string', allow_nil: true, 'allow_nil?': true } }, null)?.[0]?.allowNil,
    ).toBe(true);
    expect(detail({ x: { type: 'string', allow_nil: true, 'allow_nil?': false } }, null)).toBe(
      'invalid arg_types configuration for: ["x"]',
    );
    expect(detail({ x: { type: 'string', allow_nil: 'yes' } }, null)).toBe(
      'invalid arg_types configuration for: ["x"]',
    );
  });

  it('extended form without parameters behaves like the simple type (hasParams false)', () => {
    const rule = rules({ x: { type: 'string', allow_nil: true, default_value: 'd' } }, null)?.[0];
    expect(rule).toMatchObject({
      type: 'string',
      hasParams: false,
      allowNil: true,
      defaultValue: 'd',
    });
  });

  it('hasParams is true as soon as any of max_bytes/max_items/max_item_bytes/required/accept is present', () => {
    for (const extra of [
      { max_bytes: 1 },
      { max_items: 1 },
      { max_item_bytes: 1 },
      { required: [] },
      { accept: [] },
    ]) {
      expect(rules({ x: { type: 'map', ...extra } }, null)?.[0]?.hasParams).toBe(true);
    }
  });

  it('default_value is not type-checked at config time', () => {
    expect(rules({ x: { type: 'num', default_value: 'x' } }, null)?.[0]?.defaultValue).toBe('x');
  });

  it('default_value null means "no default"', () => {
    expect(
      rules({ x: { type: 'num', default_value: null } }, null)?.[0]?.defaultValue,
    ).toBeUndefined();
  });

  it('a missing or unknown type in the extended form is invalid', () => {
    expect(detail({ x: { max_bytes: 10 } }, null)).toBe(
      'invalid arg_types configuration for: ["x"]',
    );
    expect(detail({ x: { type: 'str' } }, null)).toBe('invalid arg_types configuration for: ["x"]');
  });

  it('unknown options in the extended form are ignored', () => {
    const rule = rules({ x: { type: 'string', foo: 'bar', max_bytez: 1 } }, null)?.[0];
    expect(rule).toMatchObject({ type: 'string', hasParams: false });
  });

  it('max_items: 0 is allowed', () => {
    expect(rules({ x: { type: 'list', max_items: 0 } }, null)?.[0]?.maxItems).toBe(0);
    expect(rules({ x: ['list_num', 0] }, null)?.[0]?.maxItems).toBe(0);
  });

  it.each([
    ['max_bytes negative', { type: 'string', max_bytes: -1 }],
    ['max_items fractional', { type: 'list', max_items: 2.5 }],
    ['max_item_bytes a string', { type: 'list_string', max_item_bytes: '10' }],
    ['max_items Infinity', { type: 'list', max_items: Number.POSITIVE_INFINITY }],
    ['required not a list', { type: 'map', required: 'name' }],
    ['accept with a non-string', { type: 'map', accept: ['a', 1] }],
  ])('extended form: %s is invalid', (_label, spec) => {
    expect(detail({ x: spec }, null)).toBe('invalid arg_types configuration for: ["x"]');
  });

  it('a spec of the wrong shape (number, null, boolean) is invalid', () => {
    expect(detail({ a: 1, b: null, c: true, d: 'string' }, null)).toBe(
      'invalid arg_types configuration for: ["a", "b", "c"]',
    );
  });

  it('complex: simple and extended forms mixed, all types', () => {
    const parsed = rules(
      {
        id: 'uuid',
        ids: { type: 'list_uuid', max_items: 5 },
        name: ['string', 255],
        at: { type: 'datetime', allow_nil: true },
        gps: { type: 'list_map', max_items: 100 },
      },
      ['name', 'id', 'ids', 'at', 'gps'],
    );
    expect(parsed?.map((r) => `${r.name}:${r.type}:${r.hasParams}`)).toEqual([
      'name:string:true',
      'id:uuid:false',
      'ids:list_uuid:true',
      'at:datetime:false',
      'gps:list_map:true',
    ]);
  });

  it('returned rules are frozen', () => {
    const rule = rules({ x: { type: 'map', required: ['a'] } }, null)?.[0];
    expect(Object.isFrozen(rule)).toBe(true);
    expect(Object.isFrozen(rule?.required)).toBe(true);
  });
});
