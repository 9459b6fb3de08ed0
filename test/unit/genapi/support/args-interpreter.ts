/**
 * The argument interpreter as it was before issue 15 compiled the checks (src/genapi/args/
 * compile.ts): kept verbatim as the oracle args-compiled.test.ts compares the compiled checker
 * against. Per call it rebuilds closures, a Set and the inspected argument name, which is what the
 * compiler removed; its results and error texts are the reference.
 */
import type { ArgRule } from '../../../../src/genapi/types.js';
import { parseDatetime, parseNaiveDatetime } from '../../../../src/genapi/args/datetime.js';
import { ArgumentError } from '../../../../src/genapi/args/errors.js';
import { inspect } from '../../../../src/genapi/args/inspect.js';
import { DEFAULT_ARG_LIMITS, type ArgLimits } from '../../../../src/genapi/args/convert.js';

/**
 * The oracle: checks `args` against `rules` and returns the converted arguments.
 * `rules === null` (no `arg_types` declared): `args` is returned as is, unchecked.
 */
export function interpretArgs(
  rules: readonly ArgRule[] | null,
  args: Record<string, unknown>,
  requestType: string,
  limits: ArgLimits = DEFAULT_ARG_LIMITS,
): Record<string, unknown> {
  if (rules === null) return args;

  const declared = new Set(rules.map((rule) => rule.name));
  const extra = Object.keys(args).filter((key) => !declared.has(key));
  if (extra.length > 0) {
    throw new ArgumentError(
      `extra arguments for ${inspect(requestType)}, extra: ${inspect(extra)}`,
    );
  }

  const result: Record<string, unknown> = {};
  for (const rule of rules) {
    const value = Object.hasOwn(args, rule.name) ? args[rule.name] : rule.defaultValue;
    let converted: unknown;
    if (value === null || value === undefined) {
      if (!rule.allowNil) {
        throw new ArgumentError(
          `missing or nil argument ${inspect(rule.name)} in ${inspect(requestType)}`,
        );
      }
      converted = null;
    } else {
      converted = convertValue(rule, value, requestType, limits);
    }
    // defineProperty: an argument named "__proto__" must stay a plain own key.
    Object.defineProperty(result, rule.name, {
      value: converted,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return result;
}

function convertValue(rule: ArgRule, value: unknown, rt: string, limits: ArgLimits): unknown {
  const name = inspect(rule.name);
  /** The rule's own limit when the spec carried parameters, else the global one. */
  const limit = (own: number | undefined, global: number): number =>
    rule.hasParams && own !== undefined ? own : global;
  const typeError = (expected: string): ArgumentError =>
    new ArgumentError(
      `invalid argument type for ${name}, expected ${expected}, got ${inspect(value)}`,
    );
  const itemsError = (max: number): ArgumentError =>
    new ArgumentError(`invalid argument size for ${name} in ${inspect(rt)}, max ${max} items`);
  /** A list-type argument: an array within its item limit. */
  const asList = (): unknown[] => {
    if (!Array.isArray(value)) throw typeError(`:${rule.type}`);
    const max = limit(rule.maxItems, limits.listMaxItems);
    if (value.length > max) throw itemsError(max);
    return value;
  };
  const eachItem = (list: unknown[], valid: (item: unknown) => boolean): void => {
    for (const item of list) {
      if (!valid(item)) throw new ArgumentError(`unsupported type of ${inspect(item)} in list`);
    }
  };

  switch (rule.type) {
    case 'any':
      return value;

    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(':boolean');
      return value;

    case 'num':
      if (!isNum(value)) throw typeError(':num');
      return value;

    case 'string': {
      if (typeof value !== 'string') throw typeError(':string');
      const max = limit(rule.maxBytes, limits.stringMaxBytes);
      if (byteSize(value) > max) {
        throw new ArgumentError(`invalid argument size for ${name}, max ${max} bytes`);
      }
      return value;
    }

    case 'uuid':
      if (!isUuid(value)) {
        throw new ArgumentError(`invalid argument value for ${name}, require a UUID format string`);
      }
      return value;

    case 'datetime':
      if (typeof value !== 'string') throw typeError(':datetime (ISO 8601 string)');
      return parseDatetime(value);

    case 'naive_datetime':
      if (typeof value !== 'string') throw typeError(':naive_datetime (ISO 8601 string)');
      return parseNaiveDatetime(value);

    case 'map': {
      if (!isPlainObject(value)) throw typeError(':map');
      const keys = Object.keys(value);
      const max = limit(rule.maxItems, limits.mapMaxItems);
      if (keys.length > max) throw itemsError(max);
      if (rule.hasParams) {
        const missing = rule.required.filter((key) => !Object.hasOwn(value, key));
        if (missing.length > 0) {
          throw new ArgumentError(
            `map argument ${name} missing required keys: ${inspect(missing)} in ${inspect(rt)}`,
          );
        }
        if (rule.accept.length > 0) {
          const accepted = new Set(rule.accept);
          const rejected = keys.filter((key) => !accepted.has(key));
          if (rejected.length > 0) {
            throw new ArgumentError(
              `map argument ${name} contains rejected keys: ${inspect(rejected)} in ${inspect(rt)}`,
            );
          }
        }
        checkFlatMap(value, limits);
      }
      return value;
    }

    case 'list': {
      const list = asList();
      checkListItems(list, limits);
      return list;
    }

    case 'list_string': {
      const list = asList();
      const maxBytes = limit(rule.maxItemBytes, limits.stringMaxBytes);
      eachItem(list, (item) => typeof item === 'string' && byteSize(item) <= maxBytes);
      return list;
    }

    case 'list_num': {
      const list = asList();
      eachItem(list, isNum);
      return list;
    }

    case 'list_uuid': {
      const list = asList();
      eachItem(list, isUuid);
      return list;
    }

    case 'list_map': {
      const list = asList();
      eachItem(list, isPlainObject);
      return list;
    }

    default: {
      // Unreachable for a parsed config; PhoenixGenApi's text for a type it has no clause for.
      const unknown: never = rule.type;
      throw new ArgumentError(`unsupported type :${String(unknown)} for argument ${name}`);
    }
  }
}

/**
 * A map with parameters holds flat values only: booleans, numbers, strings and lists of those
 * (within the global limits), or null.
 */
function checkFlatMap(map: Record<string, unknown>, limits: ArgLimits): void {
  for (const [key, val] of Object.entries(map)) {
    if (val === null || typeof val === 'boolean' || isNum(val)) continue;
    if (typeof val === 'string') {
      if (byteSize(val) > limits.stringMaxBytes) {
        throw new ArgumentError(
          `nested map string value exceeds max byte size for key ${inspect(key)}`,
        );
      }
    } else if (Array.isArray(val)) {
      if (val.length > limits.listMaxItems) {
        throw new ArgumentError(`nested map list value exceeds max items for key ${inspect(key)}`);
      }
      checkListItems(val, limits);
    } else if (isPlainObject(val)) {
      throw new ArgumentError('nested map is not supported yet');
    } else {
      throw new ArgumentError(`unsupported type ${inspect(val)} in map for key ${inspect(key)}`);
    }
  }
}

/** Items of a `:list` (or of a list inside a map): booleans, numbers and strings only. */
function checkListItems(list: readonly unknown[], limits: ArgLimits): void {
  for (const item of list) {
    if (typeof item === 'boolean' || isNum(item)) continue;
    if (typeof item === 'string') {
      if (byteSize(item) > limits.stringMaxBytes) {
        throw new ArgumentError('string item in list exceeds max byte size');
      }
    } else if (Array.isArray(item)) {
      throw new ArgumentError('nested list is not supported yet');
    } else if (isPlainObject(item)) {
      throw new ArgumentError('nested map is not supported yet');
    } else {
      throw new ArgumentError(`unsupported type ${inspect(item)}`);
    }
  }
}

function byteSize(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const UUID_DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_HEX = /^[0-9a-f]{32}$/i;

/**
 * A UUID string in a form Uniq.UUID.valid? parses: `8-4-4-4-12` hex, 32 hex digits, either one
 * behind `urn:uuid:`; any case, any version or variant.
 */
function isUuid(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const text = value.startsWith('urn:uuid:') ? value.slice('urn:uuid:'.length) : value;
  return UUID_DASHED.test(text) || UUID_HEX.test(text);
}
