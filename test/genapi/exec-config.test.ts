/**
 * Executor acceptance: config flows (protocol/nats.md §4, protocol/gen_api.md §3.1 and §7 item 16;
 * spec §6): pulls on gateway start, pushes to every gateway with PushAcks, skipped versions, push
 * tokens, partial acceptance, dropped functions and disabled configs — all observed through what a
 * client of the gen_api channel receives, with SDK workers on a real nats-server.
 *
 * Tests about push acknowledgements use gateways whose discovery pings only at start
 * (`quietDiscovery`): otherwise a discovery pull may win the race with the worker's start-up push
 * and turn its ack into `skipped`.
 */
import { describe, expect, it } from 'vitest';
import { defineService, fn, type FunctionDefinition } from '../../src/worker/define.js';
import type { GenApiApp } from '../support/genapi-app.js';
import { errorResp, useExecEnv, ready, resp, type GenApiClient } from '../support/genapi-exec.js';

function service(
  name: string,
  functions: Record<string, Partial<FunctionDefinition>>,
  configVersion?: string,
) {
  const defs: Record<string, FunctionDefinition> = {};
  for (const [key, def] of Object.entries(functions))
    defs[key] = fn({ ...def, handler: def.handler ?? (() => ({ served: key })) });
  return defineService({ name, functions: defs, ...(configVersion ? { configVersion } : {}) });
}

const req = (id: string, svc: string, rt: string, extra: Record<string, unknown> = {}) => ({
  request_id: id,
  service: svc,
  request_type: rt,
  args: {},
  ...extra,
});

async function served(
  client: GenApiClient,
  id: string,
  svc: string,
  rt: string,
  extra: Record<string, unknown> = {},
) {
  return (await client.call(req(id, svc, rt, extra))).pushes;
}

describe('exec: config flows over NATS', () => {
  const env = useExecEnv();

  it('a gateway started after the workers serves their functions within 1 s of its start', async () => {
    const worker = await env.worker(service('cfg_late', { echo: {}, other: {} }));
    expect(worker.running.startupAcks).toEqual([]); // nobody listened
    const started = performance.now();
    const app = await env.gateway();
    const client = await env.client(app);
    const pushes = await served(client, 'late-1', 'cfg_late', 'echo');
    // The documented promise (protocol/nats.md §4), kept as an upper bound on purpose.
    const elapsed = performance.now() - started;
    expect(pushes).toEqual([resp('late-1', { result: { served: 'echo' } })]);
    expect(elapsed).toBeLessThan(1_000);
    expect(await served(client, 'late-2', 'cfg_late', 'other')).toEqual([
      resp('late-2', { result: { served: 'other' } }),
    ]);
  });

  it('two gateways on one NATS both accept a push from a worker started after them, and both serve it', async () => {
    const g1 = await env.gateway({ quietDiscovery: true });
    const g2 = await env.gateway({ quietDiscovery: true });
    const definition = service('cfg_two', { echo: {} });
    const worker = await env.worker(definition);
    const acks = worker.running.startupAcks;
    expect(acks).toHaveLength(2);
    expect(new Set(acks.map((a) => a.gateway))).toEqual(
      new Set([g1.gateway.nodeId, g2.gateway.nodeId]),
    );
    for (const ack of acks) {
      expect(ack).toMatchObject({
        status: 'accepted',
        service: 'cfg_two',
        config_version: definition.configVersion,
        accepted: [{ request_type: 'echo', version: null }],
        rejected: [],
      });
    }
    for (const [i, app] of [g1, g2].entries()) {
      const client = await env.client(app);
      expect(await served(client, `two-${i}`, 'cfg_two', 'echo')).toEqual([
        resp(`two-${i}`, { result: { served: 'echo' } }),
      ]);
    }
  });

  it('a push with the config_version a gateway holds is skipped, unless forced', async () => {
    const g1 = await env.gateway({ quietDiscovery: true });
    const g2 = await env.gateway({ quietDiscovery: true });
    const worker = await env.worker(service('cfg_skip', { echo: {} }));
    expect(worker.running.startupAcks.map((a) => a.status)).toEqual(['accepted', 'accepted']);
    const again = await worker.running.push();
    expect(again).toHaveLength(2);
    for (const ack of again)
      expect(ack).toEqual({
        gateway: expect.any(String) as unknown,
        status: 'skipped',
        service: 'cfg_skip',
        reason: 'version_matches',
      });
    const forced = await worker.running.push(true);
    expect(forced).toHaveLength(2);
    for (const ack of forced)
      expect(ack).toMatchObject({
        status: 'accepted',
        service: 'cfg_skip',
        accepted: [{ request_type: 'echo', version: null }],
      });
    expect(new Set(forced.map((a) => a.gateway))).toEqual(
      new Set([g1.gateway.nodeId, g2.gateway.nodeId]),
    );
  });

  it('two gateways with live discovery both learn a worker that starts later', async () => {
    const g1 = await env.gateway();
    const g2 = await env.gateway();
    await env.worker(service('cfg_disc', { echo: {} }));
    await Promise.all([
      ready(g1, 'cfg_disc', 'echo', 1, 1_500),
      ready(g2, 'cfg_disc', 'echo', 1, 1_500),
    ]);
    for (const [i, app] of [g1, g2].entries()) {
      const client = await env.client(app);
      expect(await served(client, `disc-${i}`, 'cfg_disc', 'echo')).toEqual([
        resp(`disc-${i}`, { result: { served: 'echo' } }),
      ]);
    }
  });

  it('pushToken: a push without the token is refused (invalid_push_token) and its functions stay unsupported; with the token it is accepted', async () => {
    const app = await env.gateway({
      quietDiscovery: true,
      genApi: { pushToken: 'sekrit-push-token-16' },
    });
    const client = await env.client(app);
    const rogue = await env.worker(service('cfg_tok_bad', { echo: {} }));
    expect(rogue.running.startupAcks).toEqual([
      {
        gateway: app.gateway.nodeId,
        status: 'error',
        error: 'invalid_push_token',
        messages: ['invalid push token'],
      },
    ]);
    const wrong = await env.worker(service('cfg_tok_wrong', { echo: {} }), {
      pushToken: 'sekriT-push-token-16',
    });
    expect(wrong.running.startupAcks).toMatchObject([
      { status: 'error', error: 'invalid_push_token' },
    ]);
    expect(await served(client, 'tok-bad', 'cfg_tok_bad', 'echo')).toEqual([
      errorResp('tok-bad', 'unsupported function: echo version latest'),
    ]);
    expect(await served(client, 'tok-wrong', 'cfg_tok_wrong', 'echo')).toEqual([
      errorResp('tok-wrong', 'unsupported function: echo version latest'),
    ]);

    const good = await env.worker(service('cfg_tok_good', { echo: {} }), {
      pushToken: 'sekrit-push-token-16',
    });
    expect(good.running.startupAcks).toMatchObject([
      { gateway: app.gateway.nodeId, status: 'accepted', service: 'cfg_tok_good' },
    ]);
    expect(await served(client, 'tok-good', 'cfg_tok_good', 'echo')).toEqual([
      resp('tok-good', { result: { served: 'echo' } }),
    ]);
  });

  it('pushToken also guards pulls: a token-less instance found by discovery stays unsupported', async () => {
    await env.worker(service('cfg_tok_pull_bad', { echo: {} }));
    await env.worker(service('cfg_tok_pull_good', { echo: {} }), {
      pushToken: 'sekrit-push-token-16',
    });
    const app = await env.gateway({ genApi: { pushToken: 'sekrit-push-token-16' } });
    const client = await env.client(app);
    await ready(app, 'cfg_tok_pull_good', 'echo', 1);
    // Two more discovery rounds and a pull of every service, each run to its end: the token-less
    // instance is asked again and again, and still refused.
    await app.genApi.nats!.discovery.ping();
    await app.genApi.nats!.discovery.ping();
    await app.genApi.pullConfigs();
    expect(await served(client, 'tokp-bad', 'cfg_tok_pull_bad', 'echo')).toEqual([
      errorResp('tokp-bad', 'unsupported function: echo version latest'),
    ]);
    expect(await served(client, 'tokp-good', 'cfg_tok_pull_good', 'echo')).toEqual([
      resp('tokp-good', { result: { served: 'echo' } }),
    ]);
  });

  it('partial acceptance: an invalid function is listed under rejected and recorded as failed; the valid ones serve', async () => {
    const app = await env.gateway({ quietDiscovery: true });
    const client = await env.client(app);
    const worker = await env.worker(
      service('cfg_partial', {
        good: {},
        also_good: { timeout: 'infinity' },
        bad: { timeout: 50 },
      }),
    );
    const [ack] = worker.running.startupAcks;
    expect(worker.running.startupAcks).toHaveLength(1);
    expect(ack).toMatchObject({ status: 'accepted', service: 'cfg_partial' });
    if (ack?.status !== 'accepted') throw new Error('not accepted');
    expect(ack.accepted).toEqual(
      expect.arrayContaining([
        { request_type: 'good', version: null },
        { request_type: 'also_good', version: null },
      ]),
    );
    expect(ack.accepted).toHaveLength(2);
    expect(ack.rejected).toEqual([
      {
        request_type: 'bad',
        version: null,
        errors: ['timeout must be an integer between 100 and 300000, or "infinity"'],
      },
    ]);

    const failed = app.genApi.failed.list({ service: 'cfg_partial' });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      request_type: 'bad',
      source: 'push',
      origin: worker.running.id,
      reasons: ['timeout must be an integer between 100 and 300000, or "infinity"'],
    });

    expect(await served(client, 'part-good', 'cfg_partial', 'good')).toEqual([
      resp('part-good', { result: { served: 'good' } }),
    ]);
    expect(await served(client, 'part-also', 'cfg_partial', 'also_good')).toEqual([
      resp('part-also', { result: { served: 'also_good' } }),
    ]);
    expect(await served(client, 'part-bad', 'cfg_partial', 'bad')).toEqual([
      errorResp('part-bad', 'unsupported function: bad version latest'),
    ]);
  });

  it('a push whose every function is invalid is refused (all_invalid)', async () => {
    const app = await env.gateway({ quietDiscovery: true });
    const worker = await env.worker(
      service('cfg_all_bad', { bad: { timeout: 50 }, worse: { timeout: 400_000 } }),
    );
    expect(worker.running.startupAcks).toMatchObject([
      { gateway: app.gateway.nodeId, status: 'error', error: 'all_invalid' },
    ]);
    expect(app.genApi.failed.list({ service: 'cfg_all_bad' })).toHaveLength(2);
  });

  it('a new config_version that drops a function makes it unsupported', async () => {
    const app = await env.gateway({ quietDiscovery: true });
    const client = await env.client(app);
    const v1 = service('cfg_drop', { a: {}, b: {} });
    const old = await env.worker(v1);
    expect(old.running.startupAcks).toMatchObject([
      { status: 'accepted', config_version: v1.configVersion },
    ]);
    expect(await served(client, 'drop-b1', 'cfg_drop', 'b')).toEqual([
      resp('drop-b1', { result: { served: 'b' } }),
    ]);
    await old.stop();

    const v2 = service('cfg_drop', { a: {} });
    expect(v2.configVersion).not.toBe(v1.configVersion);
    const fresh = await env.worker(v2);
    expect(fresh.running.startupAcks).toMatchObject([
      {
        status: 'accepted',
        config_version: v2.configVersion,
        accepted: [{ request_type: 'a', version: null }],
      },
    ]);
    expect(await served(client, 'drop-b2', 'cfg_drop', 'b')).toEqual([
      errorResp('drop-b2', 'unsupported function: b version latest'),
    ]);
    expect(await served(client, 'drop-a2', 'cfg_drop', 'a')).toEqual([
      resp('drop-a2', { result: { served: 'a' } }),
    ]);
  });

  it('disabled configs: an explicit version reports "disabled function", no version reports unsupported (or falls to an enabled version)', async () => {
    const app: GenApiApp = await env.gateway();
    const only = service('cfg_dis', { 'echo@1.0.0': { handler: () => 'v1' } });
    const both = service('cfg_dis2', {
      'echo@1.0.0': { handler: () => 'v1' },
      'echo@2.0.0': { handler: () => 'v2' },
    });
    await env.worker(only);
    await env.worker(both);
    await ready(app, 'cfg_dis', 'echo', 1);
    await ready(app, 'cfg_dis2', 'echo', 1);
    const client = await env.client(app);
    expect(await served(client, 'dis-0', 'cfg_dis', 'echo', { version: '1.0.0' })).toEqual([
      resp('dis-0', { result: 'v1' }),
    ]);

    expect(app.genApi.registry.disable('cfg_dis', 'echo', '1.0.0')).toBe(true);
    const explicit = await client.call(req('dis-1', 'cfg_dis', 'echo', { version: '1.0.0' }));
    expect(explicit.pushes).toEqual([errorResp('dis-1', 'disabled function: echo version 1.0.0')]);
    expect(explicit.reply).toEqual({ status: 'ok', response: 'echo' });
    expect(await served(client, 'dis-2', 'cfg_dis', 'echo')).toEqual([
      errorResp('dis-2', 'unsupported function: echo version latest'),
    ]);

    // Latest skips a disabled version.
    expect(await served(client, 'dis-3', 'cfg_dis2', 'echo')).toEqual([
      resp('dis-3', { result: 'v2' }),
    ]);
    app.genApi.registry.disable('cfg_dis2', 'echo', '2.0.0');
    expect(await served(client, 'dis-4', 'cfg_dis2', 'echo')).toEqual([
      resp('dis-4', { result: 'v1' }),
    ]);
    expect(await served(client, 'dis-5', 'cfg_dis2', 'echo', { version: '2.0.0' })).toEqual([
      errorResp('dis-5', 'disabled function: echo version 2.0.0'),
    ]);

    app.genApi.registry.enable('cfg_dis', 'echo', '1.0.0');
    expect(await served(client, 'dis-6', 'cfg_dis', 'echo')).toEqual([
      resp('dis-6', { result: 'v1' }),
    ]);
  });

  it('a worker config with disabled: true is held but not served', async () => {
    const app = await env.gateway();
    await env.worker(service('cfg_dis3', { 'echo@1.0.0': { disabled: true }, on: {} }));
    await ready(app, 'cfg_dis3', 'on', 1);
    const client = await env.client(app);
    expect(await served(client, 'dis3-1', 'cfg_dis3', 'echo', { version: '1.0.0' })).toEqual([
      errorResp('dis3-1', 'disabled function: echo version 1.0.0'),
    ]);
    expect(await served(client, 'dis3-2', 'cfg_dis3', 'echo')).toEqual([
      errorResp('dis3-2', 'unsupported function: echo version latest'),
    ]);
  });
});
