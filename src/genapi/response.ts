import type { GenApiResponse } from './types.js';

/**
 * The 7-field Response pushed to clients (protocol/gen_api.md §Response). Key order is fixed so
 * every response has the same hidden class and serialises the same way.
 */
function response(
  requestId: unknown,
  result: unknown,
  success: boolean,
  error: unknown,
  isAsync: boolean,
  hasMore: boolean,
  canRetry: boolean,
): GenApiResponse {
  return {
    request_id: requestId,
    result,
    success,
    error,
    async: isAsync,
    has_more: hasMore,
    can_retry: canRetry,
  };
}

export const syncResponse = (requestId: unknown, result: unknown): GenApiResponse =>
  response(requestId, result, true, null, false, false, false);

/** The async ack (byte-identical to the stream end; clients know which they asked for). */
export const asyncResponse = (requestId: unknown): GenApiResponse =>
  response(requestId, null, true, null, true, false, false);

export const streamResponse = (
  requestId: unknown,
  result: unknown,
  hasMore = true,
): GenApiResponse => response(requestId, result, true, null, true, hasMore, false);

export const streamEndResponse = (requestId: unknown): GenApiResponse =>
  response(requestId, null, true, null, true, false, false);

export const errorResponse = (
  requestId: unknown,
  error: unknown,
  canRetry = false,
): GenApiResponse => response(requestId, null, false, error, false, false, canRetry);

/** The exact error strings clients see (PhoenixGenApi §1.7, plus the gateway's own). */
export const ERRORS = {
  authenticationRequired: 'Authentication required',
  invalidRequest: (message: string) => `Invalid request: ${message}`,
  processingFailed: 'Request processing failed',
  unsupported: (requestType: string, version: string | null) =>
    `unsupported function: ${requestType} version ${version ?? 'latest'}`,
  disabled: (requestType: string, version: string | null) =>
    `disabled function: ${requestType} version ${version ?? 'latest'}`,
  hookRejected: (reason: string) => `hook rejected: ${reason}`,
  permissionDenied: 'Permission denied',
  rateLimited: (seconds: number) => `Rate limit exceeded. Please retry after ${seconds} seconds.`,
  rateLimiterUnavailable: 'Rate limit service unavailable',
  unavailable: 'Service temporarily unavailable',
  internal: 'Internal Server Error',
  internalDetail: (detail: string) => `Internal Server Error: ${detail}`,
  streamTimeout: 'Stream timed out',
  streamInterrupted: 'Stream interrupted',
  unknownRequest: 'Unknown request',
} as const;
