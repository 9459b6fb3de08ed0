import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { withDeadline } from '../../util/deadline.js';
import type { Logger } from 'pino';
import type { ConfigReceiver } from '../../genapi/config/push.js';
import {
  connectNats,
  gatewayConnectOptions,
  presentsCredentials,
  type NatsConnectionOptions,
} from '../../nats/connection.js';
import { DEFAULT_PREFIX, Subjects } from '../../nats/subjects.js';
import { TimerWheel } from '../../util/timer-wheel.js';
import { NatsBus } from './bus.js';
import { ConfigSync, type ConfigSyncOptions, type ConfigSyncStatus } from './config-sync.js';
import { Discovery, type DiscoveredInstance, type DiscoveryOptions } from './discovery.js';
import { Requester } from './requester.js';
import { MIN_PUSH_TOKEN_LENGTH, PeerAuth } from '../../nats/peer-auth.js';
import { ConfigError } from '../../config/errors.js';

/** The defaults of the `NatsGatewayOptions` the link itself reads. */
export const NATS_LINK_DEFAULTS = { deadlineTickMs: 5 } as const;

/**
 * Options of `genApi.connectNats`: servers, credentials, subject prefix, discovery and config
 * sync.
 */
export interface NatsGatewayOptions extends NatsConnectionOptions {
  /** Worker discovery intervals. */
  discovery?: DiscoveryOptions;
  /** Config pull settings. */
  sync?: ConfigSyncOptions;
  /** Resolution of request deadlines. Default 5 ms (NATS_LINK_DEFAULTS). */
  deadlineTickMs?: number;
  /**
   * Also join the gateway cluster on the same servers (`gateway.connectCluster`): broadcasts,
   * Presence, disconnects and relay groups across gateways. Default true.
   */
  cluster?: boolean;
  /**
   * Trust every client of this NATS network: without a push token (`genApi.pushToken`), configs
   * and instance announcements from NATS are then believed as they come. Only for development or
   * a network nobody else reaches; the gateway logs a warning at start. Default false: without a
   * push token `connectNats` refuses to start (protocol/nats.md §10).
   */
  trustedNetwork?: boolean;
}

/** The NATS connection's state. */
export type NatsStatus = 'connected' | 'reconnecting' | 'disconnected' | 'closed';

/** The NATS link in `GenApiHealth`: status, server, round trip, pending requests, last error. */
export interface NatsHealth {
  /** The connection state. */
  status: NatsStatus;
  /** The server connected to (or last connected to). */
  server: string | null;
  /** Epoch ms of the last status change. */
  since: number;
  /** Reconnects since start. */
  reconnects: number;
  /** The last connection error, or null. */
  lastError: string | null;
  /** Live worker instances discovery knows. */
  instances: number;
  /** Requests waiting for a worker's reply. */
  pendingRequests: number;
  /** Streams being relayed from workers. */
  streams: number;
  /** The periodic config pull (interval, failures and backoff, last result). */
  sync: ConfigSyncStatus;
  /** Instances announced on `$SRV.PING` but refused (no valid proof, or not on their own subject). */
  instancesRefused: number;
}

export interface NatsLinkDeps {
  readonly gatewayId: string;
  readonly receiver: ConfigReceiver;
  readonly logger: Logger;
  /** Told when discovery loses an instance (breakers, streams). */
  readonly onInstanceLost?: (instance: DiscoveredInstance) => void;
  /** Services this gateway runs in-process: configs for them from NATS are refused. */
  readonly isLocal?: (service: string) => boolean;
  /** The push token workers sign with (`genApi.pushToken`); null: none. */
  readonly pushToken?: string | null;
  /**
   * Makes the connection once the settings are checked (default `connectNats`, which waits for a
   * server); a gateway started without NATS passes a retrying one.
   */
  readonly connect?: (options: ConnectionOptions, who: string) => Promise<NatsConnection>;
}

/** Logged (warn) at start by a gateway told that its NATS network is trusted. */
export const TRUSTED_NETWORK_WARNING =
  'nats.trustedNetwork: configs and instance announcements from NATS are not authenticated; ' +
  'anyone who can publish on this NATS network can push function configs';

/**
 * How this gateway authenticates workers (protocol/nats.md §10): with the push token, or not at
 * all on a network declared trusted. Neither is a configuration error: a gateway that believes
 * anyone on NATS lets anyone there push function configs and take a service's routing over.
 */
function peerAuthFor(
  options: NatsGatewayOptions,
  pushToken: string | null,
  logger: Logger,
): PeerAuth | null {
  if (!presentsCredentials(options))
    logger.warn(
      'NATS connection without credentials: if this NATS server accepts anonymous clients, ' +
        'any of them can read requests and answer as a worker (see examples/secure)',
    );
  if (pushToken !== null) {
    if (pushToken.length < MIN_PUSH_TOKEN_LENGTH)
      throw new ConfigError(
        `genApi.pushToken must be at least ${MIN_PUSH_TOKEN_LENGTH} characters (workers sign with it)`,
      );
    return new PeerAuth(pushToken);
  }
  if (options.trustedNetwork !== true)
    throw new ConfigError(
      'NATS peers are not authenticated: set genApi.pushToken (shared with the workers) so ' +
        'configs and instances from NATS are verified, or set nats.trustedNetwork: true to ' +
        'believe every client of this NATS network (development only; see examples/secure)',
    );
  logger.warn(TRUSTED_NETWORK_WARNING);
  return null;
}

/**
 * The gateway's NATS side: the connection and its lifecycle (reconnecting for ever, requests
 * failing fast while down, health reporting), discovery, config sync and the bus. Configs the
 * gateway learned stay in place across outages.
 */
export class NatsLink {
  private status: NatsStatus = 'connected';
  private since = Date.now();
  private server: string | null;
  private reconnects = 0;
  private lastError: string | null = null;
  private closing = false;

  private constructor(
    readonly nc: NatsConnection,
    readonly subjects: Subjects,
    readonly requester: Requester,
    readonly discovery: Discovery,
    readonly bus: NatsBus,
    readonly sync: ConfigSync,
    private readonly wheel: TimerWheel,
    private readonly logger: Logger,
  ) {
    this.server = nc.getServer();
  }

  static async connect(options: NatsGatewayOptions, deps: NatsLinkDeps): Promise<NatsLink> {
    const logger = deps.logger.child({ component: 'nats' });
    const auth = peerAuthFor(options, deps.pushToken ?? null, logger);
    const name = `gen-gateway ${deps.gatewayId}`;
    const nc = await (deps.connect ?? connectNats)(gatewayConnectOptions(options, name), name);
    const subjects = new Subjects(options.prefix ?? DEFAULT_PREFIX);
    const wheel = new TimerWheel(options.deadlineTickMs ?? NATS_LINK_DEFAULTS.deadlineTickMs);
    const requester = new Requester(nc, wheel);
    const discovery = new Discovery(
      nc,
      subjects.prefix,
      options.discovery ?? {},
      logger,
      Date.now,
      auth,
    );
    const bus = new NatsBus(nc, subjects, requester, discovery, deps.gatewayId, logger);
    const sync = new ConfigSync(
      nc,
      subjects,
      deps.receiver,
      requester,
      deps.gatewayId,
      discovery,
      deps.isLocal ?? (() => false),
      logger,
      options.sync,
      auth,
    );
    const link = new NatsLink(nc, subjects, requester, discovery, bus, sync, wheel, logger);
    // pull() logs its own failures; a rejection here is a defect, logged with the instance.
    const pullFrom = (instance: DiscoveredInstance): void => {
      sync
        .instanceSeen(instance)
        .catch((err: unknown) =>
          logger.error(
            { err, service: instance.service, instance: instance.id },
            'config pull for a discovered instance failed',
          ),
        );
    };
    discovery.on({
      added: (instance) => pullFrom(instance),
      configChanged: (instance) => pullFrom(instance),
      removed: (instance) => {
        bus.instanceLost(instance.id);
        deps.onInstanceLost?.(instance);
      },
    });
    link.watch().catch((err: unknown) => {
      // The status iterator ends when the connection closes; failing is a defect, and health
      // would then stop following the connection: say so loudly.
      link.lastError = err instanceof Error ? err.message : String(err);
      logger.error({ err }, 'NATS status watch failed; health no longer follows the connection');
    });
    logger.info({ server: nc.getServer(), prefix: subjects.prefix }, 'connected to NATS');
    // The first discovery round (and the pulls it starts) lets a new gateway serve at once.
    await discovery.start();
    await Promise.all(discovery.all().map((instance) => sync.instanceSeen(instance)));
    sync.start();
    return link;
  }

  get connected(): boolean {
    return this.status === 'connected';
  }

  health(): NatsHealth {
    return {
      status: this.status,
      server: this.server,
      since: this.since,
      reconnects: this.reconnects,
      lastError: this.lastError,
      instances: this.discovery.all().length,
      pendingRequests: this.requester.size,
      streams: this.bus.activeStreams,
      sync: this.sync.status(),
      instancesRefused: this.discovery.refused,
    };
  }

  /** Round trip to the NATS server in ms; null when not connected or no answer within `timeoutMs`. */
  async rtt(timeoutMs = 1_000): Promise<number | null> {
    if (this.status !== 'connected') return null;
    try {
      return await withDeadline(this.nc.rtt(), timeoutMs, () => null);
    } catch {
      return null;
    }
  }

  /** One log line per status change: operators follow outages in the log. */
  private transition(status: NatsStatus, fields: Record<string, unknown> = {}): void {
    if (status === this.status) return;
    const from = this.status;
    this.status = status;
    this.since = Date.now();
    const line = { from, to: status, server: this.server, reconnects: this.reconnects, ...fields };
    if (status === 'connected') this.logger.info(line, 'NATS status: connected');
    else if (status === 'closed' && !this.closing) this.logger.error(line, 'NATS status: closed');
    else if (status === 'closed') this.logger.info(line, 'NATS status: closed');
    else this.logger.warn(line, `NATS status: ${status}; requests fail fast until it is back`);
  }

  private async watch(): Promise<void> {
    for await (const event of this.nc.status()) {
      switch (event.type) {
        case 'disconnect':
          this.requester.setConnected(false);
          this.transition('disconnected', { lastServer: event.server });
          break;
        case 'reconnecting':
          this.transition('reconnecting');
          break;
        case 'reconnect':
          this.server = event.server;
          this.reconnects++;
          this.requester.setConnected(true);
          this.transition('connected');
          this.discovery.pingInBackground();
          break;
        case 'error':
          this.lastError = event.error.message;
          this.logger.warn({ err: event.error.message }, 'NATS error');
          break;
        case 'ldm':
          this.logger.warn(
            { server: event.server },
            'NATS server entering lame duck mode; the client will move to another server',
          );
          break;
        case 'close':
          this.requester.setConnected(false);
          this.transition('closed');
          break;
        default:
          break;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.sync.stop();
    this.discovery.stop();
    this.bus.close();
    this.requester.close();
    this.wheel.clear();
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }
}
