/**
 * examples/secure as shipped: its nats-server.conf, its gateway.config.mjs through the
 * `gen-gateway` command, and the demo worker with the `svc-demo` user, each configured only
 * through the environment variables the example's README and .env.example name. A client with a
 * token minted for its user id calls the worker through the gateway; a wrong token gets 403; a
 * missing secret stops the gateway at start with the variable's name.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenApiClient, resp } from '../support/genapi-exec.js';
import { NatsServer } from '../support/nats.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { RawClient } from '../support/ws-client.js';
import { until } from '../support/wait.js';

const CONFIG = 'examples/secure/gateway.config.mjs';
// nats-server reads the passwords as config values: one starting with a digit would parse as a
// number, so every secret starts with a letter (as .env.example says).
const secret = () => `s${randomBytes(24).toString('hex')}`;
const SECRETS = {
  GATEWAY_NATS_PASS: secret(),
  DEMO_WORKER_NATS_PASS: secret(),
  BROADCASTER_NATS_PASS: secret(),
  GENAPI_PUSH_TOKEN: secret(),
  GENAPI_CLUSTER_SECRET: secret(),
  GENAPI_ADMIN_TOKEN: secret(),
  USER_TOKEN_SECRET: secret(),
};

/** What the example's backend does: `<user_id>.<HMAC-SHA256(user_id)>`. */
const tokenFor = (userId: string) =>
  `${userId}.${createHmac('sha256', SECRETS.USER_TOKEN_SECRET).update(userId).digest('base64url')}`;

let nats: NatsServer;
let gateway: Spawned;
let worker: Spawned;
let port: number;

beforeAll(async () => {
  // nats-server reads the passwords from its environment ($GATEWAY_NATS_PASS, ...).
  Object.assign(process.env, SECRETS);
  nats = await NatsServer.start({
    config: readFileSync(
      new URL('../../examples/secure/nats-server.conf', import.meta.url),
      'utf8',
    ),
  });
  gateway = spawnTs('src/cli/gen-gateway.ts', ['--config', CONFIG, '--port', '0'], {
    ...SECRETS,
    NATS_URL: nats.url,
  });
  port = (await gateway.logLine('gateway listening')).port as number;
  worker = spawnTs('src/demo/worker.ts', [], {
    NATS_URL: nats.url,
    NATS_USER: 'svc-demo',
    NATS_PASS: SECRETS.DEMO_WORKER_NATS_PASS,
    NATS_INBOX_PREFIX: '_INBOX_demo',
    GENAPI_PUSH_TOKEN: SECRETS.GENAPI_PUSH_TOKEN,
  });
  await worker.logLine('demo worker ready');
});

afterAll(async () => {
  for (const proc of [worker, gateway]) {
    if (!proc) continue;
    proc.kill('SIGTERM');
    await proc.exited;
  }
  await nats?.dispose();
});

describe('examples/secure as shipped', () => {
  it('a client with a minted token calls the demo worker through the gateway', async () => {
    const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&token=${tokenFor('42')}`;
    const client = await GenApiClient.connect(url);
    // The gateway learns the worker within a discovery round (the worker may start first).
    const call = (id: string) =>
      client.call({
        request_id: id,
        service: 'demo',
        request_type: 'echo',
        args: { message: 'hi' },
      });
    let attempt = 0;
    const pushes = await until(async () => {
      const { pushes: got } = await call(`s${++attempt}`);
      const [first] = got as { success?: boolean }[];
      return first?.success === true ? got : null;
    }, 'the demo worker answers through the secured gateway');
    expect(pushes).toEqual([resp(`s${attempt}`, { result: { message: 'hi' } })]);
    expect(worker.stderr()).toBe('');
    client.raw.close();
  });

  it('a forged token is refused with 403', async () => {
    const forged = `42.${Buffer.from('not-the-mac').toString('base64url')}`;
    const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&token=${forged}`;
    expect((await RawClient.handshake(url)).status).toBe(403);
  });

  it('a missing secret stops the gateway at start, naming it', async () => {
    const { GENAPI_PUSH_TOKEN: _omitted, ...rest } = SECRETS;
    const proc = spawnTs('src/cli/gen-gateway.ts', ['--config', CONFIG, '--port', '0'], {
      ...rest,
      GENAPI_PUSH_TOKEN: '',
      NATS_URL: nats.url,
    });
    expect(await proc.exited).not.toBe(0);
    expect(proc.stdout() + proc.stderr()).toContain('set GENAPI_PUSH_TOKEN in the environment');
  });
});
