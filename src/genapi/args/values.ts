/**
 * The value tests argument checking is made of (spec §3): what counts as a number, a map, a UUID,
 * and a string's UTF-8 size measured only when its length cannot decide the limit alone.
 */

/** A finite JSON number. */
export function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A JSON object: an object literal or a null-prototype object (not an array, Map, Date, …). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `s` is more than `max` UTF-8 bytes. A UTF-16 code unit is 1 to 3 UTF-8 bytes (a
 * surrogate pair: 2 units, 4 bytes; a lone surrogate: 3 bytes as U+FFFD), so the length alone
 * decides unless it lies between max / 3 and max; only then are the bytes counted.
 */
export function exceedsBytes(s: string, max: number): boolean {
  if (s.length > max) return true;
  if (s.length * 3 <= max) return false;
  return Buffer.byteLength(s, 'utf8') > max;
}

const UUID_DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_HEX = /^[0-9a-f]{32}$/i;
const URN_PREFIX = 'urn:uuid:';

/**
 * A UUID string in a form Uniq.UUID.valid? parses: `8-4-4-4-12` hex, 32 hex digits, either one
 * behind `urn:uuid:`; any case, any version or variant. (Regular expressions: a hand-written
 * character-code loop measured slower.)
 */
export function isUuid(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const text = value.startsWith(URN_PREFIX) ? value.slice(URN_PREFIX.length) : value;
  return UUID_DASHED.test(text) || UUID_HEX.test(text);
}
