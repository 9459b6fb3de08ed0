/**
 * Where a call's outcome becomes the client's push: the worker's result (the one place it turns
 * into a Response), the function's own error, or a transport failure.
 */
import type { CallOutcome, TransportFailure } from '../../bus/types.js';
import { traceLogFields } from '../../nats/trace-otel.js';
import { markTimedOut } from '../request-telemetry.js';
import { errorResponse, ERRORS, syncResponse } from '../response.js';
import type { GenApiResponse, ResolvedFunConfig } from '../types.js';
import type { PipelineContext } from './context.js';
import type { Dispatch } from './types.js';
import type { RequestTrace } from '../../nats/trace-context.js';

/** Error codes whose message the client sees as-is (404 and 503 are transport signals). */
export function isClientError(code: number): boolean {
  return code >= 400 && code < 500 && code !== 404;
}

/** Failures where the function surely did not run: the client may retry later. */
const NOT_EXECUTED = new Set<TransportFailure>(['no_responders', 'unavailable', 'disconnected']);

/**
 * The push for a call through the CallPolicy: its outcome's Response, or `Service temporarily
 * unavailable` (can_retry) when it was refused before running (null: bulkhead full, breaker open).
 */
export function callResponse(
  ctx: PipelineContext,
  outcome: CallOutcome | null,
  { requestId, config, sink }: Dispatch,
): GenApiResponse {
  if (outcome === null) return errorResponse(requestId, ERRORS.unavailable, true);
  return responseOf(ctx, outcome, requestId, config, sink.trace);
}

/**
 * The one place a worker's result becomes the client's Response: a sync or async call's result,
 * and a stream's start (which the stream's first push nests). Stream chunks are pushed by
 * RelayedStream as they come.
 */
export function resultResponse(requestId: unknown, result: unknown): GenApiResponse {
  return syncResponse(requestId, result);
}

/** The Response for a call's outcome; failures count in `stats.failures`. */
export function responseOf(
  ctx: PipelineContext,
  outcome: CallOutcome,
  requestId: unknown,
  config: ResolvedFunConfig,
  trace: RequestTrace | null | undefined,
): GenApiResponse {
  if (outcome.ok) return resultResponse(requestId, outcome.result);
  ctx.stats.failures++;
  if (outcome.kind === 'business') {
    // 4xx from the function are meant for the client (relay's "Group not found", a worker's
    // "invalid coupon"); anything else stays behind "Internal Server Error".
    if (isClientError(outcome.code)) return errorResponse(requestId, outcome.message);
    return errorResponse(requestId, ctx.internalError(outcome.message));
  }
  ctx.logger.warn(
    {
      requestId,
      service: config.service,
      requestType: config.requestType,
      reason: outcome.reason,
      message: outcome.message,
      ...traceLogFields(trace),
    },
    'call failed',
  );
  // Nothing ran (no worker, instance draining, NATS down): safe to retry later.
  if (NOT_EXECUTED.has(outcome.reason)) return errorResponse(requestId, ERRORS.unavailable, true);
  const response = errorResponse(requestId, ctx.internalError(outcome.message));
  return outcome.reason === 'timeout' ? markTimedOut(response) : response;
}
