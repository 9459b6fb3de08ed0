/**
 * The issue 13 demo contract, as outside checks use it: `gen-gateway --config F` with
 * `{"demo": true, "auth": {...}}` serves the demo with the token's identity, and demo `whoami`
 * returns `{user_id, device_id, roles}` — for `phoenixToken` and `jwt` with a secret through the
 * real command, `jwt` with a JWKS served over HTTP, and `worker` with an SDK auth worker on a real
 * nats-server (including the worker down: refused at once, no hang).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../src/server.js';
import type { GatewayConfig } from '../../src/config/file.js';
import { defineAuthService, serveAuth, type RunningAuthService } from '../../src/worker/auth.js';
import { serve, type RunningService } from '../../src/worker/nats.js';
import { demoService } from '../../src/demo/service.js';
import { resp } from '../support/genapi-exec.js';
import { NatsServer } from '../support/nats.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { RawClient } from '../support/ws-client.js';
import { signToken, t, testKey } from './etf-encode.js';
import { whoami } from './whoami.js';

const SECRET_KEY_BASE = 'demo-contract-secret-key-base-0123456789-0123456789-0123456789';
const JWT_SECRET = 'a-jwt-secret-of-at-least-32-bytes-0123456789';

const identity = (user_id: string, device_id: string | null, roles: string[]) => [
  resp('who', { result: { user_id, device_id, roles } }),
];

describe('gen-gateway --config F with {"demo": true, "auth": ...}', () => {
  const procs: Spawned[] = [];
  afterAll(async () => {
    for (const proc of procs) {
      proc.kill('SIGTERM');
      await proc.exited;
    }
  });

  async function gateway(config: object): Promise<number> {
    const dir = await mkdtemp(join(tmpdir(), 'gen-gateway-auth-'));
    const file = join(dir, 'gateway.json');
    await writeFile(file, JSON.stringify({ port: 0, ...config }));
    const proc = spawnTs('src/cli/gen-gateway.ts', ['--config', file]);
    procs.push(proc);
    return (await proc.logLine('gateway listening')).port as number;
  }

  it('phoenixToken: the token Phoenix.Token.sign(endpoint, "user socket", 42) makes is user 42', async () => {
    const port = await gateway({
      demo: true,
      auth: { phoenixToken: { secretKeyBase: SECRET_KEY_BASE, salt: 'user socket' } },
    });
    const token = signToken(testKey(SECRET_KEY_BASE, 'user socket'), t.int(42), Date.now());
    expect(await whoami(port, `token=${token}&user_id=someone-else`)).toEqual(
      identity('42', null, []),
    );
    expect(
      (await RawClient.handshake(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`)).status,
    ).toBe(403);
  });

  it('jwt with a secret: sub, device_id and roles claims', async () => {
    const port = await gateway({ demo: true, auth: { jwt: { secret: JWT_SECRET } } });
    const token = await new SignJWT({ device_id: 'tablet', roles: ['editor'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u-7')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(JWT_SECRET));
    expect(await whoami(port, `token=${token}`)).toEqual(identity('u-7', 'tablet', ['editor']));
  });
});

describe('in-process gateways with other strategies', () => {
  let running: RunningGateway | null = null;
  afterEach(async () => {
    await running?.gateway.close();
    running = null;
  });

  async function start(config: GatewayConfig, nats?: string): Promise<number> {
    running = await startGateway({
      config,
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
      ...(nats === undefined ? {} : { nats }),
    });
    return running.address.port;
  }

  describe('jwt with a JWKS over HTTP', () => {
    let jwks: Server;
    let url: string;
    let sign: (sub: string) => Promise<string>;
    beforeAll(async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      jwks = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
      sign = (sub) =>
        new SignJWT({ roles: ['viewer'] })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setSubject(sub)
          .setIssuer('https://id.example')
          .setAudience('gateway')
          .setExpirationTime('10m')
          .sign(privateKey);
    });
    afterAll(() => new Promise((resolve) => jwks.close(resolve)));

    it('{"jwt": {"jwksUrl", "issuer", "audience"}} serves the demo with that identity', async () => {
      const port = await start({
        demo: true,
        auth: { jwt: { jwksUrl: url, issuer: 'https://id.example', audience: 'gateway' } },
      });
      expect(await whoami(port, `token=${await sign('jw-1')}`)).toEqual(
        identity('jw-1', null, ['viewer']),
      );
    });
  });

  describe('worker: an SDK auth worker over a real nats-server', () => {
    let nats: NatsServer;
    let workerNc: NatsConnection;
    let auth: RunningAuthService | null = null;
    let demo: RunningService;
    beforeAll(async () => {
      nats = await NatsServer.start();
      workerNc = await connect({ servers: nats.url });
      // With NATS the demo service is a worker (npm run worker:demo).
      demo = await serve(demoService, { nats: workerNc });
    });
    afterAll(async () => {
      await demo.stop();
      await auth?.stop();
      await workerNc.close();
      await nats.dispose();
    });

    it('the worker decides who connects and who joins; when it is down, connects are refused at once', async () => {
      auth = await serveAuth(
        defineAuthService({
          name: 'accounts',
          authenticate: ({ token }) =>
            token === 'let-me-in' ? { userId: 'w-1', roles: ['member'], deviceId: 'web' } : null,
          // Join rules apply to every topic, the gen_api channel's too.
          authorizeJoin: ({ topic, userId }) =>
            topic === `room:${userId}` || topic.startsWith('gen_api'),
        }),
        { nats: workerNc },
      );
      const port = await start(
        {
          demo: true,
          nats: { trustedNetwork: true },
          auth: {
            worker: { service: 'accounts', timeoutMs: 1_000 },
            join: { otherwise: 'worker' },
          },
        },
        nats.url,
      );
      expect(await whoami(port, 'token=let-me-in&user_id=evil')).toEqual(
        identity('w-1', 'web', ['member']),
      );
      const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`;
      expect((await RawClient.handshake(`${url}&token=nope`)).status).toBe(403);
      const client = await RawClient.connect(`${url}&token=let-me-in`);
      expect(await client.join('room:w-1', '1', { name: 'w' })).toMatchObject([
        '1',
        '1',
        'room:w-1',
        'phx_reply',
        { status: 'ok' },
      ]);
      client.close();
      const other = await RawClient.connect(`${url}&token=let-me-in`);
      expect(await other.join('room:other', '2', { name: 'w' })).toEqual([
        '2',
        '2',
        'room:other',
        'phx_reply',
        { status: 'error', response: { reason: 'unauthorized' } },
      ]);
      other.close();
      await auth.stop();
      auth = null;
      const started = performance.now();
      expect((await RawClient.handshake(`${url}&token=let-me-in`)).status).toBe(403);
      // No responders: refused at once, not after the 1 s timeout.
      expect(performance.now() - started).toBeLessThan(1_000);
    });
  });
});
