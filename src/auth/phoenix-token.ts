/**
 * The `phoenixToken` strategy: accepts the tokens a Phoenix app makes with
 * `Phoenix.Token.sign(MyAppWeb.Endpoint, "user socket", user_id)` and checks them exactly as
 * `Phoenix.Token.verify` does (plug_crypto's Plug.Crypto.verify + MessageVerifier):
 *
 * - key = PBKDF2-HMAC-SHA256(secret_key_base, salt, 1000 iterations, 32 bytes), derived once;
 * - token = `protected.payload.signature`, where `protected` is literally `SFMyNTY`, `SFMzODQ` or
 *   `SFM1MTI` (base64url of HS256/HS384/HS512) and the signature is the HMAC of the text
 *   `protected.payload` as it stands in the token;
 * - payload = term_to_binary of `{data, signed_at_ms, max_age_s}`, or the legacy `{data,
 *   signed_at_ms}` and `%{data: _, signed: _}` (both with max_age 86400);
 * - the verify-time max age, when set, replaces the token's own; max age <= 0 is expired,
 *   signed_at in the future invalid, signed_at + max_age < now expired.
 */
import { createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../config/errors.js';
import {
  decodeEtf,
  EtfDecodeError,
  etfBinaryText,
  etfToPlain,
  type EtfTerm,
  type PlainValue,
} from './etf.js';
import {
  authFailure,
  type AuthFailure,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

/** Which entries of a map token's data give the identity (atom or string keys alike). */
export interface PhoenixTokenKeys {
  /** The user id entry (a string or an integer). Default `user_id`. */
  readonly userId?: string;
  /** The device id entry (a string or an integer; absent or nil: none). Default `device_id`. */
  readonly deviceId?: string;
  /** The roles entry (a list of strings or atoms; absent or nil: none). Default `roles`. */
  readonly roles?: string;
}

/** The config file's `auth.phoenixToken` section. */
export interface PhoenixTokenOptions {
  /** The Phoenix endpoint's `secret_key_base` (the same one the app signs with). Required. */
  readonly secretKeyBase: string;
  /** The salt the app signs with, e.g. `"user socket"`. Required. */
  readonly salt: string;
  /**
   * Seconds a token is accepted after it was signed, like `Phoenix.Token.verify(..., max_age:)`:
   * it replaces the max age signed into the token. `null`: use the token's own max age (what
   * verify does without `max_age`; Phoenix.Token.sign embeds 86400 unless told otherwise).
   * Default 86400.
   */
  readonly maxAge?: number | null;
  /** Which map entries give the identity when the token's data is a map. */
  readonly keys?: PhoenixTokenKeys;
  /** Longer tokens are refused before any work (characters). Default 8192. */
  readonly maxTokenLength?: number;
}

/** Defaults of PhoenixTokenOptions, and the fixed key-derivation parameters (plug_crypto's). */
export const PHOENIX_TOKEN_DEFAULTS = {
  /** One day, Phoenix.Token's default. */
  maxAge: 86400,
  keys: { userId: 'user_id', deviceId: 'device_id', roles: 'roles' },
  /** A socket token for a user id is about 100 characters; 8 KiB leaves room for map data. */
  maxTokenLength: 8192,
  /** Plug.Crypto.KeyGenerator as Phoenix.Token calls it (not configurable there either). */
  keyIterations: 1000,
  keyLength: 32,
  keyDigest: 'sha256',
} as const;

/** The legacy payload forms carry no max age: plug_crypto gives them one day. */
const LEGACY_MAX_AGE: EtfTerm = { type: 'integer', value: 86400n };

const DIGESTS: Readonly<Record<string, string>> = {
  SFMyNTY: 'sha256',
  SFMzODQ: 'sha384',
  SFM1MTI: 'sha512',
};

const OPTION_NAMES = new Set(['secretKeyBase', 'salt', 'maxAge', 'keys', 'maxTokenLength']);
const KEY_NAMES = new Set(['userId', 'deviceId', 'roles']);

/** A verified token: its data term and when it stops being accepted. */
export interface VerifiedPhoenixToken {
  /** The signed data, as decoded. */
  readonly data: EtfTerm;
  /**
   * Epoch ms after which verify answers expired (valid while now <= expiresAt); null: never
   * (max age :infinity, or later than a Date can hold).
   */
  readonly expiresAt: number | null;
}

/** The signing key for `secretKeyBase` and `salt`, as Plug.Crypto.KeyGenerator derives it. */
export function derivePhoenixTokenKey(secretKeyBase: string, salt: string): Buffer {
  const d = PHOENIX_TOKEN_DEFAULTS;
  return pbkdf2Sync(secretKeyBase, salt, d.keyIterations, d.keyLength, d.keyDigest);
}

/**
 * Phoenix.Token.verify with a derived key: `maxAgeS` is verify's `max_age` (null: the token's
 * own), `nowMs` the wall clock. Never throws; failures are `missing` (no token), `invalid` (what
 * verify calls invalid), `expired`, or `malformed` (correctly signed, but a payload verify would
 * crash on or that is outside the decoder's subset and limits).
 */
export function verifyPhoenixToken(
  key: Uint8Array,
  token: string | null,
  maxAgeS: number | null,
  nowMs: number,
  maxTokenLength: number = PHOENIX_TOKEN_DEFAULTS.maxTokenLength,
): VerifiedPhoenixToken | AuthFailure {
  if (token === null) return authFailure('missing', 'no token');
  if (token.length > maxTokenLength) {
    return authFailure(
      'invalid',
      `token of ${token.length} characters over maxTokenLength ${maxTokenLength}`,
    );
  }
  const parts = token.split('.');
  if (parts.length !== 3) return authFailure('invalid', `token has ${parts.length} parts, not 3`);
  const [protectedPart, payloadPart, signaturePart] = parts as [string, string, string];
  const digest = Object.hasOwn(DIGESTS, protectedPart) ? DIGESTS[protectedPart] : undefined;
  if (digest === undefined)
    return authFailure('invalid', 'token algorithm is not HS256/HS384/HS512');
  const payload = decodeBase64Url(payloadPart);
  const signature = decodeBase64Url(signaturePart);
  if (payload === null || signature === null)
    return authFailure('invalid', 'token is not base64url');
  // Signed text: the first two parts as they stand in the token (all ASCII, checked above).
  const challenge = createHmac(digest, key)
    .update(token.slice(0, protectedPart.length + 1 + payloadPart.length), 'latin1')
    .digest();
  if (challenge.length !== signature.length || !timingSafeEqual(challenge, signature)) {
    return authFailure('invalid', 'token signature does not match');
  }

  let term: EtfTerm;
  try {
    term = decodeEtf(payload, { maxBytes: maxTokenLength });
  } catch (error) {
    if (!(error instanceof EtfDecodeError)) throw error;
    return authFailure('malformed', `signed payload does not decode: ${error.message}`);
  }
  const parsed = payloadParts(term);
  if (parsed === null)
    return authFailure('malformed', 'signed payload is not {data, signed_at, max_age}');
  const maxAge: EtfTerm =
    maxAgeS === null
      ? parsed.maxAge
      : Number.isInteger(maxAgeS)
        ? { type: 'integer', value: BigInt(maxAgeS) }
        : { type: 'float', value: maxAgeS };
  return checkAge(parsed.data, parsed.signed, maxAge, nowMs);
}

/** plug_crypto's decode: the three payload shapes it accepts, else null (where it would crash). */
function payloadParts(term: EtfTerm): { data: EtfTerm; signed: EtfTerm; maxAge: EtfTerm } | null {
  if (term.type === 'tuple' && term.items.length === 3) {
    const [data, signed, maxAge] = term.items as [EtfTerm, EtfTerm, EtfTerm];
    return { data, signed, maxAge };
  }
  if (term.type === 'tuple' && term.items.length === 2) {
    const [data, signed] = term.items as [EtfTerm, EtfTerm];
    return { data, signed, maxAge: LEGACY_MAX_AGE };
  }
  if (term.type === 'map') {
    // %{data: data, signed: signed}: atom keys, other entries allowed.
    const atomEntry = (name: string): EtfTerm | undefined =>
      term.entries.find(([k]) => k.type === 'atom' && k.name === name)?.[1];
    const data = atomEntry('data');
    const signed = atomEntry('signed');
    if (data !== undefined && signed !== undefined) return { data, signed, maxAge: LEGACY_MAX_AGE };
  }
  return null;
}

/** A numeric term: integers exact (bigint), floats as numbers; else null. */
function numeric(term: EtfTerm): bigint | number | null {
  if (term.type === 'integer') return term.value;
  if (term.type === 'float') return term.value;
  return null;
}

/** The last epoch ms a JS Date can hold: later expiries are "never" in practice. */
const MAX_DATE_MS = 8.64e15;

/**
 * plug_crypto's validate_age, in its order and with Erlang's arithmetic: integers exact, and
 * where Erlang would fail (a non-numeric max age, a float overflow) the payload is malformed.
 * JS compares bigint with number exactly, so mixed comparisons need no conversion.
 */
function checkAge(
  data: EtfTerm,
  signedTerm: EtfTerm,
  maxAgeTerm: EtfTerm,
  nowMs: number,
): VerifiedPhoenixToken | AuthFailure {
  if (maxAgeTerm.type === 'atom' && maxAgeTerm.name === 'infinity') {
    return { data, expiresAt: null };
  }
  const maxAge = numeric(maxAgeTerm);
  if (maxAge !== null && maxAge <= 0) return authFailure('expired', 'token max age is 0 or less');
  // In Erlang's term order every non-number is greater than any number, so a non-numeric
  // signed_at counts as "in the future".
  const signedAt = numeric(signedTerm);
  if (signedAt === null || signedAt > nowMs) {
    return authFailure('invalid', 'token signed in the future');
  }
  if (maxAge === null) return authFailure('malformed', 'signed payload max age is not a number');
  // trunc(max_age * 1000) is an integer; signed_at + it is exact unless signed_at is a float.
  const scaled = typeof maxAge === 'bigint' ? maxAge * 1000n : maxAge * 1000;
  if (typeof scaled === 'number' && !Number.isFinite(scaled)) {
    return authFailure('malformed', 'signed payload max age overflows');
  }
  const window = typeof scaled === 'bigint' ? scaled : BigInt(Math.trunc(scaled));
  const expiry = typeof signedAt === 'bigint' ? signedAt + window : signedAt + Number(window);
  if (typeof expiry === 'number' && !Number.isFinite(expiry)) {
    return authFailure('malformed', 'signed payload age overflows');
  }
  if (expiry < nowMs)
    return authFailure('expired', `token expired ${nowMs - Number(expiry)} ms ago`);
  const expiresAt = Number(expiry);
  return { data, expiresAt: expiresAt > MAX_DATE_MS ? null : expiresAt };
}

/** Strict base64url without padding: the canonical text of some bytes, else null. */
function decodeBase64Url(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Refuses stray bits in the last character: one token text per signature.
  return bytes.toString('base64url') === text ? bytes : null;
}

/** The identity part of a verified token's data (expiresAt comes from the token's age). */
export type PhoenixTokenIdentity = Omit<Identity, 'expiresAt'>;

/**
 * The identity a token's data gives: a string (non-empty, UTF-8) or an integer is the user id; a
 * map gives user id, device id and roles by `keys` (atom or string keys; the same name as both
 * is ambiguous, so invalid) and its other entries become assigns (etfToPlain); anything else is
 * invalid.
 */
export function phoenixTokenIdentity(
  data: EtfTerm,
  keys: Required<PhoenixTokenKeys> = PHOENIX_TOKEN_DEFAULTS.keys,
): PhoenixTokenIdentity | AuthFailure {
  if (data.type !== 'map') {
    const userId = idString(data);
    if (userId === null)
      return authFailure('invalid', `token data is ${describe(data)}, not a user id or map`);
    return { userId, deviceId: null, roles: [], assigns: {} };
  }
  const used = new Set<number>();
  const entry = (name: string): EtfTerm | undefined | AuthFailure => {
    let found: EtfTerm | undefined;
    for (const [i, [key, value]] of data.entries.entries()) {
      const keyName =
        key.type === 'atom' ? key.name : key.type === 'binary' ? etfBinaryText(key.bytes) : null;
      if (keyName !== name) continue;
      if (found !== undefined)
        return authFailure('invalid', `token data has "${name}" twice (atom and string)`);
      found = value;
      used.add(i);
    }
    return found;
  };
  const isNil = (term: EtfTerm | undefined): boolean =>
    term === undefined || (term.type === 'atom' && term.name === 'nil');

  const userTerm = entry(keys.userId);
  if (isFailure(userTerm)) return userTerm;
  const userId = userTerm === undefined ? null : idString(userTerm);
  if (userId === null) return authFailure('invalid', `token data has no usable "${keys.userId}"`);

  const deviceTerm = entry(keys.deviceId);
  if (isFailure(deviceTerm)) return deviceTerm;
  const deviceId = isNil(deviceTerm) ? null : idString(deviceTerm as EtfTerm);
  if (!isNil(deviceTerm) && deviceId === null) {
    return authFailure('invalid', `token data "${keys.deviceId}" is not a string or integer`);
  }

  const rolesTerm = entry(keys.roles);
  if (isFailure(rolesTerm)) return rolesTerm;
  const roles: string[] = [];
  if (!isNil(rolesTerm)) {
    if (rolesTerm?.type !== 'list')
      return authFailure('invalid', `token data "${keys.roles}" is not a list`);
    for (const item of rolesTerm.items) {
      const role = roleString(item);
      if (role === null)
        return authFailure('invalid', `token data "${keys.roles}" holds a non-string`);
      roles.push(role);
    }
  }

  const rest = data.entries.filter((_, i) => !used.has(i));
  const assigns = etfToPlain({ type: 'map', entries: rest }) as Record<string, PlainValue>;
  return { userId, deviceId, roles, assigns };
}

function isFailure(value: EtfTerm | undefined | AuthFailure): value is AuthFailure {
  return value !== undefined && 'failed' in value;
}

/** A user or device id: a non-empty UTF-8 binary, or an integer in decimal. */
function idString(term: EtfTerm): string | null {
  if (term.type === 'integer') return term.value.toString();
  if (term.type === 'binary') {
    const text = etfBinaryText(term.bytes);
    return text === null || text === '' ? null : text;
  }
  return null;
}

/** A role: a non-empty UTF-8 binary, or an atom other than nil/true/false. */
function roleString(term: EtfTerm): string | null {
  if (term.type === 'atom') return ['nil', 'true', 'false'].includes(term.name) ? null : term.name;
  if (term.type !== 'binary') return null;
  const text = etfBinaryText(term.bytes);
  return text === '' ? null : text;
}

/** A term's kind for a log line (never its content: that may be personal data). */
function describe(term: EtfTerm): string {
  return term.type === 'binary' ? 'an empty or non-UTF-8 binary' : `of type ${term.type}`;
}

/**
 * The phoenixToken strategy. Checks the options (ConfigError naming the setting) and derives the
 * key once, here: PBKDF2 is slow on purpose. `clock` gives wall-clock epoch ms (tests pass a
 * fixed one).
 */
export function createPhoenixTokenStrategy(
  options: PhoenixTokenOptions,
  clock: () => number = Date.now,
): AuthStrategy {
  const checked = checkOptions(options);
  const key = derivePhoenixTokenKey(checked.secretKeyBase, checked.salt);
  const authenticate = (request: AuthRequest): Identity | AuthFailure => {
    const verified = verifyPhoenixToken(
      key,
      request.token,
      checked.maxAge,
      clock(),
      checked.maxTokenLength,
    );
    if ('failed' in verified) return verified;
    const identity = phoenixTokenIdentity(verified.data, checked.keys);
    if ('failed' in identity) return identity;
    return { ...identity, expiresAt: verified.expiresAt };
  };
  return {
    name: 'phoenixToken',
    authenticate(request) {
      try {
        return Promise.resolve(authenticate(request));
      } catch (error) {
        // Not expected (every path returns a failure); the contract is never to throw.
        return Promise.resolve(authFailure('invalid', `phoenixToken: ${String(error)}`));
      }
    },
  };
}

interface CheckedOptions {
  readonly secretKeyBase: string;
  readonly salt: string;
  readonly maxAge: number | null;
  readonly keys: Required<PhoenixTokenKeys>;
  readonly maxTokenLength: number;
}

const nonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value !== '';

function checkOptions(options: PhoenixTokenOptions): CheckedOptions {
  const at = 'auth.phoenixToken';
  // Options come from a JSON file: check them as unknown, whatever their declared type says.
  const raw: unknown = options;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${at} must be an object`);
  }
  const given = raw as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!OPTION_NAMES.has(name)) throw new ConfigError(`${at} has no setting "${name}"`);
  }
  if (!nonEmptyString(given.secretKeyBase)) {
    throw new ConfigError(
      `${at}.secretKeyBase must be a non-empty string (the endpoint's secret_key_base)`,
    );
  }
  if (!nonEmptyString(given.salt)) {
    throw new ConfigError(`${at}.salt must be a non-empty string (the salt the app signs with)`);
  }
  const maxAge = given.maxAge === undefined ? PHOENIX_TOKEN_DEFAULTS.maxAge : given.maxAge;
  if (maxAge !== null && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    throw new ConfigError(
      `${at}.maxAge must be a positive number of seconds, or null for the token's own`,
    );
  }
  const maxTokenLength = given.maxTokenLength ?? PHOENIX_TOKEN_DEFAULTS.maxTokenLength;
  if (
    typeof maxTokenLength !== 'number' ||
    !Number.isInteger(maxTokenLength) ||
    maxTokenLength < 1
  ) {
    throw new ConfigError(`${at}.maxTokenLength must be a positive integer`);
  }
  const keysRaw = given.keys ?? {};
  if (typeof keysRaw !== 'object' || keysRaw === null || Array.isArray(keysRaw)) {
    throw new ConfigError(`${at}.keys must be an object`);
  }
  const keysGiven = keysRaw as Record<string, unknown>;
  const keys: Record<string, string> = { ...PHOENIX_TOKEN_DEFAULTS.keys };
  for (const [name, value] of Object.entries(keysGiven)) {
    if (!KEY_NAMES.has(name)) throw new ConfigError(`${at}.keys has no setting "${name}"`);
    if (value === undefined) continue;
    if (!nonEmptyString(value))
      throw new ConfigError(`${at}.keys.${name} must be a non-empty string`);
    keys[name] = value;
  }
  return {
    secretKeyBase: given.secretKeyBase,
    salt: given.salt,
    maxAge,
    keys: keys as Required<PhoenixTokenKeys>,
    maxTokenLength,
  };
}
