import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { PushAck } from '../../nats/messages.js';
import type { ServiceDefinition } from '../define.js';
import {
  RECONNECT_LOG_INTERVAL_MS,
  type WorkerState,
  type WorkerStateListener,
} from '../lifecycle.js';
import type { WorkerMetrics, WorkerMetricsOptions } from '../observer.js';
import type { Broadcaster } from '../pushes.js';

/** Options of `serve`. */
export interface ServeOptions {
  /** A connected NATS client (`connect()` from `@nats-io/transport-node`). */
  nats: NatsConnection;
  /** Subject prefix shared with the gateways. Default "genapi". */
  prefix?: string;
  /**
   * The deployment's push token (`genApi.pushToken` on the gateways, at least 16 characters):
   * config pushes, pull answers and the discovery metadata are signed with it, so gateways accept
   * this instance's config and version (protocol/nats.md §10). The token itself is never sent.
   */
  pushToken?: string | null;
  /** Push the config to every gateway on start. Default true. */
  pushOnStart?: boolean;
  /** How long a push collects gateway acknowledgements. Default 1000 ms. */
  pushTimeoutMs?: number;
  /** A stream that waits this long for the gateway's credit is cancelled. Default 30 000 ms. */
  creditTimeoutMs?: number;
  /**
   * How long `drain()`/`stop()` lets in-flight calls and streams finish; then calls are aborted
   * (`ctx.signal`) and streams end with an error. Default 10 000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * Push the config to every gateway again when the NATS connection comes back. Gateways reconnect
   * at their own pace: a push no gateway acknowledged is tried again after each of
   * `SERVE_DEFAULTS.reconnectPushRetryMs` (0.25 s … 4 s) until one does. Default true.
   */
  pushOnReconnect?: boolean;
  /**
   * While NATS is down, "still reconnecting to NATS" is logged at most this often (the loss and
   * the return are logged at once). Default 5 000 ms.
   */
  reconnectLogIntervalMs?: number;
  /** Called on every state change (from `starting` on); the same as `running.onStateChange`. */
  onStateChange?: WorkerStateListener;
  /**
   * Prometheus metrics (`gen_gateway_worker_*`) in a registry, optionally served over HTTP:
   * `{ port: 9464 }`. Default: none (prom-client is not even loaded).
   */
  metrics?: WorkerMetricsOptions;
  /**
   * Calls and streams this instance runs at once (a positive integer, or Infinity). More are
   * answered `503` (protocol/nats.md §5), so the gateway tries another instance at once and,
   * when every instance is full, tells the client `Service temporarily unavailable` (can_retry).
   * Permission checks and config pulls are not counted. Default 1000.
   */
  maxConcurrent?: number;
  /** A pino logger. Default: silent. */
  logger?: Logger;
}

/** The defaults of `serve` options. */
export const SERVE_DEFAULTS = {
  maxConcurrent: 1_000,
  drainTimeoutMs: 10_000,
  creditTimeoutMs: 30_000,
  pushTimeoutMs: 1_000,
  reconnectLogIntervalMs: RECONNECT_LOG_INTERVAL_MS,
  /** The waits before pushing again after a reconnect while no gateway has acknowledged. */
  reconnectPushRetryMs: [250, 500, 1_000, 2_000, 4_000],
} as const;

/** How long leaving NATS (unsubscribing) may take: while NATS is down it cannot be confirmed. */
export const LEAVE_TIMEOUT_MS = 2_000;

/**
 * A service being served over NATS. `broadcast(topic, event, payload)` and `disconnect(socketId)`
 * push to the gateways' clients over the worker's connection, in or outside requests
 * (protocol/nats.md §9); handlers have the same as `ctx.broadcast` / `ctx.disconnect`.
 */
export interface RunningService extends Broadcaster {
  /** The NATS micro service instance id (what `$SRV.PING` reports and gateways target). */
  readonly id: string;
  /** The service being served. */
  readonly definition: ServiceDefinition;
  /** Acknowledgements of the start-up push, one per gateway that answered. */
  readonly startupAcks: readonly PushAck[];
  /** Pushes the config to every gateway again; `force` replaces even an equal config version. */
  push(force?: boolean): Promise<PushAck[]>;
  /** Requests being handled right now. */
  readonly inflight: number;
  /** Where the service is in its life (README "Worker lifecycle"). */
  readonly state: WorkerState;
  /**
   * Settles when the service stops serving: resolves after a `drain()`/`stop()` you asked for,
   * rejects with WorkerClosedError when it ended any other way (its NATS connection closed for
   * good, the Services API stopped it). Await it so such an end fails your process.
   */
  readonly closed: Promise<void>;
  /** Calls `listener` on every state change; returns the function that removes it. */
  onStateChange(listener: WorkerStateListener): () => void;
  /** The service's Prometheus metrics, or null without the `metrics` option. */
  readonly metrics: WorkerMetrics | null;
  /**
   * Graceful stop: new calls are refused at once with `503` (gateways use another instance, or
   * tell clients `Service temporarily unavailable`, `can_retry`); in-flight calls and streams get
   * up to `drainTimeoutMs` to finish (then calls are aborted and streams end with an error); then
   * the service leaves discovery and NATS. Resolves when done (and `closed` resolves). The
   * connection stays open: close it (`nc.drain()`) after, or use `runWorker`, which does.
   */
  drain(): Promise<void>;
  /** The same as `drain()`. */
  stop(): Promise<void>;
}
