/**
 * Baselines measured in the same run as what they are compared with: a raw NATS request/reply
 * round trip, a raw JetStream KV get+update, and a raw `ws` echo. Reused by every suite that
 * reports ratios against them.
 */
import type { AddressInfo } from 'node:net';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import WebSocket, { WebSocketServer } from 'ws';
import { now } from './runtime.js';

/** A plain NATS responder that answers every request with its payload. */
export function natsEchoResponder(nc: NatsConnection, subject: string): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) msg.respond(msg.data);
    },
  });
}

/** One raw NATS request/reply round trip in ms (the responder must be subscribed and flushed). */
export async function natsRoundTrip(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
): Promise<number> {
  const start = now();
  await nc.request(subject, payload, { timeout: 5_000 });
  return now() - start;
}

/** A JetStream KV bucket with `keys` entries, for raw get → update(revision) round trips. */
export class RawKv {
  private revisions = new Map<string, number>();
  private next = 0;

  private constructor(
    readonly kv: KV,
    private readonly keys: string[],
    private readonly value: Uint8Array,
  ) {}

  static async create(
    nc: NatsConnection,
    bucket: string,
    keys: number,
    value: Uint8Array,
  ): Promise<RawKv> {
    const kv = await new Kvm(nc).create(bucket, { history: 1 });
    const names = Array.from({ length: keys }, (_, i) => `k${i}`);
    const raw = new RawKv(kv, names, value);
    for (const name of names) raw.revisions.set(name, await kv.put(name, value));
    return raw;
  }

  /** get then update at the read revision (what one strict decision does), in ms. */
  async getUpdate(): Promise<number> {
    const key = this.keys[this.next++ % this.keys.length]!;
    const start = now();
    const entry = await this.kv.get(key);
    const revision = await this.kv.update(key, this.value, entry?.revision ?? 0);
    const elapsed = now() - start;
    this.revisions.set(key, revision);
    return elapsed;
  }

  /** One KV get, in ms. */
  async get(): Promise<number> {
    const key = this.keys[this.next++ % this.keys.length]!;
    const start = now();
    await this.kv.get(key);
    return now() - start;
  }

  async destroy(): Promise<void> {
    await this.kv.destroy().catch(() => undefined);
  }
}

/** A raw `ws` server that echoes every message (the floor for any WebSocket gateway). */
export async function startWsEcho(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * A WebSocket client doing one request at a time: `roundTrip(frame, done)` sends `frame` and
 * resolves (ms) once `done(message)` has returned true for an incoming text message.
 */
export class SequentialWs {
  private pending: ((text: string) => boolean) | null = null;
  private resolve: (() => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const done = this.pending;
      if (done && done(data.toString('utf8'))) {
        const resolve = this.resolve!;
        this.pending = null;
        this.resolve = null;
        resolve();
      }
    });
  }

  static async connect(url: string): Promise<SequentialWs> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new SequentialWs(ws);
  }

  /** Sends `text` and waits until `done` accepts a message; resolves with the elapsed ms. */
  roundTrip(text: string, done: (message: string) => boolean, timeoutMs = 5_000): Promise<number> {
    if (this.pending) throw new Error('SequentialWs: one request at a time');
    const start = now();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        this.resolve = null;
        reject(new Error(`no answer within ${timeoutMs} ms to ${text.slice(0, 120)}`));
      }, timeoutMs);
      this.pending = done;
      this.resolve = () => {
        clearTimeout(timer);
        resolve(now() - start);
      };
      this.ws.send(text);
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
