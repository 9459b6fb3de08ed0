/**
 * Test-side makers of Phoenix tokens, written apart from src/auth so the tests do not check the
 * verifier against itself: a term_to_binary for the decoder's subset (atoms as OTP 25 writes
 * them), and MessageVerifier.sign (checked against the shared vectors in phoenix-token.test.ts).
 */
import { createHmac, pbkdf2Sync } from 'node:crypto';
import type { EtfTerm } from '../../src/auth/etf.js';

/** Shorthands for building terms. */
export const t = {
  int: (value: number | bigint): EtfTerm => ({ type: 'integer', value: BigInt(value) }),
  float: (value: number): EtfTerm => ({ type: 'float', value }),
  atom: (name: string): EtfTerm => ({ type: 'atom', name }),
  bin: (text: string | Uint8Array): EtfTerm => ({
    type: 'binary',
    bytes: typeof text === 'string' ? new TextEncoder().encode(text) : text,
  }),
  list: (...items: EtfTerm[]): EtfTerm => ({ type: 'list', items }),
  tuple: (...items: EtfTerm[]): EtfTerm => ({ type: 'tuple', items }),
  map: (...entries: [EtfTerm, EtfTerm][]): EtfTerm => ({ type: 'map', entries }),
};

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}
function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function encodeTerm(term: EtfTerm, out: number[]): void {
  switch (term.type) {
    case 'integer': {
      const v = term.value;
      if (v >= 0n && v <= 255n) {
        out.push(97, Number(v));
      } else if (v >= -(2n ** 31n) && v < 2n ** 31n) {
        out.push(98, ...u32(Number(BigInt.asUintN(32, v))));
      } else {
        let magnitude = v < 0n ? -v : v;
        const digits: number[] = [];
        while (magnitude > 0n) {
          digits.push(Number(magnitude & 0xffn));
          magnitude >>= 8n;
        }
        if (digits.length < 256) out.push(110, digits.length);
        else out.push(111, ...u32(digits.length));
        out.push(v < 0n ? 1 : 0, ...digits);
      }
      return;
    }
    case 'float': {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, term.value);
      out.push(70, ...bytes);
      return;
    }
    case 'atom': {
      const latin1 = [...term.name].every((c) => c.charCodeAt(0) < 256 && c.length === 1);
      const bytes = latin1
        ? [...term.name].map((c) => c.charCodeAt(0))
        : [...new TextEncoder().encode(term.name)];
      out.push(latin1 ? 100 : 118, ...u16(bytes.length), ...bytes);
      return;
    }
    case 'binary':
      out.push(109, ...u32(term.bytes.length), ...term.bytes);
      return;
    case 'list':
      if (term.items.length === 0) {
        out.push(106);
        return;
      }
      out.push(108, ...u32(term.items.length));
      for (const item of term.items) encodeTerm(item, out);
      out.push(106);
      return;
    case 'tuple':
      if (term.items.length < 256) out.push(104, term.items.length);
      else out.push(105, ...u32(term.items.length));
      for (const item of term.items) encodeTerm(item, out);
      return;
    case 'map':
      out.push(116, ...u32(term.entries.length));
      for (const [key, value] of term.entries) {
        encodeTerm(key, out);
        encodeTerm(value, out);
      }
      return;
  }
}

/** term_to_binary of `term` (no compression). */
export function termToBinary(term: EtfTerm): Uint8Array {
  const out = [131];
  encodeTerm(term, out);
  return Uint8Array.from(out);
}

/** Plug.Crypto.KeyGenerator with Phoenix.Token's parameters. */
export function testKey(secretKeyBase: string, salt: string): Buffer {
  return pbkdf2Sync(secretKeyBase, salt, 1000, 32, 'sha256');
}

/** MessageVerifier.sign: `protected.payload.signature`, HMAC over the first two as text. */
export function signPayload(
  key: Uint8Array,
  payload: Uint8Array,
  digest: 'sha256' | 'sha384' | 'sha512' = 'sha256',
): string {
  const header = Buffer.from(`HS${digest.slice(3)}`).toString('base64url');
  const text = `${header}.${Buffer.from(payload).toString('base64url')}`;
  return `${text}.${createHmac(digest, key).update(text).digest('base64url')}`;
}

/** Phoenix.Token.sign: `{data, signed_at_ms, max_age_s}` signed with `key`. */
export function signToken(
  key: Uint8Array,
  data: EtfTerm,
  signedAtMs: number,
  maxAge: number | EtfTerm = 86400,
): string {
  const maxAgeTerm = typeof maxAge === 'number' ? t.int(maxAge) : maxAge;
  return signPayload(key, termToBinary(t.tuple(data, t.int(signedAtMs), maxAgeTerm)));
}
