/**
 * The checks every option resolver shares: each returns the value (or its default when it is
 * undefined) and throws an OptionError that names the option otherwise.
 */
import { OptionError } from './errors.js';

export function positiveInt(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new OptionError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new OptionError(`${name} must be a boolean, got ${JSON.stringify(value)}`);
  return value;
}

/** A URL path starting with "/", without a trailing "/" (except the root). */
export function normalizePath(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/') || /[?#\s]/.test(value)) {
    throw new OptionError(`${name} must be a path starting with "/", got ${JSON.stringify(value)}`);
  }
  return value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
}

/** A positive cap, or null for "no cap". */
export function capOption(name: string, value: unknown, fallback: number | null): number | null {
  if (value === null) return null;
  if (value === undefined) return fallback;
  return positiveInt(name, value, 0);
}

export function stringList(
  name: string,
  value: unknown,
  fallback: readonly string[],
): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string'))
    throw new OptionError(`${name} must be a list of strings`);
  return value;
}

/** A typo must not silently fall back to a default: unknown options are errors. */
export function checkKeys(name: string, value: object, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new OptionError(`${name}: unknown option "${key}"`);
  }
}
