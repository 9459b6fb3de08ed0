import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { GATEWAY_DEFAULTS } from './config/gateway-defaults.js';
import type { PubSub } from './channel/pubsub.js';
import { Cluster, type ClusterConnectionHealth, type ClusterOptions } from './cluster/cluster.js';
import { ClusterDisconnects, type ClusterDisconnectStats } from './cluster/disconnect.js';
import type { ClusterComponent } from './cluster/link.js';
import {
  ClusterPubSub,
  type ClusterPubSubOptions,
  type ClusterPubSubStats,
} from './cluster/pubsub.js';
import type { Assigns } from './channel/types.js';
import type { SocketOptions } from './config/socket-options.js';
import { rejectUpgrade, sendPlain } from './http/responses.js';
import { createLogger, silentLogger, type Logger, type LoggerOptions } from './log/logger.js';
import type { Presence, PresenceOptions } from './presence/presence.js';
import { ClusterPresence, type ClusterPresenceStats } from './cluster/presence.js';
import { SocketMount, type GatewayContext } from './socket/mount.js';
import { SocketRegistry } from './socket/registry.js';
import { CLOSE } from './socket/session.js';
import { createStats, type GatewayStats } from './socket/stats.js';
import { SessionTokens } from './transport/longpoll-token.js';
import { Telemetry, type SocketDrainEvent } from './telemetry/events.js';
import { monotonicClock, type Clock } from './util/clock.js';
import { TimerWheel } from './util/timer-wheel.js';
import { InvalidArgumentError, InvalidStateError, OutOfRangeError } from './errors.js';
import { resolveDrainOptions, type DrainOptions } from './lifecycle/drain.js';
import { runDrain, type DrainParticipant } from './lifecycle/gateway-drain.js';
import { dispatchRequest, dispatchUpgrade } from './gateway-http.js';

/** A plain HTTP handler mounted under a prefix (`Gateway.route`). */
export type HttpRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  subpath: string,
) => Promise<void>;

/** Options of `createGateway`; defaults in `GATEWAY_DEFAULTS` (src/config/gateway-defaults.ts). */
export interface GatewayOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 4000. */
  port?: number;
  /** A pino logger, logger options, or false for none. Default: JSON to stdout (pretty in a TTY). */
  logger?: Logger | LoggerOptions | false;
  /** Key for LongPoll session tokens; nodes that share it accept each other's tokens. Default: random. */
  secret?: string;
  /** This node's name in logs and presence refs. Default: a random UUID. */
  nodeId?: string;
  /** Presence options (`fetch`, event names, `cluster` replication timings and limits). */
  presence?: Omit<PresenceOptions, 'nodeId'>;
  /** Resolution of the shared timer wheel (idle timeouts, LongPoll windows, join timeouts). Default 250 ms. */
  timerTickMs?: number;
  /** Monotonic clock in ms, for tests. */
  clock?: Clock;
  /** Cluster PubSub limits (used once `connectCluster` ran). */
  cluster?: ClusterPubSubOptions;
  /** How `drain()` stops the gateway (batches, deadlines); defaults in `DRAIN_DEFAULTS`. */
  drain?: DrainOptions;
}

export type { DrainParticipant } from './lifecycle/gateway-drain.js';

/**
 * Longest a drain waits, after its last batch, for clients to answer the close (so they see 1012,
 * and their channels' presence leaves go out before this node says goodbye). `ws` destroys a
 * socket whose close handshake takes longer anyway.
 */
const CLOSE_HANDSHAKE_WAIT_MS = 5_000;

/** `gateway.clusterHealth()`: the cluster connection and what crossed it, for health and metrics. */
export interface GatewayClusterHealth extends ClusterConnectionHealth {
  /** Broadcasts across gateways: published, received, delivered, dropped by reason. */
  pubsub: ClusterPubSubStats;
  /** Presence replication: peers, entries, deltas, transfers, drops. */
  presence: ClusterPresenceStats;
  /** Cluster-wide disconnects published and received. */
  disconnects: ClusterDisconnectStats;
}

function isLogger(value: unknown): value is Logger {
  return (
    typeof value === 'object' && value !== null && typeof (value as Logger).child === 'function'
  );
}

/**
 * A gen-gateway node: one HTTP server carrying any number of Phoenix socket mounts, a topic
 * PubSub, Presence and the shared timer wheel.
 */
export class Gateway {
  /** This node's name in logs and presence refs (`nodeId` option, or a random UUID). */
  readonly nodeId: string;
  /** The gateway's logger (a child of the `logger` option, tagged with the node). */
  readonly logger: Logger;
  /** @internal The topic PubSub every mount and channel broadcasts through (use `broadcast`). */
  readonly pubsub: PubSub;
  /** Phoenix.Presence for this node: track, update, untrack, list, get, onLocalChange. */
  readonly presence: Presence;
  /** Live gauges: sockets, channels, requests in flight. */
  readonly stats: GatewayStats = createStats();
  /** In-process telemetry events (`socket_connected`, `channel_joined`, ...; README "Telemetry"). */
  readonly telemetry: Telemetry;
  private readonly context: GatewayContext;
  private readonly mounts: SocketMount<Assigns>[] = [];
  private server: Server | null = null;
  private ownsServer = false;
  private closing: Promise<void> | null = null;
  private draining: Promise<void> | null = null;
  /** Aborted by `close()`: a running drain skips its remaining waits. */
  private readonly hurry = new AbortController();
  private readonly drainParticipants: DrainParticipant[] = [];
  private readonly closeHooks: (() => void | Promise<void>)[] = [];
  private readonly routes: { prefix: string; handler: HttpRoute }[] = [];
  private readonly clusterPubSub: ClusterPubSub;
  private readonly disconnects: ClusterDisconnects;
  private readonly clusterPresence: ClusterPresence;
  private readonly clusterComponents: ClusterComponent[] = [];
  private clusterLink: Cluster | null = null;
  private clusterConnecting: Promise<Cluster> | null = null;

  constructor(private readonly options: GatewayOptions = {}) {
    // Checked now: a bad drain setting fails at start, not at the first SIGTERM.
    resolveDrainOptions(options.drain);
    this.nodeId = options.nodeId ?? randomUUID();
    const logger =
      options.logger === false
        ? silentLogger()
        : isLogger(options.logger)
          ? options.logger
          : createLogger(options.logger);
    this.logger = logger.child({ node: this.nodeId.slice(0, 8) });
    this.telemetry = new Telemetry(this.logger);
    this.clusterPubSub = new ClusterPubSub(options.cluster);
    this.pubsub = this.clusterPubSub;
    const clock = options.clock ?? monotonicClock;
    const presence = (this.clusterPresence = new ClusterPresence(
      this.pubsub,
      { ...options.presence, nodeId: this.nodeId },
      clock,
    ));
    this.presence = presence;
    this.context = {
      pubsub: this.pubsub,
      presence: this.presence,
      wheel: new TimerWheel(options.timerTickMs ?? GATEWAY_DEFAULTS.timerTickMs, clock),
      logger: this.logger,
      stats: this.stats,
      telemetry: this.telemetry,
      registry: new SocketRegistry(),
      tokens: new SessionTokens(options.secret),
    };
    this.disconnects = new ClusterDisconnects((id) => this.context.registry.disconnect(id));
    this.clusterComponents.push(this.clusterPubSub, presence, this.disconnects);
  }

  /** Adds a socket endpoint at `path` (default `/socket`) and returns it for channel routes. */
  socket<A extends Assigns = Assigns>(
    path = '/socket',
    options: SocketOptions<A> = {},
  ): SocketMount<A> {
    const mount = new SocketMount<A>(this.context, path, options);
    for (const other of this.mounts) {
      if (other.path === mount.path)
        throw new InvalidStateError(`a socket is already mounted at ${mount.path}`);
    }
    this.mounts.push(mount);
    return mount;
  }

  /** @internal The shared coarse timer wheel (idle timeouts, LongPoll windows, plugin deadlines). */
  get wheel(): TimerWheel {
    return this.context.wheel;
  }

  /** Runs `hook` when the gateway closes, after the sockets are closed (plugins release resources). */
  onClose(hook: () => void | Promise<void>): void {
    this.closeHooks.push(hook);
  }

  /**
   * Endpoint.broadcast: every subscriber of `topic` gets `event` (join_ref and ref null), on
   * every gateway of the cluster once `connectCluster` ran. A `Uint8Array` payload goes out as a
   * binary frame to V2 clients.
   */
  broadcast(topic: string, event: string, payload: unknown = {}): void {
    this.pubsub.broadcast(topic, event, payload, null);
  }

  /**
   * Closes every socket whose connect hook returned this `id` (WebSocket close 1001), here and,
   * once `connectCluster` ran, on every other gateway. Returns how many were closed on this node.
   */
  disconnect(id: string): number {
    this.disconnects.publish(id);
    return this.context.registry.disconnect(id);
  }

  /**
   * Joins the cluster of gateways on NATS: broadcasts, Presence, disconnects (and relay groups)
   * span every gateway with the same prefix from then on. `genApi.connectNats` calls it unless
   * told not to. Resolves once subscribed.
   */
  async connectCluster(options: ClusterOptions): Promise<void> {
    if (this.clusterConnecting) throw new InvalidStateError('gateway is already in a cluster');
    this.clusterConnecting = Cluster.connect(options, {
      nodeId: this.nodeId,
      logger: this.logger,
      components: this.clusterComponents,
    });
    this.clusterLink = await this.clusterConnecting;
  }

  /** @internal Adds a part that spans nodes (relay groups); started when the cluster connects. */
  addClusterComponent(component: ClusterComponent): void {
    if (this.clusterConnecting)
      throw new InvalidStateError('cluster components must be added before connectCluster');
    this.clusterComponents.push(component);
  }

  /** The cluster connection and its counters, or null when this gateway runs alone. */
  clusterHealth(): GatewayClusterHealth | null {
    if (!this.clusterLink) return null;
    return {
      ...this.clusterLink.health(),
      pubsub: this.clusterPubSub.stats(),
      presence: this.clusterPresence.stats(),
      disconnects: this.disconnects.stats(),
    };
  }

  /** Starts an HTTP server for the mounts. Resolves with the bound address. */
  async listen(
    port = this.options.port ?? GATEWAY_DEFAULTS.port,
    host = this.options.host ?? GATEWAY_DEFAULTS.host,
  ): Promise<AddressInfo> {
    if (this.server) throw new InvalidStateError('gateway is already listening');
    const server = createServer({ keepAliveTimeout: 65_000 });
    this.attach(server);
    this.ownsServer = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    this.logger.info(
      { host: address.address, port: address.port, sockets: this.mounts.map((m) => m.path) },
      'gateway listening',
    );
    return address;
  }

  /** Serves the mounts from an existing HTTP server; other paths are left to it. */
  attach(server: Server): void {
    if (this.server) throw new InvalidStateError('gateway is already attached to a server');
    this.server = server;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.handleRequest(req, res) && this.ownsServer) sendPlain(res, 404, 'not found');
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.handleUpgrade(req, socket, head)) return;
      // Leave foreign upgrades to other listeners of a shared server.
      if (this.ownsServer || server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404);
    });
  }

  /** The bound address once listening or attached, else null. */
  get address(): AddressInfo | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  /**
   * Serves plain HTTP requests under `prefix` (the admin API; later health and metrics). The
   * handler gets the path below the prefix ("" or "/..."); it must answer every request.
   */
  route(prefix: string, handler: HttpRoute): this {
    const clean = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    if (!clean.startsWith('/'))
      throw new InvalidArgumentError(
        `route prefix must start with "/", got ${JSON.stringify(prefix)}`,
      );
    this.routes.push({ prefix: clean, handler });
    return this;
  }

  /** Handles a plain HTTP request if it targets a mount or a route; returns false otherwise. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    return dispatchRequest(this.routes, this.mounts, this.logger, req, res);
  }

  /** Handles a WebSocket upgrade if it targets a mount; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    return dispatchUpgrade(this.mounts, this.logger, req, socket, head);
  }

  /** True once `drain()` or `close()` was called: the gateway is stopping (readiness answers 503). */
  get stopping(): boolean {
    return this.closing !== null || this.draining !== null;
  }

  /** True while `drain()` runs and `close()` has not started: readiness reports `draining`. */
  get isDraining(): boolean {
    return this.draining !== null && this.closing === null;
  }

  /** @internal Adds work a drain waits for (gen_api registers its executor). */
  addDrainParticipant(participant: DrainParticipant): void {
    this.drainParticipants.push(participant);
  }

  /**
   * Stops the gateway gracefully, like Phoenix's socket drainer: readiness turns 503 at once; new
   * WebSocket upgrades and LongPoll sessions are refused (503) while connected sockets keep
   * working; in-flight gen_api requests get `requestDeadlineMs` to finish (streams still running
   * then end with a `Stream interrupted` push); the sockets are closed with 1012 in batches
   * (`batchSize`, `batchIntervalMs`, all within `shutdownMs`; a `socket_drain` event per batch);
   * then `close()` runs (Presence says goodbye to the cluster, NATS drains, the server stops).
   * `options` override the gateway's `drain` option (one out of range rejects with
   * OutOfRangeError, and nothing stops). Calling it again returns the same promise;
   * `close()` during a drain hurries it (the remaining waits are skipped).
   */
  drain(options: DrainOptions = {}): Promise<void> {
    if (this.closing) return this.closing;
    if (this.draining) return this.draining;
    let settings: Required<DrainOptions>;
    try {
      settings = resolveDrainOptions({ ...this.options.drain, ...options });
    } catch (err) {
      // resolveDrainOptions throws only OutOfRangeError.
      return Promise.reject(
        err instanceof OutOfRangeError ? err : new OutOfRangeError(String(err), { cause: err }),
      );
    }
    const hurry = this.hurry.signal;
    this.draining = runDrain(
      {
        mounts: this.mounts,
        participants: this.drainParticipants,
        logger: this.logger,
        stats: this.stats,
        socketDrained: (event) => this.socketDrained(event),
        close: () => this.close(),
      },
      settings,
      CLOSE_HANDSHAKE_WAIT_MS,
      hurry,
    );
    return this.draining;
  }

  /** One batch of a drain closed: logged, and the `socket_drain` telemetry event. */
  private socketDrained(event: SocketDrainEvent): void {
    this.logger.info(event, 'drain: sockets closed');
    this.telemetry.emit('socket_drain', event);
  }

  /**
   * Stops the gateway at once: new connections are refused, every socket is closed with 1012
   * (clients reconnect, to another node if there is one) and the HTTP server stops. In-flight
   * requests are not waited for: `drain()` is the graceful stop (and ends with this).
   */
  close(code: number = CLOSE.drain): Promise<void> {
    if (this.closing) return this.closing;
    this.hurry.abort();
    this.closing = (async () => {
      for (const mount of this.mounts) mount.close(code);
      await this.clusterLink?.close();
      for (const hook of this.closeHooks) {
        try {
          await hook();
        } catch (err) {
          this.logger.error({ err }, 'close hook failed');
        }
      }
      this.context.wheel.clear();
      const server = this.server;
      if (server && this.ownsServer) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      }
      this.logger.info('gateway closed');
    })();
    return this.closing;
  }
}

/** Creates a gateway; add mounts with `gateway.socket(...)`, then `listen()` or `attach(server)`. */
export function createGateway(options?: GatewayOptions): Gateway {
  return new Gateway(options);
}
