/**
 * How the gateway's HTTP server hands a request or an upgrade to a route or a socket mount
 * (`Gateway.handleRequest`, `Gateway.handleUpgrade`); anything else is left to the caller.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Assigns } from './channel/types.js';
import type { HttpRoute } from './gateway.js';
import { rejectUpgrade, sendPlain } from './http/responses.js';
import type { Logger } from './log/logger.js';
import type { SocketMount } from './socket/mount.js';

function splitUrl(url: string | undefined): { path: string; query: string } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

/** Serves a plain HTTP request from a route or a mount; returns false when none matches. */
export function dispatchRequest(
  routes: readonly { readonly prefix: string; readonly handler: HttpRoute }[],
  mounts: readonly SocketMount<Assigns>[],
  logger: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const { path, query } = splitUrl(req.url);
  for (const { prefix, handler } of routes) {
    if (path !== prefix && !path.startsWith(`${prefix}/`)) continue;
    handler(req, res, path.slice(prefix.length)).catch((err: unknown) => {
      logger.error({ err, path }, 'HTTP route failed');
      if (!res.headersSent) sendPlain(res, 500, 'internal error');
      else res.destroy();
    });
    return true;
  }
  for (const mount of mounts) {
    if (mount.websocket && path === mount.websocket.path) {
      mount.websocket.handleRequest(req, res);
      return true;
    }
    if (mount.longpoll && path === mount.longpoll.path) {
      mount.longpoll.handleRequest(req, res, query).catch((err: unknown) => {
        logger.error({ err }, 'longpoll request failed');
        if (!res.headersSent) sendPlain(res, 500, '');
        else res.destroy();
      });
      return true;
    }
  }
  return false;
}

/** Hands a WebSocket upgrade to a mount; returns false when none matches. */
export function dispatchUpgrade(
  mounts: readonly SocketMount<Assigns>[],
  logger: Logger,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): boolean {
  const { path, query } = splitUrl(req.url);
  for (const mount of mounts) {
    if (mount.websocket && path === mount.websocket.path) {
      mount.websocket.handleUpgrade(req, socket, head, query).catch((err: unknown) => {
        logger.error({ err }, 'websocket upgrade failed');
        rejectUpgrade(socket, 500);
      });
      return true;
    }
  }
  return false;
}
