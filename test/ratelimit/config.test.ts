/**
 * The `rateLimits` and `admin` sections of the gateway config file, through the real CLI
 * (src/cli/gen-gateway.ts under tsx): an invalid section stops the command with exit code 2 and
 * a message naming the problem (ConfigError for the file's shape, PolicyError for policies); a
 * valid one starts a gateway whose policies apply to clients.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/config/file.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { RawClient } from '../support/ws-client.js';

const dir = mkdtempSync(join(tmpdir(), 'gen-gateway-rl-config-'));
let files = 0;
const running: Spawned[] = [];
const processes: GatewayProcess[] = [];

// Processes a failed test left behind (the invalid-config cases run concurrently: not per test).
afterAll(async () => {
  for (const proc of running.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  for (const proc of processes.splice(0)) await proc.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI on `config` (written as JSON) and waits for it to exit. */
async function run(
  config: unknown,
): Promise<{ code: number | string; stderr: string; stdout: string }> {
  const file = join(dir, `config-${++files}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawnTs('src/cli/gen-gateway.ts', ['--config', file, '--port', '0']);
  running.push(proc);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stderr: proc.stderr(), stdout: proc.stdout() };
}

const ECHO_POLICY = {
  id: 'echo.per_user',
  scope: { service: 'demo', requestType: 'echo' },
  key: 'user_id',
  limit: 3,
  windowMs: 60_000,
};

describe('gen-gateway refuses an invalid rateLimits or admin section (exit 2, clear message)', () => {
  const cases: { name: string; config: unknown; message: string }[] = [
    {
      name: 'an unknown key in rateLimits',
      config: { rateLimits: { polices: [] } },
      message: 'unknown setting "rateLimits.polices"',
    },
    {
      name: 'an unknown key in rateLimits.connect',
      config: { rateLimits: { connect: { limit: 20, windowMs: 60_000, burts: 5 } } },
      message: 'gen-gateway: invalid rate limits: rateLimits.connect: unknown option "burts"',
    },
    {
      name: 'an unknown key in rateLimits.strict',
      config: { rateLimits: { strict: { timeoutMS: 25 } } },
      message: 'gen-gateway: invalid rate limits: rateLimits.strict: unknown option "timeoutMS"',
    },
    {
      name: 'a cluster-message limit that is not a positive integer',
      config: { rateLimits: { eventual: { maxKeysPerOrigin: 0 } } },
      message:
        'gen-gateway: invalid rate limits: rateLimits.eventual.maxKeysPerOrigin must be a positive integer',
    },
    {
      name: 'a received-batch cap below 4 × the sent batch size',
      config: {
        rateLimits: { eventual: { maxBatchBytes: 65_536, maxReceivedBatchBytes: 131_072 } },
      },
      message:
        'gen-gateway: invalid rate limits: rateLimits.eventual.maxReceivedBatchBytes (131072) must be at least 4 × maxBatchBytes (65536)',
    },
    {
      name: 'policies that are not a list',
      config: { rateLimits: { policies: { id: 'x' } } },
      message: 'gen-gateway: invalid rate limits: rateLimits.policies must be a list',
    },
    {
      name: 'a policy with a bad limit',
      config: { rateLimits: { policies: [{ ...ECHO_POLICY, limit: 0 }] } },
      message:
        'gen-gateway: invalid rate limits: policy echo.per_user: limit must be a positive integer, got 0',
    },
    {
      name: 'a policy with an unknown algorithm',
      config: { rateLimits: { policies: [{ ...ECHO_POLICY, algorithm: 'token_bucket' }] } },
      message:
        'gen-gateway: invalid rate limits: policy echo.per_user: algorithm must be one of sliding_log, sliding_window, gcra, fixed_window',
    },
    {
      name: 'a policy whose cost can never fit',
      config: { rateLimits: { policies: [{ ...ECHO_POLICY, cost: 4 }] } },
      message:
        'gen-gateway: invalid rate limits: policy echo.per_user: cost 4 can never fit (it exceeds the limit)',
    },
    {
      name: 'a connect policy keyed by user_id',
      config: {
        rateLimits: {
          policies: [
            {
              id: 'connect.per_user',
              scope: 'connect',
              key: 'user_id',
              limit: 20,
              windowMs: 60_000,
            },
          ],
        },
      },
      message:
        'gen-gateway: invalid rate limits: policy connect.per_user: connect policies are keyed by ip (nothing else is known before connect)',
    },
    {
      name: 'a bad connect shorthand',
      config: { rateLimits: { connect: { limit: -1, windowMs: 60_000 } } },
      message:
        'gen-gateway: invalid rate limits: policy socket_connect: limit must be a positive integer, got -1',
    },
    {
      name: 'a policy with a misspelt option',
      config: { rateLimits: { policies: [{ ...ECHO_POLICY, mdoe: 'strict' }] } },
      message: 'gen-gateway: invalid rate limits: policy echo.per_user: unknown option "mdoe"',
    },
    {
      // A typo in the scope must not widen the policy to the whole service.
      name: 'a scope with a misspelt requestType',
      config: {
        rateLimits: {
          policies: [{ ...ECHO_POLICY, scope: { service: 'demo', requestTyp: 'echo' } }],
        },
      },
      message:
        'gen-gateway: invalid rate limits: policy echo.per_user: scope: unknown option "requestTyp"',
    },
    {
      name: 'an admin token that is too short',
      config: { admin: { token: 'short-token' } },
      message: '"admin.token" must be a string of at least 16 characters',
    },
    {
      name: 'an admin section with an unknown key',
      config: { admin: { token: 'a-long-enough-admin-token', prefix: '/x' } },
      message: 'unknown setting "admin.prefix"',
    },
  ];

  // Each case is its own CLI process that only validates and exits: they run side by side.
  it.concurrent.for(cases)('$name', async ({ config, message }, { expect }) => {
    const result = await run(config);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).not.toContain('gateway listening');
  });

  it.concurrent(
    'a duplicate policy id is refused before the gateway listens',
    async ({ expect }) => {
      const result = await run({
        rateLimits: { policies: [ECHO_POLICY, { ...ECHO_POLICY, limit: 5 }] },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        'gen-gateway: invalid rate limits: duplicate rate-limit policy id "echo.per_user"',
      );
      expect(result.stdout).not.toContain('gateway listening');
    },
  );
});

describe('a valid rateLimits section', () => {
  it('starts, logs the loaded policies, and its policies apply to clients', async () => {
    const config: GatewayConfig = {
      demo: true,
      admin: { token: 'a-long-enough-admin-token' },
      rateLimits: {
        shadow: false,
        sweepMs: 500,
        maxKeys: 10_000,
        connect: { limit: 100, windowMs: 60_000 },
        policies: [
          ECHO_POLICY as never,
          {
            id: 'all.by_device',
            key: 'device_id',
            algorithm: 'gcra',
            limit: 100,
            windowMs: 1_000,
            burst: 50,
          },
        ],
      },
    };
    const proc = await GatewayProcess.start({ config });
    processes.push(proc);
    const loaded = await proc.process.logLine('rate limits loaded');
    expect(loaded).toMatchObject({ level: 30, component: 'ratelimit', shadow: false });
    expect([...(loaded.policies as string[])].sort()).toEqual([
      'all.by_device(local)',
      'demo.limited(local)',
      'echo.per_user(local)',
      'socket_connect(local)',
    ]);

    const client = await RawClient.connect(
      proc.wsUrl('vsn=2.0.0&user_id=cfg-user&device_id=cfg-dev'),
    );
    try {
      expect(await client.join('gen_api', '1')).toEqual([
        '1',
        '1',
        'gen_api',
        'phx_reply',
        { status: 'ok', response: {} },
      ]);
      const pushes: {
        request_id: string;
        success: boolean;
        error: string | null;
        rate_limit?: { policy: string };
      }[] = [];
      for (let n = 1; n <= 4; n++) {
        client.send([
          '1',
          String(n + 1),
          'gen_api',
          'phoenix_gen_api',
          { request_id: `c${n}`, service: 'demo', request_type: 'echo', args: { message: 'm' } },
        ]);
        const [push, reply] = (await client.take(2)) as unknown[][];
        expect(reply).toEqual([
          '1',
          String(n + 1),
          'gen_api',
          'phx_reply',
          { status: 'ok', response: 'echo' },
        ]);
        pushes.push(push![4] as (typeof pushes)[number]);
      }
      expect(pushes.map((push) => [push.request_id, push.success])).toEqual([
        ['c1', true],
        ['c2', true],
        ['c3', true],
        ['c4', false],
      ]);
      expect(pushes[3]!.error).toMatch(/^Rate limit exceeded\. Please retry after \d+ seconds\.$/);
      expect(pushes[3]!.rate_limit?.policy).toBe('echo.per_user');
    } finally {
      client.close();
    }
    // The admin API is on (its token was accepted by the config).
    const health = await fetch(`${proc.httpUrl}/admin/rate-limits`, {
      headers: { authorization: 'Bearer a-long-enough-admin-token' },
    });
    expect(health.status).toBe(200);
    expect(((await health.json()) as { policies: unknown[] }).policies).toHaveLength(4);
  }, 40_000);
});
