/**
 * stableHash (src/genapi/select/hash.ts): the hash behind the `hash` and `hash_arg` node modes.
 */
import { describe, expect, it } from 'vitest';
import { stableHash } from '../../../src/genapi/select/hash.js';

describe('stableHash', () => {
  it('is stable: pinned values (a regression guard — changing them re-routes every hash-mode key)', () => {
    expect(stableHash('')).toBe(2872998923);
    expect(stableHash('a')).toBe(444641715);
    expect(stableHash('hello')).toBe(2290972270);
    expect(stableHash('req-1')).toBe(1216658960);
    expect(stableHash('\u{1F600}')).toBe(1787143206);
  });

  it('returns an unsigned 32-bit integer for every input', () => {
    for (const text of [
      '',
      'x',
      'a much longer key with spaces',
      '\u{1F600}\u{1F601}',
      '\uD800',
      'é'.repeat(1000),
    ]) {
      const h = stableHash(text);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThanOrEqual(0xffffffff);
    }
  });

  it('hashes UTF-16 code units: different code units give different hashes, equal strings equal ones', () => {
    expect(stableHash('é')).not.toBe(stableHash('e\u0301')); // same glyph, different code units
    expect(stableHash('ab')).not.toBe(stableHash('ba'));
    expect(stableHash('user-' + 'x'.repeat(3))).toBe(stableHash('user-xxx'));
  });

  it('spreads keys that differ only in high bits of one character over small power-of-two moduli', () => {
    // 'a' 0x61, 'q' 0x71, 'A' 0x41, 'Q' 0x51, '!' 0x21, '1' 0x31 share their low 4 bits. Plain FNV-1a
    // would put all of them in the same bucket for n = 2, 4, 8, 16.
    for (const n of [2, 4, 8, 16]) {
      const buckets = new Set(
        ['a', 'q', 'A', 'Q', '!', '1'].map((c) => stableHash(`user-${c}`) % n),
      );
      expect(buckets.size).toBeGreaterThan(1);
    }
  });

  it('distributes sequential ids evenly modulo small instance counts', () => {
    for (const n of [2, 3, 4, 5, 7, 8]) {
      const counts = new Array<number>(n).fill(0);
      const total = 20_000;
      for (let i = 0; i < total; i++) counts[stableHash(`req-${i}`) % n]! += 1;
      const expected = total / n;
      for (const c of counts) expect(Math.abs(c - expected)).toBeLessThan(expected * 0.06);
    }
  });

  it('changes about half of the output bits when one input bit flips (avalanche)', () => {
    let flipped = 0;
    let samples = 0;
    for (let i = 0; i < 500; i++) {
      const base = `key-${i}-`;
      const a = stableHash(base + 'a');
      const b = stableHash(base + 'c'); // 0x61 vs 0x63: one bit
      let x = (a ^ b) >>> 0;
      while (x) {
        flipped += x & 1;
        x >>>= 1;
      }
      samples += 32;
    }
    const ratio = flipped / samples;
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(0.55);
  });
});
