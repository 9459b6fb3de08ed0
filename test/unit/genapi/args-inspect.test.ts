/**
 * inspect(): Elixir's inspect/1 of JSON values, as it appears in argument error messages
 * (spec §3; PhoenixGenApi interpolates `inspect(value)` into every "got <v>" text).
 */
import { describe, expect, it } from 'vitest';
import { inspect } from '../../../src/genapi/args/inspect.js';

describe('inspect: scalars', () => {
  it.each([
    [null, 'nil'],
    [undefined, 'nil'],
    [true, 'true'],
    [false, 'false'],
    [0, '0'],
    [-0, '0'],
    [42, '42'],
    [-7, '-7'],
    [1e21, '1000000000000000000000'],
    [2 ** 53, '9007199254740992'],
  ])('%s → %s', (value, expected) => {
    expect(inspect(value)).toBe(expected);
  });

  it.each([
    [1.5, '1.5'],
    [-0.25, '-0.25'],
    [0.1, '0.1'],
    [0.001, '0.001'],
    [0.0001, '1.0e-4'],
    [0.00012, '1.2e-4'],
    [1.2e-7, '1.2e-7'],
    [123.456, '123.456'],
    [3.14159, '3.14159'],
    [1e-10, '1.0e-10'],
  ])('float %s → %s (Erlang short float format)', (value, expected) => {
    expect(inspect(value)).toBe(expected);
  });
});

describe('inspect: strings', () => {
  it('double-quotes plain text and keeps non-ASCII printable characters', () => {
    expect(inspect('city')).toBe('"city"');
    expect(inspect('')).toBe('""');
    expect(inspect('héllo 😀 日本')).toBe('"héllo 😀 日本"');
  });

  it('escapes quotes, backslashes and interpolation like Elixir', () => {
    expect(inspect('say "hi"')).toBe('"say \\"hi\\""');
    expect(inspect('a\\b')).toBe('"a\\\\b"');
    expect(inspect('#{x} and # {')).toBe('"\\#{x} and # {"');
  });

  it('escapes the nine control characters Elixir has short escapes for', () => {
    expect(inspect('a\nb\tc\rd')).toBe('"a\\nb\\tc\\rd"');
    expect(inspect('\u0007\u0008\u000b\u000c\u001b\u007f')).toBe('"\\a\\b\\v\\f\\e\\d"');
  });

  it('shows invisible and bidirectional characters as \\uXXXX', () => {
    expect(inspect('a\u00a0b')).toBe('"a\\u00A0b"');
    expect(inspect('\u202Eevil')).toBe('"\\u202Eevil"');
    expect(inspect('zero\u200bwidth')).toBe('"zero\\u200Bwidth"');
  });

  it('prints a string with a non-printable character as its UTF-8 bytes', () => {
    expect(inspect('\u0000')).toBe('<<0>>');
    expect(inspect('a\u0001')).toBe('<<97, 1>>');
    expect(inspect('é\u0002')).toBe('<<195, 169, 2>>');
  });

  it('truncates strings after 4096 characters', () => {
    const long = 'x'.repeat(5000);
    expect(inspect(long)).toBe(`"${'x'.repeat(4096)}" <> ...`);
    expect(inspect('y'.repeat(4096))).toBe(`"${'y'.repeat(4096)}"`);
  });
});

describe('inspect: lists and maps', () => {
  it('renders lists with ", " separators', () => {
    expect(inspect([])).toBe('[]');
    expect(inspect([1, 'two'])).toBe('[1, "two"]');
    expect(inspect([null, true, 1.5, [2, ['x']]])).toBe('[nil, true, 1.5, [2, ["x"]]]');
  });

  it('renders objects as Elixir maps with string keys, in key order', () => {
    expect(inspect({})).toBe('%{}');
    expect(inspect({ a: 1, b: [2] })).toBe('%{"a" => 1, "b" => [2]}');
    expect(inspect({ z: { y: null }, a: 'q"' })).toBe('%{"z" => %{"y" => nil}, "a" => "q\\""}');
  });

  it('stops after 50 items with "..." (Elixir default :limit)', () => {
    const fifty = Array.from({ length: 50 }, (_, i) => i);
    expect(inspect(fifty)).toBe(`[${fifty.join(', ')}]`);
    const many = Array.from({ length: 51 }, (_, i) => i);
    expect(inspect(many)).toBe(`[${fifty.join(', ')}, ...]`);
  });

  it('shares the 50-item budget across nesting levels and map pairs', () => {
    const nested = [Array.from({ length: 60 }, () => 0), 'after'];
    // the outer item takes 1 unit, the inner list the 49 left, then everything is elided
    expect(inspect(nested)).toBe(`[[${Array(49).fill('0').join(', ')}, ...], ...]`);
    const map = Object.fromEntries(Array.from({ length: 55 }, (_, i) => [`k${i}`, i]));
    const shown = Array.from({ length: 50 }, (_, i) => `"k${i}" => ${i}`).join(', ');
    expect(inspect(map)).toBe(`%{${shown}, ...}`);
  });
});
