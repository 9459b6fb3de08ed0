/**
 * HTTP RateLimit headers (src/ratelimit/headers.ts; spec/rate-limiting.md §5 D case 36) parsed
 * with a strict Structured Fields parser (RFC 9651 lists, items, bare items and parameters), and
 * the per-socket message rate (src/ratelimit/message-limit.ts; case 35 at the unit level): a
 * burst, then denials with details, then a flood once more than `floodDenials` denials fall within
 * `floodWindowMs`, never before and never when the denials are spread out.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rateLimitHeaders, type LimitState } from '../../src/ratelimit/headers.js';
import {
  MESSAGE_POLICY,
  MESSAGE_RATE_DEFAULTS,
  MessageRate,
  type MessageRateOptions,
} from '../../src/ratelimit/message-limit.js';

// ---------------------------------------------------------------------------------------------
// A strict Structured Fields parser (RFC 9651 §4.2), enough for RateLimit / RateLimit-Policy
// ---------------------------------------------------------------------------------------------

type BareItem =
  | { readonly type: 'integer' | 'decimal'; readonly value: number }
  | { readonly type: 'string' | 'token' | 'bytes'; readonly value: string }
  | { readonly type: 'boolean'; readonly value: boolean };

interface SfItem {
  readonly value: BareItem;
  readonly params: Map<string, BareItem>;
}

interface SfInnerList {
  readonly inner: SfItem[];
  readonly params: Map<string, BareItem>;
}

class SfError extends Error {}

class SfParser {
  private i = 0;

  constructor(private readonly input: string) {}

  static list(text: string): (SfItem | SfInnerList)[] {
    const parser = new SfParser(text);
    parser.skip(' ');
    const members = parser.parseList();
    parser.skip(' ');
    if (!parser.done()) parser.fail('trailing characters');
    return members;
  }

  static item(text: string): SfItem {
    const parser = new SfParser(text);
    parser.skip(' ');
    const item = parser.parseItem();
    parser.skip(' ');
    if (!parser.done()) parser.fail('trailing characters');
    return item;
  }

  private done(): boolean {
    return this.i >= this.input.length;
  }

  private peek(): string {
    return this.input[this.i] ?? '';
  }

  private fail(why: string): never {
    throw new SfError(`${why} at ${this.i} in ${JSON.stringify(this.input)}`);
  }

  private skip(chars: string): void {
    while (!this.done() && chars.includes(this.peek())) this.i++;
  }

  private parseList(): (SfItem | SfInnerList)[] {
    const members: (SfItem | SfInnerList)[] = [];
    while (!this.done()) {
      members.push(this.peek() === '(' ? this.parseInnerList() : this.parseItem());
      this.skip(' \t');
      if (this.done()) return members;
      if (this.peek() !== ',') this.fail('expected ","');
      this.i++;
      this.skip(' \t');
      if (this.done()) this.fail('trailing comma');
    }
    return members;
  }

  private parseInnerList(): SfInnerList {
    this.i++; // (
    const inner: SfItem[] = [];
    while (!this.done()) {
      this.skip(' ');
      if (this.peek() === ')') {
        this.i++;
        return { inner, params: this.parseParameters() };
      }
      inner.push(this.parseItem());
      if (this.peek() !== ' ' && this.peek() !== ')') this.fail('expected SP or ")"');
    }
    return this.fail('unterminated inner list');
  }

  private parseItem(): SfItem {
    const value = this.parseBareItem();
    return { value, params: this.parseParameters() };
  }

  private parseParameters(): Map<string, BareItem> {
    const params = new Map<string, BareItem>();
    while (this.peek() === ';') {
      this.i++;
      this.skip(' ');
      const key = this.parseKey();
      let value: BareItem = { type: 'boolean', value: true };
      if (this.peek() === '=') {
        this.i++;
        value = this.parseBareItem();
      }
      params.set(key, value);
    }
    return params;
  }

  private parseKey(): string {
    if (!/^[a-z*]$/.test(this.peek())) this.fail('a key starts with lcalpha or "*"');
    const start = this.i;
    while (/^[a-z0-9_\-.*]$/.test(this.peek())) this.i++;
    return this.input.slice(start, this.i);
  }

  private parseBareItem(): BareItem {
    const c = this.peek();
    if (c === '-' || /^[0-9]$/.test(c)) return this.parseNumber();
    if (c === '"') return this.parseString();
    if (c === '*' || /^[A-Za-z]$/.test(c)) return this.parseToken();
    if (c === ':') return this.parseBytes();
    if (c === '?') return this.parseBoolean();
    return this.fail('not a bare item');
  }

  private parseNumber(): BareItem {
    const start = this.i;
    if (this.peek() === '-') this.i++;
    if (!/^[0-9]$/.test(this.peek())) this.fail('a digit must follow "-"');
    let decimal = false;
    let digits = 0;
    let intDigits = 0;
    while (!this.done()) {
      const c = this.peek();
      if (/^[0-9]$/.test(c)) {
        digits++;
        this.i++;
      } else if (c === '.' && !decimal) {
        if (digits > 12) this.fail('too many integer digits in a decimal');
        decimal = true;
        intDigits = digits;
        this.i++;
      } else break;
      if (!decimal && digits > 15) this.fail('integer too long');
      if (decimal && digits > 15) this.fail('decimal too long');
    }
    const text = this.input.slice(start, this.i);
    if (!decimal) return { type: 'integer', value: Number.parseInt(text, 10) };
    if (text.endsWith('.')) this.fail('a decimal cannot end with "."');
    if (digits - intDigits > 3) this.fail('more than 3 fraction digits');
    return { type: 'decimal', value: Number.parseFloat(text) };
  }

  private parseString(): BareItem {
    this.i++; // "
    let out = '';
    while (!this.done()) {
      const c = this.peek();
      this.i++;
      if (c === '\\') {
        const next = this.peek();
        if (next !== '"' && next !== '\\') this.fail('only \\" and \\\\ may be escaped');
        out += next;
        this.i++;
      } else if (c === '"') {
        return { type: 'string', value: out };
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail('a string holds printable ASCII only');
        out += c;
      }
    }
    return this.fail('unterminated string');
  }

  private parseToken(): BareItem {
    const start = this.i;
    this.i++;
    while (/^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/.test(this.peek())) this.i++;
    return { type: 'token', value: this.input.slice(start, this.i) };
  }

  private parseBytes(): BareItem {
    this.i++;
    const start = this.i;
    while (/^[A-Za-z0-9+/=]$/.test(this.peek())) this.i++;
    if (this.peek() !== ':') this.fail('unterminated byte sequence');
    const value = this.input.slice(start, this.i);
    this.i++;
    return { type: 'bytes', value };
  }

  private parseBoolean(): BareItem {
    this.i++;
    const c = this.peek();
    if (c !== '0' && c !== '1') this.fail('a boolean is ?0 or ?1');
    this.i++;
    return { type: 'boolean', value: c === '1' };
  }
}

/** One RateLimit / RateLimit-Policy field: a list of exactly one string item with integer params. */
function parsePolicyItem(
  field: string,
  integerKeys: readonly string[],
): { name: string; params: Record<string, number> } {
  const list = SfParser.list(field);
  expect(list).toHaveLength(1);
  const member = list[0]!;
  if ('inner' in member) throw new Error('expected an item, got an inner list');
  expect(member.value.type).toBe('string');
  const params: Record<string, number> = {};
  expect([...member.params.keys()].sort()).toEqual([...integerKeys].sort());
  for (const key of integerKeys) {
    const value = member.params.get(key)!;
    expect(value.type, `${key} is an sf-integer`).toBe('integer');
    params[key] = value.value as number;
    expect(Number.isInteger(params[key])).toBe(true);
    expect(params[key]).toBeGreaterThanOrEqual(0);
  }
  return { name: member.value.value as string, params };
}

/** Retry-After as delay-seconds (RFC 9110 §10.2.3): 1*DIGIT. */
function retryAfterSeconds(value: string | undefined): number {
  expect(value).toMatch(/^[0-9]+$/);
  return Number(value);
}

describe('the Structured Fields parser used here is strict', () => {
  it('parses lists of items with parameters', () => {
    expect(SfParser.list('"a";q=1;w=2, tok;x, ?1, -5, 1.25, :aGk=:, ("i" 2);p')).toHaveLength(7);
    expect(SfParser.item('"a\\"b\\\\c"').value).toEqual({ type: 'string', value: 'a"b\\c' });
    expect(SfParser.item('"x";flag').params.get('flag')).toEqual({ type: 'boolean', value: true });
  });

  it.each([
    ['"a";q=1.', 'decimal ending in "."'],
    ['"a\\x"', 'a bad escape'],
    ['"a', 'an unterminated string'],
    ['"a";Q=1', 'an uppercase key'],
    ['"a";q=1,', 'a trailing comma'],
    ['"a" ;q=1', 'a space before ";"'],
    ['"a";q=1234567890123456', 'a 16-digit integer'],
    ['"é"', 'non-ASCII in a string'],
    ['"a\tb"', 'a control character in a string'],
    ['"a";q=1 x', 'trailing garbage'],
    ['', 'nothing is an empty list, not an item'],
  ])('rejects %j (%s)', (text) => {
    if (text === '') {
      expect(SfParser.list(text)).toEqual([]);
      expect(() => SfParser.item(text)).toThrow(SfError);
    } else expect(() => SfParser.list(text)).toThrow(SfError);
  });
});

// ---------------------------------------------------------------------------------------------
// rateLimitHeaders
// ---------------------------------------------------------------------------------------------

const state = (over: Partial<LimitState> = {}): LimitState => ({
  policy: 'socket_connect',
  limit: 20,
  windowMs: 60_000,
  remaining: 1,
  resetMs: 2500,
  retryAfterMs: 0,
  ...over,
});

describe('rateLimitHeaders (spec 36)', () => {
  it('low remaining on a success: RateLimit-Policy and RateLimit, no Retry-After', () => {
    const headers = rateLimitHeaders(state(), false);
    expect(headers).toEqual({
      'RateLimit-Policy': '"socket_connect";q=20;w=60',
      RateLimit: '"socket_connect";r=1;t=3',
    });
    expect(parsePolicyItem(headers['RateLimit-Policy']!, ['q', 'w'])).toEqual({
      name: 'socket_connect',
      params: { q: 20, w: 60 },
    });
    expect(parsePolicyItem(headers.RateLimit!, ['r', 't'])).toEqual({
      name: 'socket_connect',
      params: { r: 1, t: 3 },
    });
    expect(headers['Retry-After']).toBeUndefined();
  });

  it('denied (429): r=0, t covers the retry, Retry-After ≥ t', () => {
    const headers = rateLimitHeaders(
      state({ remaining: 0, resetMs: 3000, retryAfterMs: 4500 }),
      true,
    );
    const policy = parsePolicyItem(headers['RateLimit-Policy']!, ['q', 'w']);
    const limit = parsePolicyItem(headers.RateLimit!, ['r', 't']);
    expect(policy.params).toEqual({ q: 20, w: 60 });
    expect(limit.params).toEqual({ r: 0, t: 5 });
    const retryAfter = retryAfterSeconds(headers['Retry-After']);
    expect(retryAfter).toBe(5);
    expect(retryAfter).toBeGreaterThanOrEqual(limit.params.t!);
  });

  it('a 1 ms wait is 1 s, never 0; a denial without times still says Retry-After: 1', () => {
    const tiny = rateLimitHeaders(state({ remaining: 0, resetMs: 1, retryAfterMs: 1 }), true);
    expect(parsePolicyItem(tiny.RateLimit!, ['r', 't']).params).toEqual({ r: 0, t: 1 });
    expect(retryAfterSeconds(tiny['Retry-After'])).toBe(1);
    const none = rateLimitHeaders(state({ remaining: 0, resetMs: 0, retryAfterMs: 0 }), true);
    expect(retryAfterSeconds(none['Retry-After'])).toBe(1);
  });

  it('windows round up to whole seconds and are never 0; remaining is never negative', () => {
    expect(
      parsePolicyItem(rateLimitHeaders(state({ windowMs: 1500 }), false)['RateLimit-Policy']!, [
        'q',
        'w',
      ]).params.w,
    ).toBe(2);
    expect(
      parsePolicyItem(rateLimitHeaders(state({ windowMs: 200 }), false)['RateLimit-Policy']!, [
        'q',
        'w',
      ]).params.w,
    ).toBe(1);
    expect(
      parsePolicyItem(rateLimitHeaders(state({ remaining: -3 }), false).RateLimit!, ['r', 't'])
        .params.r,
    ).toBe(0);
  });

  it('escapes quotes and backslashes in policy names', () => {
    const name = 'odd "name" \\ with\\"both';
    const headers = rateLimitHeaders(state({ policy: name }), true);
    expect(headers['RateLimit-Policy']).toBe('"odd \\"name\\" \\\\ with\\\\\\"both";q=20;w=60');
    expect(parsePolicyItem(headers['RateLimit-Policy']!, ['q', 'w']).name).toBe(name);
    expect(parsePolicyItem(headers.RateLimit!, ['r', 't']).name).toBe(name);
  });

  it('any state with a printable policy name parses, with integers, and Retry-After ≥ t ≥ the retry in seconds', () => {
    const printable = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
      minLength: 1,
      maxLength: 30,
    });
    fc.assert(
      fc.property(
        printable,
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 86_400_000 }),
        fc.integer({ min: -5, max: 1_000_000 }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.boolean(),
        (policy, limit, windowMs, remaining, resetMs, retryAfterMs, denied) => {
          const headers = rateLimitHeaders(
            { policy, limit, windowMs, remaining, resetMs, retryAfterMs },
            denied,
          );
          const q = parsePolicyItem(headers['RateLimit-Policy']!, ['q', 'w']);
          const r = parsePolicyItem(headers.RateLimit!, ['r', 't']);
          expect(q.name).toBe(policy);
          expect(r.name).toBe(policy);
          expect(q.params.q).toBe(limit);
          expect(q.params.w).toBe(Math.max(1, Math.ceil(windowMs / 1000)));
          expect(r.params.r).toBe(Math.max(0, remaining));
          expect(r.params.t! * 1000).toBeGreaterThanOrEqual(resetMs);
          if (denied) {
            const after = retryAfterSeconds(headers['Retry-After']);
            expect(after).toBeGreaterThanOrEqual(1);
            expect(after).toBeGreaterThanOrEqual(r.params.t!);
            expect(after * 1000).toBeGreaterThanOrEqual(retryAfterMs);
          } else expect(headers['Retry-After']).toBeUndefined();
        },
      ),
      { numRuns: 2000, seed: 0x4ead },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// MessageRate
// ---------------------------------------------------------------------------------------------

const rate = (over: Partial<MessageRateOptions> = {}): MessageRate =>
  new MessageRate({ ...MESSAGE_RATE_DEFAULTS, ...over });

describe('MessageRate (per-socket message limit)', () => {
  it('defaults: 1000 per second, burst 1000, a flood is 50 denials within 10 s; the policy name is socket_messages', () => {
    expect(MESSAGE_RATE_DEFAULTS).toEqual({
      limit: 1000,
      windowMs: 1000,
      burst: 1000,
      floodDenials: 50,
      floodWindowMs: 10_000,
    });
    expect(MESSAGE_POLICY).toBe('socket_messages');
    const messages = rate();
    for (let i = 0; i < 1000; i++) expect(messages.check(0)).toBe('ok');
    expect(messages.check(0)).toBe('denied');
    expect(messages.decision).toMatchObject({
      allowed: false,
      limit: 1000,
      windowMs: 1000,
      remaining: 0,
      retryAfterMs: 1,
    });
  });

  it('a burst, then denials with details; a denied message consumes nothing', () => {
    const messages = rate({ limit: 10, windowMs: 1000, burst: 5 });
    for (let i = 0; i < 5; i++) {
      expect(messages.check(1000)).toBe('ok');
      expect(messages.decision).toMatchObject({ allowed: true, remaining: 4 - i, retryAfterMs: 0 });
    }
    expect(messages.check(1000)).toBe('denied');
    expect(messages.decision).toEqual({
      allowed: false,
      limit: 10,
      windowMs: 1000,
      remaining: 0,
      resetMs: 100,
      retryAfterMs: 100,
    });
    expect(messages.check(1050)).toBe('denied');
    expect(messages.decision.retryAfterMs).toBe(50);
    // The denials did not push the next slot back
    expect(messages.check(1100)).toBe('ok');
    expect(messages.check(1100)).toBe('denied');
  });

  it('flood: more than floodDenials denials within floodWindowMs, never before', () => {
    const messages = rate({
      limit: 1,
      windowMs: 60_000,
      burst: 1,
      floodDenials: 5,
      floodWindowMs: 1000,
    });
    expect(messages.check(0)).toBe('ok');
    const outcomes = Array.from({ length: 5 }, (_, i) => messages.check(10 + i * 100));
    expect(outcomes).toEqual(['denied', 'denied', 'denied', 'denied', 'denied']);
    expect(messages.check(500)).toBe('flood');
  });

  it('flood at the boundary: the (floodDenials + 1)-th denial exactly floodWindowMs after the first still floods', () => {
    const messages = rate({
      limit: 1,
      windowMs: 1e9,
      burst: 1,
      floodDenials: 5,
      floodWindowMs: 1000,
    });
    messages.check(0);
    const outcomes = Array.from({ length: 6 }, (_, i) => messages.check(200 + i * 200));
    expect(outcomes).toEqual(['denied', 'denied', 'denied', 'denied', 'denied', 'flood']);
  });

  it('denials spread out over more than floodWindowMs never flood', () => {
    const messages = rate({
      limit: 1,
      windowMs: 1e9,
      burst: 1,
      floodDenials: 5,
      floodWindowMs: 1000,
    });
    messages.check(0);
    // 6 consecutive denials span 5 × 201 ms > 1000 ms
    for (let i = 1; i <= 2000; i++) expect(messages.check(i * 201)).toBe('denied');
  });

  it('a burst of denials, a pause longer than the window, then more: no flood until the count is reached again', () => {
    const messages = rate({
      limit: 1,
      windowMs: 1e9,
      burst: 1,
      floodDenials: 5,
      floodWindowMs: 1000,
    });
    messages.check(0);
    for (let i = 0; i < 5; i++) expect(messages.check(10 + i)).toBe('denied');
    // 1.5 s later: the earlier denials are outside the window
    for (let i = 0; i < 5; i++) expect(messages.check(1600 + i)).toBe('denied');
    expect(messages.check(1605)).toBe('flood');
  });

  it('sockets are independent: a flood on one says nothing about another', () => {
    const a = rate({ limit: 1, windowMs: 60_000, burst: 1, floodDenials: 2, floodWindowMs: 1000 });
    const b = rate({ limit: 1, windowMs: 60_000, burst: 1, floodDenials: 2, floodWindowMs: 1000 });
    expect([a.check(0), a.check(1), a.check(2), a.check(3)]).toEqual([
      'ok',
      'denied',
      'denied',
      'flood',
    ]);
    expect([b.check(3), b.check(4)]).toEqual(['ok', 'denied']);
  });
});
