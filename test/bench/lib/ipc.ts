/**
 * Request/response over a forked child's IPC channel: the bench process drives its gateway,
 * generator and worker processes with typed commands and awaits their answers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Request {
  readonly id: number;
  readonly cmd: string;
  readonly args: unknown;
}

interface Response {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

/** Messages a child sends on its own (not answers): `{event, ...}`. */
export interface ChildEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

/** A forked process that answers commands. */
export class Child {
  private next = 1;
  private readonly pending = new Map<
    number,
    { resolve(value: unknown): void; reject(err: Error): void }
  >();
  private readonly listeners = new Set<(event: ChildEvent) => void>();
  readonly exited: Promise<number | string>;
  stderr = '';

  private constructor(readonly process: ChildProcess) {
    process.on('message', (message: unknown) => {
      const response = message as Partial<Response> & Partial<ChildEvent>;
      if (typeof response.id === 'number') {
        const waiter = this.pending.get(response.id);
        if (!waiter) return;
        this.pending.delete(response.id);
        if (response.ok) waiter.resolve(response.value);
        else waiter.reject(new Error(response.error ?? 'child command failed'));
      } else if (typeof response.event === 'string') {
        for (const listener of this.listeners) listener(response as ChildEvent);
      }
    });
    process.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-20_000);
    });
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        for (const waiter of this.pending.values())
          waiter.reject(new Error(`child exited (${code ?? signal}): ${this.stderr.slice(-2000)}`));
        this.pending.clear();
        resolve(code ?? signal ?? -1);
      });
    });
  }

  /**
   * Forks `entry` (a .ts file under test/bench, run with tsx). `nodeArgs` go before it (e.g.
   * --expose-gc, --cpu-prof); the child must call `serveCommands` and send `{event: 'ready'}`.
   */
  static async fork(
    entry: URL,
    options: {
      args?: string[];
      nodeArgs?: string[];
      env?: NodeJS.ProcessEnv;
      readyTimeoutMs?: number;
    } = {},
  ): Promise<{ child: Child; ready: ChildEvent }> {
    const proc = fork(fileURLToPath(entry), options.args ?? [], {
      execArgv: [...(options.nodeArgs ?? []), '--import', 'tsx'],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const child = new Child(proc);
    try {
      const ready = await child.waitFor('ready', options.readyTimeoutMs ?? 30_000);
      return { child, ready };
    } catch (err) {
      // Not ready: nobody will stop it, so it must not linger.
      proc.kill('SIGKILL');
      throw err;
    }
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  on(listener: (event: ChildEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  waitFor(event: string, timeoutMs: number): Promise<ChildEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new Error(
            `no "${event}" from child ${this.pid} within ${timeoutMs} ms: ${this.stderr.slice(-2000)}`,
          ),
        );
      }, timeoutMs);
      const off = this.on((message) => {
        if (message.event !== event) return;
        clearTimeout(timer);
        off();
        resolve(message);
      });
      this.exited.then(
        (code) => {
          clearTimeout(timer);
          off();
          reject(
            new Error(`child exited (${code}) before "${event}": ${this.stderr.slice(-2000)}`),
          );
        },
        // `exited` never rejects; a handler all the same, so no rejection can go unheard.
        (err: unknown) => reject(err as Error),
      );
    });
  }

  call<T>(cmd: string, args: unknown = null, timeoutMs = 600_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`"${cmd}" on child ${this.pid} took over ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.process.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Asks the child to stop (`stop` command), then kills it if it lingers. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    try {
      await this.call('stop', null, graceMs).catch(() => undefined);
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export type Handlers = Record<string, (args: never) => unknown>;

/** In a child: answers the parent's commands with `handlers`; `stop` exits after answering. */
export function serveCommands(
  handlers: Handlers,
  onStop: () => Promise<void> | void = () => undefined,
): void {
  process.on('message', (message: unknown) => {
    const { id, cmd, args } = message as Request;
    const reply = (response: Response, sent?: () => void): void => {
      if (process.send) process.send(response, undefined, {}, () => sent?.());
      else sent?.();
    };
    if (cmd === 'stop') {
      // Exits once the answer has been handed to the IPC channel (its send callback).
      Promise.resolve()
        .then(onStop)
        .catch(() => undefined)
        .finally(() => reply({ id, ok: true }, () => process.exit(0)))
        .catch(() => process.exit(1));
      return;
    }
    const handler = handlers[cmd];
    if (!handler) {
      reply({ id, ok: false, error: `unknown command ${cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(args as never))
      .then(
        (value) => reply({ id, ok: true, value }),
        (err: unknown) => reply({ id, ok: false, error: (err as Error).stack ?? String(err) }),
      );
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => process.exit(0));
}

/** In a child: tells the parent something (not an answer). */
export function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.send?.({ event, ...fields });
}
