/**
 * Minimal ambient types for `semver` (installed as a dependency of the dev tools; it ships no
 * types and @types/semver is not installed), covering what the tests use.
 */
declare module 'semver' {
  /** Whether every version `sub` allows is allowed by `dom` too. */
  export function subset(sub: string, dom: string): boolean;
  /** Whether `version` is in `range`. */
  export function satisfies(version: string, range: string): boolean;
  /** The normalised range, or null when `range` is not a valid one. */
  export function validRange(range: string): string | null;
}
