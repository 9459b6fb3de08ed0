/**
 * A small, bounded decoder for the Erlang External Term Format (`:erlang.term_to_binary`), only
 * the subset Phoenix.Token payloads use: integers (small, 32-bit, bignums), floats, atoms,
 * binaries, lists (proper only), charlists (STRING_EXT), maps and tuples. Everything else
 * (compressed terms, pids, refs, funs, bit strings, old string floats, improper lists) is refused.
 *
 * The input is a token payload an attacker may have chosen the bytes of only if they hold the
 * signing key, but it is still decoded as hostile input: every count is checked against the bytes
 * left before anything is allocated, depth and element count are capped, and the only thing it
 * throws is an EtfDecodeError.
 */

import { GatewayError } from '../errors.js';

/** Limits of one decode. Every limit refuses the input with an EtfDecodeError of kind `limit`. */
export interface EtfLimits {
  /** Input longer than this (bytes, version byte included) is refused. Default 8192. */
  readonly maxBytes?: number;
  /** Terms nested deeper than this (the outer term is depth 1) are refused. Default 32. */
  readonly maxDepth?: number;
  /** More terms than this in all (every list item, map key and value counts) are refused. Default 2048. */
  readonly maxElements?: number;
}

/** The default limits (a Phoenix.Token payload for a user id is well under 100 bytes). */
export const ETF_DEFAULTS = {
  /** A token's size bound: 8 KiB. */
  maxBytes: 8192,
  /** Deep enough for any data a socket token carries. */
  maxDepth: 32,
  /** Terms in all. */
  maxElements: 2048,
} as const satisfies Required<EtfLimits>;

/** Why a payload did not decode. */
export type EtfDecodeErrorKind = 'truncated' | 'malformed' | 'unsupported' | 'limit';

/** The one error decodeEtf throws. Internal: the phoenixToken strategy turns it into an AuthFailure. */
export class EtfDecodeError extends GatewayError {
  override readonly name = 'EtfDecodeError';
  /** What went wrong: input ended early, bad bytes, a term kind outside the subset, a limit. */
  readonly kind: EtfDecodeErrorKind;
  constructor(kind: EtfDecodeErrorKind, message: string) {
    super('ERR_ETF_DECODE', message);
    this.kind = kind;
  }
}

/** A decoded term. Integers are always bigint (exact); binaries are views into the input. */
export type EtfTerm =
  | { readonly type: 'integer'; readonly value: bigint }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'atom'; readonly name: string }
  | { readonly type: 'binary'; readonly bytes: Uint8Array }
  | { readonly type: 'list'; readonly items: readonly EtfTerm[] }
  | { readonly type: 'tuple'; readonly items: readonly EtfTerm[] }
  | { readonly type: 'map'; readonly entries: readonly (readonly [EtfTerm, EtfTerm])[] };

// Tags (erl_ext_dist).
const VERSION = 131;
const NEW_FLOAT_EXT = 70;
const COMPRESSED = 80;
const SMALL_INTEGER_EXT = 97;
const INTEGER_EXT = 98;
const ATOM_EXT = 100;
const SMALL_TUPLE_EXT = 104;
const LARGE_TUPLE_EXT = 105;
const NIL_EXT = 106;
const STRING_EXT = 107;
const LIST_EXT = 108;
const BINARY_EXT = 109;
const SMALL_BIG_EXT = 110;
const LARGE_BIG_EXT = 111;
const SMALL_ATOM_EXT = 115;
const MAP_EXT = 116;
const ATOM_UTF8_EXT = 118;
const SMALL_ATOM_UTF8_EXT = 119;

/** Erlang atoms have at most 255 characters (so at most 1020 UTF-8 bytes). */
const MAX_ATOM_CHARS = 255;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes `bytes` (version byte 131 first) into one term; the whole input must be that term. */
export function decodeEtf(bytes: Uint8Array, limits: EtfLimits = {}): EtfTerm {
  const maxBytes = limits.maxBytes ?? ETF_DEFAULTS.maxBytes;
  const maxDepth = limits.maxDepth ?? ETF_DEFAULTS.maxDepth;
  const maxElements = limits.maxElements ?? ETF_DEFAULTS.maxElements;
  if (bytes.length > maxBytes) {
    throw new EtfDecodeError('limit', `input of ${bytes.length} bytes over maxBytes ${maxBytes}`);
  }
  if (bytes.length === 0) throw new EtfDecodeError('truncated', 'empty input');
  if (bytes[0] !== VERSION) {
    throw new EtfDecodeError('malformed', `version byte ${bytes[0]}, expected ${VERSION}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 1;
  let elements = 0;

  const need = (n: number): void => {
    if (n > bytes.length - pos) {
      throw new EtfDecodeError(
        'truncated',
        `needs ${n} bytes at offset ${pos}, has ${bytes.length - pos}`,
      );
    }
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2);
    const value = view.getUint16(pos);
    pos += 2;
    return value;
  };
  const u32 = (): number => {
    need(4);
    const value = view.getUint32(pos);
    pos += 4;
    return value;
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const slice = bytes.subarray(pos, pos + n);
    pos += n;
    return slice;
  };
  // A count of items, each at least `minBytes` long: refuse it before allocating for it.
  const count = (n: number, minBytes: number, what: string): number => {
    if (n * minBytes > bytes.length - pos) {
      throw new EtfDecodeError(
        'truncated',
        `${what} of ${n} does not fit in ${bytes.length - pos} bytes`,
      );
    }
    return n;
  };
  const atom = (length: number, encoding: 'latin1' | 'utf8'): EtfTerm => {
    // A Latin-1 character is one byte, a UTF-8 one at most four.
    if (length > MAX_ATOM_CHARS * (encoding === 'latin1' ? 1 : 4)) {
      throw new EtfDecodeError('malformed', `atom longer than ${MAX_ATOM_CHARS} characters`);
    }
    const raw = take(length);
    let name: string;
    if (encoding === 'latin1') {
      // Byte = code point (WHATWG's 'latin1' label is windows-1252, so not TextDecoder).
      name = String.fromCharCode(...raw);
    } else {
      try {
        name = utf8.decode(raw);
      } catch {
        throw new EtfDecodeError('malformed', 'atom is not valid UTF-8');
      }
    }
    // Code points, not UTF-16 units: the limit is Erlang's.
    if ([...name].length > MAX_ATOM_CHARS) {
      throw new EtfDecodeError('malformed', `atom longer than ${MAX_ATOM_CHARS} characters`);
    }
    return { type: 'atom', name };
  };
  const big = (n: number): EtfTerm => {
    const sign = u8();
    if (sign > 1) throw new EtfDecodeError('malformed', `bignum sign byte ${sign}`);
    const digits = take(n);
    // Little-endian bytes to hex, most significant first.
    let hex = '';
    for (let i = digits.length - 1; i >= 0; i--) {
      hex += (digits[i] as number).toString(16).padStart(2, '0');
    }
    const magnitude = hex === '' ? 0n : BigInt(`0x${hex}`);
    return { type: 'integer', value: sign === 1 ? -magnitude : magnitude };
  };

  const term = (depth: number): EtfTerm => {
    if (depth > maxDepth)
      throw new EtfDecodeError('limit', `nested deeper than maxDepth ${maxDepth}`);
    if (++elements > maxElements) {
      throw new EtfDecodeError('limit', `more than maxElements ${maxElements} terms`);
    }
    const tag = u8();
    switch (tag) {
      case SMALL_INTEGER_EXT:
        return { type: 'integer', value: BigInt(u8()) };
      case INTEGER_EXT: {
        need(4);
        const value = view.getInt32(pos);
        pos += 4;
        return { type: 'integer', value: BigInt(value) };
      }
      case SMALL_BIG_EXT:
        return big(u8());
      case LARGE_BIG_EXT:
        return big(u32());
      case NEW_FLOAT_EXT: {
        need(8);
        const value = view.getFloat64(pos);
        pos += 8;
        // Erlang has no NaN or infinities: binary_to_term refuses them too.
        if (!Number.isFinite(value)) throw new EtfDecodeError('malformed', 'float is not finite');
        return { type: 'float', value };
      }
      case ATOM_EXT:
        return atom(u16(), 'latin1');
      case SMALL_ATOM_EXT:
        return atom(u8(), 'latin1');
      case ATOM_UTF8_EXT:
        return atom(u16(), 'utf8');
      case SMALL_ATOM_UTF8_EXT:
        return atom(u8(), 'utf8');
      case BINARY_EXT:
        return { type: 'binary', bytes: take(u32()) };
      case NIL_EXT:
        return { type: 'list', items: [] };
      case STRING_EXT: {
        // A charlist packed as bytes: each byte is a list item (and counts as an element).
        const raw = take(u16());
        elements += raw.length;
        if (elements > maxElements) {
          throw new EtfDecodeError('limit', `more than maxElements ${maxElements} terms`);
        }
        const items: EtfTerm[] = [];
        for (const byte of raw) items.push({ type: 'integer', value: BigInt(byte) });
        return { type: 'list', items };
      }
      case LIST_EXT: {
        const n = count(u32(), 1, 'list');
        const items: EtfTerm[] = [];
        for (let i = 0; i < n; i++) items.push(term(depth + 1));
        // The tail of a proper list is NIL; an improper list is outside the subset.
        if (u8() !== NIL_EXT) throw new EtfDecodeError('unsupported', 'improper list');
        return { type: 'list', items };
      }
      case SMALL_TUPLE_EXT:
      case LARGE_TUPLE_EXT: {
        const n = count(tag === SMALL_TUPLE_EXT ? u8() : u32(), 1, 'tuple');
        const items: EtfTerm[] = [];
        for (let i = 0; i < n; i++) items.push(term(depth + 1));
        return { type: 'tuple', items };
      }
      case MAP_EXT: {
        const n = count(u32(), 2, 'map');
        const entries: [EtfTerm, EtfTerm][] = [];
        for (let i = 0; i < n; i++) {
          const key = term(depth + 1);
          entries.push([key, term(depth + 1)]);
        }
        return { type: 'map', entries };
      }
      case COMPRESSED:
        throw new EtfDecodeError('unsupported', 'compressed term');
      default:
        throw new EtfDecodeError('unsupported', `term tag ${tag}`);
    }
  };

  const result = term(1);
  // term_to_binary output is exactly one term: trailing bytes mean it was not made by it.
  if (pos !== bytes.length) {
    throw new EtfDecodeError('malformed', `${bytes.length - pos} bytes after the term`);
  }
  return result;
}

/** A JSON-safe value: what a decoded term becomes in socket assigns. */
export type PlainValue =
  null | boolean | number | string | readonly PlainValue[] | { readonly [key: string]: PlainValue };

/**
 * A term as a JSON-safe value: integers within ±2^53 become numbers and larger ones decimal
 * strings (JSON has no bigint); atoms become strings, except nil → null and true/false →
 * booleans; binaries become strings (UTF-8; invalid sequences become U+FFFD); lists and tuples
 * become arrays; maps become objects keyed by an atom key's name (nil too) or the plain form of
 * the key (JSON-encoded unless a string), the later of two equal keys winning.
 */
export function etfToPlain(term: EtfTerm): PlainValue {
  switch (term.type) {
    case 'integer':
      return term.value >= BigInt(Number.MIN_SAFE_INTEGER) &&
        term.value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(term.value)
        : term.value.toString();
    case 'float':
      return term.value;
    case 'atom':
      return term.name === 'nil'
        ? null
        : term.name === 'true'
          ? true
          : term.name === 'false'
            ? false
            : term.name;
    case 'binary':
      return lossyUtf8.decode(term.bytes);
    case 'list':
    case 'tuple':
      return term.items.map(etfToPlain);
    case 'map':
      // fromEntries defines own properties, so a "__proto__" key is data, not a prototype.
      return Object.fromEntries(
        term.entries.map(([key, value]) => {
          const plainKey = key.type === 'atom' ? key.name : etfToPlain(key);
          return [
            typeof plainKey === 'string' ? plainKey : JSON.stringify(plainKey),
            etfToPlain(value),
          ];
        }),
      );
  }
}

const lossyUtf8 = new TextDecoder('utf-8');

/** A binary's text if it is valid UTF-8, else null. */
export function etfBinaryText(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
