/**
 * `trustedProxies` (src/http/client-ip.ts): which address is the client's. The peer unless it is
 * a trusted proxy; then `Forwarded` / `X-Forwarded-For` read from the right, trusted hops skipped.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { compileClientAddress, MAX_FORWARDED_HOPS } from '../../src/http/client-ip.js';

function req(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { headers, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

describe('trustedProxies', () => {
  it('none (default): the peer address, whatever the headers claim', () => {
    const client = compileClientAddress([]);
    expect(client(req('198.51.100.9', { 'x-forwarded-for': '203.0.113.1' }))).toBe('198.51.100.9');
    expect(client(req('::ffff:198.51.100.9'))).toBe('198.51.100.9');
  });

  it('an untrusted peer cannot name another client', () => {
    const client = compileClientAddress(['10.0.0.0/8']);
    expect(client(req('198.51.100.9', { 'x-forwarded-for': '203.0.113.1' }))).toBe('198.51.100.9');
    expect(client(req('198.51.100.9', { forwarded: 'for=203.0.113.1' }))).toBe('198.51.100.9');
  });

  it('X-Forwarded-For: the rightmost untrusted hop; entries a client prepends are ignored', () => {
    const client = compileClientAddress(['10.0.0.0/8', '127.0.0.1']);
    expect(client(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.7' }))).toBe('203.0.113.7');
    expect(
      client(req('::ffff:10.1.2.3', { 'x-forwarded-for': '1.1.1.1, 203.0.113.7, 10.9.9.9' })),
    ).toBe('203.0.113.7');
    // No header: the proxy itself is the client.
    expect(client(req('10.1.2.3'))).toBe('10.1.2.3');
  });

  it('Forwarded (RFC 7239) wins over X-Forwarded-For; quoted IPv6 and ports are understood', () => {
    const client = compileClientAddress(['10.0.0.1']);
    expect(
      client(
        req('10.0.0.1', {
          forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"',
          'x-forwarded-for': '198.51.100.1',
        }),
      ),
    ).toBe('2001:db8:cafe::17');
    expect(client(req('10.0.0.1', { forwarded: 'for=192.0.2.60:8080' }))).toBe('192.0.2.60');
  });

  it('a malformed or obfuscated hop stops the walk at the last good address', () => {
    const client = compileClientAddress(['10.0.0.0/8']);
    expect(client(req('10.0.0.1', { 'x-forwarded-for': '203.0.113.7, garbage' }))).toBe('10.0.0.1');
    expect(client(req('10.0.0.1', { forwarded: 'for=_hidden, for=10.0.0.2' }))).toBe('10.0.0.2');
    expect(client(req('10.0.0.1', { forwarded: 'for=unknown' }))).toBe('10.0.0.1');
  });

  it(`a chain of trusted hops is walked at most ${MAX_FORWARDED_HOPS} hops deep`, () => {
    const client = compileClientAddress(['10.0.0.0/8']);
    const trustedHops = Array.from({ length: MAX_FORWARDED_HOPS + 5 }, (_, i) => `10.0.0.${i}`);
    const header = ['203.0.113.7', ...trustedHops].join(', ');
    expect(client(req('10.0.0.1', { 'x-forwarded-for': header }))).toMatch(/^10\.0\.0\./);
    expect(
      client(req('10.0.0.1', { 'x-forwarded-for': ['203.0.113.7', '10.0.0.2'].join(',') })),
    ).toBe('203.0.113.7');
  });

  it('IPv6 ranges; a bad entry is an OptionError naming it', () => {
    const client = compileClientAddress(['fd00::/8']);
    expect(client(req('fd00::1', { 'x-forwarded-for': '2001:db8::1' }))).toBe('2001:db8::1');
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/1', '']) {
      expect(() => compileClientAddress([bad])).toThrow(
        `trustedProxies: ${JSON.stringify(bad)} is not an IP address or CIDR range`,
      );
    }
  });
});
