import type { ServerResponse } from 'node:http';
import type { Gateway, HttpRoute } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';

/** Paths of the probes `startGateway` serves (no token: they tell nothing but up or ready). */
export const PROBE_PATHS = { health: '/healthz', ready: '/readyz' } as const;

/**
 * Why a gateway is not ready (`/readyz` 503 body): `draining` from the moment `drain()` starts
 * (SIGTERM), `stopping` once it closes; `nats` while NATS is configured and not connected (at
 * start too: the gateway listens before NATS is up).
 */
export type NotReadyReason = 'not_listening' | 'draining' | 'stopping' | 'nats' | 'cluster';

function answer(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** GET and HEAD only: a probe that accepted anything else would hide a misrouted request. */
function probe(handle: (res: ServerResponse) => void): HttpRoute {
  return (req, res, subpath) => {
    if (subpath !== '' && subpath !== '/') answer(res, 404, { error: 'not found' });
    else if (req.method !== 'GET' && req.method !== 'HEAD')
      answer(res, 405, { error: 'method not allowed' });
    else handle(res);
    return Promise.resolve();
  };
}

/** What keeps the gateway from serving now (empty: ready). */
export function notReady(gateway: Gateway, genApi: GenApi): NotReadyReason[] {
  const reasons: NotReadyReason[] = [];
  if (gateway.address === null) reasons.push('not_listening');
  if (gateway.isDraining) reasons.push('draining');
  else if (gateway.stopping) reasons.push('stopping');
  const link = genApi.nats;
  if (genApi.natsPending || (link !== null && !link.connected)) reasons.push('nats');
  const cluster = gateway.clusterHealth();
  if (cluster !== null && !cluster.connected) reasons.push('cluster');
  return reasons;
}

/**
 * Kubernetes-style probes: `/healthz` answers 200 while the process serves HTTP at all;
 * `/readyz` answers 200 when the gateway listens, is not stopping and its NATS link and cluster
 * connection (when configured) are up, else 503 with the reasons. The admin health report, which
 * says much more, stays behind its token.
 */
export function probeRoutes(
  gateway: Gateway,
  genApi: GenApi,
): { health: HttpRoute; ready: HttpRoute } {
  return {
    health: probe((res) => answer(res, 200, { status: 'ok' })),
    ready: probe((res) => {
      const reasons = notReady(gateway, genApi);
      if (reasons.length === 0) answer(res, 200, { status: 'ready' });
      else answer(res, 503, { status: 'not_ready', reasons });
    }),
  };
}
