/**
 * Helpers for driving the real `phoenix` JS client in Node: promise wrappers around pushes and
 * channel events, a polling `waitFor`, a message recorder, a free-port finder and a TCP proxy
 * that can stall a connection (to make heartbeats go unanswered).
 */
import { createServer, connect as tcpConnect, type Server, type Socket as NetSocket } from 'node:net';
import type { Channel, Message, Push, Socket, StorageLike } from 'phoenix';

export interface PushReply {
  status: string;
  response: unknown;
}

/**
 * Resolves with the first of `statuses` the push receives (default ok, error, timeout). Rejects
 * when nothing arrives within `timeoutMs` (independent of the push's own timeout).
 */
export function replyOf(push: Push, timeoutMs = 5_000, statuses: readonly string[] = ['ok', 'error', 'timeout']): Promise<PushReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply (${statuses.join('/')}) within ${timeoutMs} ms`)), timeoutMs);
    for (const status of statuses) {
      push.receive(status, (response) => {
        clearTimeout(timer);
        resolve({ status, response });
      });
    }
  });
}

/** The payload of the next `event` on the channel. */
export function nextEvent(channel: Channel, event: string, timeoutMs = 5_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const ref = channel.on(event, (payload) => {
      clearTimeout(timer);
      channel.off(event, ref);
      resolve(payload);
    });
    const timer = setTimeout(() => {
      channel.off(event, ref);
      reject(new Error(`no ${event} on ${channel.topic} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

/** Polls `probe` until it returns something other than undefined/false/null. */
export async function waitFor<T>(
  probe: () => T | undefined | null | false,
  label: string,
  timeoutMs = 5_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Records every message a socket receives (after decoding). */
export class Recorder {
  readonly messages: (Message & { readonly at: number })[] = [];
  constructor(socket: Socket) {
    socket.onMessage((message) => this.messages.push({ ...message, at: Date.now() }));
  }

  of(topic: string, event?: string): (Message & { readonly at: number })[] {
    return this.messages.filter((m) => m.topic === topic && (event === undefined || m.event === event));
  }
}

/** An in-memory Storage for the client's LongPoll fallback memory. */
export class MemoryStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** A port that was free a moment ago (for restarting a server on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A TCP proxy in front of a server. `stall()` stops relaying on the connections open at that
 * moment, in both directions (a frozen peer: nothing is lost, nothing arrives); connections
 * made afterwards relay normally.
 */
export class StallProxy {
  private readonly server: Server;
  private readonly pairs = new Set<[NetSocket, NetSocket]>();
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      const upstream = tcpConnect(this.targetPort, '127.0.0.1');
      const pair: [NetSocket, NetSocket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  static async start(targetPort: number): Promise<StallProxy> {
    const proxy = new StallProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const address = proxy.server.address();
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Freezes every connection open now. */
  stall(): number {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
