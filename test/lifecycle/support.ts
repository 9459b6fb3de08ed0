/**
 * What the lifecycle tests share: the built CLI run as users run it (`node dist/...`), a raw
 * WebSocket upgrade that reports the refusal's status and body, and the phoenix client's gen_api
 * request as a promise.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { ROOT } from '../support/spawn.js';
import { deferred, until } from '../support/wait.js';

/** The newest modification time under `dir` (its .ts files), in ms. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Whether dist/ is older than src/ (or missing). */
function distStale(): boolean {
  const built = join(ROOT, 'dist', 'cli', 'gen-gateway.js');
  return !existsSync(built) || statSync(built).mtimeMs < newestSource(join(ROOT, 'src'));
}

/**
 * Builds dist/ (the built CLI is what `npm start` runs) when src/ is newer. The lifecycle files
 * build under one lock, so one file never runs the CLI while another rewrites it.
 */
export async function build(): Promise<void> {
  // Under dist/ (ignored by git): a lock left by a killed run shows up nowhere else.
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const lock = join(ROOT, 'dist', '.lifecycle-build.lock');
  await until(
    () => {
      try {
        mkdirSync(lock);
        return true;
      } catch {
        return false;
      }
    },
    'the lifecycle build lock',
    { timeoutMs: 240_000, intervalMs: 100 },
  );
  try {
    if (distStale()) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface BuiltProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** The first JSON log line on stdout whose msg is `msg`. */
  logLine(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

const running: ChildProcess[] = [];

/** `node <entry> ...args` from the repository root, as a user runs the built package. */
export function node(
  entry: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): BuiltProcess {
  return run(process.execPath, [entry, ...args], entry, env);
}

/** `npm start -- ...args` from the repository root: npm, its shell and the CLI, as the README says. */
export function npmStart(args: string[] = [], env: NodeJS.ProcessEnv = {}): BuiltProcess {
  return run('npm', ['start', '--', ...args], 'npm start', env);
}

function run(command: string, argv: string[], entry: string, env: NodeJS.ProcessEnv): BuiltProcess {
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', HOST: undefined, PORT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const find = (msg: string) => {
    for (const line of out.slice(0, out.lastIndexOf('\n') + 1).split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) return parsed;
    }
    return undefined;
  };
  return {
    child,
    output: () => `${out}${err}`,
    exited,
    logLine: (msg, timeoutMs = 30_000) =>
      until(
        () => {
          const found = find(msg);
          if (found) return found;
          if (child.exitCode !== null)
            throw new Error(`${entry} exited before "${msg}"; stdout: ${out} stderr: ${err}`);
          return undefined;
        },
        () => `"${msg}" from ${entry}; stdout: ${out} stderr: ${err}`,
        timeoutMs,
      ),
  };
}

/** Kills what `node()` started and is still running. */
export async function killAll(): Promise<void> {
  for (const child of running.splice(0).reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

/** GET `path` on the gateway: status and parsed JSON body (or the text). */
export async function get(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: res.status, body };
}

/**
 * A phoenix Socket whose every (re)connect goes to the next of `ports` in turn: a client that was
 * given several gateways and moves on when one goes away. `closes` records each close code.
 */
export function roamingSocket(
  ports: readonly number[],
  params: Record<string, string>,
): { socket: Socket; closes: number[]; connects: number[] } {
  const closes: number[] = [];
  const connects: number[] = [];
  let next = 0;
  class Roaming extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      const port = ports[next++ % ports.length]!;
      connects.push(port);
      super(url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`), protocols);
    }
  }
  const socket = new Socket(`ws://127.0.0.1:${ports[0]}/socket`, {
    transport: Roaming as unknown as TransportConstructor,
    params,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  });
  socket.onClose((event: unknown) => closes.push((event as { code: number }).code));
  return { socket, closes, connects };
}

/** A gen_api request on `channel`: resolves with the Response pushed for `request_id`. */
export function genApiCall(
  channel: Channel,
  requestId: string,
  requestType: string,
  args: object,
  service = 'demo',
): Promise<Record<string, unknown>> {
  const result = deferred<Record<string, unknown>>();
  const ref = channel.on('phoenix_gen_api', (pushed) => {
    const payload = pushed as Record<string, unknown>;
    if (payload.request_id !== requestId || payload.result === 'init') return;
    channel.off('phoenix_gen_api', ref);
    result.resolve(payload);
  });
  channel.push('phoenix_gen_api', {
    request_id: requestId,
    service,
    request_type: requestType,
    args,
  });
  return result.promise;
}

/**
 * Resolves once the server answered a heartbeat sent now: frames are handled in order, so every
 * push sent before it has been dispatched (a request is in flight, not in a buffer).
 */
export function roundTrip(socket: Socket): Promise<void> {
  const answered = deferred();
  if (!socket.ping(() => answered.resolve())) answered.reject(new Error('socket not connected'));
  return answered.promise;
}
