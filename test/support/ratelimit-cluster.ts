/**
 * Helpers for the `eventual` rate-limit cluster tests (test/ratelimit/cluster-*.test.ts):
 * - in-process nodes: a RateLimits linked to a real nats-server over its own connection, driven
 *   through `limiter.check` (RlNode), plus a raw NATS client that watches and forges the
 *   rate-limit subjects (Wire);
 * - gateway processes: the real CLI in demo mode on `--nats` with rate-limit policies and the admin
 *   API (RlGateway), the demo worker process (DemoWorker), and a gen_api client per user.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';
import { Subjects } from '../../src/nats/subjects.js';
import type { EventualStats } from '../../src/ratelimit/cluster/eventual.js';
import {
  RateLimits,
  type RateLimitsHealth,
  type RateLimitsOptions,
} from '../../src/ratelimit/rate-limits.js';
import type { Decision, PolicyConfig } from '../../src/ratelimit/types.js';
import { GatewayProcess } from './gateway-process.js';
import { freePort, launchCluster, type NatsServer, startCluster, waitForRoutes } from './nats.js';
import { TcpProxy } from './tcp-proxy.js';
import { GenApiClient, type CallResult } from './genapi-exec.js';
import { spawnTs, type Spawned } from './spawn.js';

// ---- logs -----------------------------------------------------------------------------------

export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger whose JSON lines land in `records` (pino levels: 30 info, 40 warn, 50 error). */
export function captureLogger(level = 'debug'): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = pino(
    { level },
    { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) },
  );
  return { logger, records };
}

// ---- in-process nodes -----------------------------------------------------------------------

/** The function in-process nodes check requests against (policies scope to this service). */
export const SERVICE = 'svc';
const FN: ResolvedFunConfig = { service: SERVICE, requestType: 'call' } as ResolvedFunConfig;
const CONTEXT = { ip: null, socketId: null };

export function request(user: string): GenApiRequest {
  return {
    request_id: 'r',
    service: SERVICE,
    request_type: 'call',
    version: null,
    args: {},
    user_id: user,
    device_id: null,
    user_roles: null,
  };
}

/** An eventual sliding-log policy on the test service, keyed by user_id. */
export function eventualPolicy(
  id: string,
  limit: number,
  windowMs: number,
  extra: Partial<PolicyConfig> = {},
): PolicyConfig {
  return {
    id,
    scope: { service: SERVICE },
    key: 'user_id',
    algorithm: 'sliding_log',
    limit,
    windowMs,
    mode: 'eventual',
    ...extra,
  };
}

export interface RlNodeOptions {
  /** NATS server URL(s) (a TcpProxy's URL to cut this node off). */
  servers: string | string[];
  /** Subject prefix (one per test keeps tests apart on a shared server). */
  prefix: string;
  options: RateLimitsOptions;
  /** This node's wall clock (skew). */
  wall?: () => number;
}

/** One gateway's rate limits, linked to NATS like startGateway links them, without a gateway. */
export class RlNode {
  private constructor(
    readonly rl: RateLimits,
    readonly nc: NatsConnection,
    readonly logs: LogRecord[],
  ) {}

  static async start(options: RlNodeOptions): Promise<RlNode> {
    const { logger, records } = captureLogger();
    const rl = new RateLimits(options.options, logger, options.wall ? { wall: options.wall } : {});
    const nc = await connect({
      servers: options.servers,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 50,
      ignoreClusterUpdates: true,
    });
    await rl.attach({
      nc,
      connected: () => !nc.isClosed(),
      subjects: new Subjects(options.prefix),
    });
    // The server has the node's subscriptions once this round trip is back (other clients' messages reach it).
    await nc.flush();
    return new RlNode(rl, nc, records);
  }

  get origin(): string {
    return this.cluster.origin;
  }

  private get cluster() {
    const cluster = this.rl.linked;
    if (!cluster) throw new Error('node is not linked');
    return cluster;
  }

  get stats(): EventualStats {
    return this.cluster.eventual.stats;
  }

  get lastSeq(): number {
    return this.cluster.eventual.lastSeq;
  }

  nodes(): number {
    return this.cluster.membership.nodes();
  }

  /** One request by `user`; true when allowed (eventual checks are synchronous). */
  check(user: string): boolean {
    const result = this.rl.limiter.check(request(user), FN, CONTEXT);
    if (result instanceof Promise) throw new Error('an eventual check returned a promise');
    return result.allowed;
  }

  /** The local view of one key (remaining after one more request). */
  status(policy: string, user: string): Decision {
    const decision = this.rl.limiter.status(policy, user);
    if (!decision) throw new Error(`no policy ${policy}`);
    return decision;
  }

  /** Hits this node counts for `user` right now (sliding-log policies: limit − remaining − cost when allowed). */
  used(policy: string, user: string): number {
    const decision = this.status(policy, user);
    return decision.allowed
      ? decision.limit - decision.remaining - 1
      : decision.limit - decision.remaining;
  }

  async close(): Promise<void> {
    await this.rl.close();
    if (!this.nc.isClosed()) await this.nc.close();
  }
}

/** A raw NATS client on the rate-limit subjects: records what it sees, publishes anything. */
export class Wire {
  readonly seen: { subject: string; data: Uint8Array; json: unknown }[] = [];
  private readonly subs: Subscription[] = [];

  private constructor(
    readonly nc: NatsConnection,
    readonly subjects: Subjects,
  ) {}

  static async start(
    servers: string | string[],
    prefix: string,
    watch: readonly string[] = ['rl.>'],
  ): Promise<Wire> {
    const nc = await connect({ servers });
    const wire = new Wire(nc, new Subjects(prefix));
    for (const suffix of watch) {
      wire.subs.push(
        nc.subscribe(`${prefix}.${suffix}`, {
          callback: (err, msg) => {
            if (err) return;
            let json: unknown;
            try {
              json = JSON.parse(new TextDecoder().decode(msg.data));
            } catch {
              json = null;
            }
            wire.seen.push({ subject: msg.subject, data: msg.data, json });
          },
        }),
      );
    }
    await nc.flush();
    return wire;
  }

  /** Parsed messages seen on one subject. */
  on<T = Record<string, unknown>>(subject: string): T[] {
    return this.seen.filter((entry) => entry.subject === subject).map((entry) => entry.json as T);
  }

  raw(subject: string): Uint8Array[] {
    return this.seen.filter((entry) => entry.subject === subject).map((entry) => entry.data);
  }

  publish(subject: string, data: Uint8Array | string | object): void {
    const bytes =
      data instanceof Uint8Array
        ? data
        : new TextEncoder().encode(typeof data === 'string' ? data : JSON.stringify(data));
    this.nc.publish(subject, bytes);
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await this.nc.close();
  }
}

// ---- gateway processes ----------------------------------------------------------------------

export const ADMIN_TOKEN = 'rate-limit-cluster-tests-admin-token';
export const TOPIC = 'gen_api:rl';

/** The admin API's view of one key (GET /admin/rate-limits/policies/:id/keys/:value). */
export interface KeyStatus {
  policy: string;
  key: string;
  source: string;
  limit: number;
  window_ms: number;
  remaining: number;
  reset_ms: number;
  retry_after_ms: number;
  allowed: boolean;
}

/** Hits a sliding-log key holds according to a status (the status counts one more request). */
export function hitsOf(status: KeyStatus): number {
  return status.allowed ? status.limit - status.remaining - 1 : status.limit - status.remaining;
}

export type Outcome = 'allowed' | 'denied' | 'failed';

/** How the limiter decided a gen_api call: denied (rate-limit push), allowed (the call ran), or failed otherwise. */
export function outcomeOf(result: CallResult): Outcome {
  const push = result.pushes[0];
  if (!push) return 'failed';
  if (push.success) return 'allowed';
  return typeof push.error === 'string' && push.error.startsWith('Rate limit exceeded')
    ? 'denied'
    : 'failed';
}

export interface RlGatewayOptions {
  /** NATS URL the gateway connects to (--nats). */
  nats: string;
  policies?: PolicyConfig[];
  eventual?: RateLimitsOptions['eventual'];
  strict?: RateLimitsOptions['strict'];
  /** rateLimits.clusterSecret: signs and shares runtime policy changes. */
  clusterSecret?: string;
  logLevel?: string;
}

/** An admin API answer: status and parsed JSON body (null for 204). */
export interface AdminAnswer {
  status: number;
  json: unknown;
}

let requestCounter = 0;

/**
 * A real gateway process in demo mode on NATS (the demo service comes from the demo worker),
 * with rate-limit policies from its config file and the admin API.
 */
export class RlGateway {
  private readonly clients: GenApiClient[] = [];

  private constructor(
    readonly proc: GatewayProcess,
    readonly name: string,
  ) {}

  static async start(name: string, options: RlGatewayOptions): Promise<RlGateway> {
    const rateLimits: RateLimitsOptions = {
      ...(options.policies ? { policies: options.policies } : {}),
      ...(options.eventual ? { eventual: options.eventual } : {}),
      ...(options.strict ? { strict: options.strict } : {}),
      ...(options.clusterSecret === undefined ? {} : { clusterSecret: options.clusterSecret }),
    };
    const proc = await GatewayProcess.start({
      config: { demo: true, admin: { token: ADMIN_TOKEN }, rateLimits },
      nats: options.nats,
      logLevel: options.logLevel ?? 'info',
    });
    const gateway = new RlGateway(proc, name);
    try {
      // The demo service's configs (pulled from the worker) are needed before calls resolve.
      await proc.process.logLine('config applied', 20_000);
      await proc.process.logLine('rate limits linked to the cluster', 10_000);
    } catch (err) {
      await proc.kill();
      throw err;
    }
    return gateway;
  }

  get stdout(): string {
    return this.proc.process.stdout();
  }

  /** Parsed JSON log lines with this message. */
  logs(msg: string): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.msg === msg);
  }

  /** A gen_api client for `user` (closed by stop()). */
  async client(user: string): Promise<GenApiClient> {
    const client = await GenApiClient.connect(
      this.proc.wsUrl(`vsn=2.0.0&user_id=${encodeURIComponent(user)}&device_id=d-${this.name}`),
      TOPIC,
    );
    this.clients.push(client);
    return client;
  }

  private async admin(path: string): Promise<unknown> {
    const res = await fetch(`${this.proc.httpUrl}/admin/rate-limits${path}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    if (res.status !== 200)
      throw new Error(`admin ${path} on ${this.name}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** Any admin request under /admin/rate-limits (PUT/DELETE with a JSON body), whatever its status. */
  async adminRequest(method: string, path: string, body?: unknown): Promise<AdminAnswer> {
    const res = await fetch(`${this.proc.httpUrl}/admin/rate-limits${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? null : (JSON.parse(text) as unknown) };
  }

  /** The policies this gateway runs (GET /admin/rate-limits/policies), by id. */
  async policies(): Promise<Map<string, PolicyConfig>> {
    const { policies } = (await this.admin('/policies')) as { policies: PolicyConfig[] };
    return new Map(policies.map((policy) => [policy.id, policy]));
  }

  status(policy: string, key: string): Promise<KeyStatus> {
    return this.admin(
      `/policies/${encodeURIComponent(policy)}/keys/${encodeURIComponent(key)}`,
    ) as Promise<KeyStatus>;
  }

  health(): Promise<RateLimitsHealth> {
    return this.admin('') as Promise<RateLimitsHealth>;
  }

  /** Hits this node counts for `user` under `policy`. */
  async hits(policy: string, user: string): Promise<number> {
    return hitsOf(await this.status(policy, user));
  }

  async stop(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    if (this.proc.process.child.exitCode === null && this.proc.process.child.signalCode === null) {
      const timer = setTimeout(() => this.proc.process.kill('SIGKILL'), 5_000);
      await this.proc.stop();
      clearTimeout(timer);
    }
  }
}

/** One call of `demo.<fn>` (args {message} unless given) and how the limiter decided it. */
export async function call(
  client: GenApiClient,
  fn: string,
  args: Record<string, unknown> = { message: 'x' },
): Promise<{ outcome: Outcome; result: CallResult }> {
  const result = await client.call(
    { request_id: `rq${++requestCounter}`, service: 'demo', request_type: fn, args },
    { timeoutMs: 10_000 },
  );
  return { outcome: outcomeOf(result), result };
}

/** Sends a call without waiting; the promise resolves with its outcome. */
export function callAsync(
  client: GenApiClient,
  fn: string,
  args: Record<string, unknown> = { message: 'x' },
): Promise<Outcome> {
  const started = client.start(
    { request_id: `rq${++requestCounter}`, service: 'demo', request_type: fn, args },
    { timeoutMs: 15_000 },
  );
  return started.done().then(outcomeOf);
}

/** Counts outcomes. */
export function count(outcomes: readonly Outcome[]): Record<Outcome, number> {
  const out: Record<Outcome, number> = { allowed: 0, denied: 0, failed: 0 };
  for (const outcome of outcomes) out[outcome]++;
  return out;
}

/** The demo worker process (src/demo/worker.ts) on one NATS URL. */
export class DemoWorker {
  private constructor(readonly proc: Spawned) {}

  static async start(natsUrl: string): Promise<DemoWorker> {
    const proc = spawnTs('src/demo/worker.ts', [], { NATS_URL: natsUrl });
    try {
      await proc.logLine('demo worker ready', 30_000);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    return new DemoWorker(proc);
  }

  async stop(): Promise<void> {
    const { child } = this.proc;
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await this.proc.exited;
    clearTimeout(timer);
  }
}

// ---- a NATS cluster that can be split --------------------------------------------------------

/**
 * A cluster of real nats-server processes (JetStream optional) in which every route from server
 * i to server j goes through its own TcpProxy, so that `isolate(i)` cuts server i off from all
 * the others in both directions while its clients stay connected to it (a minority partition,
 * which NatsCluster's one-proxy-per-server routes cannot make with 3 servers: the isolated
 * server would dial out again). Servers advertise a refusing address, so no route can form
 * around the proxies.
 */
export class MeshCluster {
  private constructor(
    readonly servers: NatsServer[],
    /** proxies[i][j]: server i's route to server j (undefined for i = j). */
    private readonly proxies: (TcpProxy | undefined)[][],
    private readonly blackHole: TcpProxy,
  ) {}

  static start(options: { size?: number; jetstream?: boolean } = {}): Promise<MeshCluster> {
    return startCluster(() => MeshCluster.tryStart(options));
  }

  private static async tryStart(options: {
    size?: number;
    jetstream?: boolean;
  }): Promise<MeshCluster> {
    const size = options.size ?? 3;
    const name = `m${Math.floor(Math.random() * 1e6)}`;
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const blackHole = await TcpProxy.start(await freePort());
    blackHole.cut();
    const proxies = await Promise.all(
      clusterPorts.map((_, i) =>
        Promise.all(
          clusterPorts.map((port, j) =>
            i === j ? Promise.resolve(undefined) : TcpProxy.start(port),
          ),
        ),
      ),
    );
    return launchCluster(
      new MeshCluster([], proxies, blackHole),
      clusterPorts.map((port, i) => ({
        name: `${name}-${i}`,
        jetstream: options.jetstream ?? false,
        cluster: {
          name,
          port,
          routes: proxies[i]!.filter((proxy): proxy is TcpProxy => proxy !== undefined).map(
            (proxy) => proxy.url,
          ),
          advertise: `127.0.0.1:${blackHole.port}`,
        },
      })),
    );
  }

  get urls(): string[] {
    return this.servers.map((server) => server.url);
  }

  /** Waits until every running server has routes to all the others. */
  waitForRoutes(timeoutMs = 15_000): Promise<void> {
    return waitForRoutes(this.servers, timeoutMs);
  }

  /** Cuts server `index` off from every other server (routes both ways); its clients stay connected. */
  isolate(index: number): void {
    for (let j = 0; j < this.servers.length; j++) {
      if (j === index) continue;
      this.proxies[index]![j]!.cut();
      this.proxies[j]![index]!.cut();
    }
  }

  heal(): void {
    for (const row of this.proxies) for (const proxy of row) proxy?.restore();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.proxies.flat().map((proxy) => proxy?.close() ?? Promise.resolve()));
    await this.blackHole.close();
    await Promise.all(this.servers.map((server) => server.dispose()));
  }
}
