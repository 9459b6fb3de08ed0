/**
 * Authentication (issue 13): connects per second and gateway CPU per connect for each strategy
 * of the config file's `auth` section — phoenixToken, jwt HS256, jwt ES256 (public key), worker
 * (over NATS) — against the same gateway with no auth, measured in the same run. One gateway
 * process per strategy, all started together; the same generators connect and join `gen_api` to
 * each in turn, with one valid token per client.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AuthConfig } from '../../../src/auth/config.js';
import { createJwtStrategy } from '../../../src/auth/jwt.js';
import { createPhoenixTokenStrategy } from '../../../src/auth/phoenix-token.js';
import { signToken, t, testKey } from '../../auth/etf-encode.js';
import { NatsServer } from '../../support/nats.js';
import { until } from '../../support/wait.js';
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { merge, summary } from '../lib/hdr.js';
import { Child } from '../lib/ipc.js';
import { cpuMs } from '../lib/proc.js';
import { fromRuns } from '../lib/repeat.js';
import { median } from '../lib/stats.js';
import { formatNumber } from '../lib/report.js';
import type { BenchContext, Goal, Metric, Suite, SuiteOutput } from '../types.js';

interface Options {
  /** Clients per strategy per round (split over the generators). */
  total: number;
  /** Measured rounds; each connects `total` clients to every strategy's gateway. */
  rounds: number;
  /** Clients per strategy in the unmeasured warm-up round (JIT, pools); 0: none. */
  warmup: number;
  /** Connects in flight per generator. */
  concurrency: number;
}

const FULL: Options = { total: 10_000, rounds: 3, warmup: 2_000, concurrency: 64 };
/** Checks the scenario end to end (five gateways, tokens, the auth worker), not its numbers. */
const QUICK: Options = { total: 200, rounds: 1, warmup: 0, concurrency: 32 };

const POOL = 'auth';
const SOURCE = 'issue 13';
/** The auth worker's service name (test/bench/proc/auth-worker-main.ts). */
const AUTH_SERVICE = 'benchauth';
/** Loopback source addresses from here on: a fresh pair per strategy and round (no TIME_WAIT reuse). */
const ADDRESS_BASE = 100;
/** Token lifetime: long enough for the run; the gateway arms a close at expiry either way. */
const TOKEN_TTL_S = 3600;
/** A `secret_key_base` of the usual length (`mix phx.gen.secret`: 64 characters). */
const SECRET_KEY_BASE = 'bench-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF';
const SALT = 'user socket';
/** An HS256 secret of 32 bytes (the strategy's minimum). */
const JWT_SECRET = 'bench-jwt-secret-of-32-bytes-min';

/**
 * The worker strategy's bound: 1.3× plus one NATS request/reply on the gateway's thread, ~100 µs
 * here (a loopback NATS message costs tens of µs per process at a few thousand per second: the
 * requests suite's B5 baselines), i.e. ~0.6× a no-auth connect + join.
 */
const WORKER_BOUND = 2;

/** Tokens each strategy's verification-alone baseline runs over. */
const VERIFY_SAMPLE = 3_000;

/**
 * A strategy under test: its `auth` config (none for the baseline) and the token of client `n`.
 * Goals are on the ratio of gateway CPU per connect + join to the no-auth baseline.
 */
interface Strategy {
  key: string;
  label: string;
  auth: AuthConfig | null;
  token: ((n: number) => Promise<string>) | null;
  cpuGoal?: Goal;
  /**
   * The goal is 1.3x no auth plus this strategy's own verification, measured alone in the bench
   * process in the same run (the strategy object the gateway builds from the same config).
   */
  verifyBaseline?: boolean;
  /** What the goal allows for and why. */
  why?: string;
}

function strategies(es256: KeyObject, es256Public: string): Strategy[] {
  const phoenixKey = testKey(SECRET_KEY_BASE, SALT);
  const hsKey = new TextEncoder().encode(JWT_SECRET);
  const jwt = (n: number) =>
    new SignJWT({}).setSubject(`u${n}`).setIssuedAt().setExpirationTime(`${TOKEN_TTL_S}s`);
  return [
    { key: 'none', label: 'no auth', auth: null, token: null },
    {
      key: 'phoenixToken',
      label: 'phoenixToken',
      auth: { phoenixToken: { secretKeyBase: SECRET_KEY_BASE, salt: SALT, maxAge: TOKEN_TTL_S } },
      // What `Phoenix.Token.sign(endpoint, "user socket", user.id)` mints: an integer user id.
      token: (n) => Promise.resolve(signToken(phoenixKey, t.int(n + 1), Date.now(), TOKEN_TTL_S)),
      cpuGoal: { op: '<=', target: 1.3, on: 'ratio', source: SOURCE },
      why: 'one HMAC-SHA256 and a small term decode per connect',
    },
    {
      key: 'jwtHS256',
      label: 'jwt HS256 (secret)',
      auth: { jwt: { secret: JWT_SECRET } },
      token: (n) => jwt(n).setProtectedHeader({ alg: 'HS256' }).sign(hsKey),
      verifyBaseline: true,
      why: 'one HMAC-SHA256 through jose (WebCrypto, async) and a JSON parse per connect',
    },
    {
      key: 'jwtES256',
      label: 'jwt ES256 (public key)',
      auth: { jwt: { publicKey: es256Public } },
      token: (n) => jwt(n).setProtectedHeader({ alg: 'ES256' }).sign(es256),
      verifyBaseline: true,
      why: 'one ECDSA P-256 verification (~70 µs of CPU through OpenSSL on this box) on top of what HS256 does',
    },
    {
      key: 'worker',
      label: 'worker (over NATS)',
      auth: { worker: { service: AUTH_SERVICE } },
      token: (n) => Promise.resolve(`u${n}`),
      cpuGoal: {
        op: '<=',
        target: WORKER_BOUND,
        on: 'ratio',
        source: `${SOURCE}: 1.3× + one NATS round trip`,
      },
      why: 'a NATS request per connect (the request encoded with params, headers and peer; the reply parsed and checked) on the gateway’s one thread',
    },
  ];
}

interface Target {
  strategy: Strategy;
  child: Child;
  port: number;
  /** Each generator's tokens (null: the baseline, identity from `user_id`). */
  tokens: (string[] | null)[];
}

interface Measured {
  joined: number;
  failed: number;
  errors: string[];
  joinsPerSec: number;
  cpuUsPerJoin: number;
  /** Auth worker and nats-server CPU per join (the worker strategy's cost outside the gateway). */
  workerCpuUsPerJoin: number;
  natsCpuUsPerJoin: number;
  p50: number;
  p99: number;
}

interface ConnectResult {
  joined: number;
  failed: number;
  errors: string[];
  wallMs: number;
  joinLatency: string;
}

/** Until `child` (a gateway process) holds no socket or channel. */
async function atRest(child: Child, what: string): Promise<void> {
  let gauges: Record<string, number> = {};
  await until(
    async () => {
      gauges = await child.call<Record<string, number>>('gauges');
      return gauges.sockets === 0 && gauges.channels === 0;
    },
    () => `${what} (gauges ${JSON.stringify(gauges)})`,
    { timeoutMs: 30_000, intervalMs: 20 },
  );
}

/**
 * CPU per `authenticate` of the strategy the gateway builds from `auth`, alone in this process:
 * the same-run baseline of what the strategy's verification itself costs (jose, OpenSSL), so the
 * goal judges what the gateway adds around it.
 */
async function verifyCostUs(auth: AuthConfig, tokens: readonly string[]): Promise<number> {
  const strategy = auth.phoenixToken
    ? createPhoenixTokenStrategy(auth.phoenixToken)
    : createJwtStrategy(auth.jwt!);
  const request = (token: string) => ({
    token,
    params: {},
    headers: {},
    peer: { address: '127.0.0.1', port: 0 },
    transport: 'websocket',
  });
  const warm = Math.min(500, tokens.length);
  for (let i = 0; i < warm; i++) await strategy.authenticate(request(tokens[i]!));
  const started = process.cpuUsage();
  let refused = 0;
  for (const token of tokens) {
    const answer = await strategy.authenticate(request(token));
    if ('failed' in answer) refused++;
  }
  const used = process.cpuUsage(started);
  if (refused > 0)
    throw new Error(`auth bench: ${refused} valid tokens refused (${strategy.name})`);
  return (used.user + used.system) / tokens.length;
}

/** Tokens for clients 0 … count−1, split over the generators as the clients are. */
async function mintTokens(strategy: Strategy, counts: number[]): Promise<(string[] | null)[]> {
  const token = strategy.token;
  if (token === null) return counts.map(() => null);
  const all = await Promise.all(
    Array.from({ length: counts.reduce((a, b) => a + b, 0) }, (_, n) => token(n)),
  );
  let at = 0;
  return counts.map((count) => all.slice(at, (at += count)));
}

async function measure(
  fleet: Fleet,
  target: Target,
  options: Options,
  count: number,
  address: number,
  others: { worker: Child; natsPid: number | null },
): Promise<Measured> {
  const { child, port, tokens } = target;
  await atRest(child, `an empty ${target.strategy.label} gateway`);
  const counts = split(count, fleet.generators.length);
  const offsets = counts.map((_, g) => counts.slice(0, g).reduce((a, b) => a + b, 0));
  const base = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`;
  const url = tokens[0] === null ? `${base}&user_id=u{i}` : `${base}&token={token}`;
  const natsCpu = () => (others.natsPid === null ? 0 : cpuMs(others.natsPid));
  const cpu0 = cpuMs(child.pid);
  const worker0 = cpuMs(others.worker.pid);
  const nats0 = natsCpu();
  const results = await fleet.onGenerators<ConnectResult>(
    'connect',
    (g) => ({
      pool: POOL,
      url,
      ...(tokens[g] === null ? {} : { tokens: tokens[g]!.slice(0, counts[g]) }),
      count: counts[g],
      localAddress: Fleet.sourceAddress(ADDRESS_BASE + address * fleet.generators.length + g),
      concurrency: options.concurrency,
      topic: 'gen_api',
      offset: offsets[g],
    }),
    120_000,
  );
  const cpu = cpuMs(child.pid) - cpu0;
  const workerCpu = cpuMs(others.worker.pid) - worker0;
  const nats = natsCpu() - nats0;
  await fleet.onGenerators('close', () => ({ pool: POOL }), 60_000);
  await atRest(child, `the ${target.strategy.label} gateway's sockets closed`);
  const joined = results.reduce((sum, r) => sum + r.joined, 0);
  const histogram = merge(results.map((r) => r.joinLatency));
  const latency = summary(histogram);
  histogram.destroy();
  const per = (ms: number) => (ms * 1000) / Math.max(1, joined);
  return {
    joined,
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    errors: results.flatMap((r) => r.errors).slice(0, 3),
    joinsPerSec: joined / (Math.max(...results.map((r) => r.wallMs)) / 1000),
    cpuUsPerJoin: per(cpu),
    workerCpuUsPerJoin: per(workerCpu),
    natsCpuUsPerJoin: per(nats),
    p50: latency.p50,
    p99: latency.p99,
  };
}

/** Starts a gateway process with `auth` on the fleet's nats-server, stopped with the suite. */
async function startGateway(
  ctx: BenchContext,
  natsUrl: string,
  auth: AuthConfig,
): Promise<{ child: Child; port: number }> {
  const { child, ready } = await Child.fork(new URL('../proc/gateway-main.ts', import.meta.url), {
    env: { BENCH_NATS_URL: natsUrl, BENCH_GATEWAY_CONFIG: JSON.stringify({ auth }) },
    // As the fleet starts its gateway (the no-auth one).
    nodeArgs: ['--expose-gc'],
  });
  ctx.defer(() => child.stop(15_000));
  return { child, port: ready.port as number };
}

export const suite: Suite = {
  name: 'auth',
  title: 'Authentication: connects/s and CPU per connect by strategy (issue 13)',
  async run(ctx): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const list = strategies(
      privateKey,
      publicKey.export({ type: 'spki', format: 'pem' }) as string,
    );
    // The auth gateways and the auth worker share a nats-server of their own, so they start
    // together with the fleet (whose gateway is the no-auth one; in quick runs the shared fleet).
    const authNats = await NatsServer.start();
    ctx.defer(() => authNats.dispose());
    const [fleet, worker, gateways] = await Promise.all([
      // No `bench` worker: joining gen_api needs none (the gateway authorizes it locally).
      Fleet.start(ctx, { workers: 0, generators: SHARED.generators }),
      Child.fork(new URL('../proc/auth-worker-main.ts', import.meta.url), {
        env: { BENCH_NATS_URL: authNats.url, BENCH_AUTH_SERVICE: AUTH_SERVICE },
      }).then(({ child }) => {
        ctx.defer(() => child.stop());
        return child;
      }),
      Promise.all(
        list
          .filter((strategy) => strategy.auth !== null)
          .map((strategy) => startGateway(ctx, authNats.url, strategy.auth!)),
      ),
    ]);
    const counts = split(Math.max(options.total, options.warmup), fleet.generators.length);
    const t0 = performance.now();
    let next = 0;
    const targets: Target[] = await Promise.all(
      list.map(async (strategy) => {
        const { child, port } =
          strategy.auth === null ? { child: fleet.gateway, port: fleet.port } : gateways[next++]!;
        return { strategy, child, port, tokens: await mintTokens(strategy, counts) };
      }),
    );
    ctx.log(
      `${targets.length} gateways up; ${formatNumber(counts.reduce((a, b) => a + b, 0))} tokens per strategy minted in ${formatNumber(performance.now() - t0)} ms`,
    );

    // What each strategy's verification costs alone (same run): the rest is the gateway's doing.
    const verifyUs = new Map<string, number>();
    for (const { strategy, tokens } of targets) {
      if (strategy.verifyBaseline !== true || strategy.auth === null) continue;
      const sample = tokens.flatMap((part) => part ?? []).slice(0, VERIFY_SAMPLE);
      const cost = await verifyCostUs(strategy.auth, sample);
      verifyUs.set(strategy.key, cost);
      ctx.log(`${strategy.label}: verification alone ${formatNumber(cost)} µs CPU per token`);
    }

    const others = { worker, natsPid: authNats.pid };
    const runs = new Map<string, Measured[]>(list.map((s) => [s.key, []]));
    let address = 0;
    // Round 0 warms every gateway up (unmeasured); each round visits the strategies in a rotated
    // order, so none always runs first (right after start-up) or last.
    const first = options.warmup > 0 ? 0 : 1;
    for (let round = first; round <= options.rounds; round++) {
      const count = round === 0 ? options.warmup : options.total;
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(k + round) % targets.length]!;
        const result = await measure(fleet, target, options, count, address++, others);
        if (round > 0) runs.get(target.strategy.key)!.push(result);
        ctx.log(
          `${round === 0 ? 'warm-up' : `round ${round}`} ${target.strategy.label}: ${result.joined} joined, ${result.failed} failed, ${formatNumber(result.joinsPerSec)}/s, gateway ${formatNumber(result.cpuUsPerJoin)} µs CPU per join`,
        );
      }
    }

    const of = (key: string, f: (m: Measured) => number) => runs.get(key)!.map(f);
    // Each round's figure over the no-auth one of the same round, then the median: the load on
    // the box drifts between rounds more than between the strategies of one round.
    const paired = (key: string, f: (m: Measured) => number) =>
      median(of(key, f).map((value, i) => value / f(runs.get('none')![i]!)));
    const baselineCpu = 'no auth: gateway CPU per connect + join';
    const baselineRate = 'no auth: connects + joins/s';
    const cpuGroup = `Gateway CPU per connect + join, ${formatNumber(options.total)} clients per strategy`;
    const rateGroup = `Connect + join rate, ${formatNumber(options.total)} clients per strategy`;
    const metrics: Metric[] = [];
    const noAuthCpu = median(of('none', (m) => m.cpuUsPerJoin));
    /** 1.3x no auth plus the strategy's verification alone, as a ratio to no auth. */
    const goalOf = (s: Strategy): { goal?: Goal } => {
      if (s.cpuGoal) return { goal: s.cpuGoal };
      const verify = verifyUs.get(s.key);
      if (verify === undefined) return {};
      return {
        goal: {
          op: '<=',
          target: Math.round((1.3 + verify / noAuthCpu) * 100) / 100,
          on: 'ratio',
          source: `${SOURCE}: 1.3× + its verification alone (${formatNumber(verify)} µs, same run)`,
        },
      };
    };
    for (const [key, verify] of verifyUs) {
      const s = list.find((entry) => entry.key === key)!;
      metrics.push(
        fromRuns(`${s.label}: verification alone (bench process)`, [verify], 'µs', {
          group: cpuGroup,
          note: 'the strategy the gateway builds from the same config, authenticate() per token, no socket',
        }),
      );
    }
    for (const s of list) {
      const base = s.auth === null;
      metrics.push(
        fromRuns(
          `${s.label}: gateway CPU per connect + join`,
          of(s.key, (m) => m.cpuUsPerJoin),
          'µs',
          base
            ? { group: cpuGroup, isBaseline: true, note: 'identity from the user_id connect param' }
            : {
                group: cpuGroup,
                baseline: baselineCpu,
                ratio: paired(s.key, (m) => m.cpuUsPerJoin),
                ratioLabel: 'no auth',
                ...goalOf(s),
                ...(s.why ? { note: s.why } : {}),
              },
        ),
      );
    }
    for (const s of list) {
      const base = s.auth === null;
      metrics.push(
        fromRuns(
          `${s.label}: connects + joins/s`,
          of(s.key, (m) => m.joinsPerSec),
          '/s',
          base
            ? {
                group: rateGroup,
                isBaseline: true,
                note: `${fleet.generators.length} generators × ${options.concurrency} in flight`,
              }
            : {
                group: rateGroup,
                baseline: baselineRate,
                ratio: paired(s.key, (m) => m.joinsPerSec),
                ratioLabel: 'no auth',
              },
        ),
        fromRuns(
          `${s.label}: TCP connect → join ok p99`,
          of(s.key, (m) => m.p99),
          'ms',
          {
            group: rateGroup,
            note: `p50 ${formatNumber(Math.min(...of(s.key, (m) => m.p50)))}–${formatNumber(Math.max(...of(s.key, (m) => m.p50)))} ms`,
          },
        ),
      );
    }
    const failures = list.flatMap((s) => runs.get(s.key)!.flatMap((m) => m.errors));
    metrics.push(
      fromRuns(
        'connect or join failures (all strategies)',
        runs
          .get('none')!
          .map((_, i) => list.reduce((sum, s) => sum + runs.get(s.key)![i]!.failed, 0)),
        '',
        {
          group: rateGroup,
          goal: { op: '<=', target: 0, source: 'every token is valid' },
          ...(failures.length > 0 ? { note: failures.slice(0, 2).join('; ') } : {}),
        },
      ),
      fromRuns(
        'worker: auth worker CPU per connect',
        of('worker', (m) => m.workerCpuUsPerJoin),
        'µs',
        {
          group: cpuGroup,
          note: 'outside the gateway: the worker SDK answering (a trivial decision)',
        },
      ),
      fromRuns(
        'worker: nats-server CPU per connect',
        of('worker', (m) => m.natsCpuUsPerJoin),
        'µs',
        { group: cpuGroup, note: 'outside the gateway: routing the request and its reply' },
      ),
    );

    const notes = [
      `**Setup.** ${fleet.generators.length} generator processes and five gateway processes (test/bench/proc/gateway-main.ts, \`startGateway\`, each linked to NATS; the four with auth and the auth worker share a nats-server of their own), started together: the no-auth one (identity from the \`user_id\` connect param, as in the connections suite) and one per strategy with only an \`auth\` section in its config — \`phoenixToken\` (\`secretKeyBase\` of 64 characters, salt \`"user socket"\`), \`jwt\` with an HS256 \`secret\` (32 bytes), \`jwt\` with an ES256 \`publicKey\` (P-256, SPKI PEM), \`worker\` (service \`${AUTH_SERVICE}\`: test/bench/proc/auth-worker-main.ts, \`defineAuthService\` + \`serveAuth\`, whose decision is trivial — a token \`u<n>\` is user \`u<n>\`). No join rules, so joining \`gen_api\` asks nobody.`,
      `**Tokens.** Minted before the measurement, one per client: Phoenix tokens as \`Phoenix.Token.sign(endpoint, "user socket", user_id)\` makes them (an integer user id; test/auth/etf-encode.ts), JWTs with \`sub\`, \`iat\` and \`exp\` (jose \`SignJWT\`). Every token is valid for ${TOKEN_TTL_S / 60} minutes, so the gateway also arms each socket's expiry. No strategy caches verifications, so reusing a client's token across rounds costs the same each time.`,
      `**Rounds.** ${options.warmup > 0 ? `A warm-up round (${formatNumber(options.warmup)} clients per gateway, not measured), then ${options.rounds}` : options.rounds} round(s); in each, ${formatNumber(options.total)} clients connect (WebSocket upgrade with the token in the connect params) and join \`gen_api\` on each gateway in turn — ${fleet.generators.length} generators × ${options.concurrency} connect + join sequences in flight, closed loop as in the connections suite — then close, and the gateway's gauges return to 0 before the next. The order of the strategies rotates from round to round. Every client of every round comes from a fresh loopback source address pair (127.0.0.${ADDRESS_BASE + 2}+), so no TIME_WAIT is inherited. Figures are min / median / max over rounds; a ratio is the median over rounds of the strategy's figure ÷ the no-auth gateway's figure of the same round.`,
      `**CPU.** Gateway CPU (user + system from /proc, 10 ms ticks) over the ramp ÷ clients joined. For the worker strategy the auth worker's and the nats-server's CPU over the same ramp are shown apart: they run on other machines in production, but here they share the 2 cores with the gateway and the generators, so the worker strategy's connect rate is the most pessimistic of the five.`,
      `**Goals** (gateway CPU per connect + join ÷ no auth). phoenixToken ≤ 1.3×: its cryptography is one HMAC-SHA256 (a few µs), so the rest — reading the token, decoding the payload, arming the expiry — must stay small next to a connect. jwt HS256 and ES256: ≤ 1.3× plus the strategy's own verification, measured alone in the bench process in the same run (the strategy object the gateway builds from the same config, \`authenticate()\` over the same tokens): the cryptography and jose's parsing are what they are; the goal holds the gateway's part — the async connect hook, the assigns, arming the expiry — to 30 % of a connect. worker ≤ ${WORKER_BOUND}×: the same envelope plus one NATS request and its reply on the gateway's thread, ~100 µs here (a loopback NATS message costs tens of µs of CPU per process at a few thousand per second: the requests suite's B5 baselines), ~0.6× a no-auth connect + join. The auth worker's and nats-server's own CPU are not in the goal (other machines in production).`,
    ];
    if (ctx.quick)
      notes.push(
        `**Quick mode** (${options.total} clients per strategy, 1 round, no warm-up): checks the suite runs; with so few clients the CPU figures are a handful of 10 ms ticks and the ratios mean little.`,
      );
    return { metrics, notes };
  },
};
