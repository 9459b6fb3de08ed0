/**
 * Runs test/support/genapi-worker-main.ts as a separate process (tsx), so fault tests can kill a
 * real worker (SIGKILL) or cut its NATS connection (SIGUSR2) and see whether the process lives.
 */
import { spawnTs, type Spawned } from './spawn.js';
import { until, WAIT_MS } from './wait.js';

export interface WorkerProcess {
  readonly id: string;
  readonly label: string;
  readonly proc: Spawned;
  /** Request ids whose handler started in this process, in order. */
  calls(requestType?: string): string[];
  /** SIGKILL, waiting for the exit. */
  kill(): Promise<void>;
  /** Resolves once the handler of `requestId` has returned or thrown in this process. */
  settled(requestId: string): Promise<void>;
  /**
   * Resolves once the process answers a SIGWINCH (it is alive and its event loop runs), with the
   * chunks its stream handlers have written so far, by request id.
   */
  answers(): Promise<Record<string, number>>;
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
  let asked = 0;
  proc.exited.then(
    () => (exited = true),
    () => (exited = true),
  );
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
    async settled(requestId) {
      await until(
        () => lines(proc.stdout()).some((l) => l.msg === 'settled' && l.request_id === requestId),
        `the handler of ${requestId} to settle in ${label}`,
      );
    },
    async answers() {
      const n = ++asked;
      proc.kill('SIGWINCH');
      const answer = await until(() => {
        if (exited) throw new Error(`${label} exited; stderr: ${proc.stderr().slice(0, 800)}`);
        return lines(proc.stdout()).find((l) => l.msg === 'alive' && l.n === n);
      }, `${label} to answer SIGWINCH`);
      return answer.written as Record<string, number>;
    },
    async kill() {
      if (exited) return;
      proc.kill('SIGKILL');
      await proc.exited;
    },
    async closeConnection() {
      proc.kill('SIGUSR2');
      await proc.logLine('connection closed', WAIT_MS).catch(() => undefined);
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
