/**
 * The ETF decoder (src/auth/etf.ts): every tag of its subset against bytes OTP writes, round trips
 * of random terms through an independent encoder, each limit and refusal with its typed error,
 * fuzzing with random bytes and with mutations of valid encodings (only EtfDecodeError ever
 * escapes), and the plain (JSON-safe) form used for assigns.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEtf,
  ETF_DEFAULTS,
  EtfDecodeError,
  etfToPlain,
  type EtfDecodeErrorKind,
  type EtfTerm,
} from '../../src/auth/etf.js';
import { t, termToBinary } from './etf-encode.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);
const b64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64url'));

function decodeError(bytes: Uint8Array, limits = {}): EtfDecodeError {
  try {
    decodeEtf(bytes, limits);
  } catch (error) {
    if (error instanceof EtfDecodeError) return error;
    throw error;
  }
  throw new Error('decoded');
}

function expectRefused(bytes: Uint8Array, kind: EtfDecodeErrorKind, message: RegExp, limits = {}) {
  const error = decodeError(bytes, limits);
  expect([error.kind, error.message]).toEqual([kind, expect.stringMatching(message)]);
}

describe('decodeEtf: the subset', () => {
  it('decodes payloads OTP 25 wrote (from the Phoenix vectors)', () => {
    const rest = [t.int(1_700_000_000_000), t.int(86400)];
    const cases: [string, EtfTerm][] = [
      ['g2gDbQAAAAVhbGljZW4GAABo5c-LAWIAAVGA', t.bin('alice')],
      ['g2gDYv____tuBgAAaOXPiwFiAAFRgA', t.int(-5)], // INTEGER_EXT
      ['g2gDbgkAAAAAAAAAAABAbgYAAGjlz4sBYgABUYA', t.int(2n ** 70n)], // SMALL_BIG_EXT
      ['g2gDRkAKAAAAAAAAbgYAAGjlz4sBYgABUYA', t.float(3.25)], // NEW_FLOAT_EXT
      ['g2gDZAADbmlsbgYAAGjlz4sBYgABUYA', t.atom('nil')], // ATOM_EXT
    ];
    for (const [payload, data] of cases) {
      expect(decodeEtf(b64(payload))).toEqual(t.tuple(data, ...rest));
    }
    // %{team: "red", user_id: 42}: MAP_EXT with atom keys
    expect(
      decodeEtf(b64('g2gDdAAAAAJkAAR0ZWFtbQAAAANyZWRkAAd1c2VyX2lkYSpuBgAAaOXPiwFiAAFRgA')),
    ).toEqual(
      t.tuple(t.map([t.atom('team'), t.bin('red')], [t.atom('user_id'), t.int(42)]), ...rest),
    );
  });

  it('decodes the other atom forms, STRING_EXT, LARGE_TUPLE, LARGE_BIG and negatives', () => {
    expect(decodeEtf(b(131, 115, 2, 0x6f, 0x6b))).toEqual(t.atom('ok'));
    expect(decodeEtf(b(131, 119, 2, 0xc3, 0xa9))).toEqual(t.atom('é'));
    expect(decodeEtf(b(131, 118, 0, 2, 0xc3, 0xa9))).toEqual(t.atom('é'));
    // Latin-1 atoms: byte 0xe9 is é, and 0x80 is U+0080 (not windows-1252's €).
    expect(decodeEtf(b(131, 100, 0, 2, 0xe9, 0x80))).toEqual(t.atom('é\u0080'));
    expect(decodeEtf(b(131, 107, 0, 3, 1, 2, 255))).toEqual(t.list(t.int(1), t.int(2), t.int(255)));
    expect(decodeEtf(b(131, 105, 0, 0, 0, 2, 106, 97, 1))).toEqual(t.tuple(t.list(), t.int(1)));
    expect(decodeEtf(b(131, 111, 0, 0, 0, 2, 1, 0, 1))).toEqual(t.int(-256));
    expect(decodeEtf(b(131, 110, 0, 0))).toEqual(t.int(0));
    expect(decodeEtf(b(131, 98, 0x80, 0, 0, 0))).toEqual(t.int(-(2 ** 31)));
    expect(decodeEtf(b(131, 109, 0, 0, 0, 0))).toEqual(t.bin(''));
  });

  it('round-trips random terms through an independent encoder', () => {
    const { term } = fc.letrec<{ term: EtfTerm }>((tie) => ({
      term: fc.oneof(
        { maxDepth: 4, depthIdentifier: 'etf' },
        fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }).map(t.int),
        fc.integer().map(t.int),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map(t.float),
        fc.string({ unit: 'grapheme', maxLength: 20 }).map(t.atom),
        fc.string({ unit: 'grapheme', maxLength: 30 }).map(t.bin),
        fc.uint8Array({ maxLength: 30 }).map(t.bin),
        fc.array(tie('term'), { maxLength: 5 }).map((items) => t.list(...items)),
        fc.array(tie('term'), { maxLength: 5 }).map((items) => t.tuple(...items)),
        fc
          .array(fc.tuple(tie('term'), tie('term')), { maxLength: 4 })
          .map((entries) => t.map(...entries)),
      ),
    }));
    fc.assert(
      fc.property(term, (value) => {
        const bytes = termToBinary(value);
        fc.pre(bytes.length <= ETF_DEFAULTS.maxBytes);
        expect(decodeEtf(bytes, { maxElements: 100_000 })).toEqual(value);
      }),
      { numRuns: 1000, seed: 0x4554_4601 },
    );
  });
});

describe('decodeEtf: refusals and limits', () => {
  it('refuses what is outside the subset', () => {
    expectRefused(b(131, 80, 0, 0, 0, 4, 120, 156), 'unsupported', /compressed/);
    expectRefused(b(131, 88, 1, 2, 3), 'unsupported', /tag 88/); // NEW_PID_EXT
    expectRefused(b(131, 113, 0), 'unsupported', /tag 113/); // EXPORT_EXT
    expectRefused(b(131, 99, 0x31), 'unsupported', /tag 99/); // FLOAT_EXT (old, textual)
    expectRefused(b(131, 108, 0, 0, 0, 1, 97, 1, 97, 2), 'unsupported', /improper list/);
  });

  it('refuses malformed input', () => {
    expectRefused(b(), 'truncated', /empty/);
    expectRefused(b(130, 106), 'malformed', /version byte 130/);
    expectRefused(b(131, 106, 106), 'malformed', /1 bytes after the term/);
    expectRefused(b(131, 70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), 'malformed', /not finite/); // NaN
    expectRefused(b(131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), 'malformed', /not finite/); // +Inf
    expectRefused(b(131, 119, 1, 0xff), 'malformed', /UTF-8/);
    expectRefused(b(131, 110, 1, 2, 5), 'malformed', /sign byte 2/);
    const longAtom = [131, 100, 1, 0, ...new Array<number>(256).fill(0x61)];
    expectRefused(Uint8Array.from(longAtom), 'malformed', /atom longer than 255/);
    // 256 characters in 512 UTF-8 bytes: within the byte bound, over the character bound.
    const longUtf8 = [131, 118, 2, 0, ...new Array<number[]>(256).fill([0xc3, 0xa9]).flat()];
    expectRefused(Uint8Array.from(longUtf8), 'malformed', /atom longer than 255/);
  });

  it('refuses a count larger than the bytes left before allocating for it', () => {
    // 2^32-1 list items, map entries, tuple items or binary bytes in a few bytes of input.
    expectRefused(b(131, 108, 255, 255, 255, 255, 106), 'truncated', /list of 4294967295/);
    expectRefused(b(131, 116, 255, 255, 255, 255), 'truncated', /map of 4294967295/);
    expectRefused(b(131, 105, 255, 255, 255, 255), 'truncated', /tuple of 4294967295/);
    expectRefused(b(131, 109, 255, 255, 255, 255, 1), 'truncated', /needs 4294967295 bytes/);
    expectRefused(b(131, 111, 255, 255, 255, 255, 0), 'truncated', /needs 4294967295 bytes/);
    expectRefused(b(131, 107, 255, 255, 1), 'truncated', /needs 65535 bytes/);
    // Map entries take two terms, so two bytes at least.
    expectRefused(b(131, 116, 0, 0, 0, 2, 106, 106, 106), 'truncated', /map of 2/);
    expectRefused(b(131, 98, 0, 0), 'truncated', /needs 4 bytes/);
  });

  it('maxBytes: input over it is refused (default 8 KiB)', () => {
    const big = termToBinary(t.bin('x'.repeat(ETF_DEFAULTS.maxBytes)));
    expectRefused(big, 'limit', /maxBytes 8192/);
    const fits = termToBinary(t.bin('x'.repeat(ETF_DEFAULTS.maxBytes - 6)));
    expect(fits.length).toBe(ETF_DEFAULTS.maxBytes);
    expect(decodeEtf(fits)).toMatchObject({ type: 'binary' });
    expectRefused(termToBinary(t.bin('abc')), 'limit', /maxBytes 5/, { maxBytes: 5 });
  });

  it('maxDepth: nesting deeper is refused (default 32)', () => {
    const nested = (depth: number): EtfTerm => (depth === 1 ? t.list() : t.list(nested(depth - 1)));
    expect(decodeEtf(termToBinary(nested(ETF_DEFAULTS.maxDepth)))).toMatchObject({ type: 'list' });
    expectRefused(termToBinary(nested(ETF_DEFAULTS.maxDepth + 1)), 'limit', /maxDepth 32/);
    expectRefused(termToBinary(nested(3)), 'limit', /maxDepth 2/, { maxDepth: 2 });
  });

  it('maxElements: more terms in all are refused (default 2048), charlist bytes included', () => {
    const nils = (n: number) => t.list(...new Array<EtfTerm>(n).fill(t.list()));
    // The outer list is a term too.
    expect(decodeEtf(termToBinary(nils(ETF_DEFAULTS.maxElements - 1)))).toMatchObject({
      type: 'list',
    });
    expectRefused(termToBinary(nils(ETF_DEFAULTS.maxElements)), 'limit', /maxElements 2048/);
    const charlist = Uint8Array.from([131, 107, 0x0b, 0xb8, ...new Array<number>(3000).fill(97)]);
    expectRefused(charlist, 'limit', /maxElements 2048/);
    expectRefused(termToBinary(t.map([t.int(1), t.int(2)])), 'limit', /maxElements 2/, {
      maxElements: 2,
    });
  });
});

describe('decodeEtf: fuzzing', () => {
  /** Decodes, letting only EtfDecodeError through as an expected outcome. */
  function decodesOrRefuses(bytes: Uint8Array): void {
    try {
      decodeEtf(bytes);
    } catch (error) {
      if (!(error instanceof EtfDecodeError)) throw error;
    }
  }

  it('random bytes: a term or an EtfDecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 300 }), (versioned, bytes) =>
        decodesOrRefuses(versioned ? Uint8Array.from([131, ...bytes]) : bytes),
      ),
      { numRuns: 20_000, seed: 0x4554_4602 },
    );
  });

  it('random bytes after each tag: a term or an EtfDecodeError', () => {
    const tags = [70, 80, 97, 98, 100, 104, 105, 106, 107, 108, 109, 110, 111, 115, 116, 118, 119];
    fc.assert(
      fc.property(fc.constantFrom(...tags), fc.uint8Array({ maxLength: 64 }), (tag, bytes) =>
        decodesOrRefuses(Uint8Array.from([131, tag, ...bytes])),
      ),
      { numRuns: 20_000, seed: 0x4554_4603 },
    );
  });

  it('mutations of valid payloads: a term or an EtfDecodeError', () => {
    const valid = [
      'g2gDdAAAAAJtAAAAA2V4cGQAA25pbG0AAAAEdXNlcnQAAAACbQAAAAJpZG0AAAADdS0xbQAAAAR0YWdzbAAAAAF0AAAAAW0AAAABa20AAAABdmpuBgAAaOXPiwFiAAFRgA',
      'g2gDdAAAAAJtAAAAAmlkYQdtAAAABXJvbGVzbAAAAAJtAAAABWFkbWlubQAAAANvcHNqbgYAAGjlz4sBYgABUYA',
      'g2gDbgkAAAAAAAAAAABAbgYAAGjlz4sBYgABUYA',
      'g3QAAAACZAAEZGF0YW0AAAAEZXJpbmQABnNpZ25lZG4GAABo5c-LAQ',
    ].map(b64);
    const mutation = fc.record({
      source: fc.constantFrom(...valid),
      edits: fc.array(
        fc.record({
          at: fc.nat(),
          kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(mutation, ({ source, edits }) => {
        const bytes = [...source];
        for (const { at, kind, value } of edits) {
          const i = bytes.length === 0 ? 0 : at % bytes.length;
          if (kind === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (value & 7));
          else if (kind === 'set') bytes[i] = value;
          else if (kind === 'insert') bytes.splice(i, 0, value);
          else if (kind === 'delete') bytes.splice(i, 1);
          else bytes.length = i;
        }
        decodesOrRefuses(Uint8Array.from(bytes));
      }),
      { numRuns: 20_000, seed: 0x4554_4604 },
    );
  });
});

describe('etfToPlain', () => {
  it('atoms, integers, binaries, lists, tuples and maps as JSON-safe values', () => {
    const term = t.map(
      [t.atom('nil'), t.atom('nil')],
      [t.atom('yes'), t.atom('true')],
      [t.atom('no'), t.atom('false')],
      [t.atom('kind'), t.atom('admin')],
      [t.bin('safe'), t.int(Number.MAX_SAFE_INTEGER)],
      [t.bin('big'), t.int(-(2n ** 53n))],
      [t.bin('bytes'), t.bin(Uint8Array.of(0x61, 0xff))],
      [t.int(7), t.tuple(t.float(0.5), t.list())],
      [t.tuple(t.int(1), t.atom('a')), t.int(1)],
    );
    const plain = etfToPlain(term);
    expect(plain).toEqual({
      nil: null,
      yes: true,
      no: false,
      kind: 'admin',
      safe: Number.MAX_SAFE_INTEGER,
      big: '-9007199254740992',
      bytes: 'a\ufffd',
      '7': [0.5, []],
      '[1,"a"]': 1,
    });
    expect(() => JSON.stringify(plain)).not.toThrow();
  });

  it('a "__proto__" key is an own property, not the prototype', () => {
    const plain = etfToPlain(
      t.map([t.bin('__proto__'), t.map([t.bin('polluted'), t.atom('true')])]),
    );
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(Object.hasOwn(plain as object, '__proto__')).toBe(true);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});
