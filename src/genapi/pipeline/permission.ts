/**
 * Step 3, permission: the built-in mode, then the worker's own check (fail-closed). Permission
 * sees the client's arguments as sent, before the rate limit and the argument checks: a denied
 * caller learns nothing about the argument schema (PhoenixGenApi's order).
 */
import type { Authorization } from '../../bus/types.js';
import { withDeadline } from '../../util/deadline.js';
import { checkPermission } from '../permission.js';
import { errorResponse, ERRORS } from '../response.js';
import type { GenApiResponse, ServiceInstance } from '../types.js';
import type { Dispatch } from './types.js';

/**
 * Whether the request may run. Most functions have no worker-side check: then the answer is
 * decided synchronously, with no promise. Instances that cannot be asked at all are skipped; when
 * none can, the answer is `unavailable`, not a denial.
 */
export function permission(dispatch: Dispatch): Authorization | Promise<Authorization> {
  const { config, request } = dispatch;
  if (!checkPermission(config.permission, request, request.args, config.argsAsMap)) return 'denied';
  if (!config.permissionCallback) return 'allowed';
  return askWorkers(dispatch);
}

/** The push for a request that may not run: `Permission denied`, or unavailable (can_retry). */
export function permissionRefused(
  answer: 'denied' | 'unavailable',
  requestId: unknown,
): GenApiResponse {
  return answer === 'denied'
    ? errorResponse(requestId, ERRORS.permissionDenied)
    : errorResponse(requestId, ERRORS.unavailable, true);
}

/** The worker's own permission check, on each instance in order until one can answer. */
async function askWorkers({ bus, config, request, meta, order }: Dispatch): Promise<Authorization> {
  const args = request.args;
  const candidates: (ServiceInstance | null)[] = order.length === 0 ? [null] : [...order];
  for (const instance of candidates) {
    const answer: Authorization = await withDeadline(
      bus.authorize({ config, instance }, meta, args, config.timeoutMs),
      config.timeoutMs,
      () => 'denied' as const,
    );
    if (answer !== 'unavailable') return answer;
  }
  return 'unavailable';
}
