/**
 * Runtime policy changes across gateway processes (protocol/ratelimit.md §5.4, §6): real
 * gateways (the CLI in demo mode with the admin API and `rateLimits.clusterSecret`) on a 2-server
 * NATS cluster whose routes go through proxies (so the test can split it), the demo worker on
 * each server, and a raw NATS client that forges policy messages.
 *
 * - a PUT, DELETE or shadow change on gateway a is applied on b and logged there with
 *   `via: "cluster"` and a's origin; calls through b follow it;
 * - a gateway started later learns every earlier change (config-file policies included);
 * - changes made on both sides of a partition converge once it heals (last writer wins);
 * - unsigned or wrongly signed messages are refused and counted;
 * - without a secret a change stays on its gateway, with a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import type { RateLimitsHealth } from '../../src/ratelimit/rate-limits.js';
import { NatsCluster } from '../support/nats.js';
import { call, DemoWorker, RlGateway, type Outcome } from '../support/ratelimit-cluster.js';
import { realTime, until } from '../support/wait.js';

const SECRET = 'policy-sync-tests-shared-secret';
const ECHO: PolicyConfig = {
  id: 'echo.cap',
  scope: { service: 'demo', requestType: 'echo' },
  key: 'user_id',
  limit: 100,
  windowMs: 60_000,
  mode: 'eventual',
};
const WHOAMI: PolicyConfig = {
  id: 'whoami.cap',
  scope: { service: 'demo', requestType: 'whoami' },
  key: 'user_id',
  limit: 100,
  windowMs: 60_000,
  mode: 'eventual',
};
const POLICIES = [ECHO, WHOAMI];

/** Log lines of one message, parsed. */
const logs = (gateway: RlGateway, msg: string) => gateway.logs(msg);

/** The first log line of `msg` (matching `where`), once the process's stdout has brought it. */
function logLine(
  gateway: RlGateway,
  msg: string,
  where: (line: Record<string, unknown>) => boolean = () => true,
): Promise<Record<string, unknown>> {
  return until(() => logs(gateway, msg).find(where), `the log line "${msg}"`);
}

async function health(gateway: RlGateway): Promise<RateLimitsHealth> {
  const answer = await gateway.adminRequest('GET', '');
  expect(answer.status).toBe(200);
  return answer.json as RateLimitsHealth;
}

async function origin(gateway: RlGateway): Promise<string> {
  return (await health(gateway)).cluster!.origin;
}

/** Sorted JSON of a gateway's policies (compare whole sets across gateways). */
async function policySet(gateway: RlGateway): Promise<string> {
  const policies = await gateway.policies();
  return JSON.stringify([...policies.values()].sort((x, y) => x.id.localeCompare(y.id)));
}

async function outcomes(
  gateway: RlGateway,
  user: string,
  fn: string,
  n: number,
): Promise<Outcome[]> {
  const client = await gateway.client(user);
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++)
    out.push((await call(client, fn, fn === 'whoami' ? {} : undefined)).outcome);
  return out;
}

describe('runtime policy changes on a 2-server NATS cluster (proxied routes), gateway processes', () => {
  let cluster: NatsCluster;
  const workers: DemoWorker[] = [];
  const gateways: RlGateway[] = [];
  let a: RlGateway;
  let b: RlGateway;
  let nc: NatsConnection;

  async function gateway(
    name: string,
    server: number,
    secret: string | null = SECRET,
  ): Promise<RlGateway> {
    const started = await RlGateway.start(name, {
      nats: cluster.urls[server]!,
      policies: POLICIES,
      eventual: { heartbeatMs: 200 },
      ...(secret === null ? {} : { clusterSecret: secret }),
    });
    gateways.push(started);
    return started;
  }

  beforeAll(async () => {
    cluster = await NatsCluster.start({ size: 2, proxiedRoutes: true });
    // Workers and gateways start side by side: a gateway pulls a worker's config when it discovers
    // it. (Each worker is listed as soon as it is up, so a failed start still stops the others.)
    const workersUp = Promise.all(
      cluster.urls.map((url) => DemoWorker.start(url).then((started) => workers.push(started))),
    );
    [a, b] = await Promise.all([gateway('a', 0), gateway('b', 1)]);
    await workersUp;
    await until(
      async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster?.nodes === 2),
      'two nodes',
    );
    nc = await connect({ servers: cluster.urls[0]! });
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await Promise.all(gateways.map((g) => g.stop().catch(() => undefined)));
    await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
    await cluster?.dispose();
  }, 30_000);

  it('a PUT, a DELETE and a shadow change on a are applied on b, logged there with via "cluster" and a’s origin, and followed by b’s calls', async () => {
    const aOrigin = await origin(a);
    // PUT a new policy on a: 2 calls of demo.echo_async per user.
    const added: PolicyConfig = {
      id: 'async.two',
      scope: { service: 'demo', requestType: 'echo_async' },
      key: 'user_id',
      limit: 2,
      windowMs: 60_000,
      mode: 'eventual',
    };
    expect((await a.adminRequest('PUT', '/policies/async.two', added)).status).toBe(201);
    await until(async () => (await b.policies()).has('async.two'), 'the policy on b');
    expect((await b.policies()).get('async.two')).toEqual(added);
    expect(await logLine(b, 'rate-limit policy added')).toMatchObject({
      level: 40,
      actor: { via: 'cluster', who: aOrigin },
      policy: added,
      previous: null,
    });
    expect(await logLine(a, 'rate-limit policy added')).toMatchObject({ actor: { via: 'admin' } });
    // b enforces it: 2 pass, the third is denied by async.two.
    const onB = await outcomes(b, 'sync-put', 'echo_async', 3);
    expect(onB).toEqual(['allowed', 'allowed', 'denied']);

    // Replace on a: b logs the replacement (compatible: counters kept) and applies the new limit.
    const raised = { ...added, limit: 3 };
    expect((await a.adminRequest('PUT', '/policies/async.two', raised)).status).toBe(200);
    await until(
      async () => (await b.policies()).get('async.two')?.limit === 3,
      'the new limit on b',
    );
    expect(await logLine(b, 'rate-limit policy replaced')).toMatchObject({
      actor: { via: 'cluster', who: aOrigin },
      policy: raised,
      previous: added,
      counters: 'kept',
    });
    expect(await outcomes(b, 'sync-put', 'echo_async', 2)).toEqual(['allowed', 'denied']);

    // DELETE on a: gone on b, logged, calls no longer limited there.
    expect((await a.adminRequest('DELETE', '/policies/async.two')).status).toBe(204);
    await until(async () => !(await b.policies()).has('async.two'), 'the policy gone from b');
    expect(await logLine(b, 'rate-limit policy removed')).toMatchObject({
      level: 40,
      actor: { via: 'cluster', who: aOrigin },
      policy: raised,
    });
    expect(await outcomes(b, 'sync-put', 'echo_async', 3)).toEqual([
      'allowed',
      'allowed',
      'allowed',
    ]);

    // Shadow on a: b counts without denying, logged; then off again.
    expect((await a.adminRequest('PUT', '/shadow', { shadow: true })).status).toBe(200);
    await until(async () => (await health(b)).shadow, 'shadow on b');
    expect(await logLine(b, 'rate-limit shadow mode changed')).toMatchObject({
      level: 40,
      actor: { via: 'cluster', who: aOrigin },
      shadow: true,
      previous: false,
    });
    expect((await a.adminRequest('PUT', '/shadow', { shadow: false })).status).toBe(200);
    await until(async () => !(await health(b)).shadow, 'shadow off on b');

    // Both ledgers agree, and every change was signed (none refused).
    const [ha, hb] = await Promise.all([health(a), health(b)]);
    expect(ha.cluster!.policies.digest).not.toBe('');
    expect(hb.cluster!.policies.digest).toBe(ha.cluster!.policies.digest);
    expect(hb.cluster!.policies).toMatchObject({ shared: true, rejected: 0 });
    expect(hb.cluster!.policies.applied).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it('a gateway started later learns every earlier change from its peers, config-file policies included', async () => {
    // Earlier changes: echo.cap replaced (limit 4), whoami.cap (in every config file) deleted.
    expect((await a.adminRequest('PUT', '/policies/echo.cap', { ...ECHO, limit: 4 })).status).toBe(
      200,
    );
    expect((await b.adminRequest('DELETE', '/policies/whoami.cap')).status).toBe(204);
    await until(async () => (await policySet(a)) === (await policySet(b)), 'a and b agree');

    const c = await gateway('c', 1);
    const joined = Date.now();
    await until(
      async () => (await policySet(c)) === (await policySet(a)),
      'c’s policies equal to a’s',
    );
    console.info(
      `policy sync: the new gateway matched a ${Date.now() - joined} ms after it was up`,
    );
    const policies = await c.policies();
    expect(policies.get('echo.cap')?.limit).toBe(4);
    expect(policies.has('whoami.cap')).toBe(false);
    expect(await logLine(c, 'rate-limit policy removed')).toMatchObject({
      actor: { via: 'cluster', who: await origin(b) },
      policy: WHOAMI,
    });
    expect(await logLine(c, 'rate-limit policy replaced')).toMatchObject({
      actor: { via: 'cluster', who: await origin(a) },
      policy: { ...ECHO, limit: 4 },
    });
    // c enforces the cluster's version: 4 echo calls, then denied (the config file said 100).
    expect(await outcomes(c, 'late-joiner', 'echo', 5)).toEqual([
      'allowed',
      'allowed',
      'allowed',
      'allowed',
      'denied',
    ]);
    expect((await health(c)).cluster!.policies.digest).toBe(
      (await health(a)).cluster!.policies.digest,
    );
    await c.stop();
  }, 60_000);

  it('changes made on both sides of a partition converge when it heals: the later change wins everywhere', async () => {
    const closed = (i: number) =>
      cluster.servers[i]!.log.match(/Router? connection closed/g)?.length ?? 0;
    const before = [closed(0), closed(1)];
    cluster.isolate(0);
    cluster.isolate(1);
    await until(() => closed(0) > before[0]! && closed(1) > before[1]!, 'routes closed');

    // a: split.x limit 3, then (later) b: split.x limit 7; a alone adds split.y; b deletes echo.cap.
    const x: PolicyConfig = {
      id: 'split.x',
      scope: { service: 'demo', requestType: 'notify' },
      key: 'user_id',
      limit: 3,
      windowMs: 60_000,
    };
    const y: PolicyConfig = {
      id: 'split.y',
      scope: { service: 'demo', requestType: 'count' },
      key: 'user_id',
      limit: 9,
      windowMs: 60_000,
    };
    expect((await a.adminRequest('PUT', '/policies/split.x', x)).status).toBe(201);
    expect((await a.adminRequest('PUT', '/policies/split.y', y)).status).toBe(201);
    await realTime(
      20,
      "b's change must carry a later wall-clock stamp than a's (last writer wins)",
    );
    expect((await b.adminRequest('PUT', '/policies/split.x', { ...x, limit: 7 })).status).toBe(201);
    expect((await b.adminRequest('DELETE', '/policies/echo.cap')).status).toBe(204);
    await realTime(300, 'a span in which a change must not cross the split');
    // Split: each side has only its own changes.
    expect((await a.policies()).get('split.x')?.limit).toBe(3);
    expect((await b.policies()).get('split.x')?.limit).toBe(7);
    expect((await b.policies()).has('split.y')).toBe(false);
    expect((await a.policies()).has('echo.cap')).toBe(true);
    const digests = await Promise.all(
      [a, b].map(async (g) => (await health(g)).cluster!.policies.digest),
    );
    expect(digests[0]).not.toBe(digests[1]);

    cluster.heal();
    await cluster.waitForRoutes();
    const healed = Date.now();
    await until(async () => (await policySet(a)) === (await policySet(b)), 'a and b agree again');
    console.info(`policy sync: converged ${Date.now() - healed} ms after the routes came back`);
    for (const g of [a, b]) {
      const policies = await g.policies();
      expect(policies.get('split.x')).toEqual({ ...x, limit: 7 });
      expect(policies.get('split.y')).toEqual(y);
      expect(policies.has('echo.cap')).toBe(false);
    }
    const [ha, hb] = await Promise.all([health(a), health(b)]);
    expect(ha.cluster!.policies.digest).toBe(hb.cluster!.policies.digest);
    // The heal was noticed from the heartbeats' digests: both sides asked the other.
    expect(ha.cluster!.policies.syncs).toBeGreaterThan(1);
    expect(hb.cluster!.policies.syncs).toBeGreaterThan(1);
  }, 60_000);

  it('unsigned, wrongly signed and re-aimed policy messages are refused and counted; the policies do not change', async () => {
    const before = await Promise.all([a, b].map(policySet));
    const rejected = (await health(b)).cluster!.policies.rejected;
    const subject = 'genapi.rl.policy';
    const forged = {
      o: 'forger',
      t: Date.now() + 3_600_000,
      op: 'put',
      policy: { id: 'forged', key: 'user_id', limit: 1, windowMs: 60_000 },
    };
    const data = new TextEncoder().encode(JSON.stringify(forged));
    const sign = (secret: string, to: string) => {
      const h = headers();
      h.set(
        'Genapi-Rl-Sig',
        createHmac('sha256', secret).update(to).update('\n').update(data).digest('base64url'),
      );
      return h;
    };
    nc.publish(subject, data);
    nc.publish(subject, data, { headers: sign('another-secret-of-16-chars', subject) });
    // Signed with the right secret for another subject: not valid on this one.
    nc.publish(subject, data, { headers: sign(SECRET, 'genapi.rl.hits') });
    // An unsigned sync request gets no answer.
    const inbox = `_INBOX.forger${Date.now()}`;
    const answers: unknown[] = [];
    nc.subscribe(inbox, {
      callback: (_err, msg) => {
        answers.push(msg.data);
      },
    });
    nc.publish('genapi.rl.policy.sync', new TextEncoder().encode(JSON.stringify({ o: 'forger' })), {
      reply: inbox,
    });
    await nc.flush();
    await until(
      async () => (await health(b)).cluster!.policies.rejected >= rejected + 4,
      'four refusals on b',
    );
    await realTime(200, 'a span in which no answer to the forged sync may come');
    expect(answers).toEqual([]);
    expect(await Promise.all([a, b].map(policySet))).toEqual(before);
    await logLine(
      b,
      'rate-limit policy message refused: missing or wrong signature (rateLimits.clusterSecret differs?)',
    );

    // The same message signed with the shared secret is a real change (the control).
    nc.publish(subject, data, { headers: sign(SECRET, subject) });
    await until(async () => (await b.policies()).has('forged'), 'the signed change applied');
    expect(
      await logLine(
        b,
        'rate-limit policy added',
        (line) => (line.policy as PolicyConfig).id === 'forged',
      ),
    ).toMatchObject({ actor: { via: 'cluster', who: 'forger' } });
    // A signed but invalid policy is refused by every node's validation, and logged.
    const invalid = new TextEncoder().encode(
      JSON.stringify({
        o: 'forger',
        t: Date.now() + 3_600_001,
        op: 'put',
        policy: { id: 'bad', key: 'user_id', limit: 0, windowMs: 1000 },
      }),
    );
    const h = headers();
    h.set(
      'Genapi-Rl-Sig',
      createHmac('sha256', SECRET).update(subject).update('\n').update(invalid).digest('base64url'),
    );
    nc.publish(subject, invalid, { headers: h });
    expect(await logLine(b, 'rate-limit policy change from the cluster refused')).toMatchObject({
      level: 50,
      err: 'policy bad: limit must be a positive integer, got 0',
    });
    expect((await b.policies()).has('bad')).toBe(false);
  }, 30_000);

  it('without a cluster secret a change stays on its gateway (with a warning) and the gateway ignores the others’ changes', async () => {
    const lone = await gateway('lone', 0, null);
    await logLine(
      lone,
      'rate-limit policy changes stay on the gateway they are made on: set rateLimits.clusterSecret to share them',
    );
    const only: PolicyConfig = {
      id: 'only.here',
      scope: { service: 'demo', requestType: 'echo' },
      key: 'user_id',
      limit: 1,
      windowMs: 60_000,
    };
    expect((await lone.adminRequest('PUT', '/policies/only.here', only)).status).toBe(201);
    // (Log lines reach us through the process's stdout: wait for it.)
    await until(
      () =>
        logs(
          lone,
          'rate-limit policy change applies to this gateway only: set rateLimits.clusterSecret to share changes with the other gateways',
        ).length === 1,
      'the warning',
    );
    expect(
      (await a.adminRequest('PUT', '/policies/from.a', { ...only, id: 'from.a' })).status,
    ).toBe(201);
    await until(async () => (await b.policies()).has('from.a'), 'from.a on b');
    await realTime(300, "a span in which the lone gateway's policy must not arrive");
    expect((await a.policies()).has('only.here')).toBe(false);
    expect((await b.policies()).has('only.here')).toBe(false);
    expect((await lone.policies()).has('from.a')).toBe(false);
    expect((await health(lone)).cluster!.policies).toMatchObject({ shared: false, applied: 0 });
    await lone.stop();
  }, 60_000);
});
