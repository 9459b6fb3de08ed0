import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { HttpRoute } from '../gateway.js';
import { sendPlain } from '../http/responses.js';
import { isLoopbackPeer } from './access.js';
import {
  DASHBOARD_CSS,
  DASHBOARD_ICON,
  DASHBOARD_JS,
  dashboardHtml,
  type PageAuth,
} from './page.js';

/**
 * Served with every dashboard response: nothing but this origin's own scripts, styles and socket
 * (`connect-src 'self'` covers ws/wss to the same host), no inline code, no framing.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/**
 * The `phoenix` package's ES module build, as installed (a runtime dependency): resolved through
 * Node's resolution from this file, so the page runs exactly the client the gateway is tested with.
 */
export function phoenixModulePath(): string {
  // The package exports its CommonJS build to require(); the ES build sits next to it.
  const commonJs = createRequire(import.meta.url).resolve('phoenix');
  return join(dirname(commonJs), 'phoenix.mjs');
}

let phoenixSource: Promise<string> | null = null;

function send(res: ServerResponse, head: boolean, type: string, body: string): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
  });
  res.end(head ? undefined : body);
}

/**
 * `GET <path>` (the page), `<path>/app.js`, `<path>/app.css`, `<path>/icon.svg` and
 * `<path>/phoenix.mjs`. The page
 * holds no data (that comes over the socket, after its connect hook), yet in loopback mode it is
 * refused to non-local peers too, so a demo on a LAN address does not advertise it.
 */
export function dashboardRoute(path: string, socketPath: string, auth: PageAuth): HttpRoute {
  const html = dashboardHtml(path, socketPath, auth);
  return async (req, res, subpath) => {
    if (auth === 'loopback' && !isLoopbackPeer(req.socket.remoteAddress)) {
      sendPlain(res, 403, 'the dashboard is open to loopback clients only', SECURITY_HEADERS);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendPlain(res, 405, 'method not allowed', { ...SECURITY_HEADERS, allow: 'GET, HEAD' });
      return;
    }
    const head = req.method === 'HEAD';
    switch (subpath) {
      case '':
      case '/':
        send(res, head, 'text/html', html);
        return;
      case '/app.js':
        send(res, head, 'text/javascript', DASHBOARD_JS);
        return;
      case '/app.css':
        send(res, head, 'text/css', DASHBOARD_CSS);
        return;
      case '/icon.svg':
        send(res, head, 'image/svg+xml', DASHBOARD_ICON);
        return;
      case '/phoenix.mjs': {
        phoenixSource ??= readFile(phoenixModulePath(), 'utf8');
        let source: string;
        try {
          source = await phoenixSource;
        } catch (err) {
          phoenixSource = null;
          throw err;
        }
        send(res, head, 'text/javascript', source);
        return;
      }
      default:
        sendPlain(res, 404, 'not found', SECURITY_HEADERS);
    }
  };
}
