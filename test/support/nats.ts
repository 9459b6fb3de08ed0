import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamApiError, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { TcpProxy } from './tcp-proxy.js';
import { until } from './wait.js';

/** `nats-server --version` → "2.10.27". */
export const NATS_SERVER_VERSION: string = (() => {
  const out = execFileSync('nats-server', ['--version'], { encoding: 'utf8' });
  return /v?(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? '0.0.0';
})();

export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * From 2.10 a server keeps a pool of 3 route connections to each peer, each account pinned to
 * one of them. Through a test's proxies, pooled routes race and close each other as duplicates,
 * and now and then a peer is left without the connection that carries the system account: it
 * never hears the JetStream meta leader, and R3 placement fails for good. One route per peer
 * (pool_size -1, only settable in a config file) is what 2.9 did.
 */
const ROUTE_POOLING = versionAtLeast(NATS_SERVER_VERSION, '2.10.0');

/** A free TCP port on 127.0.0.1 (released before returning; fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface NatsServerOptions {
  port?: number;
  /** Server name (required by clustered JetStream). Default: `n<port>`. */
  name?: string;
  /**
   * Cluster name and port, routes to other members (nats://127.0.0.1:<cluster port>), and the
   * address gossiped to peers (a proxy's, so that a test can cut this server's routes).
   */
  cluster?: { name: string; port: number; routes: string[]; advertise?: string };
  jetstream?: boolean;
  /**
   * nats-server config file text (authorization, accounts, operator mode, tls, …): written to the
   * server's own directory and passed with `-c`. Host, port and name still come from the flags.
   */
  config?: string;
}

/**
 * A real `nats-server` process on a free port, started by a test so it can stop, restart, kill
 * or partition it. Requires `nats-server` on PATH (.ci/run installs it).
 */
export class NatsServer {
  private child: ChildProcess | null = null;
  private readonly storeDir: string;
  log = '';
  /** Where the current run's output starts in `log`. */
  private runStart = 0;

  private constructor(
    readonly port: number,
    private readonly options: NatsServerOptions,
  ) {
    this.storeDir = mkdtempSync(join(tmpdir(), 'gen-gateway-nats-'));
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options.port ?? (await freePort()), options);
    await server.spawn();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The server's process id (null when it is not running). */
  get pid(): number | null {
    return this.running ? (this.child!.pid ?? null) : null;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  private args(): string[] {
    const args = [
      '-a',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-n',
      this.options.name ?? `n${this.port}`,
    ];
    const { cluster, jetstream } = this.options;
    // One config file (nats-server takes a single -c): the test's text plus route pooling.
    const config = [
      this.options.config ?? '',
      cluster && ROUTE_POOLING ? 'cluster {\n  pool_size: -1\n}\n' : '',
    ].join('\n');
    if (config.trim() !== '') {
      const file = join(this.storeDir, 'server.conf');
      writeFileSync(file, config);
      args.push('-c', file);
    }
    if (cluster) {
      args.push('--cluster_name', cluster.name, '--cluster', `nats://127.0.0.1:${cluster.port}`);
      if (cluster.routes.length > 0) args.push('--routes', cluster.routes.join(','));
      if (cluster.advertise) args.push('--cluster_advertise', cluster.advertise);
    }
    if (jetstream) args.push('-js', '-sd', this.storeDir);
    return args;
  }

  private async spawn(): Promise<void> {
    const from = (this.runStart = this.log.length);
    const child = spawn('nats-server', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    // Ready when this run logged it listens for clients (and for routes, when clustered), not when
    // the port answers: a port taken meanwhile by another process would answer too, while this
    // server exits on "address already in use".
    const ready = this.options.cluster ? /Listening for route connections/ : /Server is ready/;
    await until(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(
            `nats-server exited (${child.exitCode ?? child.signalCode}): ${this.log.slice(from)}`,
          );
        return ready.test(this.log.slice(from)) && (await reachable(this.port));
      },
      () => `nats-server to start on ${this.port}: ${this.log.slice(from)}`,
      { timeoutMs: 10_000, intervalMs: 20 },
    );
  }

  /**
   * What a failure message needs: port, whether it runs (or how it exited), and the log lines
   * that tell (warnings, errors, routes, the JetStream meta leader).
   */
  /** What the current run of the process logged (`log` keeps every run's, across restarts). */
  get runLog(): string {
    return this.log.slice(this.runStart);
  }

  describe(lines = 12): string {
    const child = this.child;
    const state = this.running
      ? 'running'
      : `exited (${child?.exitCode ?? child?.signalCode ?? 'not started'})`;
    const notable = this.log
      .split('\n')
      .filter((line) =>
        /\[(WRN|ERR|FTL)\]|meta(data)? leader|Listening for route|Duplicate Route/.test(line),
      )
      .slice(-lines);
    return `${this.options.name ?? this.port} on ${this.port}: ${state}\n  ${notable.join('\n  ')}`;
  }

  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Abrupt stop (SIGKILL): clients see the TCP connection die. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered (a hung server). */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused server (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts again on the same port (after stop or kill). */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.spawn();
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async dispose(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

export interface NatsClusterOptions {
  /** Servers in the cluster. Default 3. */
  size?: number;
  jetstream?: boolean;
  /** Route every server's inbound cluster traffic through a TcpProxy (see `isolate`). */
  proxiedRoutes?: boolean;
}

/**
 * A cluster of real `nats-server` processes, each with routes to all the others.
 * With `proxiedRoutes`, each server advertises a proxy in front of its cluster port and the
 * others dial through it, so that with two servers `isolate(i)` splits the cluster while clients
 * stay connected to their own server; `heal()` lets the routes form again.
 */
export class NatsCluster {
  private constructor(
    readonly servers: NatsServer[],
    readonly proxies: TcpProxy[],
  ) {}

  static start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    return startCluster(() => NatsCluster.tryStart(options));
  }

  private static async tryStart(options: NatsClusterOptions): Promise<NatsCluster> {
    const size = options.size ?? 3;
    const name = `c${Math.floor(Math.random() * 1e6)}`;
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const proxies = options.proxiedRoutes
      ? await Promise.all(clusterPorts.map((port) => TcpProxy.start(port)))
      : [];
    const routeTo = (index: number) =>
      `nats://127.0.0.1:${options.proxiedRoutes ? proxies[index]!.port : clusterPorts[index]!}`;
    return launchCluster(
      new NatsCluster([], proxies),
      clusterPorts.map((port, index) => ({
        name: `${name}-${index}`,
        jetstream: options.jetstream ?? false,
        cluster: {
          name,
          port,
          // Everyone lists everyone (clustered JetStream needs configured routes on every server).
          routes: clusterPorts
            .map((_, j) => j)
            .filter((j) => j !== index)
            .map(routeTo),
          ...(options.proxiedRoutes ? { advertise: `127.0.0.1:${proxies[index]!.port}` } : {}),
        },
      })),
    );
  }

  get urls(): string[] {
    return this.servers.map((server) => server.url);
  }

  /** Waits until every running server sees all the others (monitoring-free: log lines). */
  waitForRoutes(timeoutMs = 15_000): Promise<void> {
    return waitForRoutes(this.servers, timeoutMs);
  }

  /** Cuts every route into server `index` (its proxy): with proxied routes, a partition. */
  isolate(index: number): void {
    const proxy = this.proxies[index];
    if (!proxy) throw new Error('isolate needs proxiedRoutes');
    proxy.cut();
  }

  /** Lets routes form again through every proxy. */
  heal(): void {
    for (const proxy of this.proxies) proxy.restore();
  }

  async dispose(): Promise<void> {
    await Promise.all(this.proxies.map((proxy) => proxy.close()));
    await Promise.all(this.servers.map((server) => server.dispose()));
  }
}

/**
 * Starts a cluster, again on fresh ports when it fails to (up to 3 times): a port picked free can
 * be taken by another process before its server binds it, and that server exits.
 */
export async function startCluster<T>(tryStart: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStart();
    } catch (err) {
      if (attempt >= attempts) throw err;
      console.warn(
        `NATS cluster did not start (attempt ${attempt}), starting over on fresh ports: ${(err as Error).message.slice(0, 500)}`,
      );
    }
  }
}

/**
 * Starts a cluster's servers into `cluster` and waits until it is whole: routes formed, every
 * server still running and, with JetStream, streams placeable on all of them. On any failure it
 * disposes the cluster (servers and proxies) and throws, for startCluster to start over.
 */
export async function launchCluster<
  C extends { readonly servers: NatsServer[]; dispose(): Promise<void> },
>(cluster: C, servers: readonly NatsServerOptions[]): Promise<C> {
  try {
    cluster.servers.push(...(await startServers(servers)));
    await waitForRoutes(cluster.servers);
    assertAllRunning(cluster.servers);
    if (servers.some((options) => options.jetstream)) await waitForPlacement(cluster.servers);
    return cluster;
  } catch (err) {
    await cluster.dispose();
    throw err;
  }
}

/** Starts servers together; if one fails, stops the others and throws its error. */
async function startServers(options: readonly NatsServerOptions[]): Promise<NatsServer[]> {
  const started = await Promise.allSettled(options.map((o) => NatsServer.start(o)));
  const failed = started.find(
    (result): result is PromiseRejectedResult => result.status === 'rejected',
  );
  if (!failed) return started.map((result) => (result as PromiseFulfilledResult<NatsServer>).value);
  await Promise.all(
    started.map((result) =>
      result.status === 'fulfilled' ? result.value.dispose() : Promise.resolve(),
    ),
  );
  throw failed.reason;
}

/** Every server of a cluster still runs (one that exited after starting would be skipped by waitForRoutes). */
function assertAllRunning(servers: readonly NatsServer[]): void {
  const dead = servers.filter((server) => !server.running);
  if (dead.length > 0)
    throw new Error(`nats-server exited: ${dead.map((server) => server.describe()).join('\n')}`);
}

/** Creates and deletes an in-memory stream of `replicas`: throws when JetStream cannot place it. */
async function placeProbeStream(
  nc: NatsConnection,
  replicas: number,
  timeoutMs: number,
): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: timeoutMs, checkAPI: false });
  const name = `probe_${Math.random().toString(36).slice(2)}`;
  await jsm.streams.add({
    name,
    subjects: [`_probe.${name}`],
    storage: StorageType.Memory,
    num_replicas: replicas,
  });
  await jsm.streams.delete(name).catch(() => undefined);
}

/**
 * Waits until JetStream refuses to place a stream of `replicas` with "no suitable peers for
 * placement" (10005): after a server stops, its meta leader needs a moment to mark it offline,
 * and until then an R3 stream may still be placed (or hang) on it.
 */
/** JetStream's API error code for "no suitable peers for placement" (nats.js names no constant). */
const NO_SUITABLE_PEERS = 10005;

export async function waitForPlacementRefused(
  nc: NatsConnection,
  replicas: number,
  timeoutMs = 30_000,
): Promise<void> {
  let last: unknown = null;
  await until(
    async () => {
      try {
        await placeProbeStream(nc, replicas, 2_000);
        last = 'placed';
        return false;
      } catch (err) {
        last = err;
        return err instanceof JetStreamApiError && err.code === NO_SUITABLE_PEERS;
      }
    },
    () => `an R${replicas} placement to be refused (last: ${String(last)})`,
    timeoutMs,
  );
}

/**
 * Stops `server` (SIGTERM) and waits until the cluster refuses to place an R`replicas` stream
 * for want of it. A stopping nats-server announces its shutdown with one system event; when that
 * event is lost (rare, seen once in a loaded full run: R3 placements kept succeeding for 30 s),
 * the others only notice at their orphan check, 5 event heartbeats (2.5 min by default) later. So
 * when no refusal comes within `perAttemptMs`, the server is started and stopped again, at most
 * `attempts` times: the precondition is set up again, nothing under test is retried.
 */
export async function stopUntilPlacementRefused(
  server: NatsServer,
  nc: NatsConnection,
  replicas: number,
  attempts = 3,
  perAttemptMs = 15_000,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await server.stop();
    try {
      await waitForPlacementRefused(nc, replicas, perAttemptMs);
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await server.restart();
      await waitForJetStream(nc, 20_000, replicas);
    }
  }
}

/**
 * Polls until JetStream answers (a clustered JetStream needs its meta leader first) and, with
 * `replicas` > 1, until it can place a stream of that many replicas: a fresh cluster's meta
 * leader learns its peers one by one, and until then creating an R3 bucket fails with
 * "no suitable peers for placement" (10005). A throwaway memory stream is the probe.
 */
export async function waitForJetStream(
  nc: NatsConnection,
  timeoutMs = 20_000,
  replicas = 1,
  servers: readonly NatsServer[] = [],
): Promise<void> {
  let last: unknown = null;
  await until(
    async () => {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false });
        await jsm.getAccountInfo();
        if (replicas > 1) {
          await placeProbeStream(nc, replicas, 1_000);
        }
        return true;
      } catch (err) {
        last = err;
        return false;
      }
    },
    () => {
      // Say why: which servers run, and what they logged about routes and the meta leader.
      const states = servers.map((server) => server.describe()).join('\n');
      return `JetStream${replicas > 1 ? ` for R${replicas} streams` : ''}: ${(last as Error | null)?.message}${states ? `\n${states}` : ''}`;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/**
 * A new JetStream cluster is ready when it can place a stream on every server. Now and then,
 * under the load of the whole suite, a cluster never gets there (its meta leader answers "no
 * suitable peers for placement" for as long as one waits, with every server running and routed):
 * cluster start waits for it this long, then starts over.
 */
const JETSTREAM_PLACEMENT_MS = 10_000;

async function waitForPlacement(servers: readonly NatsServer[]): Promise<void> {
  const nc = await connect({ servers: servers[0]!.url });
  try {
    await waitForJetStream(nc, JETSTREAM_PLACEMENT_MS, servers.length, servers);
  } finally {
    await nc.close();
  }
}

/** Routes up minus routes down, from a server's log (it logs both). */
export function routeCount(log: string): number {
  const up = log.match(/Route connection created/g)?.length ?? 0;
  const down = log.match(/Router? connection closed/g)?.length ?? 0;
  return up - down;
}

/** Waits until every running server of a cluster has routes to all the others (from their logs). */
export async function waitForRoutes(
  servers: readonly NatsServer[],
  timeoutMs = 15_000,
): Promise<void> {
  const expected = servers.length - 1;
  // Counted over each server's current run: a restarted server's earlier run logged routes (and
  // their closes, or not, depending on how it ended) that say nothing about its routes now.
  await until(
    () => servers.every((server) => !server.running || routeCount(server.runLog) >= expected),
    () =>
      `routes to form (route counts: ${servers.map((s) => routeCount(s.runLog)).join(', ')}); ` +
      servers
        .map(
          (s) =>
            `\n${s.port}: ${s.runLog
              .split('\n')
              .filter((line) => /Route connection created|Router? connection closed/.test(line))
              .join('\n  ')}`,
        )
        .join(''),
    { timeoutMs, intervalMs: 20 },
  );
}
