import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayConfig } from '../../src/config/file.js';
import { spawnTs, type Spawned } from './spawn.js';

export interface GatewayProcessOptions {
  /** The JSON config file's content (functions are not allowed: it is written as JSON). */
  config?: GatewayConfig;
  /** NATS URL(s) for `--nats` (comma-separated for several). */
  nats?: string;
  logLevel?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * A real `gen-gateway` process (the CLI under tsx) on a free port, with its config written to a
 * temporary JSON file. `port` comes from its "gateway listening" log line.
 */
/**
 * Tests that do not test worker authentication run on a trusted network (a gateway without a
 * push token refuses NATS otherwise); a config with `genApi.pushToken` is left as it is.
 */
function withTrust(options: GatewayProcessOptions): GatewayConfig {
  const config = options.config ?? {};
  if (options.nats === undefined && config.nats?.servers === undefined) return config;
  if (config.genApi?.pushToken || config.nats?.trustedNetwork !== undefined) return config;
  return { ...config, nats: { ...config.nats, trustedNetwork: true } };
}

export class GatewayProcess {
  private constructor(
    readonly process: Spawned,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'gen-gateway-proc-'));
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify(withTrust(options)));
    const args = ['--config', file, '--port', '0', '--log-level', options.logLevel ?? 'info'];
    if (options.nats !== undefined) args.push('--nats', options.nats);
    const spawned = spawnTs('src/cli/gen-gateway.ts', args, options.env ?? {});
    try {
      const line = await spawned.logLine('gateway listening', 30_000);
      return new GatewayProcess(spawned, line.port as number, dir);
    } catch (err) {
      spawned.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  wsUrl(query = 'vsn=2.0.0'): string {
    return `ws://127.0.0.1:${this.port}/socket/websocket?${query}`;
  }

  /** The Phoenix client's endpoint URL (it appends /websocket). */
  get socketUrl(): string {
    return `ws://127.0.0.1:${this.port}/socket`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Graceful stop (SIGTERM), waiting for the exit. */
  async stop(): Promise<void> {
    this.process.kill('SIGTERM');
    await this.process.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Abrupt death (SIGKILL). */
  async kill(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.process.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
