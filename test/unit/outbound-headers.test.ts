import { headers as natsHeaders, Match } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { OutboundHeaders } from '../../src/nats/outbound-headers.js';

const decoder = new TextDecoder();

function both(entries: [string, string][]): {
  ours: OutboundHeaders;
  theirs: ReturnType<typeof natsHeaders>;
} {
  const ours = new OutboundHeaders();
  const theirs = natsHeaders();
  for (const [name, value] of entries) {
    ours.append(name, value);
    theirs.append(name, value);
  }
  return { ours, theirs };
}

const SAMPLE: [string, string][] = [
  ['Genapi-Request-Id', 'r1'],
  ['Genapi-Service', 'demo'],
  ['Genapi-Roles', '["admin","user"]'],
  ['Genapi-Deadline', '1764680000000'],
];

describe('OutboundHeaders (the gateway request headers)', () => {
  it('encodes exactly as nats-core does for the same headers', () => {
    const { ours, theirs } = both(SAMPLE);
    const encoded = ours.encode();
    expect(decoder.decode(encoded)).toBe(
      decoder.decode((theirs as unknown as { encode(): Uint8Array }).encode()),
    );
    expect(decoder.decode(encoded)).toBe(
      'NATS/1.0\r\nGenapi-Request-Id: r1\r\nGenapi-Service: demo\r\nGenapi-Roles: ["admin","user"]\r\nGenapi-Deadline: 1764680000000\r\n\r\n',
    );
  });

  it('reads back like MsgHdrs: get, last, has, values, keys, delete, set, iteration, case-insensitive match', () => {
    const h = new OutboundHeaders();
    h.append('A-One', '1');
    h.append('B-Two', '2');
    h.append('A-One', '3');
    expect(h.get('A-One')).toBe('1');
    expect(h.last('A-One')).toBe('3');
    expect(h.values('A-One')).toEqual(['1', '3']);
    expect(h.has('a-one')).toBe(false);
    expect(h.has('a-one', Match.IgnoreCase)).toBe(true);
    expect(h.get('b-two', Match.IgnoreCase)).toBe('2');
    expect(h.keys()).toEqual(['A-One', 'B-Two']);
    expect([...h]).toEqual([
      ['A-One', ['1', '3']],
      ['B-Two', ['2']],
    ]);
    h.set('A-One', '4');
    expect(h.values('A-One')).toEqual(['4']);
    h.delete('B-Two');
    expect(h.has('B-Two')).toBe(false);
    expect(decoder.decode(h.encode())).toBe('NATS/1.0\r\nA-One: 4\r\n\r\n');
  });

  it('refuses what would corrupt the frame: line breaks in values, non-token names', () => {
    const h = new OutboundHeaders();
    expect(() => h.append('Genapi-User-Id', 'a\r\nInjected: 1')).toThrow(/cannot contain/);
    expect(() => h.append('Genapi-User-Id', 'a\nb')).toThrow(/cannot contain/);
    expect(() => h.append('Bad Name', 'x')).toThrow(/invalid header name/);
    expect(() => h.append('Bad:Name', 'x')).toThrow(/invalid header name/);
    expect(h.keys()).toEqual([]);
  });

  it('carries a status line like nats-core', () => {
    const h = new OutboundHeaders();
    h.code = 503;
    h.description = 'No Responders';
    expect(h.hasError).toBe(true);
    expect(h.status).toBe('503 No Responders');
    expect(decoder.decode(h.encode())).toBe('NATS/1.0 503 No Responders\r\n\r\n');
  });
});
