/** Step 1, lookup: the function's config for a request, or the answer when there is none. */
import type { Lookup } from '../config/registry.js';
import { errorResponse, ERRORS } from '../response.js';
import type { GenApiRequest, GenApiResponse } from '../types.js';
import type { PipelineContext } from './context.js';

/** The config the request names (service, request_type, version), or why there is none. */
export function lookup(ctx: PipelineContext, request: GenApiRequest): Lookup {
  return ctx.options.registry.resolve(request.service, request.request_type, request.version);
}

/**
 * The push for a function that is not there: `disabled function`, or `unsupported function` —
 * except while NATS is awaited, when a function not known yet may be on a worker the gateway
 * cannot see yet: then `Service temporarily unavailable` (can_retry).
 */
export function notFound(
  awaitingNats: ((service: string) => boolean) | null,
  reason: 'not_found' | 'disabled',
  request: GenApiRequest,
  requestId: unknown,
): GenApiResponse {
  if (reason !== 'disabled' && awaitingNats?.(request.service) === true)
    return errorResponse(requestId, ERRORS.unavailable, true);
  const message =
    reason === 'disabled'
      ? ERRORS.disabled(request.request_type, request.version)
      : ERRORS.unsupported(request.request_type, request.version);
  return errorResponse(requestId, message);
}
