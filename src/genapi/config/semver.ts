/**
 * Semantic-version ordering for function-config versions (Elixir `Version.compare/2`, as used by
 * PhoenixGenApi's ConfigDb). A version that does not parse as strict SemVer 2.0.0 counts as 0.0.0
 * (ConfigDb.get_fast's rule; the port applies it to get_latest too instead of raising).
 */

interface ParsedVersion {
  readonly major: string;
  readonly minor: string;
  readonly patch: string;
  /** Pre-release identifiers; empty for a release. */
  readonly pre: readonly string[];
}

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

const ZERO: ParsedVersion = { major: '0', minor: '0', patch: '0', pre: [] };

export function parseVersion(version: string): ParsedVersion | null {
  const match = SEMVER.exec(version);
  if (match === null) return null;
  return {
    major: match[1] ?? '0',
    minor: match[2] ?? '0',
    patch: match[3] ?? '0',
    pre: match[4] === undefined ? [] : match[4].split('.'),
  };
}

const NUMERIC = /^\d+$/;

/** Compares canonical decimal strings (no leading zeros) without precision loss. */
function compareNumeric(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareIdentifier(a: string, b: string): number {
  const aNum = NUMERIC.test(a);
  const bNum = NUMERIC.test(b);
  if (aNum && bNum) return compareNumeric(a, b);
  if (aNum) return -1; // numeric identifiers have lower precedence than alphanumeric ones
  if (bNum) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareParsed(a: ParsedVersion, b: ParsedVersion): number {
  const core =
    compareNumeric(a.major, b.major) ||
    compareNumeric(a.minor, b.minor) ||
    compareNumeric(a.patch, b.patch);
  if (core !== 0) return core;
  // A pre-release orders below its release.
  if (a.pre.length === 0 || b.pre.length === 0) {
    return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  }
  const n = Math.min(a.pre.length, b.pre.length);
  for (let i = 0; i < n; i++) {
    const c = compareIdentifier(a.pre[i] as string, b.pre[i] as string);
    if (c !== 0) return c;
  }
  return a.pre.length === b.pre.length ? 0 : a.pre.length < b.pre.length ? -1 : 1;
}

/** -1, 0 or 1. Build metadata is ignored; unparsable versions count as 0.0.0. */
export function compareVersions(a: string, b: string): number {
  return compareParsed(parseVersion(a) ?? ZERO, parseVersion(b) ?? ZERO);
}
