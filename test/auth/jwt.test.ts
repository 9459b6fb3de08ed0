/**
 * The `jwt` strategy with local keys (src/auth/jwt.ts): config checks, HS256/384/512 with a
 * secret, RS256/ES256/EdDSA with a PEM public key, the time claims on an injected clock,
 * issuer/audience, claim mapping and assigns, and fast-check: random strings, mutated valid tokens
 * and random claim sets are never accepted wrongly and never make `authenticate` throw.
 * JWKS over HTTP is in jwt-jwks.test.ts.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createJwtStrategy, JWT_MIN_SECRET_BYTES, type JwtOptions } from '../../src/auth/jwt.js';
import {
  isAuthFailure,
  type AuthFailure,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from '../../src/auth/types.js';
import { ConfigError } from '../../src/config/errors.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs512-0123456789abcdef';
/** The injected wall clock: a fixed instant, so time claims are exact. */
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const clock = () => NOW_MS;

function request(token: string | null): AuthRequest {
  return {
    token,
    params: {},
    headers: {},
    peer: { address: '127.0.0.1', port: 40000 },
    transport: 'websocket',
  };
}

async function sign(
  claims: JWTPayload,
  key: KeyObject | Uint8Array,
  alg: string,
  kid?: string,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);
}

const secretKey = new TextEncoder().encode(SECRET);
const hs = (claims: JWTPayload, alg = 'HS256') => sign(claims, secretKey, alg);

async function accepted(strategy: AuthStrategy, token: string | null): Promise<Identity> {
  const result = await strategy.authenticate(request(token));
  if (isAuthFailure(result)) throw new Error(`refused: ${result.reason}: ${result.message}`);
  return result;
}

async function refused(strategy: AuthStrategy, token: string | null): Promise<AuthFailure> {
  const result = await strategy.authenticate(request(token));
  if (!isAuthFailure(result)) throw new Error(`accepted as ${JSON.stringify(result)}`);
  return result;
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function configError(options: unknown): string {
  try {
    createJwtStrategy(options as JwtOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

interface Pair {
  readonly privateKey: KeyObject;
  /** The public key as SPKI PEM, as it goes in the config. */
  readonly pem: string;
}

function pair(generate: () => { publicKey: KeyObject; privateKey: KeyObject }): Pair {
  const { publicKey, privateKey } = generate();
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

let rsa: Pair;
let ec: Pair;
let ed: Pair;
let otherEc: Pair;

beforeAll(() => {
  rsa = pair(() => generateKeyPairSync('rsa', { modulusLength: 2048 }));
  ec = pair(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  ed = pair(() => generateKeyPairSync('ed25519'));
  otherEc = pair(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
});

describe('jwt options', () => {
  it('needs exactly one of secret, publicKey, jwksUrl', () => {
    expect(configError({})).toMatch(/exactly one of secret, publicKey, jwksUrl \(got none\)/);
    expect(configError({ secret: SECRET, jwksUrl: 'https://idp.example/jwks' })).toMatch(
      /got secret, jwksUrl/,
    );
  });

  it(`refuses a secret shorter than ${JWT_MIN_SECRET_BYTES} bytes, counted in UTF-8 bytes`, () => {
    expect(configError({ secret: 'x'.repeat(31) })).toMatch(
      /auth\.jwt\.secret must be at least 32 bytes \(it has 31\).*guessed offline/,
    );
    expect(createJwtStrategy({ secret: 'x'.repeat(32) }).name).toBe('jwt');
    // 11 three-byte characters: 33 bytes, 11 characters.
    expect(createJwtStrategy({ secret: '€'.repeat(11) }).name).toBe('jwt');
    expect(configError({ secret: 42 })).toMatch(/auth\.jwt\.secret must be a string/);
  });

  it('never allows alg none, and only algorithms the key source can verify', () => {
    expect(configError({ secret: SECRET, algorithms: ['none'] })).toMatch(
      /must not contain "none"/,
    );
    expect(configError({ secret: SECRET, algorithms: ['HS256', 'NONE'] })).toMatch(/"none"/);
    expect(configError({ secret: SECRET, algorithms: ['RS256'] })).toMatch(
      /auth\.jwt\.algorithms: RS256 cannot be verified with a secret/,
    );
    expect(configError({ secret: SECRET, algorithms: [] })).toMatch(/non-empty array/);
    expect(configError({ secret: SECRET, algorithms: ['HS1024'] })).toMatch(/"HS1024" is not one/);
    expect(configError({ publicKey: ec.pem, algorithms: ['RS256'] })).toMatch(
      /RS256 cannot be verified with the publicKey \(an EC key \(prime256v1\); ES256 can\)/,
    );
    expect(configError({ publicKey: rsa.pem, algorithms: ['HS256'] })).toMatch(/HS256 cannot/);
    expect(configError({ jwksUrl: 'https://idp.example/jwks', algorithms: ['HS256'] })).toMatch(
      /HS256 cannot be used with a JWKS/,
    );
  });

  it('takes only public keys it can use', () => {
    const { privateKey: rsaPrivate } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    expect(configError({ publicKey: rsaPrivate })).toMatch(/publicKey is a private key/);
    expect(configError({ publicKey: 'not a pem' })).toMatch(/must be a PEM string/);
    expect(
      configError({ publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }),
    ).toMatch(/not a readable PEM public key/);
    const small = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    expect(configError({ publicKey: small.publicKey })).toMatch(/1024-bit RSA key: at least 2048/);
    const k1 = generateKeyPairSync('ec', {
      namedCurve: 'secp256k1',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    expect(configError({ publicKey: k1.publicKey })).toMatch(/EC key on secp256k1/);
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
    expect(
      configError({ publicKey: pss.publicKey.export({ type: 'spki', format: 'pem' }) }),
    ).toMatch(/RSA-PSS \(id-RSASSA-PSS\) key, which jose cannot use/);
    const ed448 = generateKeyPairSync('ed448');
    expect(
      configError({ publicKey: ed448.publicKey.export({ type: 'spki', format: 'pem' }) }),
    ).toMatch(/has key type ed448: RSA, EC/);
  });

  it('names each bad setting', () => {
    const base = { secret: SECRET };
    expect(configError({ ...base, audiance: 'x' })).toBe('auth.jwt.audiance is not an option');
    expect(configError({ ...base, issuer: '' })).toMatch(/auth\.jwt\.issuer must be a non-empty/);
    expect(configError({ ...base, audience: [] })).toMatch(/auth\.jwt\.audience must be/);
    expect(configError({ ...base, clockToleranceSec: -1 })).toMatch(/clockToleranceSec must be/);
    expect(configError({ ...base, clockToleranceSec: '30' })).toMatch(/clockToleranceSec/);
    expect(configError({ ...base, claims: { userId: '' } })).toMatch(/auth\.jwt\.claims\.userId/);
    expect(configError({ ...base, claims: { user: 'sub' } })).toMatch(
      /auth\.jwt\.claims\.user is not an option/,
    );
    expect(configError({ ...base, assignClaims: 'some' })).toMatch(/auth\.jwt\.assignClaims/);
    expect(configError({ ...base, jwks: { cooldownMs: 1 } })).toMatch(
      /only with auth\.jwt\.jwksUrl/,
    );
    const jwks = { jwksUrl: 'https://idp.example/jwks' };
    expect(configError({ ...jwks, jwks: { cooldownMs: -1 } })).toMatch(/jwks\.cooldownMs must be/);
    expect(configError({ ...jwks, jwks: { ttl: 1 } })).toMatch(/auth\.jwt\.jwks\.ttl is not/);
    expect(configError({ jwksUrl: 'ftp://idp.example/jwks' })).toMatch(/jwksUrl must be an http/);
    expect(configError({ jwksUrl: 'not a url' })).toMatch(/jwksUrl must be an http/);
    expect(configError(null)).toBe('auth.jwt must be an object');
  });
});

describe('jwt with a secret', () => {
  it('accepts HS256, HS384 and HS512 by default', async () => {
    const strategy = createJwtStrategy({ secret: SECRET }, clock);
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const identity = await accepted(strategy, await hs({ sub: `u-${alg}` }, alg));
      expect(identity).toEqual({
        userId: `u-${alg}`,
        deviceId: null,
        roles: [],
        assigns: {},
        expiresAt: null,
      });
    }
  });

  it('refuses another secret, a disallowed alg, alg none and non-tokens', async () => {
    const strategy = createJwtStrategy({ secret: SECRET, algorithms: ['HS256'] }, clock);
    const other = await sign({ sub: 'u' }, new TextEncoder().encode(`${SECRET}!`), 'HS256');
    expect(await refused(strategy, other)).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/signature verification failed/) as unknown,
    });
    expect(await refused(strategy, await hs({ sub: 'u' }, 'HS512'))).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/"alg".*not allowed/) as unknown,
    });
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'admin' })}.`;
    expect((await refused(strategy, unsigned)).reason).toBe('invalid');
    expect((await refused(strategy, null)).reason).toBe('missing');
    expect((await refused(strategy, '')).reason).toBe('missing');
    const notString = { ...request(null), token: ['a', 'b'] as unknown as string };
    expect(await strategy.authenticate(notString)).toMatchObject({ reason: 'malformed' });
    for (const junk of ['abc', 'a.b', 'a.b.c.d', 'x y.z.w', `${b64([1])}.${b64({ sub: 'u' })}.x`]) {
      expect((await refused(strategy, junk)).reason).toBe('malformed');
    }
    // Correctly signed, but the payload is not a claims object.
    expect((await refused(strategy, await hsRaw('[1,2]'))).reason).toBe('malformed');
    expect((await refused(strategy, await hsRaw('not json'))).reason).toBe('malformed');
  });

  it('refuses a token longer than maxTokenLength (default 16 384) before decoding it', async () => {
    const strategy = createJwtStrategy({ secret: SECRET }, clock);
    const big = await hs({ sub: 'u', pad: 'x'.repeat(20_000) });
    expect(await refused(strategy, big)).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/longer than maxTokenLength/) as unknown,
    });
    const roomy = createJwtStrategy({ secret: SECRET, maxTokenLength: 40_000 }, clock);
    expect((await accepted(roomy, big)).userId).toBe('u');
    expect(configError({ secret: SECRET, maxTokenLength: 0 })).toMatch(/auth\.jwt\.maxTokenLength/);
  });

  it('never puts the token in a failure message', async () => {
    const strategy = createJwtStrategy({ secret: SECRET, issuer: 'me' }, clock);
    const token = await hs({ sub: 'u', iss: 'someone else' });
    const failure = await refused(strategy, token);
    expect(failure.message).not.toContain(token.split('.')[2]);
    expect(failure.message).not.toContain(token.split('.')[1]);
  });
});

describe('jwt with a public key', () => {
  it('accepts RS256, ES256 and EdDSA (and Ed25519) tokens made with the matching private key', async () => {
    const cases = [
      [rsa, 'RS256'],
      [rsa, 'PS256'],
      [ec, 'ES256'],
      [ed, 'EdDSA'],
      [ed, 'Ed25519'],
    ] as const;
    for (const [keys, alg] of cases) {
      const strategy = createJwtStrategy({ publicKey: keys.pem }, clock);
      expect(
        (await accepted(strategy, await sign({ sub: alg }, keys.privateKey, alg))).userId,
      ).toBe(alg);
    }
  });

  it('reads a PKCS#1 RSA public key too', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toContain('BEGIN RSA PUBLIC KEY');
    const strategy = createJwtStrategy({ publicKey: pkcs1 }, clock);
    expect((await accepted(strategy, await sign({ sub: 'p' }, privateKey, 'RS256'))).userId).toBe(
      'p',
    );
  });

  it('refuses a token signed by another key, and the HS256-with-the-public-key confusion', async () => {
    const strategy = createJwtStrategy({ publicKey: ec.pem }, clock);
    const forged = await sign({ sub: 'u' }, otherEc.privateKey, 'ES256');
    expect((await refused(strategy, forged)).reason).toBe('invalid');
    // The classic attack: the public key (which is public) used as an HMAC secret.
    const confused = await sign({ sub: 'u' }, new TextEncoder().encode(ec.pem), 'HS256');
    expect(await refused(strategy, confused)).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/not allowed/) as unknown,
    });
    // An RSA key would verify RS* and PS*, never ES256.
    const rsaStrategy = createJwtStrategy({ publicKey: rsa.pem }, clock);
    expect(
      (await refused(rsaStrategy, await sign({ sub: 'u' }, ec.privateKey, 'ES256'))).reason,
    ).toBe('invalid');
  });
});

describe('jwt time claims (injected clock)', () => {
  const strategy = createJwtStrategy({ secret: SECRET }, clock);

  it('gives expiresAt = exp * 1000 and refuses a token at or past exp', async () => {
    expect((await accepted(strategy, await hs({ sub: 'u', exp: NOW + 60 }))).expiresAt).toBe(
      (NOW + 60) * 1000,
    );
    expect((await accepted(strategy, await hs({ sub: 'u', exp: NOW + 0.5 }))).expiresAt).toBe(
      NOW_MS + 500,
    );
    expect((await refused(strategy, await hs({ sub: 'u', exp: NOW }))).reason).toBe('expired');
    expect((await refused(strategy, await hs({ sub: 'u', exp: NOW - 3600 }))).reason).toBe(
      'expired',
    );
    // Within the clock tolerance still expired: the socket would be closed at exp anyway.
    expect((await refused(strategy, await hs({ sub: 'u', exp: NOW - 5 }))).reason).toBe('expired');
  });

  it('checks the signature before exp: a forged expired token is invalid, not expired', async () => {
    const forged = await sign(
      { sub: 'u', exp: NOW - 10 },
      new TextEncoder().encode(`${SECRET}x`),
      'HS256',
    );
    expect((await refused(strategy, forged)).reason).toBe('invalid');
  });

  it('refuses a non-numeric exp or nbf', async () => {
    expect(
      (await refused(strategy, await hs({ sub: 'u', exp: 'soon' as unknown as number }))).reason,
    ).toBe('invalid');
    expect(
      (await refused(strategy, await hs({ sub: 'u', nbf: 'now' as unknown as number }))).reason,
    ).toBe('invalid');
  });

  it('allows nbf up to clockToleranceSec (default 30) in the future', async () => {
    expect((await accepted(strategy, await hs({ sub: 'u', nbf: NOW + 30 }))).userId).toBe('u');
    expect(await refused(strategy, await hs({ sub: 'u', nbf: NOW + 31 }))).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/nbf/) as unknown,
    });
    const strict = createJwtStrategy({ secret: SECRET, clockToleranceSec: 0 }, clock);
    expect((await refused(strict, await hs({ sub: 'u', nbf: NOW + 1 }))).reason).toBe('invalid');
    expect((await accepted(strict, await hs({ sub: 'u', nbf: NOW }))).userId).toBe('u');
  });

  it('reads the clock at each authenticate', async () => {
    let now = NOW_MS;
    const moving = createJwtStrategy({ secret: SECRET }, () => now);
    const token = await hs({ sub: 'u', exp: NOW + 10 });
    expect((await accepted(moving, token)).userId).toBe('u');
    now += 10_000;
    expect((await refused(moving, token)).reason).toBe('expired');
  });
});

describe('jwt issuer and audience', () => {
  it('checks iss against one or several issuers', async () => {
    const one = createJwtStrategy({ secret: SECRET, issuer: 'https://idp' }, clock);
    expect((await accepted(one, await hs({ sub: 'u', iss: 'https://idp' }))).userId).toBe('u');
    expect(await refused(one, await hs({ sub: 'u', iss: 'https://evil' }))).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/"iss"/) as unknown,
    });
    expect((await refused(one, await hs({ sub: 'u' }))).reason).toBe('invalid');
    const two = createJwtStrategy({ secret: SECRET, issuer: ['a', 'b'] }, clock);
    expect((await accepted(two, await hs({ sub: 'u', iss: 'b' }))).userId).toBe('u');
  });

  it('checks aud (a string or an array in the token)', async () => {
    const strategy = createJwtStrategy({ secret: SECRET, audience: ['gw', 'other'] }, clock);
    expect((await accepted(strategy, await hs({ sub: 'u', aud: 'gw' }))).userId).toBe('u');
    expect((await accepted(strategy, await hs({ sub: 'u', aud: ['x', 'other'] }))).userId).toBe(
      'u',
    );
    expect(await refused(strategy, await hs({ sub: 'u', aud: 'x' }))).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/"aud"/) as unknown,
    });
    expect((await refused(strategy, await hs({ sub: 'u' }))).reason).toBe('invalid');
  });
});

describe('jwt claim mapping', () => {
  const strategy = createJwtStrategy({ secret: SECRET }, clock);

  it('maps sub, device_id and roles; integers become decimal strings', async () => {
    expect(
      await accepted(
        strategy,
        await hs({ sub: 42, device_id: 7, roles: ['admin', 'ops'] } as unknown as JWTPayload),
      ),
    ).toMatchObject({ userId: '42', deviceId: '7', roles: ['admin', 'ops'] });
    expect(
      await accepted(strategy, await hs({ sub: 'u', device_id: 'phone', roles: 'a  b c' })),
    ).toMatchObject({ userId: 'u', deviceId: 'phone', roles: ['a', 'b', 'c'] });
    expect(
      await accepted(strategy, await hs({ sub: 'u', device_id: null, roles: null })),
    ).toMatchObject({
      deviceId: null,
      roles: [],
    });
  });

  it('refuses a token without a usable user id or with badly shaped claims', async () => {
    for (const claims of [
      {},
      { sub: '' },
      { sub: 1.5 },
      { sub: 2 ** 53 },
      { sub: { id: 1 } },
      { sub: 'u', device_id: { x: 1 } },
      { sub: 'u', roles: [1, 2] },
      { sub: 'u', roles: { admin: true } },
    ]) {
      expect(await refused(strategy, await hs(claims as JWTPayload))).toMatchObject({
        reason: 'invalid',
        message: expect.stringMatching(/claim/) as unknown,
      });
    }
  });

  it('follows a configured mapping, including a path into nested claims', async () => {
    const mapped = createJwtStrategy(
      {
        secret: SECRET,
        claims: { userId: 'uid', deviceId: 'dev', roles: ['realm_access', 'roles'] },
      },
      clock,
    );
    expect(
      await accepted(
        mapped,
        await hs({ sub: 'ignored', uid: 9, dev: 'd', realm_access: { roles: ['r1'] } }),
      ),
    ).toMatchObject({ userId: '9', deviceId: 'd', roles: ['r1'] });
    expect(await refused(mapped, await hs({ sub: 'u' }))).toMatchObject({
      reason: 'invalid',
      message: expect.stringMatching(/no "uid" claim/) as unknown,
    });
    // A path through something that is not an object finds nothing (no roles), not a crash.
    expect((await accepted(mapped, await hs({ uid: 'u', realm_access: 'x' }))).roles).toEqual([]);
  });

  it('copies the listed claims into assigns, or all but the registered and mapped ones', async () => {
    const claims = {
      sub: 'u',
      iss: 'i',
      exp: NOW + 60,
      roles: ['r'],
      tenant: 't1',
      plan: { tier: 'pro' },
      email: 'u@example.com',
    };
    const listed = createJwtStrategy(
      { secret: SECRET, assignClaims: ['tenant', 'plan', 'missing'] },
      clock,
    );
    expect((await accepted(listed, await hs(claims))).assigns).toEqual({
      tenant: 't1',
      plan: { tier: 'pro' },
    });
    const all = createJwtStrategy({ secret: SECRET, assignClaims: 'all' }, clock);
    expect((await accepted(all, await hs(claims))).assigns).toEqual({
      tenant: 't1',
      plan: { tier: 'pro' },
      email: 'u@example.com',
    });
    expect((await accepted(strategy, await hs(claims))).assigns).toEqual({});
  });

  it('keeps a __proto__ claim as data', async () => {
    const all = createJwtStrategy({ secret: SECRET, assignClaims: 'all' }, clock);
    const payload = `{"sub":"u","__proto__":{"polluted":true}}`;
    const token = await hsRaw(payload);
    const assigns = (await accepted(all, token)).assigns as Record<string, unknown>;
    expect(Object.getPrototypeOf(assigns)).toBe(Object.prototype);
    expect(Object.hasOwn(assigns, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

/** An HS256 token over a raw JSON payload text (SignJWT would re-serialize it). */
async function hsRaw(payload: string): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const input = `${b64({ alg: 'HS256' })}.${Buffer.from(payload).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secretKey).update(input).digest('base64url')}`;
}

describe('jwt fuzzing (fast-check)', () => {
  const SEED = Number(process.env.FUZZ_SEED ?? 0x1a7_2026);
  const REASONS = ['missing', 'malformed', 'invalid', 'expired', 'unavailable'];
  const BASE64URL = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'];

  /** authenticate resolved (did not throw) with a well-formed failure. */
  async function refusedCleanly(strategy: AuthStrategy, token: string): Promise<void> {
    const result = await strategy.authenticate(request(token));
    expect(isAuthFailure(result), `accepted ${token}`).toBe(true);
    expect(REASONS).toContain((result as AuthFailure).reason);
  }

  it('refuses random strings and token-shaped junk without throwing', async () => {
    const strategies = [
      createJwtStrategy({ secret: SECRET }, clock),
      createJwtStrategy({ publicKey: ec.pem }, clock),
    ];
    const segment = fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength: 60 });
    const tokenish = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.tuple(segment, segment, segment).map((parts) => parts.join('.')),
      fc
        .tuple(fc.jsonValue(), fc.jsonValue(), segment)
        .map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
      fc
        .tuple(
          fc.record({ alg: fc.constantFrom('none', 'HS256', 'ES256', 'RS256', 'NONE', 'nOnE') }),
          fc.jsonValue(),
        )
        .map(([h, p]) => `${b64(h)}.${b64(p)}.`),
    );
    await fc.assert(
      fc.asyncProperty(tokenish, async (token) => {
        for (const strategy of strategies) await refusedCleanly(strategy, token);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('never accepts a mutated valid token (unless it still decodes to the same bytes)', async () => {
    const strategy = createJwtStrategy({ secret: SECRET, issuer: 'iss' }, clock);
    const ecStrategy = createJwtStrategy({ publicKey: ec.pem }, clock);
    const valid = await hs({ sub: 'u', iss: 'iss', roles: ['admin'], exp: NOW + 60 });
    const ecValid = await sign({ sub: 'u', exp: NOW + 60 }, ec.privateKey, 'ES256');
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('replace' as const),
        at: fc.nat(),
        by: fc.constantFrom(...BASE64URL, '.', '=', '+', '/'),
      }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        by: fc.constantFrom(...BASE64URL, '.'),
      }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), by: fc.constant('') }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), by: fc.constant('') }),
    );
    const mutate = (token: string, steps: { kind: string; at: number; by: string }[]): string =>
      steps.reduce((t, { kind, at, by }) => {
        const i = at % (t.length + 1);
        if (kind === 'replace') return t.slice(0, i) + by + t.slice(i + 1);
        if (kind === 'insert') return t.slice(0, i) + by + t.slice(i);
        if (kind === 'delete') return t.slice(0, i) + t.slice(i + 1);
        return t.slice(0, i);
      }, token);
    /** Same signed text and same signature bytes: the same token, however spelled. */
    const equivalent = (a: string, b: string): boolean => {
      const [ha, pa, sa] = a.split('.');
      const [hb, pb, sb, rest] = b.split('.');
      return (
        rest === undefined &&
        ha === hb &&
        pa === pb &&
        sb !== undefined &&
        /^[A-Za-z0-9_-]*$/.test(sb) &&
        Buffer.from(sa ?? '', 'base64url').equals(Buffer.from(sb, 'base64url'))
      );
    };
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (steps) => {
        for (const [s, token] of [
          [strategy, valid],
          [ecStrategy, ecValid],
        ] as const) {
          const mutated = mutate(token, steps);
          const result = await s.authenticate(request(mutated));
          if (!isAuthFailure(result)) {
            expect(equivalent(token, mutated), `accepted mutation ${mutated}`).toBe(true);
            expect(result.userId).toBe('u');
          } else {
            expect(REASONS).toContain(result.reason);
          }
        }
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('maps any validly signed claim set to an identity or a failure, never a throw', async () => {
    const strategy = createJwtStrategy(
      { secret: SECRET, assignClaims: 'all', claims: { roles: ['a', 'roles'] } },
      clock,
    );
    const claimValue = fc.oneof(fc.jsonValue(), fc.constant({ roles: ['x'] }));
    const claims = fc.dictionary(
      fc.oneof(
        fc.constantFrom('sub', 'exp', 'nbf', 'device_id', 'a', '__proto__', 'constructor'),
        fc.string(),
      ),
      claimValue,
      { maxKeys: 6 },
    );
    await fc.assert(
      fc.asyncProperty(claims, async (payload) => {
        const result = await strategy.authenticate(request(await hsRaw(JSON.stringify(payload))));
        if (isAuthFailure(result)) {
          expect(REASONS).toContain(result.reason);
        } else {
          expect(typeof result.userId).toBe('string');
          expect(result.userId).not.toBe('');
          expect(result.roles.every((role) => typeof role === 'string')).toBe(true);
          expect(result.expiresAt === null || result.expiresAt > NOW_MS).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
