import type { Registry } from 'prom-client';
import type { HttpRoute } from '../gateway.js';
import { sendPlain } from '../http/responses.js';

/**
 * Serves `registry` in the Prometheus text format: GET and HEAD on the route's own path only,
 * never cached. A collector that fails turns into a 500 (the gateway's route handler logs it).
 */
export function metricsRoute(registry: Registry): HttpRoute {
  return async (req, res, subpath) => {
    if (subpath !== '' && subpath !== '/') {
      sendPlain(res, 404, 'not found');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendPlain(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      return;
    }
    const text = await registry.metrics();
    res.writeHead(200, {
      'content-type': registry.contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
