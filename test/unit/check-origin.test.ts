/**
 * check_origin (protocol spec §1.4): only requests with an Origin header are checked.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { compileCheckOrigin, DEFAULT_PUBLIC_HOSTS } from '../../src/http/check-origin.js';

function req(host: string | undefined, encrypted = false): IncomingMessage {
  return {
    headers: host === undefined ? {} : { host },
    socket: { encrypted },
  } as unknown as IncomingMessage;
}

describe('checkOrigin: false', () => {
  it('allows every origin, including "null" and garbage', () => {
    const check = compileCheckOrigin(false);
    for (const origin of [undefined, 'http://evil.example', 'null', 'not a url'])
      expect(check(origin, req('example.com'))).toBe(true);
  });
});

describe('checkOrigin: true (Origin host vs the configured public hosts)', () => {
  const check = compileCheckOrigin(true, ['example.com']);

  it('a request without Origin passes (non-browser clients)', () => {
    expect(check(undefined, req('example.com'))).toBe(true);
    expect(check(undefined, req(undefined))).toBe(true);
  });

  it('compares the host only: scheme and port are not checked', () => {
    expect(check('http://example.com', req('example.com'))).toBe(true);
    expect(check('https://example.com', req('example.com:4000'))).toBe(true);
    expect(check('http://example.com:9999', req('example.com:4000'))).toBe(true);
  });

  it('hosts compare case-insensitively', () => {
    expect(check('http://EXAMPLE.com', req('Example.COM:4000'))).toBe(true);
    expect(compileCheckOrigin(true, ['Example.COM'])('http://example.com', req(undefined))).toBe(
      true,
    );
  });

  it('another host, a subdomain or a suffix lookalike is refused', () => {
    expect(check('http://evil.example', req('example.com'))).toBe(false);
    expect(check('http://sub.example.com', req('example.com'))).toBe(false);
    expect(check('http://badexample.com', req('example.com'))).toBe(false);
    expect(check('http://example.com.evil.example', req('example.com'))).toBe(false);
  });

  it('DNS rebinding: an Origin equal to the Host header but not a public host is refused', () => {
    expect(check('http://rebind.evil.example:4000', req('rebind.evil.example:4000'))).toBe(false);
    // The Host header plays no part: no Host at all still passes a public Origin.
    expect(check('http://example.com', req(undefined))).toBe(true);
  });

  it('"*." entries match the domain and its subdomains', () => {
    const wild = compileCheckOrigin(true, ['*.example.com']);
    expect(wild('https://example.com', req(undefined))).toBe(true);
    expect(wild('https://a.b.example.com', req(undefined))).toBe(true);
    expect(wild('https://badexample.com', req(undefined))).toBe(false);
  });

  it('an Origin "null" (sandboxed iframe, file://) or an unparsable Origin is refused', () => {
    expect(check('null', req('example.com'))).toBe(false);
    expect(check('example.com', req('example.com'))).toBe(false);
    expect(check('', req('example.com'))).toBe(false);
  });

  it('default public hosts: localhost, 127.0.0.1 and [::1] only', () => {
    const local = compileCheckOrigin(true);
    expect(DEFAULT_PUBLIC_HOSTS).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(local('http://localhost:4000', req('localhost:4000'))).toBe(true);
    expect(local('http://127.0.0.1:5173', req('127.0.0.1:4000'))).toBe(true);
    expect(local('http://[::1]:4000', req('[::1]:4000'))).toBe(true);
    expect(local('http://[::2]:4000', req('[::2]:4000'))).toBe(false);
    expect(local('http://example.com', req('example.com'))).toBe(false);
  });

  it('a malformed public host is an OptionError naming it', () => {
    expect(() => compileCheckOrigin(true, ['https://example.com'])).toThrow(
      'publicHosts: "https://example.com" is not a host name',
    );
    expect(() => compileCheckOrigin(true, [''])).toThrow('publicHosts: "" is not a host name');
  });
});

describe("checkOrigin: 'conn' (scheme, host and port must equal the request's)", () => {
  const check = compileCheckOrigin('conn');

  it('same scheme, host and port passes', () => {
    expect(check('http://example.com:4000', req('example.com:4000'))).toBe(true);
    expect(check('http://example.com', req('example.com'))).toBe(true);
    expect(check('http://example.com:80', req('example.com'))).toBe(true);
    expect(check('https://example.com', req('example.com', true))).toBe(true);
    expect(check('https://example.com:443', req('example.com:443', true))).toBe(true);
  });

  it('a different scheme, port or host is refused', () => {
    expect(check('https://example.com:4000', req('example.com:4000'))).toBe(false);
    expect(check('http://example.com:5000', req('example.com:4000'))).toBe(false);
    expect(check('http://example.com', req('example.com:4000'))).toBe(false);
    expect(check('http://other.com:4000', req('example.com:4000'))).toBe(false);
    expect(check('http://example.com', req('example.com', true))).toBe(false);
  });

  it('no Origin passes; "null" is refused', () => {
    expect(check(undefined, req('example.com'))).toBe(true);
    expect(check('null', req('example.com'))).toBe(false);
  });
});

describe('checkOrigin: a list of origins', () => {
  const check = compileCheckOrigin([
    'https://example.com',
    '//another.com:888',
    '//*.other.com',
    'http://plain.example:8080/',
  ]);
  const any = req('gateway.internal');

  it('scheme and (default) port are compared when the entry has a scheme', () => {
    expect(check('https://example.com', any)).toBe(true);
    expect(check('https://example.com:443', any)).toBe(true);
    expect(check('http://example.com', any)).toBe(false);
    expect(check('https://example.com:8443', any)).toBe(false);
    expect(check('https://EXAMPLE.COM', any)).toBe(true);
  });

  it('a scheme-less entry with a port checks host and port, any scheme', () => {
    expect(check('http://another.com:888', any)).toBe(true);
    expect(check('https://another.com:888', any)).toBe(true);
    expect(check('https://another.com', any)).toBe(false);
    expect(check('http://another.com:889', any)).toBe(false);
  });

  it('"//*.other.com" matches the domain itself and any subdomain, any scheme or port', () => {
    expect(check('http://other.com', any)).toBe(true);
    expect(check('https://a.other.com', any)).toBe(true);
    expect(check('https://a.b.other.com:1234', any)).toBe(true);
    expect(check('https://another.com', any)).toBe(false);
    expect(check('https://notother.com', any)).toBe(false);
    expect(check('https://other.com.evil.example', any)).toBe(false);
  });

  it('an entry with an explicit port and a trailing slash still parses', () => {
    expect(check('http://plain.example:8080', any)).toBe(true);
    expect(check('http://plain.example', any)).toBe(false);
  });

  it('no Origin passes; unknown, "null" and unparsable origins are refused', () => {
    expect(check(undefined, any)).toBe(true);
    expect(check('https://evil.example', any)).toBe(false);
    expect(check('null', any)).toBe(false);
    expect(check('garbage', any)).toBe(false);
  });

  it('the request Host does not matter for a list', () => {
    expect(check('https://example.com', req('somewhere.else'))).toBe(true);
  });

  it('an empty list refuses every browser origin', () => {
    const none = compileCheckOrigin([]);
    expect(none('https://example.com', any)).toBe(false);
    expect(none(undefined, any)).toBe(true);
  });

  it('an invalid entry is rejected when compiling', () => {
    expect(() => compileCheckOrigin(['example.com'])).toThrow(TypeError);
    expect(() => compileCheckOrigin(['https://'])).toThrow(/invalid origin/);
  });
});

describe('checkOrigin: a function', () => {
  it('receives the Origin and the request; its answer decides', () => {
    const fn = vi.fn((origin: string) => origin.endsWith('.trusted.example'));
    const check = compileCheckOrigin(fn);
    const r = req('example.com');
    expect(check('https://app.trusted.example', r)).toBe(true);
    expect(fn).toHaveBeenCalledWith('https://app.trusted.example', r);
    expect(check('https://evil.example', r)).toBe(false);
    expect(check('null', r)).toBe(false);
    expect(fn).toHaveBeenLastCalledWith('null', r);
  });

  it('is not called for requests without an Origin', () => {
    const fn = vi.fn(() => false);
    expect(compileCheckOrigin(fn)(undefined, req('example.com'))).toBe(true);
    expect(fn).not.toHaveBeenCalled();
  });
});
