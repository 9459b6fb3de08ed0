/**
 * Issue 12, "Why" point 2, replayed against the hardened deployment of examples/secure/ as it
 * ships (its nats-server.conf, read from disk; passwords from the environment as there): two
 * gateways with the push token and a cluster secret, a `demo` worker with its own NATS user, and
 * attackers holding the other credentials a deployment hands out — a broadcaster, a worker of
 * another service (which knows the push token too: workers share it), and an anonymous client.
 * Every attack of the audit must be refused by the NATS server or by the gateway:
 *
 * 1. pushing function configs (to `demo`, or a `demo` config on one's own subject);
 * 2. a direct request to the worker carrying forged identity headers;
 * 3. subscribing to the worker's subjects to answer (and read) other users' requests;
 * 4. a fake instance announcing a newer version of `demo` to take its routing and config over;
 * 5. forged rate-limit hits that would lock a user out on every gateway.
 */
import { readFileSync } from 'node:fs';
import {
  connect,
  headers,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import { serve, type RunningService } from '../../src/worker/nats.js';
import { PeerAuth } from '../../src/nats/peer-auth.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { GenApiClient, errorResp, resp } from '../support/genapi-exec.js';
import { NatsServer } from '../support/nats.js';
import { eventually, until } from '../support/wait.js';

const CONF = new URL('../../examples/secure/nats-server.conf', import.meta.url);
const PUSH_TOKEN = 'attack-test-push-token-0123456789';
const CLUSTER_SECRET = 'attack-test-cluster-secret-0123';
const PASSWORDS = {
  GATEWAY_NATS_PASS: 'gateway-pass-0123456789',
  DEMO_WORKER_NATS_PASS: 'demo-pass-0123456789',
  BROADCASTER_NATS_PASS: 'broadcaster-pass-0123456789',
  OTHER_WORKER_NATS_PASS: 'other-pass-0123456789',
};

/**
 * The shipped conf, plus a worker user for a second service `other` made as the conf says (its
 * DEMO_WORKER block with `demo` replaced): the insider of these attacks.
 */
function serverConfig(): string {
  const shipped = readFileSync(CONF, 'utf8');
  const block = / {2}DEMO_WORKER = \{[\s\S]*?\n {2}\}\n/.exec(shipped);
  if (!block) throw new Error('examples/secure/nats-server.conf: no DEMO_WORKER block');
  const other = block[0].replace(/DEMO_WORKER/g, 'OTHER_WORKER').replace(/demo/g, 'other');
  return shipped
    .replace(block[0], `${block[0]}\n${other}`)
    .replace(
      /(\{ user: svc-demo[^\n]*\n)/,
      `$1    { user: svc-other, password: $OTHER_WORKER_NATS_PASS, permissions: $OTHER_WORKER }\n`,
    );
}

let server: NatsServer;
let gateways: GenApiApp[] = [];
let worker: { nc: NatsConnection; running: RunningService };
const ran = { echo: 0, adminOnly: 0 };
const attackers: NatsConnection[] = [];

const demo = defineService({
  name: 'demo',
  version: '1.0.0',
  functions: {
    echo: fn({
      args: { message: 'string' },
      handler: (args, ctx) => {
        ran.echo++;
        return { by: 'real-worker', user: ctx.userId, message: args.message };
      },
    }),
    admin_only: fn({
      permission: { role: ['admin'] },
      handler: () => {
        ran.adminOnly++;
        return { secret: 42 };
      },
    }),
  },
});

async function natsAs(user: string, pass: string, inboxPrefix: string): Promise<NatsConnection> {
  const options: ConnectionOptions = { servers: server.url, user, pass, inboxPrefix };
  return connect(options);
}

/** A connection of the attacker's, recording the server's permission errors. */
async function attacker(
  user: 'broadcaster' | 'svc-other',
): Promise<{ nc: NatsConnection; violations: string[] }> {
  const pass =
    user === 'broadcaster' ? PASSWORDS.BROADCASTER_NATS_PASS : PASSWORDS.OTHER_WORKER_NATS_PASS;
  const nc = await natsAs(
    user,
    pass,
    user === 'broadcaster' ? '_INBOX_broadcaster' : '_INBOX_other',
  );
  attackers.push(nc);
  const violations: string[] = [];
  // The status stream ends when the connection closes; nothing can fail in it.
  (async () => {
    for await (const status of nc.status())
      if (status.type === 'error') violations.push(status.error.message);
  })().catch(() => undefined);
  return { nc, violations };
}

const call = (id: string, requestType: string, args: Record<string, unknown> = {}) => ({
  request_id: id,
  service: 'demo',
  request_type: requestType,
  args,
});

beforeAll(async () => {
  Object.assign(process.env, PASSWORDS);
  server = await NatsServer.start({ config: serverConfig() });
  for (let i = 0; i < 2; i++) {
    gateways.push(
      await startGenApiApp({
        nats: server.url,
        natsOptions: {
          user: 'gateway',
          pass: PASSWORDS.GATEWAY_NATS_PASS,
          inboxPrefix: '_INBOX_gateway',
        },
        genApi: {
          pushToken: PUSH_TOKEN,
          rateLimits: {
            clusterSecret: CLUSTER_SECRET,
            policies: [
              {
                id: 'demo.echo',
                scope: { service: 'demo', requestType: 'echo' },
                key: 'user_id',
                algorithm: 'sliding_log',
                limit: 50,
                windowMs: 60_000,
                mode: 'eventual',
              },
            ],
          },
        },
      }),
    );
  }
  const nc = await natsAs('svc-demo', PASSWORDS.DEMO_WORKER_NATS_PASS, '_INBOX_demo');
  worker = { nc, running: await serve(demo, { nats: nc, pushToken: PUSH_TOKEN }) };
  for (const app of gateways)
    await until(
      () => app.genApi.nats!.discovery.instances('demo').length === 1,
      'the demo worker discovered',
      5_000,
    );
});

afterAll(async () => {
  for (const nc of attackers) await nc.close().catch(() => undefined);
  await worker?.running.stop();
  await worker?.nc.close();
  for (const app of gateways) await app.close();
  gateways = [];
  await server?.dispose();
});

describe('examples/secure: the audit attacks (issue 12, point 2) are refused', () => {
  it('the real worker is admitted and its signed start-up push accepted by both gateways', () => {
    expect(worker.running.startupAcks.map((ack) => ack.status)).toEqual(['accepted', 'accepted']);
  });

  it('an anonymous client cannot connect at all', async () => {
    await expect(connect({ servers: server.url })).rejects.toThrow(/Authorization Violation/i);
  });

  it('1. config pushes: refused by the server for another service, by the gateway when unsigned or misaddressed; admin_only stays admin-only', async () => {
    const evil = {
      service: 'demo',
      config_version: 'evil-1',
      fun_configs: [{ service: 'demo', request_type: 'admin_only', timeout: 5_000 }],
    };
    const body = new TextEncoder().encode(JSON.stringify(evil));
    // The broadcaster and the other service's worker may not publish to demo's push subject.
    for (const who of ['broadcaster', 'svc-other'] as const) {
      const { nc, violations } = await attacker(who);
      const acks = await nc
        .requestMany('genapi.config.push.demo', body, { strategy: 'timer', maxWait: 300 })
        .then(async (replies) => {
          const got: unknown[] = [];
          for await (const reply of replies) got.push(reply.json());
          return got;
        })
        .catch(() => []);
      expect(acks).toEqual([]);
      await eventually(
        () =>
          expect(violations.join('\n')).toMatch(
            /Permissions Violation for Publish to "genapi\.config\.push\.demo"/,
          ),
        `${who}: the server refuses the push`,
      );
    }
    // The other worker on its own subject: a demo config there, or an unsigned one, is refused.
    const { nc } = await attacker('svc-other');
    const ask = async (payload: unknown, signed: boolean) => {
      const data = new TextEncoder().encode(JSON.stringify(payload));
      const h = headers();
      if (signed)
        h.set('Genapi-Auth', new PeerAuth(PUSH_TOKEN).signPush('genapi.config.push.other', data));
      const replies = await nc.requestMany('genapi.config.push.other', data, {
        strategy: 'timer',
        maxWait: 500,
        headers: h,
      });
      const got: { status: string; error?: string }[] = [];
      for await (const reply of replies) got.push(reply.json());
      return got;
    };
    const misaddressed = await ask(evil, true);
    expect(misaddressed.map((ack) => [ack.status, ack.error])).toEqual([
      ['error', 'validation_failed'],
      ['error', 'validation_failed'],
    ]);
    const unsigned = await ask({ ...evil, service: 'other' }, false);
    expect(unsigned.map((ack) => [ack.status, ack.error])).toEqual([
      ['error', 'invalid_push_token'],
      ['error', 'invalid_push_token'],
    ]);
    // A non-admin still cannot run admin_only, on either gateway.
    for (const app of gateways) {
      const client = await GenApiClient.connect(app.wsUrl('user_id=mallory'));
      const result = await client.call(call('adm', 'admin_only'));
      expect(result.pushes).toEqual([errorResp('adm', 'Permission denied')]);
      client.raw.close();
    }
    expect(ran.adminOnly).toBe(0);
  });

  it("a worker's own pushes: signed now → accepted; PhoenixGenApi's body push_token → accepted; a recorded push replayed after maxPushAgeMs → refused", async () => {
    const { nc } = await attacker('svc-other');
    const auth = new PeerAuth(PUSH_TOKEN);
    const subject = 'genapi.config.push.other';
    const config = (version: string, extra: Record<string, unknown> = {}) =>
      new TextEncoder().encode(
        JSON.stringify({
          service: 'other',
          config_version: version,
          fun_configs: [{ service: 'other', request_type: 'ping', timeout: 5_000 }],
          ...extra,
        }),
      );
    const push = async (data: Uint8Array, signedAt: number | null) => {
      const h = headers();
      if (signedAt !== null) h.set('Genapi-Auth', auth.signPush(subject, data, signedAt));
      const replies = await nc.requestMany(subject, data, {
        strategy: 'timer',
        maxWait: 500,
        headers: h,
      });
      const got: { status: string; error?: string; messages?: string[] }[] = [];
      for await (const reply of replies) got.push(reply.json());
      return got;
    };
    expect((await push(config('o1'), Date.now())).map((ack) => ack.status)).toEqual([
      'accepted',
      'accepted',
    ]);
    expect(
      (await push(config('o2', { push_token: PUSH_TOKEN }), null)).map((ack) => ack.status),
    ).toEqual(['accepted', 'accepted']);
    const replayed = await push(config('o0'), Date.now() - 10 * 60_000);
    expect(replayed.map((ack) => [ack.status, ack.error, ack.messages?.[0]])).toEqual([
      ['error', 'invalid_push_token', expect.stringContaining('expired') as unknown],
      ['error', 'invalid_push_token', expect.stringContaining('expired') as unknown],
    ]);
  });

  it('2. a direct request with forged identity headers never reaches the worker', async () => {
    for (const who of ['broadcaster', 'svc-other'] as const) {
      const { nc, violations } = await attacker(who);
      const h = headers();
      h.set('Genapi-Roles', '["admin"]');
      h.set('Genapi-User-Id', 'admin');
      for (const subject of [
        'genapi.fn.demo.admin_only',
        `genapi.inst.demo.${worker.running.id}.fn.demo.admin_only`,
      ]) {
        await expect(nc.request(subject, '{}', { timeout: 300, headers: h })).rejects.toThrow();
        await eventually(
          () =>
            expect(violations.join('\n')).toContain(
              `Permissions Violation for Publish to "${subject}"`,
            ),
          `${who}: the server refuses ${subject}`,
        );
      }
    }
    expect(ran.adminOnly).toBe(0);
  });

  it("3. nobody else can subscribe to demo's subjects: 50 users' calls are all answered by the real worker", async () => {
    for (const who of ['broadcaster', 'svc-other'] as const) {
      const { nc } = await attacker(who);
      for (const subject of [
        'genapi.fn.demo.echo',
        'genapi.inst.*.fn.demo.echo',
        'genapi.inst.demo.>',
      ]) {
        const sub = nc.subscribe(subject, { queue: 'genapi' });
        // nats.js ends a refused subscription with the server's error as its `closed` value.
        const ended = await sub.closed;
        expect(String(ended)).toMatch(/Permissions Violation for Subscription/);
      }
    }
    const before = ran.echo;
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const app = gateways[i % 2]!;
        const client = await GenApiClient.connect(app.wsUrl(`user_id=user-${i}`));
        const result = await client.call(call(`e${i}`, 'echo', { message: `m${i}` }));
        client.raw.close();
        return result.pushes;
      }),
    );
    results.forEach((pushes, i) =>
      expect(pushes).toEqual([
        resp(`e${i}`, { result: { by: 'real-worker', user: `user-${i}`, message: `m${i}` } }),
      ]),
    );
    expect(ran.echo - before).toBe(50);
  });

  it('4. a fake instance announcing demo 99.0.0 (with a valid proof: it knows the token) is refused; the real worker keeps routing and its pushes', async () => {
    const { nc } = await attacker('svc-other');
    const auth = new PeerAuth(PUSH_TOKEN);
    const fake = JSON.stringify({
      type: 'io.nats.micro.v1.ping_response',
      name: 'demo',
      id: 'FAKEINSTANCE99',
      version: '99.0.0',
      metadata: {
        genapi_protocol: '1',
        genapi_prefix: 'genapi',
        genapi_config_version: 'evil',
        genapi_auth: auth.instanceProof('demo', '99.0.0', 'evil'),
      },
    });
    // It may answer the broadcast ping (every worker must), but not on demo's own subjects.
    nc.subscribe('$SRV.PING', {
      callback: (_err, msg) => {
        msg.respond(fake);
      },
    });
    await nc.flush();
    await eventually(
      () => {
        for (const app of gateways) {
          expect(app.genApi.nats!.health().instancesRefused).toBeGreaterThan(0);
          expect(app.genApi.nats!.discovery.instances('demo').map((i) => i.id)).toEqual([
            worker.running.id,
          ]);
        }
      },
      'the fake refused and the real instance alone on both gateways',
      5_000,
    );
    const acks = await worker.running.push(true);
    expect(acks.map((ack) => ack.status)).toEqual(['accepted', 'accepted']);
  });

  it('5. forged rate-limit hits are refused by the server: the victim is not locked out anywhere', async () => {
    // What a real gateway publishes for the victim's call (a gateway-credential observer).
    const spy = await natsAs('gateway', PASSWORDS.GATEWAY_NATS_PASS, '_INBOX_gateway');
    attackers.push(spy);
    const seen: string[] = [];
    spy.subscribe('genapi.rl.hits', {
      callback: (_err, msg) => {
        seen.push(msg.string());
      },
    });
    await spy.flush();
    const victim = await GenApiClient.connect(gateways[0]!.wsUrl('user_id=victim'));
    expect((await victim.call(call('v1', 'echo', { message: 'x' }))).pushes).toHaveLength(1);
    await until(() => seen.some((batch) => batch.includes('victim')), 'the victim hit', 5_000);
    const real = JSON.parse(seen.find((batch) => batch.includes('victim'))!) as {
      h: [string, string, number, number][];
    };
    const [policy, key] = real.h.find((hit) => hit[1].includes('victim'))!;
    for (const who of ['broadcaster', 'svc-other'] as const) {
      const { nc, violations } = await attacker(who);
      const forged = { o: 'forged-origin', s: 1, h: [[policy, key, Date.now(), 1_000_000]] };
      nc.publish('genapi.rl.hits', JSON.stringify(forged));
      await eventually(
        () =>
          expect(violations.join('\n')).toContain(
            'Permissions Violation for Publish to "genapi.rl.hits"',
          ),
        `${who}: the server refuses rl.hits`,
      );
    }
    for (const [i, app] of gateways.entries()) {
      const client = await GenApiClient.connect(app.wsUrl('user_id=victim'));
      const result = await client.call(call(`v-after-${i}`, 'echo', { message: 'y' }));
      expect(result.pushes).toEqual([
        resp(`v-after-${i}`, { result: { by: 'real-worker', user: 'victim', message: 'y' } }),
      ]);
      client.raw.close();
    }
    victim.raw.close();
  });
});
