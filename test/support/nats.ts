import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (released before returning; fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface NatsServerOptions {
  port?: number;
  /** Cluster name and port, and routes to other members (nats://127.0.0.1:<cluster port>). */
  cluster?: { name: string; port: number; routes: string[] };
  jetstream?: boolean;
}

/**
 * A real `nats-server` process on a free port, started by a test so it can stop, restart, kill
 * or partition it. Requires `nats-server` on PATH (.ci/run installs it).
 */
export class NatsServer {
  private child: ChildProcess | null = null;
  private readonly storeDir: string;
  log = '';

  private constructor(
    readonly port: number,
    private readonly options: NatsServerOptions,
  ) {
    this.storeDir = mkdtempSync(join(tmpdir(), 'gen-gateway-nats-'));
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options.port ?? (await freePort()), options);
    await server.spawn();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  private args(): string[] {
    const args = ['-a', '127.0.0.1', '-p', String(this.port)];
    const { cluster, jetstream } = this.options;
    if (cluster) {
      args.push('--cluster_name', cluster.name, '--cluster', `nats://127.0.0.1:${cluster.port}`);
      if (cluster.routes.length > 0) args.push('--routes', cluster.routes.join(','));
    }
    if (jetstream) args.push('-js', '-sd', this.storeDir);
    return args;
  }

  private async spawn(): Promise<void> {
    const child = spawn('nats-server', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await reachable(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${this.log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start on ${this.port}: ${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Abrupt stop (SIGKILL): clients see the TCP connection die. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Starts again on the same port (after stop or kill). */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.spawn();
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
