import type { Msg, Subscription } from '@nats-io/nats-core';
import type { ClusterComponent, ClusterLink } from './link.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Longest socket id a disconnect message may carry; longer messages are dropped and counted. */
const MAX_DISCONNECT_BYTES = 4096;

/**
 * Cluster-wide disconnects (protocol/nats.md §9): `gateway.disconnect(id)` and a worker's
 * `disconnect(id)` publish `{"id": ...}` on `<p>.socket.disconnect`; every gateway closes its
 * sockets with that id (1001, so clients reconnect). Rare by nature, so one subject for all.
 */
export class ClusterDisconnects implements ClusterComponent {
  private link: ClusterLink | null = null;
  private sub: Subscription | null = null;
  /** Messages that were not `{"id": string}` (or too large): dropped, never acted on. */
  dropped = 0;

  constructor(private readonly closeLocal: (id: string) => number) {}

  start(link: ClusterLink): void {
    this.link = link;
    this.sub = link.nc.subscribe(link.subjects.socketDisconnect, {
      callback: (err, msg) => {
        if (!err) this.receive(msg);
      },
    });
  }

  /** Tells the other gateways to close sockets with `id` (this node closes its own itself). */
  publish(id: string): void {
    const link = this.link;
    if (!link) return;
    try {
      link.nc.publish(link.subjects.socketDisconnect, encoder.encode(JSON.stringify({ id })));
    } catch (err) {
      link.logger.warn({ err, id }, 'cluster disconnect not published');
    }
  }

  private receive(msg: Msg): void {
    const id = msg.data.length <= MAX_DISCONNECT_BYTES ? readId(msg.data) : null;
    if (id === null) {
      this.dropped++;
      this.link?.logger.warn({ bytes: msg.data.length }, 'malformed cluster disconnect dropped');
      return;
    }
    this.closeLocal(id);
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    this.link = null;
  }
}

function readId(data: Uint8Array): string | null {
  try {
    const body = JSON.parse(decoder.decode(data)) as unknown;
    if (typeof body !== 'object' || body === null) return null;
    const id = (body as { id?: unknown }).id;
    return typeof id === 'string' && id.length > 0 ? id : null;
  } catch {
    return null;
  }
}
