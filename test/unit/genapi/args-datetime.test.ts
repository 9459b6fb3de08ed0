/**
 * ISO 8601 parsing for :datetime / :naive_datetime arguments (spec §3.3), modelled on Elixir's
 * DateTime.from_iso8601 / NaiveDateTime.from_iso8601 with the offset-0 bug fixed (Z accepted).
 */
import { describe, expect, it } from 'vitest';
import { parseDatetime, parseNaiveDatetime } from '../../../src/genapi/args/datetime.js';
import { ArgumentError } from '../../../src/genapi/args/errors.js';

function failure(fn: () => unknown): ArgumentError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ArgumentError);
    return error as ArgumentError;
  }
  throw new Error('expected an ArgumentError, nothing was thrown');
}

describe('parseDatetime: accepted forms, normalised to UTC', () => {
  it.each([
    // ⚠ fix: PhoenixGenApi rejects offset 0; we accept it
    ['2024-01-15T10:30:00Z', '2024-01-15T10:30:00Z'],
    ['2024-01-15T10:30:00+00:00', '2024-01-15T10:30:00Z'],
    ['2024-01-15T10:30:00+07:00', '2024-01-15T03:30:00Z'],
    ['2024-01-15T10:30:00-05:30', '2024-01-15T16:00:00Z'],
    ['2024-01-15 10:30:00Z', '2024-01-15T10:30:00Z'],
    ['2024-01-15T10:30:00+0700', '2024-01-15T03:30:00Z'],
    ['2024-01-15T10:30:00+07', '2024-01-15T03:30:00Z'],
    ['2024-01-15T10:30:00-00:30', '2024-01-15T11:00:00Z'],
  ])('%s → %s', (input, expected) => {
    expect(parseDatetime(input)).toBe(expected);
  });

  it('moves across day, month and year boundaries when converting to UTC', () => {
    expect(parseDatetime('2024-01-01T03:00:00+07:00')).toBe('2023-12-31T20:00:00Z');
    expect(parseDatetime('2024-12-31T22:00:00-05:00')).toBe('2025-01-01T03:00:00Z');
    expect(parseDatetime('2024-03-01T01:00:00+02:00')).toBe('2024-02-29T23:00:00Z');
    expect(parseDatetime('2023-03-01T01:00:00+02:00')).toBe('2023-02-28T23:00:00Z');
  });

  it('keeps fractional seconds at the given precision, up to microseconds', () => {
    expect(parseDatetime('2024-01-15T10:30:00.123Z')).toBe('2024-01-15T10:30:00.123Z');
    expect(parseDatetime('2024-01-15T10:30:00.120+01:00')).toBe('2024-01-15T09:30:00.120Z');
    expect(parseDatetime('2024-01-15T10:30:00.123456Z')).toBe('2024-01-15T10:30:00.123456Z');
    // digits past the sixth are dropped, not rounded
    expect(parseDatetime('2024-01-15T10:30:00.1234569Z')).toBe('2024-01-15T10:30:00.123456Z');
    // a comma is an ISO 8601 decimal sign too
    expect(parseDatetime('2024-01-15T10:30:00,5Z')).toBe('2024-01-15T10:30:00.5Z');
  });

  it('accepts real leap days and signed years', () => {
    expect(parseDatetime('2024-02-29T12:00:00Z')).toBe('2024-02-29T12:00:00Z');
    expect(parseDatetime('2000-02-29T12:00:00Z')).toBe('2000-02-29T12:00:00Z');
    expect(parseDatetime('+2024-01-15T10:30:00Z')).toBe('2024-01-15T10:30:00Z');
    expect(parseDatetime('0000-01-01T00:30:00+01:00')).toBe('-0001-12-31T23:30:00Z');
  });
});

describe('parseDatetime: failures', () => {
  it.each(['2024-01-15T10:30:00', '2024-01-15 10:30:00.5', '2024-02-29T00:00:00'])(
    '%s without an offset → missing_offset',
    (input) => {
      expect(failure(() => parseDatetime(input)).message).toBe(
        `invalid datetime format for "${input}": missing_offset`,
      );
    },
  );

  it.each([
    '',
    'not a date',
    '2024-01-15',
    '2024-1-15T10:30:00Z',
    '2024-01-15t10:30:00Z',
    '2024-01-15T10:30Z',
    '2024-01-15T10:30:00.Z',
    '2024-01-15T10:30:00z',
    '2024-01-15T10:30:00Z ',
    '2024-01-15T10:30:00 Z',
    '2024-01-15T10:30:00-00:00',
    '2024-01-15T10:30:00+24:00',
    '2024-01-15T10:30:00+07:60',
    '2024-01-15T10:30:00+7:00',
    '2024-01-15T10:30:00+07:00:00',
    '20240115T103000Z',
    // not a real date or time
    '2024-02-30T10:00:00Z',
    '2023-02-29T10:00:00Z',
    '1900-02-29T10:00:00Z',
    '2024-04-31T10:00:00Z',
    '2024-13-01T10:00:00Z',
    '2024-00-10T10:00:00Z',
    '2024-01-00T10:00:00Z',
    '2024-01-15T24:00:00Z',
    '2024-01-15T23:60:00Z',
    '2024-01-15T23:59:60Z',
    // an invalid date is reported before the missing offset
    '2024-02-30T10:00:00',
  ])('%j → invalid_format', (input) => {
    expect(failure(() => parseDatetime(input)).message).toBe(
      `invalid datetime format for ${JSON.stringify(input)}: invalid_format`,
    );
  });

  it('quotes the input with Elixir escapes in the message', () => {
    expect(failure(() => parseDatetime('say "when"\n')).message).toBe(
      'invalid datetime format for "say \\"when\\"\\n": invalid_format',
    );
  });
});

describe('parseNaiveDatetime', () => {
  it.each([
    ['2024-01-15T10:30:00', '2024-01-15T10:30:00'],
    ['2024-01-15 10:30:00', '2024-01-15T10:30:00'],
    ['2024-01-15T10:30:00.000123', '2024-01-15T10:30:00.000123'],
    ['2024-01-15T10:30:00,25', '2024-01-15T10:30:00.25'],
    // an offset is accepted and dropped, never applied
    ['2024-01-15T10:30:00Z', '2024-01-15T10:30:00'],
    ['2024-01-15T10:30:00+07:00', '2024-01-15T10:30:00'],
    ['2024-02-29T23:59:59', '2024-02-29T23:59:59'],
  ])('%s → %s', (input, expected) => {
    expect(parseNaiveDatetime(input)).toBe(expected);
  });

  it.each([
    'garbage',
    '2024-01-15',
    '2024-01-15T10:30',
    '2024-01-15T10:30:00-00:00',
    '2024-01-15T10:30:00+25:00',
    '2024-02-30T10:30:00',
    '2024-01-15T25:30:00',
    '2024-01-15T10:30:00.',
  ])('%j → invalid_format', (input) => {
    expect(failure(() => parseNaiveDatetime(input)).message).toBe(
      `invalid naive_datetime format for ${JSON.stringify(input)}: invalid_format`,
    );
  });
});
