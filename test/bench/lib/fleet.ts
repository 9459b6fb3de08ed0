/**
 * The processes of a gateway benchmark on loopback: a nats-server, the gateway under test
 * (test/bench/proc/gateway-main.ts, `startGateway` in its own process), `bench` workers and load
 * generators (each from its own source address 127.0.0.<n>: one process holds ~19k sockets and a
 * source/destination pair ~28k ephemeral ports). Everything is registered for cleanup.
 */
import type { GatewayConfig } from '../../../src/config/file.js';
import { NatsServer } from '../../support/nats.js';
import type { BenchContext } from '../types.js';
import { Child } from './ipc.js';
import { PhxSocket } from './phx-socket.js';
import { cpuMs, rssBytes } from './proc.js';
import { until } from '../../support/wait.js';

const PROC = new URL('../proc/', import.meta.url);

export interface FleetOptions {
  /** Bench workers (queue group). Default 1. */
  workers?: number;
  /** Generator processes. Default 1. */
  generators?: number;
  /** Gateway config (JSON-able); identity comes from connect params. */
  gateway?: GatewayConfig;
  /** Node flags for the gateway process (e.g. --cpu-prof). */
  gatewayNodeArgs?: string[];
  /** Start without NATS (an embedded gateway; no workers). */
  embedded?: boolean;
}

/** The shape of the one fleet a quick run shares between suites. */
export const SHARED = { workers: 1, generators: 2 } as const;
let shared: Promise<Fleet> | null = null;

export class Fleet {
  private constructor(
    readonly nats: NatsServer | null,
    readonly gateway: Child,
    readonly port: number,
    readonly workers: Child[],
    readonly generators: Child[],
  ) {}

  /**
   * The fleet for a suite. Full runs: its own, stopped when the suite ends. Quick runs (the
   * smoke): one fleet of SHARED's shape for every suite, started by the first that asks and
   * stopped when the run ends — process start-ups were most of the smoke's time. Suites close
   * what they open; each gets the fleet only once the gateway holds no socket (atRest), so one
   * that leaks fails the next loudly instead of skewing it.
   */
  static start(ctx: BenchContext, options: FleetOptions = {}): Promise<Fleet> {
    const deferToEnd = ctx.deferToEnd;
    const plain = !options.embedded && !options.gateway && !options.gatewayNodeArgs;
    if (!ctx.quick || !deferToEnd || !plain) return Fleet.launch((c) => ctx.defer(c), options);
    if ((options.workers ?? 1) > SHARED.workers || (options.generators ?? 1) !== SHARED.generators)
      throw new Error(
        `quick runs share one fleet of ${SHARED.workers} worker(s) and ${SHARED.generators} generators; asked for ${JSON.stringify(options)}`,
      );
    shared ??= Fleet.launch(deferToEnd, SHARED).catch((err: unknown) => {
      shared = null;
      throw err;
    });
    return shared.then(async (fleet) => {
      await fleet.atRest();
      return fleet;
    });
  }

  /** Until the gateway holds no socket or channel: what a suite finds in a shared fleet. */
  async atRest(): Promise<void> {
    let gauges: Record<string, number> = {};
    await until(
      async () => {
        gauges = await this.gauges();
        return gauges.sockets === 0 && gauges.channels === 0;
      },
      () => `an empty gateway (a suite left sockets open? gauges ${JSON.stringify(gauges)})`,
      { timeoutMs: 10_000, intervalMs: 20 },
    );
  }

  private static async launch(
    defer: (cleanup: () => unknown) => void,
    options: FleetOptions,
  ): Promise<Fleet> {
    const nats = options.embedded ? null : await NatsServer.start();
    if (nats) defer(() => nats.dispose());
    const env = {
      BENCH_NATS_URL: nats?.url ?? '',
      BENCH_GATEWAY_CONFIG: JSON.stringify(options.gateway ?? {}),
    };
    /** Forks one process and registers its stop; each resolves on the child's own "ready". */
    const start = async (
      file: string,
      fork: Parameters<typeof Child.fork>[1],
      graceMs?: number,
    ) => {
      const started = await Child.fork(new URL(file, PROC), fork);
      defer(() => started.child.stop(graceMs));
      return started;
    };
    // Workers, the gateway and the generators do not depend on each other (a worker and the
    // gateway only need NATS, which is up): they start together, each awaited on its ready event.
    const [workers, gateway, generators] = await Promise.all([
      Promise.all(
        Array.from({ length: options.embedded ? 0 : (options.workers ?? 1) }, async () => {
          const { child } = await start('worker-main.ts', { env });
          return child;
        }),
      ),
      start(
        'gateway-main.ts',
        { env, nodeArgs: ['--expose-gc', ...(options.gatewayNodeArgs ?? [])] },
        15_000,
      ),
      Promise.all(
        Array.from({ length: options.generators ?? 1 }, async (_, i) => {
          const { child } = await start(
            'generator-main.ts',
            { env: { ...env, BENCH_GENERATOR_ID: `g${i}` } },
            15_000,
          );
          return child;
        }),
      ),
    ]);
    const fleet = new Fleet(nats, gateway.child, gateway.ready.port as number, workers, generators);
    if (!options.embedded && workers.length > 0) await fleet.waitForService();
    return fleet;
  }

  /** The WebSocket endpoint with vsn 2 and a user id (the gen_api channel wants one). */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/socket/websocket?vsn=2.0.0&user_id=bench`;
  }

  /** Source address of generator `index` (127.0.0.2, 127.0.0.3, ...). */
  static sourceAddress(index: number): string {
    return `127.0.0.${2 + index}`;
  }

  get natsUrl(): string {
    if (!this.nats) throw new Error('no NATS in this fleet');
    return this.nats.url;
  }

  /** Until the gateway has discovered a worker and runs bench.echo (one probe request at a time). */
  async waitForService(timeoutMs = 20_000): Promise<void> {
    const socket = await PhxSocket.connect(this.wsUrl);
    try {
      await socket.join('gen_api', {});
      let attempt = 0;
      await until(
        () => {
          const requestId = `probe-${attempt++}`;
          return new Promise<boolean>((resolve) => {
            socket.onPush = (_topic, event, payload) => {
              const push = payload as { request_id?: string; success?: boolean };
              if (event === 'phoenix_gen_api' && push.request_id === requestId)
                resolve(push.success === true);
            };
            socket.push('phoenix_gen_api', {
              request_id: requestId,
              service: 'bench',
              request_type: 'echo',
              args: {},
            });
          });
        },
        'the gateway to run bench.echo (a worker discovered)',
        { timeoutMs, intervalMs: 20 },
      );
    } finally {
      await socket.close();
    }
  }

  gatewayCpuMs(): number {
    return cpuMs(this.gateway.pid);
  }

  gatewayRss(): number {
    return rssBytes(this.gateway.pid);
  }

  /** A full GC in the gateway, then its RSS (bytes) and heap figures. */
  gc(): Promise<{ rss: number; heapUsed: number; external: number; arrayBuffers: number }> {
    return this.gateway.call('gc');
  }

  gauges(): Promise<Record<string, number>> {
    return this.gateway.call('gauges');
  }

  /** Runs `command` on every generator with per-generator arguments. */
  onGenerators<T>(
    command: string,
    args: (index: number) => unknown,
    timeoutMs?: number,
  ): Promise<T[]> {
    return Promise.all(
      this.generators.map((generator, index) => generator.call<T>(command, args(index), timeoutMs)),
    );
  }
}

/** Splits `total` into `parts` near-equal integers. */
export function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}
