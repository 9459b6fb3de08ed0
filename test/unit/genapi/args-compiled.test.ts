/**
 * The compiled argument checker (src/genapi/args/compile.ts, issue 15) against the interpreter it
 * replaced (kept as the oracle in support/args-interpreter.ts): the same converted arguments and
 * the same ArgumentError text, byte for byte, for every ARG_TYPES type, optional and required
 * arguments, own and global limits, datetime forms, nested lists and maps, names that are also
 * Object.prototype properties; a table of bad inputs and random specs × random arguments. Also:
 * a config's checker is compiled once, when the registry stores it, and shared by its copies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { argChecker, compileArgs } from '../../../src/genapi/args/compile.js';
import {
  convertArgs,
  DEFAULT_ARG_LIMITS,
  type ArgLimits,
} from '../../../src/genapi/args/convert.js';
import { ArgumentError } from '../../../src/genapi/args/errors.js';
import { exceedsBytes } from '../../../src/genapi/args/values.js';
import { parseArgTypes } from '../../../src/genapi/config/arg-spec.js';
import { ConfigRegistry } from '../../../src/genapi/config/registry.js';
import { validateFunConfig } from '../../../src/genapi/config/validate.js';
import { ARG_TYPES, type ArgRule, type ArgType } from '../../../src/genapi/types.js';
import { interpretArgs } from './support/args-interpreter.js';

const RT = 'get_user';

type Outcome = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

function outcome(run: () => Record<string, unknown>): Outcome {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    return { ok: false, message: error.message };
  }
}

/** Both implementations on the same input; asserts they agree and returns the outcome. */
function agree(
  rules: readonly ArgRule[],
  args: Record<string, unknown>,
  limits: ArgLimits = DEFAULT_ARG_LIMITS,
  requestType = RT,
): Outcome {
  const expected = outcome(() => interpretArgs(rules, args, requestType, limits));
  const actual = outcome(() => compileArgs(rules)(args, requestType, limits));
  expect(actual).toStrictEqual(expected);
  if (actual.ok && expected.ok) {
    expect(Object.keys(actual.value)).toEqual(Object.keys(expected.value));
    expect(Object.getPrototypeOf(actual.value)).toBe(Object.getPrototypeOf(expected.value));
  }
  return actual;
}

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

/** One rule from a config spec, as a parsed config holds it. */
function specRule(name: string, spec: unknown): ArgRule {
  const parsed = parseArgTypes({ [name]: spec }, null);
  if (!parsed.ok || parsed.rules === null) throw new Error(`bad spec ${JSON.stringify(spec)}`);
  return parsed.rules[0]!;
}

const UUID = '6ba7b810-9dad-41d1-80b4-00c04fd430c8';
const small: ArgLimits = { stringMaxBytes: 5, listMaxItems: 2, mapMaxItems: 2 };

describe('compiled checker = interpreter: a table of inputs per type', () => {
  /** [spec, values tried]: every ARG_TYPES type, valid and invalid values, own limits. */
  const table: [unknown, unknown[]][] = [
    ['any', [1, 'x', [1, [2]], { a: { b: {} } }, false]],
    ['boolean', [true, false, 'true', 1, 0, [], {}]],
    ['num', [0, -1.5, 1e21, '1', true, [], { n: 1 }]],
    ['string', ['', 'abc', 'héllo', 'x'.repeat(3000), 'x'.repeat(3001), 'é'.repeat(1501), 1, []]],
    [{ type: 'string', max_bytes: 4 }, ['abcd', 'abcde', 'ééé', 'éé', '😀', '😀a', '\ud800\ud800']],
    [
      ['string', 2],
      ['ab', 'abc', 'é', 'é1'],
    ],
    [{ type: 'string', max_bytes: 0 }, ['', 'a']],
    [
      'uuid',
      [
        UUID,
        UUID.toUpperCase(),
        `urn:uuid:${UUID}`,
        UUID.replace(/-/g, ''),
        'URN:UUID:' + UUID,
        'nope',
        42,
        `${UUID}x`,
      ],
    ],
    [{ type: 'uuid', max_bytes: 3 }, [UUID, 'x']],
    [
      'datetime',
      [
        '2024-01-15T10:30:00Z',
        '2024-01-15T10:30:00+07:00',
        '2024-01-15 10:30:00.123-05:30',
        '2024-01-15T10:30:00+0700',
        '2024-01-15T10:30:00',
        '2024-02-30T10:30:00Z',
        'yesterday',
        1705314600,
        {},
      ],
    ],
    [
      'naive_datetime',
      [
        '2024-01-15T10:30:00',
        '2024-01-15 10:30:00.5',
        '2024-01-15T10:30:00Z',
        '2024-13-01T00:00:00',
        5,
        [],
      ],
    ],
    [
      'map',
      [
        {},
        { a: 1 },
        { a: { b: 1 } },
        { a: [[1]] },
        [],
        'map',
        null,
        Object.create(null),
        new Date(0),
      ],
    ],
    [
      { type: 'map', max_items: 3, required: ['id'], accept: ['id', 'name', 'tags'] },
      [
        { id: 1 },
        { id: 1, name: 'n', tags: ['a', 2, true] },
        { name: 'n' },
        { id: 1, other: 2, more: 3 },
        { id: 1, name: 'x'.repeat(3001) },
        { id: 1, tags: [[1]] },
        { id: 1, tags: [{}] },
        { id: 1, tags: [null] },
        { id: 1, name: { deep: 1 } },
        { id: 1, name: true, tags: null },
        { a: 1, b: 2, c: 3, d: 4 },
      ],
    ],
    [{ type: 'map', required: ['a', 'b', 'c'] }, [{ b: 1 }, { a: 1, b: 1, c: 1, d: [1, 'x'] }]],
    [{ type: 'map', accept: ['a'] }, [{ a: 1 }, { z: 1, a: 2, y: 3 }]],
    [
      ['map', 1],
      [{ a: 1 }, { a: 1, b: 2 }, { a: { nested: true } }],
    ],
    [{ type: 'map', max_items: 0 }, [{}, { a: 1 }]],
    ['list', [[], [1, 'a', true], [1, [2]], [{}], [null], ['x'.repeat(3001)], 'list', {}]],
    [
      ['list', 2],
      [
        [1, 2],
        [1, 2, 3],
      ],
    ],
    ['list_string', [[], ['a', 'b'], ['a', 1], ['x'.repeat(3001)], [null], 'a']],
    [
      { type: 'list_string', max_items: 2, max_item_bytes: 2 },
      [['ab'], ['abc'], ['é'], ['a', 'b', 'c'], ['😀']],
    ],
    ['list_num', [[1, 2.5], [1, '2'], [NaN], [Infinity], 1]],
    ['list_uuid', [[UUID], [UUID, 'no'], [1], UUID]],
    ['list_map', [[{}, { a: [1] }], [{}, []], [null], [new Map()], {}]],
  ];

  it.each(table)('%j', (spec, values) => {
    const r = specRule('x', spec);
    for (const value of values) {
      agree([r], { x: value });
      agree([r], { x: value }, small);
    }
  });

  it('every ARG_TYPES type is in the table', () => {
    const types = new Set(table.map(([spec]) => specRule('x', spec).type));
    expect([...types].sort()).toEqual([...ARG_TYPES].sort());
  });

  it('bad inputs give the interpreter text, byte for byte', () => {
    const cases: [unknown, unknown, string][] = [
      ['num', 'ten', 'invalid argument type for "x", expected :num, got "ten"'],
      ['string', 'x'.repeat(3001), 'invalid argument size for "x", max 3000 bytes'],
      ['uuid', 'nope', 'invalid argument value for "x", require a UUID format string'],
      ['datetime', 7, 'invalid argument type for "x", expected :datetime (ISO 8601 string), got 7'],
      ['list_num', [1, 'a'], 'unsupported type of "a" in list'],
      [['list', 1], [1, 2], 'invalid argument size for "x" in "get_user", max 1 items'],
      [
        { type: 'map', required: ['a', 'b'] },
        { c: 1 },
        'map argument "x" missing required keys: ["a", "b"] in "get_user"',
      ],
      [
        { type: 'map', accept: ['a'] },
        { b: 1, a: 1, c: 2 },
        'map argument "x" contains rejected keys: ["b", "c"] in "get_user"',
      ],
      [{ type: 'map', max_items: 9 }, { a: { b: 1 } }, 'nested map is not supported yet'],
      [
        { type: 'map', max_items: 9 },
        { k: Symbol.for('s') },
        'unsupported type :s in map for key "k"',
      ],
      ['list', [[1]], 'nested list is not supported yet'],
      [
        'boolean',
        { a: [1, 'b'] },
        'invalid argument type for "x", expected :boolean, got %{"a" => [1, "b"]}',
      ],
    ];
    for (const [spec, value, message] of cases) {
      expect(agree([specRule('x', spec)], { x: value })).toEqual({ ok: false, message });
    }
  });
});

describe('compiled checker = interpreter: arguments, defaults and names', () => {
  it('required, optional and defaulted arguments; extra arguments; order', () => {
    const rules = [
      rule('a', 'num'),
      rule('b', 'string', { allowNil: true }),
      rule('c', 'boolean', { defaultValue: true }),
      rule('d', 'datetime', { defaultValue: '2024-01-15T10:30:00+07:00', allowNil: true }),
      rule('e', 'num', { defaultValue: 'ten' }),
    ];
    for (const args of [
      { a: 1, e: 2 },
      { a: 1, b: null, c: false, d: null, e: 3 },
      { a: 1 },
      { b: 'x', e: 1 },
      { a: null, e: 1 },
      { a: 1, e: 1, zz: 1, yy: null },
      { zz: 1 },
      {},
    ]) {
      agree(rules, args);
    }
    agree([], {});
    agree([], { a: 1 });
  });

  it('names that are Object.prototype properties stay plain own keys', () => {
    for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
      const args = JSON.parse(`{"${name}": "v"}`) as Record<string, unknown>;
      const result = agree([rule(name, 'string')], args);
      expect(result.ok && Object.getOwnPropertyDescriptor(result.value, name)?.value).toBe('v');
      agree([rule(name, 'string', { allowNil: true })], {});
      agree([rule('other', 'string')], args);
    }
  });

  it('an inherited enumerable key is not an extra argument (Object.keys rules)', () => {
    const args = Object.create({ inherited: 1 }) as Record<string, unknown>;
    args.a = 1;
    expect(agree([rule('a', 'num')], args)).toEqual({ ok: true, value: { a: 1 } });
  });

  it('the request type is quoted in the errors that carry it', () => {
    agree([], { a: 1 }, DEFAULT_ARG_LIMITS, 'we"ird #{x}');
    agree([rule('a', 'num')], {}, DEFAULT_ARG_LIMITS, 'naïve\n');
  });

  it('global limits come from the call, own limits from the rule', () => {
    const own = specRule('s', { type: 'string', max_bytes: 10 });
    const global = specRule('s', 'string');
    const checkOwn = argChecker(Object.freeze([own]));
    const checkGlobal = argChecker(Object.freeze([global]));
    for (const limits of [small, DEFAULT_ARG_LIMITS, { ...small, stringMaxBytes: 100 }]) {
      for (const s of ['abcd', 'abcdef', 'x'.repeat(11), 'x'.repeat(101)]) {
        expect(outcome(() => checkOwn({ s }, RT, limits))).toStrictEqual(
          outcome(() => interpretArgs([own], { s }, RT, limits)),
        );
        expect(outcome(() => checkGlobal({ s }, RT, limits))).toStrictEqual(
          outcome(() => interpretArgs([global], { s }, RT, limits)),
        );
      }
    }
  });

  it('hand-built rules with limits but no params use the global limits', () => {
    const r = rule('x', 'list_string', { maxItems: 1, maxItemBytes: 1 });
    agree([r], { x: ['ab', 'cd'] });
    agree([rule('m', 'map', { maxItems: 0, required: ['a'] })], { m: { b: 1 } });
  });

  it('a type no clause handles fails like the interpreter', () => {
    const bogus = { ...rule('x', 'num'), type: 'tuple' as ArgType };
    agree([bogus], { x: 1 });
    agree([bogus], {});
  });
});

describe('compiled checker = interpreter: random specs and arguments', () => {
  const names = fc.constantFrom('a', 'b', 'c', '__proto__', 'toString', 'ü');
  const limit = fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined });
  const text = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom(UUID, `urn:uuid:${UUID}`, '2024-01-15T10:30:00+07:00', '2024-01-15T10:30:00'),
  );
  const scalar = fc.oneof(
    text,
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      scalar,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom('a', 'b', 'id', 'x', '__proto__'), tie('value'), {
        maxKeys: 4,
      }),
    ),
  })).value;

  const ruleArb: fc.Arbitrary<ArgRule> = fc
    .record({
      name: names,
      type: fc.constantFrom(...ARG_TYPES),
      allowNil: fc.boolean(),
      defaultValue: fc.oneof(fc.constant(undefined), value),
      hasParams: fc.boolean(),
      maxBytes: limit,
      maxItems: limit,
      maxItemBytes: limit,
      required: fc.array(fc.constantFrom('a', 'id'), { maxLength: 2 }),
      accept: fc.array(fc.constantFrom('a', 'b', 'id'), { maxLength: 3 }),
    })
    .map((r) => {
      const out: Record<string, unknown> = { ...r };
      for (const key of ['maxBytes', 'maxItems', 'maxItemBytes'] as const) {
        if (out[key] === undefined) delete out[key];
      }
      return out as unknown as ArgRule;
    });

  const rulesArb = fc.uniqueArray(ruleArb, { selector: (r) => r.name, maxLength: 4 });
  const argsArb = fc.dictionary(names, value, { maxKeys: 4 }).map((d) => {
    // fc.dictionary already makes "__proto__" an own key; keep it that way through a JSON trip.
    return JSON.parse(
      JSON.stringify(d, (_k, v: unknown) => (v === undefined ? null : v)),
    ) as Record<string, unknown>;
  });
  const limitsArb = fc.record({
    stringMaxBytes: fc.integer({ min: 0, max: 8 }),
    listMaxItems: fc.integer({ min: 0, max: 4 }),
    mapMaxItems: fc.integer({ min: 0, max: 4 }),
  });

  /** A value near the shape a type wants, so the checks past the type test are reached too. */
  const flat = fc.oneof(text, fc.boolean(), fc.integer(), fc.constant(null));
  const shaped = (type: ArgType): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'map':
        return fc.dictionary(
          fc.constantFrom('a', 'b', 'id', 'x'),
          fc.oneof(flat, fc.array(flat, { maxLength: 5 }), value),
          { maxKeys: 5 },
        );
      case 'list':
        return fc.array(fc.oneof(flat, value), { maxLength: 5 });
      case 'list_string':
        return fc.array(text, { maxLength: 5 });
      case 'list_num':
        return fc.array(fc.oneof(fc.integer(), fc.double()), { maxLength: 5 });
      case 'list_uuid':
        return fc.array(fc.oneof(fc.constant(UUID), text), { maxLength: 5 });
      case 'list_map':
        return fc.array(fc.oneof(fc.dictionary(fc.string(), flat), value), { maxLength: 5 });
      default:
        return fc.oneof(text, value);
    }
  };
  /** JSON text of args: each rule's argument present (well-shaped or not) or absent, plus extras. */
  const shapedArgs = (rules: readonly ArgRule[]): fc.Arbitrary<Record<string, unknown>> =>
    fc
      .tuple(
        fc.tuple(
          ...rules.map((r) =>
            fc.option(fc.oneof(shaped(r.type), shaped(r.type), value), { nil: undefined }),
          ),
        ),
        fc.dictionary(names, value, { maxKeys: 1 }),
        fc.boolean(),
      )
      .map(([values, extras, withExtras]) => {
        const entries = rules
          .map((r, i): [string, unknown] => [r.name, values[i]])
          .filter(([, v]) => v !== undefined);
        if (withExtras) entries.push(...Object.entries(extras));
        const json = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v ?? null)}`).join(',')}}`;
        return JSON.parse(json) as Record<string, unknown>;
      });

  it('agree on well-shaped arguments (limits, required and accepted keys, list items)', () => {
    fc.assert(
      fc.property(
        rulesArb.chain((rules) => fc.tuple(fc.constant(rules), shapedArgs(rules))),
        limitsArb,
        ([rules, args], limits) => {
          agree(rules, args, limits);
          agree(rules, args);
        },
      ),
      { numRuns: 4000 },
    );
  });

  it('agree on result or error text', () => {
    fc.assert(
      fc.property(rulesArb, argsArb, limitsArb, (rules, args, limits) => {
        agree(rules, args, limits);
        agree(rules, args);
      }),
      { numRuns: 3000 },
    );
  });

  it('exceedsBytes is Buffer.byteLength(s) > max for any string', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 12 }),
        fc.integer({ min: 0, max: 40 }),
        (s, max) => {
          expect(exceedsBytes(s, max)).toBe(Buffer.byteLength(s, 'utf8') > max);
        },
      ),
      { numRuns: 3000 },
    );
    for (const s of ['\ud800', '\udc00a', '😀', 'é', 'ab']) {
      for (let max = 0; max <= 6; max++) {
        expect(exceedsBytes(s, max)).toBe(Buffer.byteLength(s, 'utf8') > max);
      }
    }
  });
});

describe('compiled once per config', () => {
  function config(argTypes: Record<string, unknown>) {
    const result = validateFunConfig(
      { service: 'users', request_type: 'get_user', nodes: 'local', arg_types: argTypes },
      { nodesDefault: 'local' },
    );
    if (!result.ok) throw new Error(result.errors.join('; '));
    return result.config;
  }

  it('the registry compiles on add; copies of the config share the checker', () => {
    const registry = new ConfigRegistry();
    const stored = config({ id: 'uuid' });
    const args = stored.args;
    expect(args).not.toBeNull();
    expect(Object.isFrozen(args)).toBe(true);
    registry.add(stored);
    const checker = argChecker(args);
    expect(argChecker(args)).toBe(checker);
    registry.disable('users', 'get_user', null);
    const disabled = registry.peek('users', 'get_user', null);
    expect(disabled?.disabled).toBe(true);
    expect(disabled?.args).toBe(args);
    expect(argChecker(disabled?.args ?? null)).toBe(checker);
    expect(checker({ id: UUID }, RT, DEFAULT_ARG_LIMITS)).toEqual({ id: UUID });
  });

  it('no arg_types → the args pass through (same object)', () => {
    const args = { anything: [1] };
    expect(argChecker(null)(args, RT, DEFAULT_ARG_LIMITS)).toBe(args);
    expect(argChecker(config({}).args)({}, RT, DEFAULT_ARG_LIMITS)).toEqual({});
  });

  it('a rule list that is not frozen is not cached (it may still change)', () => {
    const rules: ArgRule[] = [rule('a', 'num')];
    expect(convertArgs(rules, { a: 1 }, RT)).toEqual({ a: 1 });
    rules.push(rule('b', 'num', { allowNil: true }));
    expect(convertArgs(rules, { a: 1 }, RT)).toEqual({ a: 1, b: null });
    expect(argChecker(rules)).not.toBe(argChecker(rules));
  });
});
