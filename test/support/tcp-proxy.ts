import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * A TCP proxy in front of a server, for fault injection (a toxiproxy of our own):
 * - `stall()` freezes the connections open now, both ways (a hung peer: nothing lost, nothing arrives);
 * - `cut()` kills every connection and refuses new ones until `restore()` (a partition);
 * - `latencyMs` delays every chunk in both directions (a slow link), order preserved.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly pairs = new Set<Pair>();
  private refusing = false;
  /** Added to every chunk relayed, each way. */
  latencyMs = 0;
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => this.accept(client));
  }

  static async start(
    targetPort: number,
    options: { port?: number; latencyMs?: number } = {},
  ): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    proxy.latencyMs = options.latencyMs ?? 0;
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(options.port ?? 0, '127.0.0.1', resolve);
    });
    const address = proxy.server.address();
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(this.targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    this.relay(client, upstream);
    this.relay(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }

  /** Relays `from` → `to`, through the latency queue when there is latency. */
  private relay(from: Socket, to: Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const delay = this.latencyMs;
      if (delay <= 0) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      const due = Date.now() + delay;
      chain = chain.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (!to.destroyed) to.write(chunk);
      });
    });
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Freezes every connection open now (new ones relay normally). */
  stall(): number {
    for (const { client, upstream } of this.pairs) {
      client.removeAllListeners('data');
      upstream.removeAllListeners('data');
      client.pause();
      upstream.pause();
    }
    return this.pairs.size;
  }

  /** Kills every connection and refuses new ones until restore(). */
  cut(): void {
    this.refusing = true;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
