import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '../log/logger.js';
import {
  connectNats,
  gatewayConnectOptions,
  type NatsConnectionOptions,
} from '../nats/connection.js';
import { DEFAULT_PREFIX, Subjects } from '../nats/subjects.js';
import type { ClusterComponent, ClusterLink } from './link.js';

/** Options of `gateway.connectCluster` (`genApi.connectNats` passes its own, which include them). */
export type ClusterOptions = NatsConnectionOptions;

/** The cluster connection in health reports. */
export interface ClusterConnectionHealth {
  /** Whether the cluster connection is up. */
  connected: boolean;
  /** The NATS server it is connected to (or was last). */
  server: string | null;
  /** Reconnects since start. */
  reconnects: number;
}

/**
 * The gateway's cluster side: its own NATS connection (`noEcho`: a node never receives its own
 * publishes, so nothing it sends costs it a delivery) and the components that span nodes. It
 * reconnects for ever; components keep serving local sockets while NATS is away and resynchronise
 * when it is back.
 */
export class Cluster {
  private up = true;
  private reconnects = 0;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly link: ClusterLink,
    private readonly components: readonly ClusterComponent[],
  ) {}

  static async connect(
    options: ClusterOptions,
    deps: { nodeId: string; logger: Logger; components: readonly ClusterComponent[] },
  ): Promise<Cluster> {
    const logger = deps.logger.child({ component: 'cluster' });
    const name = `gen-gateway cluster ${deps.nodeId}`;
    const nc = await connectNats({ ...gatewayConnectOptions(options, name), noEcho: true }, name);
    let cluster: Cluster | null = null;
    const link: ClusterLink = {
      nc,
      subjects: new Subjects(options.prefix ?? DEFAULT_PREFIX),
      nodeId: deps.nodeId,
      logger,
      connected: () => cluster?.up ?? true,
    };
    cluster = new Cluster(link, deps.components);
    cluster.watch(nc).catch((err: unknown) => {
      logger.error({ err }, 'cluster status watch failed; outages are no longer followed');
    });
    for (const component of deps.components) await component.start(link);
    // Our subscriptions are on the server before anyone is told we are here.
    await nc.flush();
    logger.info({ server: nc.getServer(), prefix: link.subjects.prefix }, 'cluster connected');
    return cluster;
  }

  health(): ClusterConnectionHealth {
    return { connected: this.up, server: this.link.nc.getServer(), reconnects: this.reconnects };
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const event of nc.status()) {
      if (event.type === 'disconnect') {
        if (!this.up) continue;
        this.up = false;
        this.link.logger.warn('cluster connection lost; serving local sockets only');
        for (const component of this.components) component.disconnected?.();
      } else if (event.type === 'reconnect') {
        this.up = true;
        this.reconnects++;
        this.link.logger.info({ server: event.server }, 'cluster connection back');
        for (const component of this.components) component.reconnected?.();
      }
    }
  }

  /** Stops the components (last registered first), then drains the connection. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const component of [...this.components].reverse()) {
        try {
          await component.stop();
        } catch (err) {
          this.link.logger.error({ err }, 'cluster component failed to stop');
        }
      }
      try {
        await this.link.nc.drain();
      } catch {
        await this.link.nc.close();
      }
    })();
    return this.closing;
  }
}
