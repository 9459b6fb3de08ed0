import type { ResponseType } from '../nats/fun-config.js';
import type { RequestTrace } from '../nats/trace-context.js';
import type { Logger } from 'pino';
import type { Broadcaster } from './pushes.js';
import type { StreamWriter } from './stream.js';

/** The request metadata a transport hands to the runtime (a handler sees it in its context). */
export interface RequestMeta {
  /** The client's `request_id`. */
  readonly requestId: string;
  /** The service called. */
  readonly service: string;
  /** The function called. */
  readonly requestType: string;
  /** The function version asked for, or null (latest). */
  readonly version: string | null;
  /** Identity from the gateway socket's auth (never from the client payload). */
  readonly userId: string | null;
  /** Device id from the gateway socket's auth. */
  readonly deviceId: string | null;
  /** Roles from the gateway socket's auth. */
  readonly roles: readonly string[];
  /** The function's response type. */
  readonly responseType: ResponseType;
  /** Epoch ms after which the gateway stops waiting (streams: for the start). */
  readonly deadline: number;
  /** The gateway node that sent the request (null in-process). */
  readonly gateway: string | null;
  /**
   * The request's trace (W3C trace context), or null/absent when it is untraced: on a worker, its
   * own span's when an OTel SDK is registered, else the caller's (protocol/nats.md §Headers).
   */
  readonly trace?: RequestTrace | null;
  /** In-process calls only (never sent over NATS): the gateway channel the request came on (relay groups use it). */
  readonly origin?: unknown;
}

/**
 * What a handler knows about the request it serves (besides its arguments), and what it can push
 * to clients meanwhile: `broadcast(topic, event, payload)` and `disconnect(socketId)` reach every
 * gateway (on NATS, over the worker's connection; in-process, through the gateway's PubSub).
 */
export interface RequestContext extends RequestMeta, Broadcaster {
  /** Aborted at the deadline, when the client cancels or leaves (streams), or on shutdown. */
  readonly signal: AbortSignal;
  /** Stream functions write their chunks here; each write waits for the gateway's credit. */
  readonly stream: StreamWriter;
  /**
   * The request's trace: `traceId`, `spanId` (the worker's span when an OTel SDK is registered,
   * else the caller's), `traceparent` and `tracestate`; null when the request is untraced.
   */
  readonly trace: RequestTrace | null;
  /**
   * A child of the worker's logger (`serve`'s `logger` option; in-process, the gateway's) whose
   * lines carry `request_id`, `service`, `function`, and `trace_id`/`span_id` when traced.
   */
  readonly logger: Logger;
}
