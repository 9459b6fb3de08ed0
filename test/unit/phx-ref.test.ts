/**
 * phx_ref format (protocol spec §5): 16 characters of url-safe base64 over 12 bytes (48-bit ms
 * timestamp, 16-bit node id, 32-bit counter), unique.
 */
import { describe, expect, it } from 'vitest';
import { PhxRefGenerator } from '../../src/presence/phx-ref.js';

const FORMAT = /^[A-Za-z0-9_-]{16}$/;

describe('PhxRefGenerator', () => {
  it('makes 16-character url-safe base64 refs (no "+", "/" or "=")', () => {
    const gen = new PhxRefGenerator();
    for (let i = 0; i < 2_000; i++) {
      const ref = gen.next();
      expect(ref).toMatch(FORMAT);
      expect(Buffer.from(ref, 'base64url')).toHaveLength(12);
    }
  });

  it('refs are unique, even within one millisecond', () => {
    const gen = new PhxRefGenerator('node');
    const refs = new Set<string>();
    for (let i = 0; i < 20_000; i++) refs.add(gen.next(1_700_000_000_000));
    expect(refs.size).toBe(20_000);
  });

  it('two nodes never collide at the same instant and counter', () => {
    const a = new PhxRefGenerator('node-a');
    const b = new PhxRefGenerator('node-b');
    const refs = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      refs.add(a.next(5));
      refs.add(b.next(5));
    }
    expect(refs.size).toBe(2_000);
  });

  it('encodes the timestamp, a stable node id and an increasing counter', () => {
    const gen = new PhxRefGenerator('node-x');
    const now = 1_712_345_678_901;
    const first = Buffer.from(gen.next(now), 'base64url');
    const second = Buffer.from(gen.next(now + 1), 'base64url');
    expect(first.readUIntBE(0, 6)).toBe(now);
    expect(second.readUIntBE(0, 6)).toBe(now + 1);
    expect(first.readUInt16BE(6)).toBe(second.readUInt16BE(6));
    expect(second.readUInt32BE(8)).toBe(first.readUInt32BE(8) + 1);
    // The same node id gives the same node bytes on another generator.
    const again = Buffer.from(new PhxRefGenerator('node-x').next(now), 'base64url');
    expect(again.readUInt16BE(6)).toBe(first.readUInt16BE(6));
  });

  it('uses the current time by default', () => {
    const before = Date.now();
    const stamp = Buffer.from(new PhxRefGenerator().next(), 'base64url').readUIntBE(0, 6);
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Date.now());
  });
});
