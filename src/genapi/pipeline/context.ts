/**
 * What the pipeline's steps share: the executor's context (options, counters, call policy, the
 * relayed streams), built once, and what a worker learns about each request (its meta).
 */
import type { Logger } from 'pino';
import type { TimerWheel } from '../../util/timer-wheel.js';
import type { RequestMeta } from '../../worker/context.js';
import type { ArgLimits } from '../args/convert.js';
import type { CallPolicy } from './call-policy.js';
import type { GenApiRequest, ResolvedFunConfig } from '../types.js';
import type { StreamRegistry } from './relayed-stream.js';
import type { ExecutorOptions, ExecutorStats, RequestSink } from './types.js';

/** The executor as its steps see it (the Executor implements it; no per-request allocation). */
export interface PipelineContext {
  readonly options: ExecutorOptions;
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly stats: ExecutorStats;
  /** Argument limits (`argLimits`, default DEFAULT_ARG_LIMITS). */
  readonly limits: ArgLimits;
  /** Retries, fallbacks, breakers and bulkheads around each call. */
  readonly policy: CallPolicy;
  /** The streams being relayed, by owner and request_id. */
  readonly streams: StreamRegistry;
  /** "Internal Server Error", with the reason when detail_error is on. */
  internalError(detail: string): string;
}

/** What the worker learns about the request (its context), with the first attempt's deadline. */
export function requestMeta(
  gatewayId: string,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  sink: RequestSink,
): RequestMeta {
  return {
    origin: sink.owner,
    requestId: request.request_id,
    service: config.service,
    requestType: config.requestType,
    version: config.version,
    userId: request.user_id,
    deviceId: request.device_id,
    roles: request.user_roles ?? [],
    responseType: config.responseType,
    deadline: Date.now() + config.timeoutMs,
    gateway: gatewayId,
    trace: sink.trace ?? null,
  };
}
