/**
 * A nats-server with its HTTP monitoring port on (`-m`), for suites that read the server's own
 * view of a connection (`/connz?subs=1`: messages delivered to it, its subscriptions).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../support/nats.js';
import { until } from '../../support/wait.js';

/** One connection in `/connz` (the fields suites read). */
export interface Connz {
  cid: number;
  name?: string;
  /** Messages the server delivered to this client. */
  out_msgs: number;
  /** Messages this client published. */
  in_msgs: number;
  subscriptions_list?: string[];
}

export class MonitoredNats {
  private log = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly monitorPort: number,
  ) {
    child.stderr?.on(
      'data',
      (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-4000)),
    );
  }

  static async start(): Promise<MonitoredNats> {
    const [port, monitorPort] = [await freePort(), await freePort()];
    const child = spawn(
      'nats-server',
      ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const server = new MonitoredNats(child, port, monitorPort);
    await until(
      () =>
        server.connections().then(
          () => true,
          () => false,
        ),
      () => `nats-server with monitoring on ${monitorPort}: ${server.log}`,
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    return server;
  }

  /** The server's process id (its CPU is read from /proc). */
  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Every client connection with its subscriptions. */
  async connections(): Promise<Connz[]> {
    const response = await fetch(`http://127.0.0.1:${this.monitorPort}/connz?subs=1&limit=4096`);
    if (!response.ok) throw new Error(`connz: HTTP ${response.status}`);
    return ((await response.json()) as { connections: Connz[] }).connections;
  }

  /** The connection named `name` (nats.js `name` option). */
  async connection(name: string): Promise<Connz> {
    const found = (await this.connections()).find((conn) => conn.name === name);
    if (!found) throw new Error(`no NATS connection named ${JSON.stringify(name)}`);
    return found;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
