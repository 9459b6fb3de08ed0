/** payloadOver (src/channel/broadcast-size.ts): the JSON size of a broadcast, measured lazily. */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/index.js';
import {
  broadcastTooLarge,
  ChannelBroadcastTooLargeError,
  payloadOver,
} from '../../src/channel/broadcast-size.js';

/** The exact JSON size, for payloads without escapes (where the measure is exact). */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

describe('payloadOver', () => {
  const payloads: [string, unknown][] = [
    ['an empty object', {}],
    ['a flat object', { a: 1, b: 'two', c: true, d: null, e: false }],
    ['nested arrays', [[], [1, [2, [3]]], { x: [] }]],
    ['multi-byte strings (UTF-8 bytes, not characters)', { clé: 'é'.repeat(100), emoji: '😀' }],
    ['numbers', [0, -1.5, 1e21, 123456789]],
    ['a date (toJSON)', { at: new Date(0) }],
  ];

  it.each(payloads)('%s: exactly its JSON size is within, one byte less is over', (_, payload) => {
    const size = jsonBytes(payload);
    expect(payloadOver(payload, size)).toBe(false);
    expect(payloadOver(payload, size - 1)).toBe(true);
  });

  it('binary payloads count their bytes', () => {
    expect(payloadOver(new Uint8Array(100), 100)).toBe(false);
    expect(payloadOver(new Uint8Array(101), 100)).toBe(true);
  });

  it('undefined and functions are left out as JSON does', () => {
    expect(payloadOver({ a: undefined, f: () => 1 }, 16)).toBe(false);
  });

  it('stops early: a cyclic payload is over the limit instead of looping', () => {
    const cyclic: { self?: unknown; data: string } = { data: 'x'.repeat(100) };
    cyclic.self = cyclic;
    expect(payloadOver(cyclic, 10_000)).toBe(true);
  });

  it('a huge array is judged without walking all of it', () => {
    const huge = new Array<number>(2_000_000).fill(1);
    const started = performance.now();
    expect(payloadOver(huge, 1_000)).toBe(true);
    // Walking 2 M entries takes far longer than walking 500; a deadline, not a speed check.
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('ChannelBroadcastTooLargeError', () => {
  it('says what was refused and why, with its own code', () => {
    const err = broadcastTooLarge('room:1', 'big', 100);
    expect(err).toBeInstanceOf(ChannelBroadcastTooLargeError);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe('ERR_CHANNEL_BROADCAST_TOO_LARGE');
    expect(err.message).toBe(
      'broadcast "big" on "room:1" is over maxBroadcastBytes (100 bytes); nothing was sent',
    );
    expect([err.topic, err.event, err.limit]).toEqual(['room:1', 'big', 100]);
  });
});
