/**
 * The commented `AUTH_WORKER` role of examples/secure/nats-server.conf (protocol/nats.md §10.1,
 * §11.5), uncommented as its comment says, on a real nats-server: it is enough for an SDK auth
 * service to answer the gateway, and it keeps connecting clients' tokens from other roles and the
 * auth service from publishing anything but answers.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createWorkerAuthStrategy } from '../../src/auth/worker.js';
import { Subjects } from '../../src/nats/subjects.js';
import { defineAuthService, serveAuth, type RunningAuthService } from '../../src/worker/auth.js';
import { NatsServer } from '../support/nats.js';
import { until } from '../support/wait.js';

const CONF = new URL('../../examples/secure/nats-server.conf', import.meta.url);
const PASSWORDS = {
  GATEWAY_NATS_PASS: 'gateway-pass-0123456789',
  DEMO_WORKER_NATS_PASS: 'demo-pass-0123456789',
  BROADCASTER_NATS_PASS: 'broadcaster-pass-0123456789',
  AUTH_WORKER_NATS_PASS: 'auth-pass-0123456789',
};

/** The shipped conf with the AUTH_WORKER role and its user uncommented (one `# ` per line). */
function serverConfig(): string {
  const shipped = readFileSync(CONF, 'utf8');
  const block = /\n( {2}# AUTH_WORKER = \{[\s\S]*?\n {2}# \}\n)/.exec(shipped)?.[1];
  const user = /\n( {4}# \{ user: svc-auth[^\n]*\n)/.exec(shipped)?.[1];
  if (!block || !user) throw new Error('examples/secure/nats-server.conf: no AUTH_WORKER block');
  const uncomment = (text: string) => text.replace(/^(\s*)# ?/gm, '$1');
  return shipped.replace(block, uncomment(block)).replace(user, uncomment(user));
}

let server: NatsServer;
const connections: NatsConnection[] = [];
let running: RunningAuthService;

async function as(user: string, pass: string, inboxPrefix?: string) {
  const nc = await connect({
    servers: server.url,
    user,
    pass,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  connections.push(nc);
  const violations: string[] = [];
  (async () => {
    for await (const status of nc.status())
      if (status.type === 'error') violations.push(status.error.message);
  })().catch(() => undefined);
  return { nc, violations };
}

beforeAll(async () => {
  Object.assign(process.env, PASSWORDS);
  server = await NatsServer.start({ config: serverConfig() });
  const worker = await as('svc-auth', PASSWORDS.AUTH_WORKER_NATS_PASS);
  running = await serveAuth(
    defineAuthService({
      name: 'auth',
      authenticate: (ctx) => (ctx.token === 'good' ? { userId: 'u1', roles: ['member'] } : null),
      authorizeJoin: (ctx) => ctx.topic === `room:${ctx.userId}`,
    }),
    { nats: worker.nc },
  );
  await worker.nc.flush();
});

afterAll(async () => {
  await running?.stop();
  for (const nc of connections) await nc.close();
  await server?.dispose();
});

describe('examples/secure: the AUTH_WORKER role', () => {
  it('lets the gateway ask and the auth service answer', async () => {
    const gateway = await as('gateway', PASSWORDS.GATEWAY_NATS_PASS, '_INBOX_gateway');
    const strategy = createWorkerAuthStrategy({ service: 'auth' }, () => ({
      nc: gateway.nc,
      subjects: new Subjects(),
    }));
    const request = {
      params: {},
      headers: {},
      peer: { address: '127.0.0.1', port: 1 },
      transport: 'websocket',
    };
    expect(await strategy.authenticate({ ...request, token: 'good' })).toEqual({
      userId: 'u1',
      deviceId: null,
      roles: ['member'],
      assigns: {},
      expiresAt: null,
    });
    expect(await strategy.authenticate({ ...request, token: 'bad' })).toMatchObject({
      reason: 'invalid',
    });
    expect(gateway.violations).toEqual([]);
  });

  it('keeps other roles from reading the questions, and the auth service from publishing', async () => {
    const demo = await as('svc-demo', PASSWORDS.DEMO_WORKER_NATS_PASS, '_INBOX_demo');
    demo.nc.subscribe('genapi.auth.auth.connect');
    const auth = await as('svc-auth', PASSWORDS.AUTH_WORKER_NATS_PASS);
    auth.nc.publish('genapi.topic.room:lobby', '{"event":"x","payload":{}}');
    await until(
      () => demo.violations.length > 0 && auth.violations.length > 0,
      'the server to refuse both',
    );
    expect(demo.violations.join()).toMatch(/permissions violation for subscription/i);
    expect(auth.violations.join()).toMatch(/permissions violation for publish/i);
  });
});
