/**
 * ISO 8601 parsing for the `:datetime` and `:naive_datetime` argument types, following Elixir's
 * `DateTime.from_iso8601/1` and `NaiveDateTime.from_iso8601/1` (Calendar.ISO, extended format):
 *
 *   [+|-]YYYY-MM-DD(T| )HH:MM:SS[(.|,)fraction][Z | ±HH:MM | ±HHMM | ±HH]
 *
 * - The fraction needs at least one digit; digits past the sixth are dropped (microsecond
 *   precision), the given precision is kept in the output (`.120` stays `.120`).
 * - Offsets: hours 00..23, minutes 00..59; `-00:00` (RFC 3339 "unknown offset") is rejected.
 * - Real calendar dates only (2024-02-30 fails); no leap seconds (second 00..59).
 * Output is the JSON form Elixir's encoders give those structs: `DateTime` normalised to UTC
 * (`2024-01-15T03:30:00Z`), `NaiveDateTime` without an offset (`2024-01-15T10:30:00`).
 *
 * ⚠ Divergence, on purpose: PhoenixGenApi rejects a datetime whose offset is 0 (`...Z`, `+00:00`).
 * We accept it; only a string that really lacks an offset fails with `missing_offset`.
 * Failure reasons: Elixir reports `invalid_date` / `invalid_time` for out-of-range fields; the
 * gateway's contract folds those into `invalid_format`.
 */
import { ArgumentError } from './errors.js';
import { inspect } from './inspect.js';

interface Parsed {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** The fraction digits as given, at most 6 ('' when none). */
  fraction: string;
  /** Offset from UTC in seconds; null when the string carries none. */
  offset: number | null;
}

type Failure = 'invalid_format' | 'invalid_date' | 'invalid_time';

const HEAD = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})/;

function parse(text: string): Parsed | Failure {
  let sign = 1;
  let body = text;
  if (body.startsWith('-') || body.startsWith('+')) {
    sign = body.startsWith('-') ? -1 : 1;
    body = body.slice(1);
  }
  const head = HEAD.exec(body);
  if (!head) return 'invalid_format';
  let rest = body.slice(head[0].length);

  let fraction = '';
  if (rest.startsWith('.') || rest.startsWith(',')) {
    const digits = /^\d*/.exec(rest.slice(1))![0];
    if (digits.length === 0) return 'invalid_format';
    fraction = digits.slice(0, 6);
    rest = rest.slice(1 + digits.length);
  }

  const offset = parseOffset(rest);
  if (offset === 'error') return 'invalid_format';

  const [year, month, day, hour, minute, second] = head.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const signedYear = sign * year;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(signedYear, month)) {
    return 'invalid_date';
  }
  if (hour > 23 || minute > 59 || second > 59) return 'invalid_time';
  return { year: signedYear, month, day, hour, minute, second, fraction, offset };
}

/** Calendar.ISO's parse_offset: the clauses are tried by shape, then the digits are checked. */
function parseOffset(rest: string): number | null | 'error' {
  if (rest === '') return null;
  if (rest === 'Z') return 0;
  const sign = rest[0] === '+' ? 1 : rest[0] === '-' ? -1 : 0;
  if (sign === 0) return 'error';
  let hh: string;
  let mm: string;
  let tail: string;
  if (rest.length >= 6 && rest[3] === ':') {
    hh = rest.slice(1, 3);
    mm = rest.slice(4, 6);
    tail = rest.slice(6);
  } else if (rest.length >= 5) {
    hh = rest.slice(1, 3);
    mm = rest.slice(3, 5);
    tail = rest.slice(5);
  } else if (rest.length >= 3) {
    hh = rest.slice(1, 3);
    mm = '00';
    tail = rest.slice(3);
  } else {
    return 'error';
  }
  if (tail !== '' || !/^[0-2]\d$/.test(hh) || !/^[0-5]\d$/.test(mm)) return 'error';
  const hours = Number(hh);
  const minutes = Number(mm);
  if (hours >= 24) return 'error';
  if (sign === -1 && hours === 0 && minutes === 0) return 'error';
  return sign * (hours * 3600 + minutes * 60);
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Calendar.ISO's date format: at least 4 year digits, a leading `-` for years before 0. */
function formatDate(year: number, month: number, day: number): string {
  const y = year < 0 ? `-${pad(-year, 4)}` : pad(year, 4);
  return `${y}-${pad(month, 2)}-${pad(day, 2)}`;
}

function formatTime(hour: number, minute: number, second: number, fraction: string): string {
  return `${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction === '' ? '' : `.${fraction}`}`;
}

/**
 * An ISO 8601 datetime with an offset → the same instant as a UTC ISO string
 * (`2024-01-15T10:30:00+07:00` → `2024-01-15T03:30:00Z`).
 */
export function parseDatetime(text: string): string {
  const parsed = parse(text);
  if (typeof parsed === 'string') {
    throw new ArgumentError(`invalid datetime format for ${inspect(text)}: invalid_format`);
  }
  if (parsed.offset === null) {
    throw new ArgumentError(`invalid datetime format for ${inspect(text)}: missing_offset`);
  }
  const local = parsed.hour * 3600 + parsed.minute * 60 + parsed.second;
  const total =
    daysFromCivil(parsed.year, parsed.month, parsed.day) * 86400 + local - parsed.offset;
  const days = Math.floor(total / 86400);
  const secs = total - days * 86400;
  const { year, month, day } = civilFromDays(days);
  const time = formatTime(
    Math.floor(secs / 3600),
    Math.floor((secs % 3600) / 60),
    secs % 60,
    parsed.fraction,
  );
  return `${formatDate(year, month, day)}T${time}Z`;
}

/**
 * An ISO 8601 datetime without zone → `YYYY-MM-DDTHH:MM:SS[.fraction]`. Like
 * NaiveDateTime.from_iso8601, a (well-formed) offset is accepted and dropped, not applied.
 */
export function parseNaiveDatetime(text: string): string {
  const parsed = parse(text);
  if (typeof parsed === 'string') {
    throw new ArgumentError(`invalid naive_datetime format for ${inspect(text)}: invalid_format`);
  }
  return `${formatDate(parsed.year, parsed.month, parsed.day)}T${formatTime(
    parsed.hour,
    parsed.minute,
    parsed.second,
    parsed.fraction,
  )}`;
}
