/**
 * The executor's ports and options: where its answers go (RequestSink), what decides rate limits
 * (RateLimitGate), and what it is built from (ExecutorOptions). The pipeline's steps share them.
 */
import type { Logger } from 'pino';
import type { ServiceBus } from '../../bus/types.js';
import type { RequestMeta } from '../../worker/context.js';
import type { Telemetry } from '../../telemetry/events.js';
import type { RequestTrace, TraceContext } from '../../nats/trace-context.js';
import type { TimerWheel } from '../../util/timer-wheel.js';
import type { ArgLimits } from '../args/convert.js';
import type { ConfigRegistry } from '../config/registry.js';
import type { HookRegistry } from '../hooks.js';
import type { Resilience } from '../resilience.js';
import type { NodeSelector } from '../select/node-selector.js';
import type {
  GenApiRequest,
  GenApiResponse,
  ResolvedFunConfig,
  ServiceInstance,
} from '../types.js';

/** Where the executor sends what the client gets: pushes on the gen_api event, and one reply. */
export interface RequestSink {
  /** Groups requests for cancel-by-request_id (the channel they came on). */
  readonly owner: object;
  push(response: GenApiResponse): void;
  /** The phx_reply: `{status, response}`; called exactly once per request. */
  reply(status: 'ok' | 'error', response: string): void;
  /** Aborted when the client can no longer receive (left the channel, disconnected). */
  readonly signal: AbortSignal;
  /** Whether the client's connection can take more stream chunks now. */
  writable(): boolean;
  /** Resolves when the connection can take more (or the signal aborts). */
  whenWritable(): Promise<void>;
  /** The client's IP and connection id, for rate limits keyed on them. */
  readonly rateContext?: RateContext;
  /** Called once the executor is done with the request (after its reply and last push). */
  settled?(): void;
  /** The trace context the client sent (request field or join param), or null. */
  readonly clientTrace?: TraceContext | null;
  /** The request's trace (its span) when traced: what its worker calls continue. */
  readonly trace?: RequestTrace | null;
  /** Called when a relayed stream of this request ends, whatever the reason. */
  streamEnded?(): void;
  /**
   * True when pushes go to the client through the frame encoder, which puts a RawJson result
   * (a worker's JSON text, checked but not parsed) into the frame as it came. A sink that reads
   * results itself leaves it unset and gets parsed values.
   */
  readonly rawResults?: boolean;
}

/** What rate limits key on besides the request: the client's IP and connection. */
export interface RateContext {
  /** The client's IP, or null (in-process). */
  readonly ip: string | null;
  /** The connection id, or null. */
  readonly socketId: string | null;
}

/**
 * Decides whether a gen_api request may run: the port the executor checks before every request.
 * The built-in limits (`rateLimits`, src/ratelimit) implement it; `GenApiOptions.rateLimiter` takes
 * a custom one.
 */
export interface RateLimitGate {
  /** Decides one request; may be async (strict limits ask a store). */
  check(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    context: RateContext,
  ): RateDecision | Promise<RateDecision>;
}
/**
 * A `RateLimitGate`'s answer: allowed, denied with a retry time, or unavailable (the limits' store
 * could not decide).
 */
export type RateDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number; readonly details?: object }
  | { readonly allowed: false; readonly unavailable: true; readonly details?: object };

/** The rate context of a sink that has none (in-process callers). */
export const NO_CONTEXT: RateContext = { ip: null, socketId: null };

/** What an Executor is built from (GenApi supplies it). */
export interface ExecutorOptions {
  /** Function configs, looked up per request (step 1). */
  readonly registry: ConfigRegistry;
  /** Bus for configs with `nodes: "local"`. */
  readonly local: ServiceBus;
  /** Bus for configs with `nodes: "nats"`; null without NATS. */
  nats: ServiceBus | null;
  /** Orders a function's instances per request (its `choose_node_mode`). */
  readonly selector: NodeSelector;
  /** Named before/after hooks. */
  readonly hooks: HookRegistry;
  /** Breakers' and bulkheads' state (the CallPolicy runs calls through them). */
  readonly resilience: Resilience;
  /** Times relayed streams out when idle. */
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  /** This gateway's id, in what a worker learns about each request. */
  readonly gatewayId: string;
  /** Limits of argument conversion. Default DEFAULT_ARG_LIMITS (args/convert.ts). */
  readonly argLimits?: ArgLimits;
  /** Show failure reasons to clients ("Internal Server Error: <reason>"). Default false. */
  readonly detailError?: boolean;
  /** Decides rate limits before the argument checks (step 4). Default: none, every request runs. */
  readonly rateLimiter?: RateLimitGate | null;
  /** Initial stream credit; the gateway tops it up as the client drains. Default 32. */
  readonly streamCredit?: number;
  /** Where `genapi_request` events go (the gateway's telemetry). Default: none. */
  readonly telemetry?: Telemetry;
}

/** Executor counters for metrics and leak checks. */
export interface ExecutorStats {
  /** Requests running now. */
  inflight: number;
  /** Streams being relayed now. */
  streams: number;
  /** Requests received since start. */
  requests: number;
  /** Requests failed since start. */
  failures: number;
}

/** One request on its way to a function: everything the dispatch steps share. */
export interface Dispatch {
  readonly bus: ServiceBus;
  readonly config: ResolvedFunConfig;
  readonly request: GenApiRequest;
  readonly meta: RequestMeta;
  /** Instances in selection order, computed once per request. */
  readonly order: readonly ServiceInstance[];
  readonly requestId: unknown;
  readonly sink: RequestSink;
  /** The instance the last attempt went to (null: the queue group, or none yet). */
  readonly tried: { instanceId: string | null };
}
