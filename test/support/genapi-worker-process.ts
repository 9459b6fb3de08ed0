/**
 * Runs test/support/genapi-worker-main.ts as a separate process (tsx), so fault tests can kill a
 * real worker (SIGKILL) or cut its NATS connection (SIGUSR2) and see whether the process lives.
 */
import { spawnTs, type Spawned } from './spawn.js';

export interface WorkerProcess {
  readonly id: string;
  readonly label: string;
  readonly proc: Spawned;
  /** Request ids whose handler started in this process, in order. */
  calls(requestType?: string): string[];
  /** SIGKILL, waiting for the exit. */
  kill(): Promise<void>;
  /** SIGUSR2: the worker closes its NATS connection and keeps running. */
  closeConnection(): Promise<void>;
  /** SIGTERM (graceful), waiting for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  readonly alive: boolean;
}

function lines(out: string): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = [];
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      parsed.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial line
    }
  }
  return parsed;
}

export async function startWorkerProcess(
  natsUrl: string,
  service: 'streams' | 'slowsvc',
  label: string = service,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const proc = spawnTs('test/support/genapi-worker-main.ts', [], {
    NATS_URL: natsUrl,
    WORKER_SERVICE: service,
    WORKER_LABEL: label,
    ...env,
  });
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const ready = await proc.logLine('ready', 20_000);
  return {
    id: String(ready.id),
    label,
    proc,
    calls: (requestType) =>
      lines(proc.stdout())
        .filter(
          (l) => l.msg === 'call' && (requestType === undefined || l.request_type === requestType),
        )
        .map((l) => String(l.request_id)),
    async kill() {
      if (exited) return;
      proc.kill('SIGKILL');
      await proc.exited;
    },
    async closeConnection() {
      proc.kill('SIGUSR2');
      await proc.logLine('connection closed', 5_000).catch(() => undefined);
    },
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await proc.exited;
      clearTimeout(timer);
    },
    get alive() {
      return !exited;
    },
  };
}
