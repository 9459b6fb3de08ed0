/**
 * The phoenixToken strategy against Phoenix itself: the 32 vectors Phoenix 1.7 / plug_crypto 2.1
 * made (test/auth/phoenix-token-vectors.json, a copy of shared/spec's), each checked twice, as Phoenix.Token.verify's
 * answer (data or reason) and as the identity the strategy gives; then the identity mapping,
 * the edges of plug_crypto's age check, the options' errors, that the key is derived once,
 * fuzzing of token strings, and a printed per-token cost.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { etfToPlain, type EtfTerm } from '../../src/auth/etf.js';
import {
  createPhoenixTokenStrategy,
  derivePhoenixTokenKey,
  PHOENIX_TOKEN_DEFAULTS,
  phoenixTokenIdentity,
  verifyPhoenixToken,
  type PhoenixTokenOptions,
} from '../../src/auth/phoenix-token.js';
import {
  isAuthFailure,
  type AuthFailure,
  type AuthRequest,
  type Identity,
} from '../../src/auth/types.js';
import { ConfigError } from '../../src/config/errors.js';
import { ROOT } from '../support/spawn.js';
import { signPayload, signToken, t, termToBinary, testKey } from './etf-encode.js';

// Counts key derivations (the real function still runs): the factory must derive once.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return { ...actual, pbkdf2Sync: vi.fn(actual.pbkdf2Sync) };
});

interface Vector {
  readonly name: string;
  readonly token: string | null;
  readonly expect: 'ok' | 'invalid' | 'expired' | 'missing';
  readonly now_ms: number;
  readonly verify_max_age_s: number | null;
  readonly data?: unknown;
  readonly data_decimal?: string;
  readonly salt?: string;
  readonly secret_key_base?: string;
}
interface VectorFile {
  readonly secret_key_base: string;
  readonly salt: string;
  readonly key_iterations: number;
  readonly key_length: number;
  readonly key_digest: string;
  readonly vectors: readonly Vector[];
}

/**
 * A copy of shared/spec/phoenix-token-vectors.json (made with Phoenix 1.7.24 / plug_crypto
 * 2.1.1), kept in the repo so the test runs wherever the repo is checked out.
 */
function vectorFile(): VectorFile {
  const path = join(ROOT, 'test', 'auth', 'phoenix-token-vectors.json');
  return JSON.parse(readFileSync(path, 'utf8')) as VectorFile;
}

const SPEC = vectorFile();
const SECRET = SPEC.secret_key_base;
const SALT = SPEC.salt;
const KEY = testKey(SECRET, SALT);
const NOW = 1_700_000_060_000;
const SIGNED = 1_700_000_000_000;

/** The identity the strategy must give for each `ok` vector; absent: refused as invalid. */
const IDENTITIES: Readonly<Record<string, Partial<Identity>>> = {
  'small integer': { userId: '123' },
  'negative integer': { userId: '-5' },
  'integer over 32 bits': { userId: '1099511627776' },
  'integer over 64 bits': { userId: '1180591620717411303424' },
  'ascii string': { userId: 'alice' },
  'utf-8 string': { userId: 'zoë 東京' },
  'map with atom keys': { userId: '42', assigns: { team: 'red' } },
  'uuid string': { userId: '5f0c8a4e-3b1d-4c7a-9e2f-1a2b3c4d5e6f' },
  'embedded max_age 3600, checked 59 min later': {
    userId: 'bob',
    expiresAt: SIGNED + 3600_000,
  },
  'embedded max_age 3600 overridden by verify max_age 86400, checked 2 h later': {
    userId: 'bob',
  },
  'sha384 digest': { userId: 'carol' },
  'sha512 digest': { userId: 'carol' },
  'legacy {data, signed_at} tuple': { userId: 'dave' },
  'legacy %{data:, signed:} map': { userId: 'erin' },
};

function request(token: string | null): AuthRequest {
  return {
    token,
    params: {},
    headers: {},
    peer: { address: '127.0.0.1', port: 1 },
    transport: 'websocket',
  };
}

function reasonOf(result: object): string {
  return 'failed' in result ? (result as AuthFailure).reason : 'ok';
}

describe('phoenixToken: the Phoenix vectors', () => {
  it('the file holds the 32 vectors with the key parameters Phoenix.Token uses', () => {
    expect(SPEC.vectors).toHaveLength(32);
    expect([SPEC.key_iterations, SPEC.key_length, SPEC.key_digest]).toEqual([
      PHOENIX_TOKEN_DEFAULTS.keyIterations,
      PHOENIX_TOKEN_DEFAULTS.keyLength,
      PHOENIX_TOKEN_DEFAULTS.keyDigest,
    ]);
  });

  it('the test signer makes the vectors byte for byte (so its tokens stand for Phoenix ones)', () => {
    const alice = SPEC.vectors.find((v) => v.name === 'ascii string');
    expect(signToken(KEY, t.bin('alice'), SIGNED)).toBe(alice?.token);
    const nil = SPEC.vectors.find((v) => v.name === 'nil');
    expect(signToken(KEY, t.atom('nil'), SIGNED)).toBe(nil?.token);
  });

  for (const vector of SPEC.vectors) {
    const key = () => derivePhoenixTokenKey(vector.secret_key_base ?? SECRET, vector.salt ?? SALT);

    it(`verify: ${vector.name} → ${vector.expect}`, () => {
      const result = verifyPhoenixToken(
        key(),
        vector.token,
        vector.verify_max_age_s,
        vector.now_ms,
      );
      expect(reasonOf(result)).toBe(vector.expect);
      if ('failed' in result) return;
      // Integers past 2^53 are decimal strings in plain form (data_decimal is exact).
      expect(etfToPlain(result.data)).toEqual(vector.data_decimal ?? vector.data);
    });

    if (vector.verify_max_age_s === 0) {
      // maxAge 0 would refuse every token, so the config refuses it (tested below); the
      // verify test above covers plug_crypto's answer.
      continue;
    }
    it(`strategy: ${vector.name}`, async () => {
      const strategy = createPhoenixTokenStrategy(
        {
          secretKeyBase: vector.secret_key_base ?? SECRET,
          salt: vector.salt ?? SALT,
          maxAge: vector.verify_max_age_s,
        },
        () => vector.now_ms,
      );
      const result = await strategy.authenticate(request(vector.token));
      const expected = IDENTITIES[vector.name];
      if (vector.expect !== 'ok' || expected === undefined) {
        expect(reasonOf(result)).toBe(vector.expect === 'ok' ? 'invalid' : vector.expect);
        return;
      }
      expect(result).toEqual({
        userId: expected.userId,
        deviceId: null,
        roles: [],
        assigns: {},
        expiresAt: SIGNED + 86400_000,
        ...expected,
      });
    });
  }

  it('every ok vector is either mapped to an identity or refused on purpose', () => {
    const refused = SPEC.vectors
      .filter((v) => v.expect === 'ok' && IDENTITIES[v.name] === undefined)
      .map((v) => v.name);
    // Data that names no user: empty string, float, nil, true, a list, maps without user_id.
    expect(refused.sort()).toEqual(
      [
        'empty string',
        'float',
        'nil',
        'true',
        'map with string keys',
        'list of integers',
        'nested',
      ].sort(),
    );
  });
});

describe('phoenixToken: identity mapping', () => {
  const strategy = (options: Partial<PhoenixTokenOptions> = {}, now = NOW) =>
    createPhoenixTokenStrategy({ secretKeyBase: SECRET, salt: SALT, ...options }, () => now);
  const auth = (data: EtfTerm, options: Partial<PhoenixTokenOptions> = {}) =>
    strategy(options).authenticate(request(signToken(KEY, data, SIGNED)));

  it('a map with atom keys gives user, device, roles; the rest become assigns', async () => {
    const data = t.map(
      [t.atom('user_id'), t.int(42)],
      [t.atom('device_id'), t.bin('phone-1')],
      [t.atom('roles'), t.list(t.bin('admin'), t.atom('ops'))],
      [t.atom('team'), t.bin('red')],
      [t.bin('plan'), t.tuple(t.atom('pro'), t.int(2n ** 70n))],
      [t.atom('ok'), t.atom('true')],
    );
    expect(await auth(data)).toEqual({
      userId: '42',
      deviceId: 'phone-1',
      roles: ['admin', 'ops'],
      assigns: { team: 'red', plan: ['pro', (2n ** 70n).toString()], ok: true },
      expiresAt: SIGNED + 86400_000,
    });
  });

  it('a map with string keys and custom key names', async () => {
    const data = t.map(
      [t.bin('uid'), t.bin('u-9')],
      [t.bin('dev'), t.int(7)],
      [t.bin('perms'), t.list()],
    );
    const result = await auth(data, { keys: { userId: 'uid', deviceId: 'dev', roles: 'perms' } });
    expect(result).toMatchObject({ userId: 'u-9', deviceId: '7', roles: [], assigns: {} });
  });

  it('nil device id and roles mean none', async () => {
    const data = t.map(
      [t.atom('user_id'), t.bin('a')],
      [t.atom('device_id'), t.atom('nil')],
      [t.atom('roles'), t.atom('nil')],
    );
    expect(await auth(data)).toMatchObject({ userId: 'a', deviceId: null, roles: [] });
  });

  it('a "__proto__" entry is an assign, not a prototype', async () => {
    const data = t.map(
      [t.atom('user_id'), t.int(1)],
      [t.bin('__proto__'), t.map([t.bin('x'), t.int(1)])],
    );
    const result = (await auth(data)) as Identity;
    expect(Object.getPrototypeOf(result.assigns)).toBe(Object.prototype);
    expect(Object.hasOwn(result.assigns, '__proto__')).toBe(true);
    expect((result.assigns as { x?: unknown }).x).toBeUndefined();
  });

  const refusals: [string, EtfTerm][] = [
    ['a float', t.float(1.5)],
    ['an atom', t.atom('alice')],
    ['a tuple', t.tuple(t.int(1))],
    ['a non-UTF-8 binary', t.bin(Uint8Array.of(0xff, 0xfe))],
    ['a map without user_id', t.map([t.atom('id'), t.int(1)])],
    ['a map whose user_id is nil', t.map([t.atom('user_id'), t.atom('nil')])],
    ['a map whose user_id is a list', t.map([t.atom('user_id'), t.list(t.int(1))])],
    [
      'user_id as atom and as string (ambiguous)',
      t.map([t.atom('user_id'), t.int(1)], [t.bin('user_id'), t.int(2)]),
    ],
    ['a float device_id', t.map([t.atom('user_id'), t.int(1)], [t.atom('device_id'), t.float(2)])],
    ['roles not a list', t.map([t.atom('user_id'), t.int(1)], [t.atom('roles'), t.bin('admin')])],
    [
      'a role that is a number',
      t.map([t.atom('user_id'), t.int(1)], [t.atom('roles'), t.list(t.int(1))]),
    ],
    [
      'a role that is true',
      t.map([t.atom('user_id'), t.int(1)], [t.atom('roles'), t.list(t.atom('true'))]),
    ],
  ];
  for (const [name, data] of refusals) {
    it(`data that is ${name} is invalid`, async () => {
      const result = await auth(data);
      expect(reasonOf(result)).toBe('invalid');
      // Log messages never carry the data itself.
      expect((result as AuthFailure).message).not.toMatch(/alice|admin/);
    });
  }

  it('phoenixTokenIdentity leaves expiry to the age check', () => {
    expect(phoenixTokenIdentity(t.int(5))).toEqual({
      userId: '5',
      deviceId: null,
      roles: [],
      assigns: {},
    });
  });
});

describe('phoenixToken: age, as plug_crypto checks it', () => {
  const verify = (token: string, maxAge: number | null, now: number) =>
    verifyPhoenixToken(KEY, token, maxAge, now);

  it('accepted up to and including signed_at + max_age, expired 1 ms later', () => {
    const token = signToken(KEY, t.int(1), SIGNED, 60);
    expect(verify(token, null, SIGNED + 60_000)).toMatchObject({ expiresAt: SIGNED + 60_000 });
    expect(reasonOf(verify(token, null, SIGNED + 60_001))).toBe('expired');
    expect(reasonOf(verify(token, null, SIGNED))).toBe('ok');
    expect(reasonOf(verify(token, null, SIGNED - 1))).toBe('invalid');
  });

  it("verify's max age wins over the token's, both ways", () => {
    const token = signToken(KEY, t.int(1), SIGNED, 60);
    expect(verify(token, 120, SIGNED + 100_000)).toMatchObject({ expiresAt: SIGNED + 120_000 });
    expect(reasonOf(verify(token, 30, SIGNED + 40_000))).toBe('expired');
  });

  it('fractional max ages are truncated to ms, as trunc(max_age * 1000)', () => {
    const token = signToken(KEY, t.int(1), SIGNED, t.float(1.0015));
    expect(verify(token, null, SIGNED)).toMatchObject({ expiresAt: SIGNED + 1001 });
  });

  it('an embedded :infinity never expires (verify without max_age); a verify max age still applies', () => {
    const token = signToken(KEY, t.int(1), SIGNED, t.atom('infinity'));
    expect(verify(token, null, SIGNED + 10 * 365 * 86400_000)).toMatchObject({ expiresAt: null });
    expect(reasonOf(verify(token, 60, SIGNED + 61_000))).toBe('expired');
  });

  it('a negative embedded max age is expired; a non-numeric signed_at is invalid (Erlang term order)', () => {
    expect(reasonOf(verify(signToken(KEY, t.int(1), SIGNED, -1), null, NOW))).toBe('expired');
    const atomSigned = signPayload(KEY, termToBinary(t.tuple(t.int(1), t.atom('now'), t.int(60))));
    expect(reasonOf(verify(atomSigned, null, NOW))).toBe('invalid');
  });

  it('integer arithmetic is exact, as in Erlang; float overflow is malformed', () => {
    const huge = 2n ** 2000n;
    const exact = signPayload(KEY, termToBinary(t.tuple(t.int(1), t.int(-huge), t.int(huge))));
    // -2^2000 + 2^2000 * 1000 ms is far in the future: accepted, and "never" for a Date.
    expect(verify(exact, null, NOW)).toMatchObject({ expiresAt: null });
    const past = signPayload(
      KEY,
      termToBinary(t.tuple(t.int(1), t.int(-huge), t.int(huge / 1001n))),
    );
    expect(reasonOf(verify(past, null, NOW))).toBe('expired');
    const overflow = signToken(KEY, t.int(1), SIGNED, t.float(1e306));
    expect(reasonOf(verify(overflow, null, NOW))).toBe('malformed');
    const floatSigned = signPayload(
      KEY,
      termToBinary(t.tuple(t.int(1), t.float(SIGNED + 0.5), t.int(60))),
    );
    expect(verify(floatSigned, null, NOW)).toMatchObject({ expiresAt: SIGNED + 60_000.5 });
  });

  it('signed payloads Phoenix would crash on are malformed', () => {
    const shapes: EtfTerm[] = [
      t.tuple(t.int(1), t.int(SIGNED), t.bin('a day')), // max_age not a number
      t.tuple(t.int(1)), // 1-tuple
      t.list(t.int(1), t.int(SIGNED)), // a list
      t.map([t.bin('data'), t.int(1)], [t.bin('signed'), t.int(SIGNED)]), // string keys
    ];
    for (const shape of shapes) {
      expect(reasonOf(verify(signPayload(KEY, termToBinary(shape)), null, NOW))).toBe('malformed');
    }
    // Outside the decoder's subset: a compressed term, a pid-like tag, trailing bytes.
    const tails = [
      Uint8Array.of(131, 80, 0, 0, 0, 1, 0),
      Uint8Array.of(131, 88),
      Uint8Array.of(131, 106, 0),
    ];
    for (const bytes of tails) {
      expect(reasonOf(verify(signPayload(KEY, bytes), 60, NOW))).toBe('malformed');
    }
  });
});

describe('phoenixToken: token text', () => {
  const good = signToken(KEY, t.bin('alice'), SIGNED);
  const verify = (token: string | null, maxTokenLength?: number) =>
    verifyPhoenixToken(KEY, token, 86400, NOW, maxTokenLength);

  it('refuses other algorithms, padding, stray bits and extra parts as invalid', () => {
    const [, payload, signature] = good.split('.') as [string, string, string];
    const none = Buffer.from('none').toString('base64url');
    const jwtHeader = Buffer.from('{"alg":"HS256"}').toString('base64url');
    const last = signature.at(-1) as string;
    // The last of 43 characters carries 4 signature bits and 2 that must be zero.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const stray = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const cases = [
      `${none}.${payload}.${signature}`,
      `${jwtHeader}.${payload}.${signature}`,
      `sfmynty.${payload}.${signature}`,
      `${good}=`,
      `SFMyNTY.${payload}=.${signature}`,
      `SFMyNTY.${payload}.${signature.slice(0, -1)}${stray}`,
      `${good}.`,
      `${good}.${signature}`,
      `SFMyNTY.${payload.replaceAll('-', '+').replaceAll('_', '/')}.${signature}`,
      `SFMyNTY.${payload}.${signature.slice(0, -2)}`,
    ];
    for (const token of cases) expect([token, reasonOf(verify(token))]).toEqual([token, 'invalid']);
    expect(reasonOf(verify(good))).toBe('ok');
  });

  it('a token over maxTokenLength is refused before any work; the limit is an option', async () => {
    expect(reasonOf(verify(good, good.length - 1))).toBe('invalid');
    expect((verify(good, good.length - 1) as AuthFailure).message).toMatch(/maxTokenLength/);
    expect(reasonOf(verify(good, good.length))).toBe('ok');
    const strategy = createPhoenixTokenStrategy(
      { secretKeyBase: SECRET, salt: SALT, maxTokenLength: 20 },
      () => NOW,
    );
    expect(reasonOf(await strategy.authenticate(request(good)))).toBe('invalid');
    // The default bounds a token the decoder's default would take: 8 KiB.
    const big = signToken(
      KEY,
      t.map([t.atom('user_id'), t.int(1)], [t.atom('pad'), t.bin('x'.repeat(7000))]),
      SIGNED,
    );
    expect(big.length).toBeGreaterThan(PHOENIX_TOKEN_DEFAULTS.maxTokenLength);
    expect(reasonOf(verify(big))).toBe('invalid');
  });

  it('a null token is missing, an empty one invalid', async () => {
    const strategy = createPhoenixTokenStrategy({ secretKeyBase: SECRET, salt: SALT }, () => NOW);
    expect(reasonOf(await strategy.authenticate(request(null)))).toBe('missing');
    expect(reasonOf(await strategy.authenticate(request('')))).toBe('invalid');
  });
});

describe('phoenixToken: options', () => {
  const base = { secretKeyBase: SECRET, salt: SALT };
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 'secret', /^auth\.phoenixToken must be an object/],
    [
      'no secretKeyBase',
      { salt: SALT },
      /auth\.phoenixToken\.secretKeyBase must be a non-empty string/,
    ],
    ['empty secretKeyBase', { ...base, secretKeyBase: '' }, /auth\.phoenixToken\.secretKeyBase/],
    ['numeric salt', { ...base, salt: 1 }, /auth\.phoenixToken\.salt must be a non-empty string/],
    ['maxAge 0', { ...base, maxAge: 0 }, /auth\.phoenixToken\.maxAge must be a positive number/],
    ['maxAge "1d"', { ...base, maxAge: '1d' }, /auth\.phoenixToken\.maxAge/],
    ['maxAge NaN', { ...base, maxAge: Number.NaN }, /auth\.phoenixToken\.maxAge/],
    ['maxTokenLength 1.5', { ...base, maxTokenLength: 1.5 }, /auth\.phoenixToken\.maxTokenLength/],
    ['a typo', { ...base, maxage: 60 }, /auth\.phoenixToken has no setting "maxage"/],
    ['keys a list', { ...base, keys: [] }, /auth\.phoenixToken\.keys must be an object/],
    [
      'keys.user',
      { ...base, keys: { user: 'id' } },
      /auth\.phoenixToken\.keys has no setting "user"/,
    ],
    ['keys.userId empty', { ...base, keys: { userId: '' } }, /auth\.phoenixToken\.keys\.userId/],
  ];
  for (const [name, options, message] of bad) {
    it(`${name}: ConfigError naming the setting`, () => {
      const make = () => createPhoenixTokenStrategy(options as PhoenixTokenOptions);
      expect(make).toThrow(ConfigError);
      expect(make).toThrow(message);
    });
  }

  it('maxAge null (the token’s own) and the defaults are accepted', async () => {
    const strategy = createPhoenixTokenStrategy({ ...base, maxAge: null }, () => SIGNED + 7200_000);
    const oneHour = signToken(KEY, t.int(1), SIGNED, 3600);
    expect(reasonOf(await strategy.authenticate(request(oneHour)))).toBe('expired');
    const byDefault = createPhoenixTokenStrategy(base, () => SIGNED + 7200_000);
    expect(await byDefault.authenticate(request(oneHour))).toMatchObject({
      userId: '1',
      expiresAt: SIGNED + PHOENIX_TOKEN_DEFAULTS.maxAge * 1000,
    });
    expect(byDefault.name).toBe('phoenixToken');
  });

  it('derives the key once, in the factory', async () => {
    const derive = vi.mocked(crypto.pbkdf2Sync);
    derive.mockClear();
    const strategy = createPhoenixTokenStrategy(base, () => NOW);
    expect(derive).toHaveBeenCalledTimes(1);
    const token = signToken(KEY, t.int(1), SIGNED);
    derive.mockClear(); // signToken's own derivation is not the strategy's
    for (let i = 0; i < 50; i++)
      expect(reasonOf(await strategy.authenticate(request(token)))).toBe('ok');
    expect(derive).not.toHaveBeenCalled();
  });
});

describe('phoenixToken: fuzzing', () => {
  const strategy = createPhoenixTokenStrategy({ secretKeyBase: SECRET, salt: SALT }, () => NOW);
  const valid = [
    signToken(KEY, t.bin('alice'), SIGNED),
    signToken(
      KEY,
      t.map([t.atom('user_id'), t.int(42)], [t.atom('roles'), t.list(t.bin('a'))]),
      SIGNED,
    ),
    ...SPEC.vectors
      .filter((v) => v.expect === 'ok' && IDENTITIES[v.name])
      .map((v) => v.token as string),
  ];

  it('random strings are never accepted and never throw', async () => {
    const token = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: fc.constantFrom(...'SFMyNTY.abc-_AZ09='), maxLength: 120 }),
      fc
        .tuple(
          fc.constantFrom('SFMyNTY', 'SFMzODQ', 'SFM1MTI'),
          fc.base64String(),
          fc.base64String(),
        )
        .map(([h, p, s]) => `${h}.${p.replace(/=+$/, '')}.${s.replace(/=+$/, '')}`),
    );
    await fc.assert(
      fc.asyncProperty(token, async (text) => {
        const result = await strategy.authenticate(request(text));
        expect(isAuthFailure(result)).toBe(true);
      }),
      { numRuns: 2000, seed: 0x7043_7431 },
    );
  });

  it('bit flips, truncations and splices of valid tokens are never accepted', async () => {
    const mutation = fc.record({
      token: fc.constantFrom(...valid),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 15 }),
      kind: fc.constantFrom('flip', 'truncate', 'duplicate', 'delete'),
    });
    await fc.assert(
      fc.asyncProperty(mutation, async ({ token, at, bit, kind }) => {
        const i = at % token.length;
        const mutated =
          kind === 'flip'
            ? token.slice(0, i) +
              String.fromCharCode(token.charCodeAt(i) ^ (1 << bit)) +
              token.slice(i + 1)
            : kind === 'truncate'
              ? token.slice(0, i)
              : kind === 'duplicate'
                ? token.slice(0, i) + token.slice(i)
                : token.slice(0, i) + token.slice(i + 1);
        fc.pre(mutated !== token);
        const result = await strategy.authenticate(request(mutated));
        expect(isAuthFailure(result)).toBe(true);
      }),
      { numRuns: 5000, seed: 0x7043_7432 },
    );
  });
});

describe('phoenixToken: cost', () => {
  it('prints verify() cost per token once the key is derived', async () => {
    const started = performance.now();
    const strategy = createPhoenixTokenStrategy({ secretKeyBase: SECRET, salt: SALT }, () => NOW);
    const deriveMs = performance.now() - started;
    const tokens = [
      signToken(KEY, t.int(123), SIGNED),
      signToken(
        KEY,
        t.map([t.atom('user_id'), t.int(42)], [t.atom('roles'), t.list(t.bin('admin'))]),
        SIGNED,
      ),
    ];
    for (const token of tokens) {
      const rounds = 20_000;
      let accepted = 0;
      const begin = performance.now();
      for (let i = 0; i < rounds; i++) {
        if (!isAuthFailure(await strategy.authenticate(request(token)))) accepted++;
      }
      const micros = ((performance.now() - begin) * 1000) / rounds;
      console.log(
        `phoenixToken verify: ${micros.toFixed(1)} µs/token (${token.length}-char token); key derivation ${deriveMs.toFixed(1)} ms once`,
      );
      expect(accepted).toBe(rounds);
    }
  });
});
