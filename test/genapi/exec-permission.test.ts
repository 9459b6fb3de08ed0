/**
 * Executor acceptance: permission through the channel (protocol/gen_api.md §4 step 3, §7 items 1
 * and 17; spec §4). Identity and roles come from the socket's connect params (the harness reads
 * user_id, device_id, roles[]); the worker's own check (`authorize`, permission_callback) runs on
 * a real SDK worker over a real nats-server and is fail-closed.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/worker/context.js';
import { defineService, fn } from '../../src/worker/define.js';
import type { GenApiApp } from '../support/genapi-app.js';
import {
  errorResp,
  ExecEnv,
  useExecEnv,
  ready,
  resp,
  subscriptionsGone,
  type GenApiClient,
} from '../support/genapi-exec.js';
import { deferred, type Deferred } from '../support/wait.js';

const SERVICE = 'perm';

interface Seen {
  handled: Map<string, number>;
  authorized: { rt: string; args: unknown; userId: string | null; roles: readonly string[] }[];
  /** The slow check waits for `release` (long past its timeout), then resolves `finished`. */
  slowCheck: { release: Deferred<void>; finished: Deferred<void> };
}

const newSeen = (): Seen => ({
  handled: new Map(),
  authorized: [],
  slowCheck: { release: deferred(), finished: deferred() },
});

function permService(seen: Seen) {
  const handler = (rt: string) => (args: Record<string, unknown>, ctx: RequestContext) => {
    seen.handled.set(rt, (seen.handled.get(rt) ?? 0) + 1);
    return { rt, user: ctx.userId, args };
  };
  const authorize =
    (rt: string, decide: (args: Record<string, unknown>, ctx: RequestContext) => unknown) =>
    async (args: Record<string, unknown>, ctx: RequestContext) => {
      seen.authorized.push({ rt, args, userId: ctx.userId, roles: ctx.roles });
      return (await decide(args, ctx)) as boolean;
    };
  return defineService({
    name: SERVICE,
    functions: {
      open: fn({ handler: handler('open') }),
      any_auth: fn({ permission: 'any_authenticated', handler: handler('any_auth') }),
      own: fn({
        permission: { arg: 'user_id' },
        args: { user_id: 'string' },
        handler: handler('own'),
      }),
      own_nested: fn({
        permission: { arg: 'user_id' },
        argOrders: 'map',
        args: { profile: 'map' },
        handler: handler('own_nested'),
      }),
      admin: fn({ permission: { role: ['admin', 'ops'] }, handler: handler('admin') }),
      cb_allow: fn({ authorize: authorize('cb_allow', () => true), handler: handler('cb_allow') }),
      cb_deny: fn({ authorize: authorize('cb_deny', () => false), handler: handler('cb_deny') }),
      cb_truthy: fn({
        authorize: authorize('cb_truthy', () => 'yes'),
        handler: handler('cb_truthy'),
      }),
      cb_throw: fn({
        authorize: authorize('cb_throw', () => {
          throw new Error('authorizer crashed');
        }),
        handler: handler('cb_throw'),
      }),
      cb_slow: fn({
        timeout: 300,
        authorize: authorize('cb_slow', async () => {
          await seen.slowCheck.release.promise;
          seen.slowCheck.finished.resolve();
          return true;
        }),
        handler: handler('cb_slow'),
      }),
      cb_owner: fn({
        args: { owner: 'string' },
        authorize: authorize('cb_owner', (args, ctx) => args.owner === ctx.userId),
        handler: handler('cb_owner'),
      }),
      cb_and_role: fn({
        permission: { role: ['admin'] },
        authorize: authorize('cb_and_role', () => true),
        handler: handler('cb_and_role'),
      }),
    },
  });
}

const req = (
  id: string,
  rt: string,
  args: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) => ({
  request_id: id,
  service: SERVICE,
  request_type: rt,
  args,
  ...extra,
});

describe('exec: permission through the channel over NATS', () => {
  // One gateway and worker for the block: the tests use their own functions, sockets and ids.
  let env: ExecEnv;
  const seen = newSeen();
  let app: GenApiApp;
  const handled = (rt: string) => seen.handled.get(rt) ?? 0;

  beforeAll(async () => {
    env = await ExecEnv.start();
    app = await env.gateway();
    await env.worker(permService(seen));
    await ready(app, SERVICE, 'open', 1);
  });
  beforeEach(() => {
    seen.handled.clear();
    seen.authorized.length = 0;
  });
  afterAll(async () => {
    seen.slowCheck.release.resolve();
    await env?.dispose();
  });

  let markers = 0;
  /**
   * A call to the same worker after the requests under test ended: once it is answered, the
   * worker has seen whatever the gateway sent it before.
   */
  async function marker(client: GenApiClient): Promise<void> {
    const id = `marker-${++markers}`;
    const result = await client.call(req(id, 'open'));
    expect(result.pushes[0]!.success).toBe(true);
  }

  it('any_authenticated: a socket with a user_id is allowed', async () => {
    const client = await env.client(app, 'user_id=u1');
    const result = await client.call(req('p-any', 'any_auth'));
    expect(result.pushes).toEqual([
      resp('p-any', { result: { rt: 'any_auth', user: 'u1', args: {} } }),
    ]);
    expect(result.reply).toEqual({ status: 'ok', response: 'any_auth' });
  });

  it('any_authenticated: a socket without user_id is denied (requireVerifiedUserId off)', async () => {
    const lax = await env.gateway({ genApi: { requireVerifiedUserId: false } });
    await ready(lax, SERVICE, 'open', 1);
    const anon = await env.client(lax, 'device_id=d9');
    const open = await anon.call(req('p-anon-open', 'open'));
    expect(open.pushes).toEqual([
      resp('p-anon-open', { result: { rt: 'open', user: null, args: {} } }),
    ]);
    // Documented (protocol/gen_api.md §1, §7.2): identity comes from the socket's auth only; a
    // payload user_id does not make this anonymous socket authenticated (trustClientUserId off).
    const payloadUser = await anon.call(req('p-anon', 'any_auth', {}, { user_id: 'from-payload' }));
    expect(payloadUser.pushes).toEqual([errorResp('p-anon', 'Permission denied')]);
    const plain = await anon.call(req('p-anon-2', 'any_auth'));
    expect(plain.pushes).toEqual([errorResp('p-anon-2', 'Permission denied')]);
    expect(plain.reply).toEqual({ status: 'ok', response: 'any_auth' });
  });

  it('{arg}: the argument must equal the socket user_id; a mismatch is denied before argument checks', async () => {
    const client = await env.client(app, 'user_id=u1');
    const ok = await client.call(req('p-own', 'own', { user_id: 'u1' }));
    expect(ok.pushes).toEqual([
      resp('p-own', { result: { rt: 'own', user: 'u1', args: { user_id: 'u1' } } }),
    ]);
    const other = await client.call(req('p-own-x', 'own', { user_id: 'u2' }));
    expect(other.pushes).toEqual([errorResp('p-own-x', 'Permission denied')]);
    expect(other.reply).toEqual({ status: 'ok', response: 'own' });
    // Permission before arguments: a denied caller learns nothing about the schema.
    const junk = await client.call(req('p-own-junk', 'own', { user_id: 'u2', junk: 1 }));
    expect(junk.pushes).toEqual([errorResp('p-own-junk', 'Permission denied')]);
    const number = await client.call(req('p-own-num', 'own', { user_id: 1 }));
    expect(number.pushes).toEqual([errorResp('p-own-num', 'Permission denied')]);
    // Allowed, then the argument check applies.
    const extra = await client.call(req('p-own-extra', 'own', { user_id: 'u1', junk: 1 }));
    expect(extra.pushes).toEqual([errorResp('p-own-extra', 'Request processing failed')]);
    expect(extra.reply).toEqual({
      status: 'error',
      response: 'extra arguments for "own", extra: ["junk"]',
    });
    expect(handled('own')).toBe(1);
  });

  it('{arg} with arg_orders "map": the key is found one level deep', async () => {
    const client = await env.client(app, 'user_id=u1');
    const ok = await client.call(req('p-nest', 'own_nested', { profile: { user_id: 'u1' } }));
    expect(ok.pushes[0]).toMatchObject({ success: true });
    const other = await client.call(req('p-nest-x', 'own_nested', { profile: { user_id: 'u2' } }));
    expect(other.pushes).toEqual([errorResp('p-nest-x', 'Permission denied')]);
    expect(handled('own_nested')).toBe(1);
  });

  it('{role}: roles come from the socket; payload user_roles are ignored', async () => {
    const admin = await env.client(app, 'user_id=u9&roles[]=admin');
    const ok = await admin.call(req('p-role', 'admin'));
    expect(ok.pushes).toEqual([resp('p-role', { result: { rt: 'admin', user: 'u9', args: {} } })]);
    const ops = await env.client(app, 'user_id=u8&roles[]=viewer&roles[]=ops');
    expect((await ops.call(req('p-role-ops', 'admin'))).pushes[0]).toMatchObject({ success: true });

    const plain = await env.client(app, 'user_id=u1');
    const denied = await plain.call(req('p-role-x', 'admin', {}, { user_roles: ['admin'] }));
    expect(denied.pushes).toEqual([errorResp('p-role-x', 'Permission denied')]);
    expect(denied.reply).toEqual({ status: 'ok', response: 'admin' });
    const viewer = await env.client(app, 'user_id=u2&roles[]=viewer');
    expect((await viewer.call(req('p-role-v', 'admin'))).pushes).toEqual([
      errorResp('p-role-v', 'Permission denied'),
    ]);
    expect(handled('admin')).toBe(2);
  });

  it('worker check (authorize): allow runs the handler; the check sees identity and the args as sent', async () => {
    const client = await env.client(app, 'user_id=u1&roles[]=staff');
    const result = await client.call(req('p-cb', 'cb_allow', { anything: [1, 2] }));
    expect(result.pushes).toEqual([
      resp('p-cb', { result: { rt: 'cb_allow', user: 'u1', args: { anything: [1, 2] } } }),
    ]);
    expect(seen.authorized).toEqual([
      { rt: 'cb_allow', args: { anything: [1, 2] }, userId: 'u1', roles: ['staff'] },
    ]);
    expect(handled('cb_allow')).toBe(1);
  });

  it('worker check: false, a non-true value and a throw all deny; the handler never runs', async () => {
    const client = await env.client(app, 'user_id=u1');
    for (const rt of ['cb_deny', 'cb_truthy', 'cb_throw']) {
      const result = await client.call(req(`p-${rt}`, rt));
      expect(result.pushes).toEqual([errorResp(`p-${rt}`, 'Permission denied')]);
      expect(result.reply).toEqual({ status: 'ok', response: rt });
    }
    expect(seen.authorized.map((a) => a.rt)).toEqual(['cb_deny', 'cb_truthy', 'cb_throw']);
    await marker(client);
    expect(handled('cb_deny') + handled('cb_truthy') + handled('cb_throw')).toBe(0);
  });

  it('worker check slower than the function timeout (300 ms) denies at the timeout', async () => {
    const client = await env.client(app, 'user_id=u1');
    const result = await client.call(req('p-cb-slow', 'cb_slow'));
    expect(result.pushes).toEqual([errorResp('p-cb-slow', 'Permission denied')]);
    expect(result.ms).toBeGreaterThanOrEqual(280);
    // The check was still running at the timeout; when it finally allows, nothing runs.
    seen.slowCheck.release.resolve();
    await seen.slowCheck.finished.promise;
    await marker(client);
    expect(handled('cb_slow')).toBe(0);
  });

  it('worker check decides on the unvalidated args; arguments are checked only after it allows', async () => {
    const client = await env.client(app, 'user_id=u1');
    const ok = await client.call(req('p-owner', 'cb_owner', { owner: 'u1' }));
    expect(ok.pushes[0]).toMatchObject({ success: true, result: { args: { owner: 'u1' } } });
    const denied = await client.call(req('p-owner-x', 'cb_owner', { owner: 'u2', junk: true }));
    expect(denied.pushes).toEqual([errorResp('p-owner-x', 'Permission denied')]);
    const bad = await client.call(req('p-owner-bad', 'cb_owner', { owner: 'u1', junk: true }));
    expect(bad.pushes).toEqual([errorResp('p-owner-bad', 'Request processing failed')]);
    expect(bad.reply).toEqual({
      status: 'error',
      response: 'extra arguments for "cb_owner", extra: ["junk"]',
    });
    expect(handled('cb_owner')).toBe(1);
  });

  it('the built-in mode runs before the worker check: a denied role never reaches the worker', async () => {
    const client = await env.client(app, 'user_id=u1');
    const result = await client.call(req('p-both', 'cb_and_role'));
    expect(result.pushes).toEqual([errorResp('p-both', 'Permission denied')]);
    expect(seen.authorized).toEqual([]);
    const admin = await env.client(app, 'user_id=u2&roles[]=admin');
    expect((await admin.call(req('p-both-ok', 'cb_and_role'))).pushes[0]).toMatchObject({
      success: true,
    });
    expect(seen.authorized.map((a) => a.rt)).toEqual(['cb_and_role']);
  });
});

describe('exec: the worker permission check across instances over NATS', () => {
  const env = useExecEnv();

  it('an instance that just died does not turn into "Permission denied": the check falls through to a live instance', async () => {
    // protocol/gen_api.md §4: a failure that means nothing ran (no responders) moves to the next
    // instance at once. The check is fail-closed when no instance can answer it, but a dead
    // instance is not a denial (and "Permission denied" tells the client not to retry).
    const checked = (label: string) =>
      defineService({
        name: 'perm_multi',
        functions: {
          f: fn({
            chooseNode: { hash: 'k' },
            args: { k: 'string' },
            authorize: () => true,
            handler: () => ({ label }),
          }),
        },
      });
    const app = await env.gateway();
    const a = await env.worker(checked('A'));
    await env.worker(checked('B'));
    await ready(app, 'perm_multi', 'f', 2);
    const client = await env.client(app);
    const call = async (id: string, k: string) =>
      (await client.call({ request_id: id, service: 'perm_multi', request_type: 'f', args: { k } }))
        .pushes[0]!;
    // A key whose requests (and permission checks) go to A first.
    let key: string | null = null;
    for (let i = 0; i < 32 && key === null; i++) {
      const push = await call(`pm-probe-${i}`, `key-${i}`);
      if ((push.result as { label: string }).label === 'A') key = `key-${i}`;
    }
    expect(key).not.toBeNull();
    await a.crash();
    // Just died: nats-server has dropped its subscriptions (a request it routed to the dying
    // connection would be lost, and the check would time out); discovery still lists it.
    await subscriptionsGone(env.url, a.running.id);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await call(`pm-${i}`, key!));
    expect(results.map((r) => r.error)).toEqual([null, null, null, null]);
    expect(results.map((r) => (r.result as { label: string } | null)?.label)).toEqual([
      'B',
      'B',
      'B',
      'B',
    ]);
  });

  it('no instance left at all: the check cannot be made and the request is not run', async () => {
    const seen = newSeen();
    const app = await env.gateway();
    const worker = await env.worker(permService(seen));
    await ready(app, SERVICE, 'cb_allow', 1);
    const client = await env.client(app);
    await worker.crash();
    await subscriptionsGone(env.url, worker.running.id);
    const result = await client.call(req('p-none-left', 'cb_allow'));
    expect(result.pushes[0]).toMatchObject({ success: false });
    expect(['Permission denied', 'Service temporarily unavailable']).toContain(
      result.pushes[0]!.error,
    );
    expect(seen.handled.get('cb_allow') ?? 0).toBe(0);
  });
});
