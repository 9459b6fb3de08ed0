import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Resolves with the first stdout JSON log line whose msg matches (default deadline 30 s: a
   * real process starting under tsx on a loaded 2-core machine). */
  logLine: (msg: string, timeoutMs?: number) => Promise<Record<string, unknown>>;
  kill: (signal?: NodeJS.Signals) => void;
}

/** Runs a TypeScript entry point of this repo with tsx (no build needed). */
export function spawnTs(entry: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const logLine = (msg: string, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        // Only complete lines: a chunk may end in the middle of one.
        for (const line of out.slice(0, out.lastIndexOf('\n') + 1).split('\n')) {
          if (!line.startsWith('{')) continue;
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed.msg === msg) {
            clearTimeout(timer);
            resolve(parsed);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no "${msg}" log line within ${timeoutMs} ms; stdout: ${out} stderr: ${err}`),
          ),
        timeoutMs,
      );
      if (!check()) listeners.push(() => void check());
      exited.then(
        () => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`process exited before "${msg}"; stdout: ${out} stderr: ${err}`));
          }
        },
        reject, // never happens: exited only resolves
      );
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    logLine,
    kill: (signal = 'SIGTERM') => child.kill(signal),
  };
}
