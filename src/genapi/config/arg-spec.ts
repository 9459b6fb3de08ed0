/**
 * arg_types / arg_orders parsing (PhoenixGenApi `FunConfig.validate_args_details` and the
 * ArgumentHandler's spec forms, spec §2 and §3.1), producing the gateway's ArgRule list.
 *
 * Differences from PhoenixGenApi (spec §11.3):
 * - `list`, `datetime`, `naive_datetime` and `any` are accepted types (PhoenixGenApi supports them
 *   at runtime but its config validation rejects them).
 * - non-empty arg_types with arg_orders null/absent is valid (the documented default is `[]`).
 */
import type { ArgRule, ArgType } from '../types.js';
import { validateArgSpec } from '../../schema/validate.js';
import { isPlainObject } from '../args/values.js';

export type ParseArgTypesResult =
  { ok: true; rules: ArgRule[] | null } | { ok: false; detail: string };

/** Types whose legacy tuple `[type, n]` means `max_items: n`. */
const ITEM_LIMITED: ReadonlySet<string> = new Set([
  'list',
  'list_string',
  'list_num',
  'list_uuid',
  'list_map',
  'map',
]);

const EMPTY: readonly string[] = Object.freeze([]);

// The same JSON-object test the argument checks use; config modules import it from here.
export { isPlainObject };

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** Elixir `inspect` of a list of strings: `["a", "b"]`. */
export function inspectList(items: readonly unknown[]): string {
  return `[${items.map((item) => JSON.stringify(item)).join(', ')}]`;
}

function simpleRule(name: string, type: ArgType): ArgRule {
  return Object.freeze({
    name,
    type,
    allowNil: false,
    defaultValue: undefined,
    hasParams: false,
    required: EMPTY,
    accept: EMPTY,
  });
}

/** Parses one spec; null when it is invalid (fun-config.schema.json#/$defs/argSpec, plus one rule). */
function parseSpec(name: string, spec: unknown): ArgRule | null {
  if (!validateArgSpec(spec)) return null;
  if (typeof spec === 'string') return simpleRule(name, spec);

  if (Array.isArray(spec)) {
    // Legacy tuple [type, n].
    const [type, n] = spec as readonly [ArgType, number];
    if (type === 'string') {
      return Object.freeze({ ...simpleRule(name, type), hasParams: true, maxBytes: n });
    }
    if (ITEM_LIMITED.has(type)) {
      return Object.freeze({ ...simpleRule(name, type), hasParams: true, maxItems: n });
    }
    // Other types take no parameters: the tuple behaves like the plain type.
    return simpleRule(name, type);
  }

  const object = spec;
  // JSON objects only (not a Date or a class instance), as the argument checks read them.
  if (!isPlainObject(object)) return null;
  // The rule the schema cannot say: both spellings of allow_nil, when given, agree.
  const allowNilA = object.allow_nil;
  const allowNilB = object['allow_nil?'];
  if (allowNilA !== undefined && allowNilB !== undefined && allowNilA !== allowNilB) return null;
  const allowNil = (allowNilA ?? allowNilB) === true;

  const {
    max_bytes: maxBytes,
    max_items: maxItems,
    max_item_bytes: maxItemBytes,
    required,
    accept,
  } = object;
  const hasParams =
    maxBytes !== undefined ||
    maxItems !== undefined ||
    maxItemBytes !== undefined ||
    required !== undefined ||
    accept !== undefined;

  // JSON null means "no default", as nil does in PhoenixGenApi. The value is not type-checked.
  const defaultValue = object.default_value === null ? undefined : object.default_value;

  const rule: {
    -readonly [K in keyof ArgRule]: ArgRule[K];
  } = {
    name,
    type: object.type,
    allowNil,
    defaultValue,
    hasParams,
    required: required ? Object.freeze([...required]) : EMPTY,
    accept: accept ? Object.freeze([...accept]) : EMPTY,
  };
  if (maxBytes !== undefined) rule.maxBytes = maxBytes;
  if (maxItems !== undefined) rule.maxItems = maxItems;
  if (maxItemBytes !== undefined) rule.maxItemBytes = maxItemBytes;
  return Object.freeze(rule);
}

function parseAll(
  names: readonly string[],
  argTypes: Record<string, unknown>,
): ParseArgTypesResult {
  const rules: ArgRule[] = [];
  const invalid: string[] = [];
  for (const name of names) {
    const rule = parseSpec(name, argTypes[name]);
    if (rule === null) invalid.push(name);
    else rules.push(rule);
  }
  if (invalid.length > 0) {
    return { ok: false, detail: `invalid arg_types configuration for: ${inspectList(invalid)}` };
  }
  return { ok: true, rules };
}

/**
 * Parses `arg_types` + `arg_orders`. `rules: null` means "no declared arguments" (client args pass
 * through unchecked); `[]` means "declared: no arguments".
 */
export function parseArgTypes(argTypes: unknown, argOrders: unknown): ParseArgTypesResult {
  const ordersAbsent = argOrders === null || argOrders === undefined;
  const ordersEmpty = ordersAbsent || (Array.isArray(argOrders) && argOrders.length === 0);

  if (argTypes === null || argTypes === undefined) {
    return ordersEmpty
      ? { ok: true, rules: null }
      : { ok: false, detail: 'arg_types is nil but arg_orders is not empty' };
  }
  if (!isPlainObject(argTypes))
    return { ok: false, detail: 'invalid arg_types or arg_orders format' };

  const names = Object.keys(argTypes);
  if (names.length === 0) {
    return ordersEmpty
      ? { ok: true, rules: [] }
      : { ok: false, detail: 'arg_types is empty but arg_orders is not' };
  }

  // Non-empty arg_types. Order "doesn't matter" (object key order) for null/[]/"map".
  if (ordersEmpty || argOrders === 'map') return parseAll(names, argTypes);

  if (!isStringList(argOrders))
    return { ok: false, detail: 'invalid arg_types or arg_orders format' };

  if (names.length !== argOrders.length) {
    return {
      ok: false,
      detail: `arg_types count (${names.length}) does not match arg_orders count (${argOrders.length})`,
    };
  }
  const typeSet = new Set(names);
  const orderSet = new Set(argOrders);
  const missing = names.filter((name) => !orderSet.has(name)).sort();
  const extra = [...orderSet].filter((name) => !typeSet.has(name)).sort();
  if (missing.length > 0 || extra.length > 0) {
    return {
      ok: false,
      detail: `arg mismatch, missing: ${inspectList(missing)}, extra: ${inspectList(extra)}`,
    };
  }
  return parseAll(argOrders, argTypes);
}
