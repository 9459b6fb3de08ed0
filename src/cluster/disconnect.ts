import type { Msg, Subscription } from '@nats-io/nats-core';
import { readJsonObject } from '../nats/json-object.js';
import type { ClusterComponent, ClusterLink } from './link.js';
import { ThrottledWarning } from './throttled-warning.js';

const encoder = new TextEncoder();

/**
 * Largest disconnect message accepted from NATS (protocol/nats.md §9.3); larger ones are dropped
 * and counted. Socket ids are short (`user:42`); this only bounds what a stranger can make us parse.
 */
export const MAX_DISCONNECT_BYTES = 4096;

/** Counters of cluster disconnects (health, metrics). */
export interface ClusterDisconnectStats {
  /** Disconnects this node published for the other gateways. */
  published: number;
  /** Valid disconnects received from NATS. */
  received: number;
  /** Local sockets closed because of a received disconnect. */
  closed: number;
  /** Messages that were not `{"id": non-empty string}` or were too large. */
  dropped: number;
}

/**
 * Cluster-wide disconnects (protocol/nats.md §9): `gateway.disconnect(id)` and a worker's
 * `disconnect(id)` publish `{"id": ...}` on `<p>.socket.disconnect`; every gateway closes its
 * sockets with that id (1001, so clients reconnect). Rare by nature, so one subject for all.
 */
export class ClusterDisconnects implements ClusterComponent {
  private link: ClusterLink | null = null;
  private sub: Subscription | null = null;
  private readonly dropWarning = new ThrottledWarning();
  private readonly counters: ClusterDisconnectStats = {
    published: 0,
    received: 0,
    closed: 0,
    dropped: 0,
  };

  constructor(private readonly closeLocal: (id: string) => number) {}

  start(link: ClusterLink): void {
    this.link = link;
    this.sub = link.nc.subscribe(link.subjects.socketDisconnect, {
      callback: (err, msg) => {
        if (err) link.logger.warn({ err: err.message }, 'disconnect subscription error');
        else this.receive(msg);
      },
    });
  }

  /** Tells the other gateways to close sockets with `id` (this node closes its own itself). */
  publish(id: string): void {
    const link = this.link;
    if (!link) return;
    const body = encoder.encode(JSON.stringify({ id }));
    if (body.length > MAX_DISCONNECT_BYTES) {
      // The other gateways would drop it: say so here, where the caller can be found.
      link.logger.warn(
        { bytes: body.length, max: MAX_DISCONNECT_BYTES },
        'socket id too long for a cluster disconnect; closed on this gateway only',
      );
      return;
    }
    try {
      link.nc.publish(link.subjects.socketDisconnect, body);
      this.counters.published++;
    } catch (err) {
      link.logger.warn({ err, id: id.slice(0, 64) }, 'cluster disconnect not published');
    }
  }

  private receive(msg: Msg): void {
    const id = msg.data.length <= MAX_DISCONNECT_BYTES ? readId(msg.data) : null;
    if (id === null) {
      this.counters.dropped++;
      this.dropWarning.warn(
        this.link?.logger,
        { bytes: msg.data.length, dropped: this.counters.dropped },
        'malformed cluster disconnect dropped (want {"id": "<socket id>"})',
      );
      return;
    }
    this.counters.received++;
    try {
      this.counters.closed += this.closeLocal(id);
    } catch (err) {
      this.link?.logger.error({ err }, 'cluster disconnect failed');
    }
  }

  /** A snapshot of the counters. */
  stats(): ClusterDisconnectStats {
    return { ...this.counters };
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    this.link = null;
  }
}

function readId(data: Uint8Array): string | null {
  const id = readJsonObject(data)?.id;
  return typeof id === 'string' && id.length > 0 ? id : null;
}
