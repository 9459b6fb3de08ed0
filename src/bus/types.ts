import type { ResolvedFunConfig, ServiceInstance } from '../genapi/types.js';
import type { RequestMeta } from '../worker/context.js';

/** Where a call goes: a config, and an instance (null: any instance of the service). */
export interface CallTarget {
  readonly config: ResolvedFunConfig;
  readonly instance: ServiceInstance | null;
}

/**
 * Failures that say nothing about the function itself: nobody answered, the answer did not come
 * in time, the connection or the instance went away, or the instance asked to go elsewhere.
 * These are what retries and circuit breakers act on by default.
 */
export type TransportFailure =
  'no_responders' | 'timeout' | 'disconnected' | 'unavailable' | 'instance_lost' | 'cancelled';

export type CallOutcome =
  | { readonly ok: true; readonly result: unknown }
  | {
      readonly ok: false;
      readonly kind: 'business';
      readonly message: string;
      readonly code: number;
    }
  | {
      readonly ok: false;
      readonly kind: 'transport';
      readonly reason: TransportFailure;
      readonly message: string;
    };

export function transportFailure(reason: TransportFailure, message: string): CallOutcome {
  return { ok: false, kind: 'transport', reason, message };
}

/** Receives a stream's events after its start succeeded. Exactly one terminal call. */
export interface StreamSink {
  chunk(data: unknown): void;
  /** The final chunk (has_more false); terminal. */
  last(data: unknown): void;
  /** The end marker; terminal. */
  end(): void;
  /** The stream failed (worker error, gap, lost instance); terminal. */
  error(message: string): void;
}

/** The gateway's handle on a running stream. */
export interface StreamControl {
  /** Lets the worker send `credit` more chunks. */
  grant(credit: number): void;
  /** Stops the worker's stream (client left, cancelled, timed out). Idempotent. */
  cancel(): void;
}

export type Authorization = 'allowed' | 'denied' | 'unavailable';

export interface StreamStart {
  readonly outcome: CallOutcome;
  /** Present when the start succeeded. */
  readonly control: StreamControl | null;
}

/** How the executor reaches functions: in-process (LocalBus) or on NATS workers (NatsBus). */
export interface ServiceBus {
  /**
   * `raw`: the caller passes the result on unread, so a bus that receives it as JSON text may
   * return it as a RawJson (checked, not parsed); in-process buses return the value as it is.
   */
  call(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    timeoutMs: number,
    signal?: AbortSignal,
    raw?: boolean,
  ): Promise<CallOutcome>;
  stream(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    startTimeoutMs: number,
    initialCredit: number,
    sink: StreamSink,
    /** Chunks as RawJson where the bus can (see `call`). */
    raw?: boolean,
  ): Promise<StreamStart>;
  /**
   * The worker's own permission check (`permission_callback`). `unavailable`: nobody could make
   * the check (no responders, instance gone, NATS down) — another instance may; anything a
   * worker answers other than `true`, or no answer in time, is `denied` (fail-closed).
   */
  authorize(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Authorization>;
  /** Live instances of a service. */
  instances(service: string): readonly ServiceInstance[];
}
