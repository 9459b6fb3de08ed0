/**
 * vsn negotiation (protocol spec §1.2): `~> 1.0.0` → V1, `~> 2.0.0` → V2, anything else → null
 * (which the transports answer with HTTP 403).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_VSN, serializerForVsn } from '../../src/wire/vsn.js';

describe('serializerForVsn (spec §1.2 table)', () => {
  it.each([
    ['2.0.0', '2.0.0'],
    ['2.0.3', '2.0.0'],
    ['2.0.10', '2.0.0'],
    ['1.0.0', '1.0.0'],
    ['1.0.9', '1.0.0'],
  ])('vsn %s → serializer %s', (vsn, family) => {
    expect(serializerForVsn(vsn)?.vsn).toBe(family);
  });

  it('a missing vsn defaults to 1.0.0 (V1)', () => {
    expect(DEFAULT_VSN).toBe('1.0.0');
    expect(serializerForVsn(undefined)?.vsn).toBe('1.0.0');
  });

  it.each([
    '2.1.0',
    '2.0.0-rc.1',
    '1.0.0-beta',
    '2',
    'abc',
    '3.0.0',
    '123.1.1',
    '1.1.0',
    '0.0.1',
    '',
    '2.0',
    '02.0.0',
    '2.00.0',
    ' 2.0.0',
    '2.0.0 ',
    'v2.0.0',
    '2.0.x',
  ])('vsn %j is refused (null → 403)', (vsn) => {
    expect(serializerForVsn(vsn)).toBeNull();
  });

  it('build metadata does not change the match (Elixir Version ignores it)', () => {
    expect(serializerForVsn('2.0.0+build.1')?.vsn).toBe('2.0.0');
  });
});
