import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Gateway, HttpRoute } from '../gateway.js';
import { sendPlain } from '../http/responses.js';

/**
 * The separate operations listener (`metrics.ops`): serves exactly the given paths (`/metrics`,
 * `/healthz`, `/readyz`) on its own host and port, nothing else (404), and closes with the
 * gateway. Resolves with the bound address.
 */
export async function startOpsListener(
  gateway: Gateway,
  routes: Readonly<Record<string, HttpRoute>>,
  where: { readonly host: string; readonly port: number },
): Promise<AddressInfo> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const route = routes[path];
    if (route === undefined) {
      sendPlain(res, 404, 'not found');
      return;
    }
    route(req, res, '').catch((err: unknown) => {
      gateway.logger.error({ err, path }, 'ops request failed');
      if (!res.headersSent) sendPlain(res, 500, 'internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  gateway.onClose(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const address = server.address() as AddressInfo;
  gateway.logger.info({ host: address.address, port: address.port }, 'ops listener up');
  return address;
}
