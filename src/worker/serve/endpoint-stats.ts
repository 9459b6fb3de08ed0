import type { Service } from '@nats-io/services';

/** The fields of @nats-io/services' per-endpoint statistics (`$SRV.STATS`) the SDK keeps true. */
export interface EndpointStats {
  num_requests: number;
  processing_time: number;
  average_processing_time: number;
  num_errors: number;
  last_error?: string;
}

/**
 * @nats-io/services times an endpoint only while its handler runs synchronously and counts an
 * error only when the handler throws, but SDK handlers answer later. This finds the endpoint's
 * statistics (library internals, checked at run time; null if their shape changes) so each reply
 * is accounted when it is sent: processing time, and errors for error replies.
 */
export function endpointStats(service: Service, name: string): EndpointStats | null {
  const handlers = (service as unknown as { handlers?: unknown }).handlers;
  if (!Array.isArray(handlers)) return null;
  const stats = (handlers as { name?: unknown; stats?: unknown }[]).find((h) => h.name === name)
    ?.stats as Partial<EndpointStats> | undefined;
  if (
    !stats ||
    typeof stats.num_errors !== 'number' ||
    typeof stats.processing_time !== 'number' ||
    typeof stats.num_requests !== 'number'
  )
    return null;
  return stats as EndpointStats;
}

export function account(
  stats: EndpointStats | null,
  startedAt: number,
  error: string | null,
): void {
  if (!stats) return;
  // The library already counted the request (num_requests) when its handler returned.
  stats.processing_time += Math.max(0, Date.now() - startedAt) * 1_000_000;
  stats.average_processing_time =
    stats.num_requests > 0 ? Math.round(stats.processing_time / stats.num_requests) : 0;
  if (error !== null) {
    stats.num_errors++;
    stats.last_error = error;
  }
}
