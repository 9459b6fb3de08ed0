/**
 * The Sec-WebSocket-Protocol offer (protocol spec §1.3): `phoenix` plus an optional
 * `base64url.bearer.phx.<token>` entry.
 */
import { describe, expect, it } from 'vitest';
import {
  AUTH_TOKEN_PREFIX,
  decodeBase64,
  decodeBase64Token,
  readSubprotocols,
} from '../../src/http/subprotocols.js';

const P = AUTH_TOKEN_PREFIX;

describe('decodeBase64 / decodeBase64Token', () => {
  it('the prefix is "base64url.bearer.phx."', () => {
    expect(P).toBe('base64url.bearer.phx.');
  });

  it('decodes standard base64 without padding (what btoa + strip "=" gives)', () => {
    expect(decodeBase64Token('MTIzNA')).toBe('1234');
    expect(decodeBase64Token('fn5+czNjcjN0')).toBe('~~~s3cr3t');
    expect(decodeBase64Token('Pz8/')).toBe('???');
  });

  it('decodes the url-safe alphabet too', () => {
    expect(decodeBase64Token('fn5-czNjcjN0')).toBe('~~~s3cr3t');
    expect(decodeBase64Token('Pz8_')).toBe('???');
  });

  it('accepts padding', () => {
    expect(decodeBase64Token('MTIzNA==')).toBe('1234');
    expect(decodeBase64Token('MTIzNDU=')).toBe('12345');
    expect(decodeBase64Token('MTIzNDU')).toBe('12345');
  });

  it('reverses btoa for Latin-1 tokens (one byte per character)', () => {
    const token = 'café\u00ff';
    expect(decodeBase64Token(btoa(token).replace(/=+$/, ''))).toBe(token);
  });

  it.each(['M', 'MTIzN', '!!!!', 'MT IzNA', 'MT=zNA', 'MTIzNA===', 'a.b'])(
    '%j is not base64 → null',
    (text) => {
      expect(decodeBase64(text)).toBeNull();
      expect(decodeBase64Token(text)).toBeNull();
    },
  );

  it('the empty string decodes to the empty token', () => {
    expect(decodeBase64('')?.length).toBe(0);
  });
});

describe('readSubprotocols', () => {
  it('no header, or an empty one: nothing offered, nothing selected, not rejected', () => {
    expect(readSubprotocols(undefined, [], true)).toEqual({
      authToken: null,
      selected: null,
      rejected: false,
    });
    expect(readSubprotocols('', [], true)).toEqual({
      authToken: null,
      selected: null,
      rejected: false,
    });
    expect(readSubprotocols('   ', [], true)).toEqual({
      authToken: null,
      selected: null,
      rejected: false,
    });
  });

  it('browser style (", ") and Node ws style (",") both give phoenix and the token', () => {
    expect(readSubprotocols(`phoenix, ${P}fn5+czNjcjN0`, [], true)).toEqual({
      authToken: '~~~s3cr3t',
      selected: 'phoenix',
      rejected: false,
    });
    expect(readSubprotocols(`phoenix,${P}MTIzNA`, [], true)).toEqual({
      authToken: '1234',
      selected: 'phoenix',
      rejected: false,
    });
    expect(readSubprotocols(`${P}MTIzNA , phoenix`, [], true)).toEqual({
      authToken: '1234',
      selected: 'phoenix',
      rejected: false,
    });
  });

  it('only phoenix: phoenix selected, no token', () => {
    expect(readSubprotocols('phoenix', [], true)).toEqual({
      authToken: null,
      selected: 'phoenix',
      rejected: false,
    });
  });

  it('only a token entry: the token, no selection, not rejected', () => {
    expect(readSubprotocols(`${P}MTIzNA`, [], true)).toEqual({
      authToken: '1234',
      selected: null,
      rejected: false,
    });
  });

  it('only mqtt: rejected (403)', () => {
    expect(readSubprotocols('mqtt', [], true)).toEqual({
      authToken: null,
      selected: null,
      rejected: true,
    });
    expect(readSubprotocols(`mqtt, ${P}MTIzNA`, [], true)).toMatchObject({
      selected: null,
      rejected: true,
    });
  });

  it('a configured subprotocol is accepted; the first allowed entry wins', () => {
    expect(readSubprotocols('mqtt', ['mqtt'], true)).toEqual({
      authToken: null,
      selected: 'mqtt',
      rejected: false,
    });
    expect(readSubprotocols('foo, mqtt, phoenix', ['mqtt'], true)).toMatchObject({
      selected: 'mqtt',
      rejected: false,
    });
    expect(readSubprotocols('foo, phoenix, mqtt', ['mqtt'], true)).toMatchObject({
      selected: 'phoenix',
      rejected: false,
    });
  });

  it('two token entries: neither is a token, both stay in the offer → no token and 403', () => {
    expect(readSubprotocols(`phoenix, ${P}MTIzNA, ${P}NTY3OA`, [], true)).toEqual({
      authToken: null,
      selected: 'phoenix',
      rejected: false,
    });
    expect(readSubprotocols(`${P}MTIzNA, ${P}NTY3OA`, [], true)).toEqual({
      authToken: null,
      selected: null,
      rejected: true,
    });
  });

  it('an undecodable token is "no token", not an error', () => {
    expect(readSubprotocols(`phoenix, ${P}M`, [], true)).toEqual({
      authToken: null,
      selected: 'phoenix',
      rejected: false,
    });
    expect(readSubprotocols(`phoenix, ${P}`, [], true)).toMatchObject({
      selected: 'phoenix',
      rejected: false,
    });
  });

  it('with token extraction off the token entry is dropped from the offer but ignored', () => {
    expect(readSubprotocols(`phoenix, ${P}MTIzNA`, [], false)).toEqual({
      authToken: null,
      selected: 'phoenix',
      rejected: false,
    });
    expect(readSubprotocols(`${P}MTIzNA`, [], false)).toEqual({
      authToken: null,
      selected: null,
      rejected: false,
    });
  });

  it('entries are trimmed and empty entries ignored', () => {
    expect(readSubprotocols(' , phoenix ,, ', [], true)).toEqual({
      authToken: null,
      selected: 'phoenix',
      rejected: false,
    });
  });

  it('the match is exact: "Phoenix" or "phoenix2" is not phoenix', () => {
    expect(readSubprotocols('Phoenix', [], true).rejected).toBe(true);
    expect(readSubprotocols('phoenix2', [], true).rejected).toBe(true);
  });
});
