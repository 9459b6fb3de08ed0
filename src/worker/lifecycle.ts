import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';

/**
 * Where a served service is in its life:
 * - `starting`: `serve()` is registering it and pushing its config;
 * - `serving`: it takes calls;
 * - `reconnecting`: its NATS connection is down and the client is reconnecting (for ever with
 *   `connectWorker`); calls resume, and the config is pushed again, when it is back;
 * - `draining`: `drain()`/`stop()` was called: new calls are refused (503), running ones finish;
 * - `stopped`: it serves nothing any more (after a drain, or because it ended: see `closed`).
 */
export type WorkerState = 'starting' | 'serving' | 'reconnecting' | 'draining' | 'stopped';

/** One state change of a served service, as `onStateChange` listeners see it. */
export interface WorkerStateChange {
  /** The new state. */
  readonly state: WorkerState;
  /** The state before. */
  readonly previous: WorkerState;
  /** Why, in words (for logs): "NATS connection lost", "drain requested", … */
  readonly reason: string;
  /** For a `stopped` that nobody asked for: what ended the service. */
  readonly error?: WorkerClosedError;
}

/**
 * A served service ended without `drain()`/`stop()` being called: its NATS connection closed for
 * good (closed by the application, the server, revoked credentials, reconnect attempts exhausted)
 * or the NATS Services API stopped it. `running.closed` rejects with it; `cause` is the
 * underlying error when there is one.
 */
export class WorkerClosedError extends GatewayError {
  override readonly name = 'WorkerClosedError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_WORKER_CLOSED', message, options);
  }
}

/**
 * The moves a served service makes, from each state: `starting` ends `serving` (or `reconnecting`
 * when NATS dropped meanwhile), or `stopped` when it ended before; NATS drops and returns move
 * between `serving` and `reconnecting`; a drain moves either to `draining`, then `stopped`; an
 * end nobody asked for goes to `stopped` from anywhere. Nothing leaves `stopped`.
 */
export const WORKER_TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  starting: ['serving', 'reconnecting', 'stopped'],
  serving: ['reconnecting', 'draining', 'stopped'],
  reconnecting: ['serving', 'draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

/** Receives state changes; a throwing listener is logged, never breaks the service. */
export type WorkerStateListener = (change: WorkerStateChange) => void;

/**
 * The state machine of one served service: its current state, its listeners and the `closed`
 * promise, which resolves after a drain someone asked for and rejects with WorkerClosedError on
 * any other end. The rejection is observed here, so a worker that never looks at `closed` gets no
 * unhandled rejection (it is told through its logger and the listeners instead).
 */
export class Lifecycle {
  private current: WorkerState = 'starting';
  private readonly listeners = new Set<WorkerStateListener>();
  private settle!: (error: WorkerClosedError | null) => void;
  /** Resolves after a requested drain; rejects with WorkerClosedError otherwise. */
  readonly closed: Promise<void>;

  constructor(private readonly logger: Logger) {
    this.closed = new Promise<void>((resolve, reject) => {
      this.settle = (error) => (error === null ? resolve() : reject(error));
    });
    this.closed.catch(() => undefined);
  }

  get state(): WorkerState {
    return this.current;
  }

  /** Adds a listener; returns the function that removes it. */
  listen(listener: WorkerStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether `state` is a move from the current state (WORKER_TRANSITIONS). */
  can(state: WorkerState): boolean {
    return WORKER_TRANSITIONS[this.current].includes(state);
  }

  /**
   * Moves to `state` when that is a move from the current state (WORKER_TRANSITIONS); otherwise a
   * no-op: already there, stopped, or e.g. a connection back while draining (it stays draining).
   */
  set(state: WorkerState, reason: string, error?: WorkerClosedError): void {
    const previous = this.current;
    if (!this.can(state)) return;
    this.current = state;
    const change: WorkerStateChange =
      error === undefined ? { state, previous, reason } : { state, previous, reason, error };
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.logger.error({ err }, 'worker state listener failed');
      }
    }
  }

  /** The end: `stopped`, and `closed` settles (null: a requested drain). */
  end(reason: string, error: WorkerClosedError | null): void {
    if (this.current === 'stopped') return;
    this.set('stopped', reason, error ?? undefined);
    this.settle(error);
  }
}

/** What `watchConnection` tells its owner. */
export interface ConnectionEvents {
  /** The connection dropped; the client reconnects. */
  disconnected(): void;
  /** The connection is back after `attempts` attempts and `downMs`. */
  reconnected(attempts: number, downMs: number): void;
  /** The connection closed for good (`error`: why, when nats.js says). */
  closed(error: Error | null): void;
}

/** The defaults of the connection watch: how often "still reconnecting" is logged. */
export const RECONNECT_LOG_INTERVAL_MS = 5_000;

/**
 * Follows `nc`'s status and closing. Logs the loss at once (warn), then "still reconnecting to
 * NATS" at most once per `logIntervalMs` however fast the client retries, and the return (info)
 * with the attempts and the time it was down. Returns the function that stops watching.
 */
export function watchConnection(
  nc: NatsConnection,
  logger: Logger,
  events: ConnectionEvents,
  logIntervalMs: number = RECONNECT_LOG_INTERVAL_MS,
): () => void {
  let downSince = 0;
  let attempts = 0;
  let lastLog = 0;
  let stopped = false;
  const statuses = nc.status();
  void (async () => {
    for await (const status of statuses) {
      if (status.type === 'disconnect') {
        downSince = Date.now();
        attempts = 0;
        lastLog = downSince;
        logger.warn({ server: status.server }, 'NATS connection lost; reconnecting');
        events.disconnected();
      } else if (status.type === 'reconnecting') {
        attempts++;
        const now = Date.now();
        if (now - lastLog >= logIntervalMs) {
          lastLog = now;
          logger.warn({ attempts, downMs: now - downSince }, 'still reconnecting to NATS');
        }
      } else if (status.type === 'reconnect') {
        const downMs = downSince === 0 ? 0 : Date.now() - downSince;
        logger.info({ server: status.server, attempts, downMs }, 'NATS connection back');
        events.reconnected(attempts, downMs);
        downSince = 0;
      }
    }
  })().catch((err: unknown) => logger.error({ err }, 'NATS status watch failed'));
  nc.closed().then(
    (err) => {
      if (!stopped) events.closed(err ?? null);
    },
    (err: unknown) => {
      if (!stopped) events.closed(err instanceof Error ? err : null);
    },
  );
  return () => {
    stopped = true;
    // nats.js's status iterator has stop() (not in its declared type); it ends the loop above.
    (statuses as { stop?: () => void }).stop?.();
  };
}
