/**
 * The `jwt` strategy with `jwksUrl`, against a JWKS the test serves over a real node:http server
 * that counts the requests it gets: key rotation (a new kid is fetched, a removed kid becomes
 * invalid), the refetch rate limit (`jwks.cooldownMs`), the failure cooldown, and every way the
 * key server can fail (down, HTTP 500, a redirect, junk, a timeout, a stale cache it cannot
 * refresh) being `unavailable` — refused, but not the client's fault.
 */
import type { JsonWebKey } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createJwtStrategy, type JwtOptions } from '../../src/auth/jwt.js';
import { isAuthFailure, type AuthRequest, type AuthStrategy } from '../../src/auth/types.js';

type Mode = 'ok' | 'error' | 'redirect' | 'junk' | 'not-a-set' | 'hang';

interface JwksServer {
  readonly url: string;
  /** GET requests received. */
  requests: number;
  /** What the next requests get. */
  mode: Mode;
  /** The keys served in `ok` mode. */
  keys: JsonWebKey[];
  close(): Promise<void>;
}

const servers: JwksServer[] = [];

async function jwksServer(keys: JsonWebKey[]): Promise<JwksServer> {
  const hanging = new Set<ServerResponse>();
  const state: JwksServer = {
    url: '',
    requests: 0,
    mode: 'ok',
    keys,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of hanging) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    state.requests++;
    switch (state.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: state.keys }));
        return;
      case 'error':
        res.writeHead(500).end('down for maintenance');
        return;
      case 'redirect':
        res.writeHead(302, { location: `${state.url}?again` }).end();
        return;
      case 'junk':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [');
        return;
      case 'not-a-set':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "none"}');
        return;
      case 'hang':
        hanging.add(res);
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(state, { url: `http://127.0.0.1:${port}/.well-known/jwks.json` });
  servers.push(state);
  return state;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

interface Signer {
  readonly kid: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  /** The public JWK as the JWKS serves it. */
  readonly jwk: JsonWebKey;
}

/**
 * WebCrypto keys made off the main thread: signing with a KeyObject makes jose convert it on the
 * main thread on every token while other tokens are verified in the thread pool, and a full
 * `npm test` run twice hung this file with its main thread in a futex wait.
 */
async function rsaSigner(kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' },
  };
}

function request(token: string): AuthRequest {
  return {
    token,
    params: {},
    headers: {},
    peer: { address: '127.0.0.1', port: 40000 },
    transport: 'longpoll',
  };
}

function token(signer: Signer, sub = 'u', withKid = true): Promise<string> {
  return new SignJWT({ sub, iss: 'https://idp.test', aud: 'gateway' })
    .setProtectedHeader(withKid ? { alg: 'RS256', kid: signer.kid } : { alg: 'RS256' })
    .sign(signer.privateKey);
}

async function outcome(strategy: AuthStrategy, jwt: string): Promise<string> {
  const result = await strategy.authenticate(request(jwt));
  return isAuthFailure(result) ? result.reason : `ok:${result.userId}`;
}

function strategyFor(server: JwksServer, jwks: JwtOptions['jwks'] = {}): AuthStrategy {
  return createJwtStrategy({
    jwksUrl: server.url,
    issuer: 'https://idp.test',
    audience: 'gateway',
    jwks,
  });
}

let k1: Signer;
let k2: Signer;
let k3: Signer;
/** Never published: tokens signed with it carry kids the server does not know. */
let stranger: Signer;

beforeAll(async () => {
  [k1, k2, k3, stranger] = (await Promise.all(['k1', 'k2', 'k3', 'stranger'].map(rsaSigner))) as [
    Signer,
    Signer,
    Signer,
    Signer,
  ];
});

describe('jwt with a JWKS over HTTP', () => {
  it('follows key rotation: a new kid is fetched, a removed kid is invalid', async () => {
    const server = await jwksServer([k1.jwk]);
    const strategy = strategyFor(server, { cooldownMs: 0 });
    expect(await outcome(strategy, await token(k1, 'one'))).toBe('ok:one');
    expect(await outcome(strategy, await token(k1, 'one'))).toBe('ok:one');
    expect(server.requests).toBe(1); // cached

    server.keys = [k1.jwk, k2.jwk]; // the IdP publishes k2 ...
    expect(await outcome(strategy, await token(k2, 'two'))).toBe('ok:two');
    expect(server.requests).toBe(2); // ... and an unknown kid refetched the set

    server.keys = [k2.jwk, k3.jwk]; // k1 retired, k3 new
    expect(await outcome(strategy, await token(k3, 'three'))).toBe('ok:three');
    expect(server.requests).toBe(3);
    expect(await outcome(strategy, await token(k1, 'one'))).toBe('invalid');
    expect(await outcome(strategy, await token(k2, 'two'))).toBe('ok:two');
  });

  it('refetches for unknown kids at most once per cooldownMs, however many arrive', async () => {
    const server = await jwksServer([k1.jwk]);
    const strategy = strategyFor(server, { cooldownMs: 60_000 });
    const unknown = (i: number) =>
      new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'RS256', kid: `unknown-${i}` })
        .sign(stranger.privateKey);
    // 50 at once on a cold cache: one fetch between them.
    const burst = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => outcome(strategy, await unknown(i))),
    );
    expect(new Set(burst)).toEqual(new Set(['invalid']));
    expect(server.requests).toBe(1);
    // 50 more, one after another, still within the cooldown: no fetch at all.
    for (let i = 50; i < 100; i++)
      expect(await outcome(strategy, await unknown(i))).toBe('invalid');
    expect(server.requests).toBe(1);
    // Known kids are served from the cache meanwhile.
    expect(await outcome(strategy, await token(k1))).toBe('ok:u');
    // The price of the limit: a key published within the cooldown is not seen until it ends.
    server.keys = [k1.jwk, k2.jwk];
    expect(await outcome(strategy, await token(k2))).toBe('invalid');
    expect(server.requests).toBe(1);
  });

  it('tries each key when a token has no kid', async () => {
    const server = await jwksServer([k1.jwk, k2.jwk]);
    const strategy = strategyFor(server);
    expect(await outcome(strategy, await token(k2, 'no-kid', false))).toBe('ok:no-kid');
    expect(await outcome(strategy, await token(stranger, 'no-kid', false))).toBe('invalid');
  });

  it('still checks issuer and audience on JWKS-verified tokens', async () => {
    const server = await jwksServer([k1.jwk]);
    const strategy = strategyFor(server);
    const wrongAud = await new SignJWT({ sub: 'u', iss: 'https://idp.test', aud: 'other' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(k1.privateKey);
    expect(await outcome(strategy, wrongAud)).toBe('invalid');
  });
});

describe('jwt when the JWKS server fails (fail closed: unavailable)', () => {
  it('is unavailable when nothing listens at jwksUrl', async () => {
    const server = await jwksServer([k1.jwk]);
    await server.close();
    const strategy = strategyFor(server);
    const result = await strategy.authenticate(request(await token(k1)));
    expect(result).toMatchObject({
      failed: true,
      reason: 'unavailable',
      message: expect.stringContaining(server.url) as unknown,
    });
  });

  it.each([
    ['HTTP 500', 'error'],
    ['a redirect (not followed)', 'redirect'],
    ['a body that is not JSON', 'junk'],
    ['JSON that is not a key set', 'not-a-set'],
  ] as const)('is unavailable on %s', async (_, mode) => {
    const server = await jwksServer([k1.jwk]);
    server.mode = mode;
    expect(await outcome(strategyFor(server), await token(k1))).toBe('unavailable');
    expect(server.requests).toBe(1);
  });

  it('is unavailable when the server does not answer within timeoutMs', async () => {
    const server = await jwksServer([k1.jwk]);
    server.mode = 'hang';
    const strategy = strategyFor(server, { timeoutMs: 200 });
    const result = await strategy.authenticate(request(await token(k1)));
    expect(result).toMatchObject({ reason: 'unavailable' });
  });

  it('is unavailable when a stale cache cannot be refreshed, and recovers', async () => {
    const server = await jwksServer([k1.jwk]);
    // cacheMaxAgeMs 0: every connect needs a fresh set, so the outage is seen at once.
    const strategy = strategyFor(server, { cacheMaxAgeMs: 0, failureCooldownMs: 0 });
    expect(await outcome(strategy, await token(k1))).toBe('ok:u');
    server.mode = 'error';
    expect(await outcome(strategy, await token(k1))).toBe('unavailable');
    server.mode = 'ok';
    expect(await outcome(strategy, await token(k1))).toBe('ok:u');
  });

  it('asks a failing server at most once per failureCooldownMs', async () => {
    const server = await jwksServer([k1.jwk]);
    server.mode = 'error';
    const held = strategyFor(server, { failureCooldownMs: 60_000 });
    for (let i = 0; i < 20; i++) expect(await outcome(held, await token(k1))).toBe('unavailable');
    expect(server.requests).toBe(1);

    server.requests = 0;
    const eager = strategyFor(server, { failureCooldownMs: 0 });
    for (let i = 0; i < 5; i++) expect(await outcome(eager, await token(k1))).toBe('unavailable');
    expect(server.requests).toBe(5);
    server.mode = 'ok';
    expect(await outcome(eager, await token(k1))).toBe('ok:u');
  });
});
