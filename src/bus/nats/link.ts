import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { ConfigReceiver } from '../../genapi/config/push.js';
import { DEFAULT_PREFIX, Subjects } from '../../nats/subjects.js';
import { TimerWheel } from '../../util/timer-wheel.js';
import { NatsBus } from './bus.js';
import { ConfigSync, type ConfigSyncOptions } from './config-sync.js';
import { Discovery, type DiscoveredInstance, type DiscoveryOptions } from './discovery.js';
import { Requester } from './requester.js';

export interface NatsGatewayOptions {
  /** NATS server URL(s), e.g. "nats://127.0.0.1:4222". */
  servers: string | string[];
  /** Subject prefix shared with the workers. Default "genapi". */
  prefix?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Delay between reconnect attempts (jittered by the client). Default 250 ms. */
  reconnectTimeWaitMs?: number;
  discovery?: DiscoveryOptions;
  sync?: ConfigSyncOptions;
  /** Resolution of request deadlines. Default 5 ms. */
  deadlineTickMs?: number;
}

export type NatsStatus = 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface NatsHealth {
  status: NatsStatus;
  server: string | null;
  reconnects: number;
  lastError: string | null;
  instances: number;
  pendingRequests: number;
  streams: number;
}

export interface NatsLinkDeps {
  readonly gatewayId: string;
  readonly receiver: ConfigReceiver;
  readonly logger: Logger;
  /** Told when discovery loses an instance (breakers, streams). */
  readonly onInstanceLost?: (instance: DiscoveredInstance) => void;
  /** Services this gateway runs in-process: configs for them from NATS are refused. */
  readonly isLocal?: (service: string) => boolean;
}

/**
 * The gateway's NATS side: the connection and its lifecycle (reconnecting for ever, requests
 * failing fast while down, health reporting), discovery, config sync and the bus. Configs the
 * gateway learned stay in place across outages.
 */
export class NatsLink {
  private status: NatsStatus = 'connected';
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
    const nc = await connect({
      servers: options.servers,
      name: `gen-gateway ${deps.gatewayId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
      waitOnFirstConnect: true,
      ...(options.user === undefined ? {} : { user: options.user }),
      ...(options.pass === undefined ? {} : { pass: options.pass }),
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    const subjects = new Subjects(options.prefix ?? DEFAULT_PREFIX);
    const wheel = new TimerWheel(options.deadlineTickMs ?? 5);
    const requester = new Requester(nc, wheel);
    const discovery = new Discovery(nc, subjects.prefix, options.discovery ?? {}, logger);
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
    );
    const link = new NatsLink(nc, subjects, requester, discovery, bus, sync, wheel, logger);
    discovery.on({
      added: (instance) => void sync.instanceSeen(instance),
      configChanged: (instance) => void sync.instanceSeen(instance),
      removed: (instance) => {
        bus.instanceLost(instance.id);
        deps.onInstanceLost?.(instance);
      },
    });
    void link.watch();
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
      reconnects: this.reconnects,
      lastError: this.lastError,
      instances: this.discovery.all().length,
      pendingRequests: this.requester.size,
      streams: this.bus.activeStreams,
    };
  }

  private async watch(): Promise<void> {
    for await (const event of this.nc.status()) {
      switch (event.type) {
        case 'disconnect':
          this.status = 'disconnected';
          this.requester.setConnected(false);
          this.logger.warn({ server: event.server }, 'NATS disconnected; requests fail fast until it is back');
          break;
        case 'reconnecting':
          this.status = 'reconnecting';
          break;
        case 'reconnect':
          this.status = 'connected';
          this.server = event.server;
          this.reconnects++;
          this.requester.setConnected(true);
          this.logger.info({ server: event.server, reconnects: this.reconnects }, 'NATS reconnected');
          void this.discovery.ping();
          break;
        case 'error':
          this.lastError = event.error.message;
          this.logger.warn({ err: event.error.message }, 'NATS error');
          break;
        case 'close':
          this.status = 'closed';
          this.requester.setConnected(false);
          if (!this.closing) this.logger.error('NATS connection closed');
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
