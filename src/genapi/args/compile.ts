/**
 * Argument validation + conversion (spec §3), compiled: a function's ArgRule list is turned once
 * into one checking function, so a request pays only for the checks its arguments need.
 * PhoenixGenApi's `validate_args!` followed by `convert_args!`, collapsed into one pass, with its
 * documented bugs fixed:
 * - `:any` passes anything through (PhoenixGenApi has no clause for it and crashes);
 * - a non-string for `:string` is a proper type error (PhoenixGenApi leaks Erlang's
 *   "not a bitstring" text), and so is a non-map for `:map` or a non-list for the list types;
 * - `:uuid` with parameters validates like plain `:uuid`;
 * - a datetime with offset 0 (`Z`) is accepted (see datetime.ts).
 * The result is an object with every declared argument, in declaration order: how the executor
 * lays the arguments out for the worker is not this module's concern.
 *
 * Every failure throws an ArgumentError whose message is the PhoenixGenApi text, byte for byte
 * (clients receive it). The texts (and the Elixir `inspect` of values in them) are built only
 * on the failure path: a valid call allocates the result object and nothing per argument.
 */
import type { ArgRule } from '../types.js';
import { parseDatetime, parseNaiveDatetime } from './datetime.js';
import { ArgumentError } from './errors.js';
import { inspect } from './inspect.js';
import type { ArgLimits } from './limits.js';
import { exceedsBytes, isNum, isPlainObject, isUuid } from './values.js';

/**
 * A compiled argument check: returns the converted arguments or throws an ArgumentError.
 * `requestType` appears in some error texts; `limits` are the global ones (a rule's own limits
 * were compiled in and replace them).
 */
export type ArgChecker = (
  args: Record<string, unknown>,
  requestType: string,
  limits: ArgLimits,
) => Record<string, unknown>;

/** No `arg_types` declared: the client's args pass through unchecked. */
const PASS_THROUGH: ArgChecker = (args) => args;

/**
 * Checkers by rule list. Keyed by the frozen `ResolvedFunConfig.args` array, which every copy of a
 * config shares (disable/enable and version normalisation spread the config, not its rules), so a
 * function is compiled once however its config is re-stored, and the entry goes with the config.
 */
const checkers = new WeakMap<readonly ArgRule[], ArgChecker>();

/**
 * The checker for a rule list, compiled on first use and cached (the registry asks for it when a
 * config is stored, so requests find it ready). `null` rules → the pass-through checker.
 * Only a frozen list is cached (a parsed config's is): a list that may still change is compiled
 * for this call alone, so a checker never outlives the rules it was compiled from.
 */
export function argChecker(rules: readonly ArgRule[] | null): ArgChecker {
  if (rules === null) return PASS_THROUGH;
  let checker = checkers.get(rules);
  if (checker === undefined) {
    checker = compileArgs(rules);
    if (Object.isFrozen(rules)) checkers.set(rules, checker);
  }
  return checker;
}

/** Checks one present, non-null value; returns it converted. */
type ValueCheck = (value: unknown, requestType: string, limits: ArgLimits) => unknown;

interface CompiledRule {
  readonly name: string;
  readonly allowNil: boolean;
  readonly defaultValue: unknown;
  readonly check: ValueCheck;
}

/** Compiles a rule list into one checker (uncached; `argChecker` is the cached entry point). */
export function compileArgs(rules: readonly ArgRule[]): ArgChecker {
  const declared: ReadonlySet<string> = new Set(rules.map((rule) => rule.name));
  // Every declared name as a plain own key, in declaration order. Defined, not assigned, so that
  // `__proto__` (or `toString` under a frozen prototype) is an own key too; copies by spread keep
  // them own, and a store to an own data property never reaches a prototype setter.
  const template: Record<string, unknown> = {};
  for (const rule of rules) {
    Object.defineProperty(template, rule.name, {
      value: null,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const compiled: readonly CompiledRule[] = rules.map((rule) => ({
    name: rule.name,
    allowNil: rule.allowNil,
    defaultValue: rule.defaultValue,
    check: compileValueCheck(rule),
  }));

  return (args, requestType, limits) => {
    // for-in may also list inherited enumerable keys: a hit only sends us to the exact check.
    for (const key in args) {
      if (!declared.has(key)) {
        rejectExtra(args, declared, requestType);
        break;
      }
    }
    // A copy of the template already has every key, in order: the stores below only overwrite.
    const result: Record<string, unknown> = { ...template };
    for (const rule of compiled) {
      const value = Object.hasOwn(args, rule.name) ? args[rule.name] : rule.defaultValue;
      let converted: unknown = null;
      if (value === null || value === undefined) {
        if (!rule.allowNil) {
          throw new ArgumentError(
            `missing or nil argument ${inspect(rule.name)} in ${inspect(requestType)}`,
          );
        }
      } else {
        converted = rule.check(value, requestType, limits);
      }
      result[rule.name] = converted;
    }
    return result;
  };
}

/** Throws the extra-arguments error when `args` has an own key no rule declares. */
function rejectExtra(
  args: Record<string, unknown>,
  declared: ReadonlySet<string>,
  requestType: string,
): void {
  const extra = Object.keys(args).filter((key) => !declared.has(key));
  if (extra.length > 0) {
    throw new ArgumentError(
      `extra arguments for ${inspect(requestType)}, extra: ${inspect(extra)}`,
    );
  }
}

function typeError(name: string, expected: string, value: unknown): ArgumentError {
  return new ArgumentError(
    `invalid argument type for ${inspect(name)}, expected ${expected}, got ${inspect(value)}`,
  );
}

function itemsError(name: string, requestType: string, max: number): ArgumentError {
  return new ArgumentError(
    `invalid argument size for ${inspect(name)} in ${inspect(requestType)}, max ${max} items`,
  );
}

function listItemError(item: unknown): ArgumentError {
  return new ArgumentError(`unsupported type of ${inspect(item)} in list`);
}

/** Compiles the check of one rule's value; the rule's own limits are resolved here, once. */
function compileValueCheck(rule: ArgRule): ValueCheck {
  const { name, type } = rule;
  // A rule's own limit replaces the global one only when the spec carried parameters.
  const ownMaxItems = rule.hasParams ? rule.maxItems : undefined;
  const ownMaxBytes = rule.hasParams ? rule.maxBytes : undefined;
  const ownMaxItemBytes = rule.hasParams ? rule.maxItemBytes : undefined;
  const listType = `:${type}`;

  /** A list-type argument: an array within its item limit. */
  const asList = (value: unknown, requestType: string, limits: ArgLimits): unknown[] => {
    if (!Array.isArray(value)) throw typeError(name, listType, value);
    const max = ownMaxItems ?? limits.listMaxItems;
    if (value.length > max) throw itemsError(name, requestType, max);
    return value;
  };

  switch (type) {
    case 'any':
      return (value) => value;

    case 'boolean':
      return (value) => {
        if (typeof value !== 'boolean') throw typeError(name, ':boolean', value);
        return value;
      };

    case 'num':
      return (value) => {
        if (!isNum(value)) throw typeError(name, ':num', value);
        return value;
      };

    case 'string':
      return (value, _requestType, limits) => {
        if (typeof value !== 'string') throw typeError(name, ':string', value);
        const max = ownMaxBytes ?? limits.stringMaxBytes;
        if (exceedsBytes(value, max)) {
          throw new ArgumentError(`invalid argument size for ${inspect(name)}, max ${max} bytes`);
        }
        return value;
      };

    case 'uuid':
      return (value) => {
        if (!isUuid(value)) {
          throw new ArgumentError(
            `invalid argument value for ${inspect(name)}, require a UUID format string`,
          );
        }
        return value;
      };

    case 'datetime':
      return (value) => {
        if (typeof value !== 'string') throw typeError(name, ':datetime (ISO 8601 string)', value);
        return parseDatetime(value);
      };

    case 'naive_datetime':
      return (value) => {
        if (typeof value !== 'string') {
          throw typeError(name, ':naive_datetime (ISO 8601 string)', value);
        }
        return parseNaiveDatetime(value);
      };

    case 'map':
      return compileMapCheck(rule, ownMaxItems);

    case 'list':
      return (value, requestType, limits) => {
        const list = asList(value, requestType, limits);
        checkListItems(list, limits);
        return list;
      };

    case 'list_string':
      return (value, requestType, limits) => {
        const list = asList(value, requestType, limits);
        const maxBytes = ownMaxItemBytes ?? limits.stringMaxBytes;
        for (const item of list) {
          if (typeof item !== 'string' || exceedsBytes(item, maxBytes)) throw listItemError(item);
        }
        return list;
      };

    case 'list_num':
      return (value, requestType, limits) => {
        const list = asList(value, requestType, limits);
        for (const item of list) if (!isNum(item)) throw listItemError(item);
        return list;
      };

    case 'list_uuid':
      return (value, requestType, limits) => {
        const list = asList(value, requestType, limits);
        for (const item of list) if (!isUuid(item)) throw listItemError(item);
        return list;
      };

    case 'list_map':
      return (value, requestType, limits) => {
        const list = asList(value, requestType, limits);
        for (const item of list) if (!isPlainObject(item)) throw listItemError(item);
        return list;
      };

    default: {
      // Unreachable for a parsed config; PhoenixGenApi's text for a type it has no clause for.
      const unknown: never = type;
      return () => {
        throw new ArgumentError(
          `unsupported type :${String(unknown)} for argument ${inspect(name)}`,
        );
      };
    }
  }
}

/** `:map`: a plain object within its key limit; with parameters, required/accepted keys, flat values. */
function compileMapCheck(rule: ArgRule, ownMaxItems: number | undefined): ValueCheck {
  const { name, hasParams, required } = rule;
  const accepted: ReadonlySet<string> | null = rule.accept.length > 0 ? new Set(rule.accept) : null;
  return (value, requestType, limits) => {
    if (!isPlainObject(value)) throw typeError(name, ':map', value);
    const keys = Object.keys(value);
    const max = ownMaxItems ?? limits.mapMaxItems;
    if (keys.length > max) throw itemsError(name, requestType, max);
    if (!hasParams) return value;
    for (const key of required) {
      if (!Object.hasOwn(value, key)) {
        const missing = required.filter((k) => !Object.hasOwn(value, k));
        throw new ArgumentError(
          `map argument ${inspect(name)} missing required keys: ${inspect(missing)} in ${inspect(requestType)}`,
        );
      }
    }
    if (accepted !== null) {
      for (const key of keys) {
        if (!accepted.has(key)) {
          const rejected = keys.filter((k) => !accepted.has(k));
          throw new ArgumentError(
            `map argument ${inspect(name)} contains rejected keys: ${inspect(rejected)} in ${inspect(requestType)}`,
          );
        }
      }
    }
    checkFlatMap(value, keys, limits);
    return value;
  };
}

/**
 * A map with parameters holds flat values only: booleans, numbers, strings and lists of those
 * (within the global limits), or null.
 */
function checkFlatMap(
  map: Record<string, unknown>,
  keys: readonly string[],
  limits: ArgLimits,
): void {
  for (const key of keys) {
    const val = map[key];
    if (val === null || typeof val === 'boolean' || isNum(val)) continue;
    if (typeof val === 'string') {
      if (exceedsBytes(val, limits.stringMaxBytes)) {
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
      if (exceedsBytes(item, limits.stringMaxBytes)) {
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
