/**
 * Phoenix.Token.verify, exactly as plug_crypto does it (the checks are listed in phoenix-token.ts):
 * the key derivation, the signature over the token text, the payload shapes and the age check with
 * Erlang's arithmetic.
 */
import { createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { decodeEtf, EtfDecodeError, type EtfTerm } from './etf.js';
import { PHOENIX_TOKEN_DEFAULTS } from './phoenix-token-options.js';
import { authFailure, type AuthFailure } from './types.js';

/** The legacy payload forms carry no max age: plug_crypto gives them one day. */
const LEGACY_MAX_AGE: EtfTerm = { type: 'integer', value: 86400n };

const DIGESTS: Readonly<Record<string, string>> = {
  SFMyNTY: 'sha256',
  SFMzODQ: 'sha384',
  SFM1MTI: 'sha512',
};

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
