import type { Registry } from 'prom-client';
import type { WorkerState } from './lifecycle.js';

/**
 * How a call or stream ended, as metrics count it:
 * - `ok`: answered with a result (a stream: ended by its handler);
 * - `error`: the handler failed (5xx), or a stream failed;
 * - `client_error`: a 4xx answer (the handler's ServiceError 4xx, or arguments the SDK refused);
 * - `timeout`: past its deadline (504);
 * - `refused`: not run: draining or `maxConcurrent` reached (503);
 * - `cancelled`: a stream the gateway or client cancelled, or one cut by the drain deadline.
 */
export type CallOutcome = 'ok' | 'error' | 'client_error' | 'timeout' | 'refused' | 'cancelled';

/** The outcome of a reply `code` (200: ok). */
export function outcomeOf(code: number): CallOutcome {
  if (code === 200) return 'ok';
  if (code === 503) return 'refused';
  if (code === 504) return 'timeout';
  if (code >= 400 && code < 500) return 'client_error';
  return 'error';
}

/**
 * What `serve()` reports while it runs, for metrics. Null unless metrics were asked for, so the
 * hot path pays one null check per event otherwise. `fn` is the function's request type.
 */
export interface ServeObserver {
  /** A call (`stream` false) or stream started running. */
  started(fn: string, stream: boolean): void;
  /** It ended after `seconds`. */
  finished(fn: string, stream: boolean, outcome: CallOutcome, seconds: number): void;
  /** A call or stream answered without running (draining, full, bad arguments). */
  refused(fn: string, outcome: CallOutcome): void;
  /** A permission check answered. */
  permission(fn: string, allowed: boolean): void;
  /** The service's state changed. */
  state(state: WorkerState): void;
  /** The NATS connection is up (true) or down (false). */
  connected(up: boolean): void;
  /** The NATS connection came back. */
  reconnected(): void;
  /** The service stopped: release listeners. */
  close(): Promise<void>;
}

/**
 * `serve(service, { metrics })`: Prometheus metrics of this worker (names `gen_gateway_worker_*`,
 * README "Worker metrics"). prom-client is loaded only when this option is given.
 */
export interface WorkerMetricsOptions {
  /**
   * Serve the metrics over HTTP on this port (0: any free port; `running.metrics.url` tells).
   * Default: no listener; expose `running.metrics.registry` yourself.
   */
  port?: number;
  /** The listener's address. Default "127.0.0.1" (metrics stay on the host unless you say otherwise). */
  host?: string;
  /** The listener's path. Default "/metrics". */
  path?: string;
  /** A prom-client Registry to register in (shared with your own metrics). Default: a new one. */
  registry?: Registry;
  /**
   * Also collect Node's process metrics (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`,
   * …). Default true with the worker's own registry, false with yours (collect them once yourself).
   */
  processMetrics?: boolean;
}

/** The defaults of `WorkerMetricsOptions`. */
export const WORKER_METRICS_DEFAULTS = { host: '127.0.0.1', path: '/metrics' } as const;

/** A served service's metrics: `running.metrics` when `serve()` got the `metrics` option. */
export interface WorkerMetrics {
  /** The registry holding them (prom-client's `Registry`): `await registry.metrics()` is the text. */
  readonly registry: Registry;
  /** The HTTP listener's URL (`http://127.0.0.1:9464/metrics`), or null without one. */
  readonly url: string | null;
}
