/**
 * isLoopbackHost: which listen hosts reach only this machine (the demo warns on every other one).
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/util/loopback.js';

describe('isLoopbackHost', () => {
  it('localhost, 127.0.0.0/8 and ::1 in their spellings are loopback', () => {
    for (const host of [
      'localhost',
      'LocalHost',
      'localhost.',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
  });

  it('wildcards, other addresses and other host names are not', () => {
    for (const host of [
      '0.0.0.0',
      '::',
      '[::]',
      '192.168.1.10',
      '10.0.0.1',
      '128.0.0.1',
      '2001:db8::1',
      '::ffff:10.0.0.1',
      'example.com',
      'my-laptop',
      'localhost.example.com',
      '',
    ])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});
