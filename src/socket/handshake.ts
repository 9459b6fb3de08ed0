import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Assigns, TransportName } from '../channel/types.js';
import type { ResolvedSocketOptions } from '../config/socket-options.js';
import { decodeQuery, QueryDecodeError, type Params } from '../http/query.js';
import { serializerForVsn } from '../wire/vsn.js';
import { isRefusal, type ConnectInfo } from './connect.js';
import { rateLimitHeaders } from '../ratelimit/headers.js';
import { normaliseIp } from '../ratelimit/policy.js';
import type { GatewayStats } from './stats.js';
import type { ConnectionCaps } from './connection-caps.js';
import type { SessionInit } from './session.js';
import type { Telemetry } from '../telemetry/events.js';
import type { HandshakeResult as TransportHandshake } from '../transport/host.js';

/** A handshake's outcome: the session to open, or the HTTP refusal. */
export type HandshakeResult<A extends Assigns> = TransportHandshake<SessionInit<A>>;

interface HandshakeContext<A extends Assigns> {
  readonly options: ResolvedSocketOptions<A>;
  readonly originAllowed: (origin: string | undefined, req: IncomingMessage) => boolean;
  readonly clientAddress: (req: IncomingMessage) => string;
  readonly caps: ConnectionCaps;
  readonly logger: Logger;
  readonly gateway: { readonly stats: GatewayStats; readonly telemetry: Telemetry };
}

function refused(status: number, reason: string, headers?: Readonly<Record<string, string>>) {
  return headers === undefined
    ? ({ ok: false, status, reason } as const)
    : ({ ok: false, status, reason, headers } as const);
}

/** Origin check alone: LongPoll applies it to every request, not only the first. */
export function originAllowed<A extends Assigns>(
  ctx: HandshakeContext<A>,
  req: IncomingMessage,
): boolean {
  return ctx.originAllowed(req.headers.origin, req);
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
const TIMED_OUT = Symbol('timed out');

/** The user a connection counts against for `maxConnectionsPerUser`: assigns `user_id`/`userId`. */
function capUser(assigns: Assigns): string | null {
  const record = assigns as Record<string, unknown>;
  const user = record.user_id ?? record.userId;
  return typeof user === 'string' && user !== ''
    ? user
    : typeof user === 'number'
      ? String(user)
      : null;
}

/**
 * The connect pipeline (`runPipeline`), with its `socket_connected` telemetry event when someone
 * listens: the pipeline itself pays nothing for it otherwise.
 */
export async function authorize<A extends Assigns>(
  ctx: HandshakeContext<A>,
  req: IncomingMessage,
  transport: TransportName,
  path: string,
  query: string,
  authToken: string | null,
): Promise<HandshakeResult<A>> {
  const telemetry = ctx.gateway.telemetry;
  if (!telemetry.has('socket_connected'))
    return runPipeline(ctx, req, transport, path, query, authToken);
  const started = performance.now();
  const result = await runPipeline(ctx, req, transport, path, query, authToken);
  const durationMs = performance.now() - started;
  if (result.ok) {
    const { serializer, params } = result.init;
    telemetry.emit('socket_connected', {
      transport,
      vsn: typeof params.vsn === 'string' ? params.vsn : '',
      serializer: serializer.supportsBinary ? 'binary' : 'json',
      result: 'ok',
      durationMs,
      path,
    });
  } else {
    // A refused connect has no parsed params to hand back: read the vsn again (rare path).
    const vsn = new URLSearchParams(query).get('vsn') ?? '';
    const serializer = serializerForVsn(vsn === '' ? undefined : vsn);
    telemetry.emit('socket_connected', {
      transport,
      vsn,
      serializer: serializer === null ? 'none' : serializer.supportsBinary ? 'binary' : 'json',
      result: 'error',
      durationMs,
      path,
      status: result.status,
      reason: result.reason,
    });
  }
  return result;
}

/**
 * The connect pipeline shared by both transports: query params (Plug rules), vsn → serializer
 * (403 when unsupported), check_origin (403), the client address (trustedProxies), connection
 * caps (503 full, 429 per IP), the per-IP connect limit (429), then the connect hook (its refusal
 * status, 500 if it throws, 503 if it does not settle within connectTimeoutMs), and last the
 * caps again with the user known (429 per user).
 */
async function runPipeline<A extends Assigns>(
  ctx: HandshakeContext<A>,
  req: IncomingMessage,
  transport: TransportName,
  path: string,
  query: string,
  authToken: string | null,
): Promise<HandshakeResult<A>> {
  let params: Params;
  try {
    params = decodeQuery(query);
  } catch (err) {
    if (err instanceof QueryDecodeError) return refused(400, err.message);
    throw err;
  }
  const vsn = params.vsn;
  const serializer = serializerForVsn(
    typeof vsn === 'string' ? vsn : vsn === undefined ? undefined : '',
  );
  if (!serializer) return refused(403, `unsupported vsn ${JSON.stringify(vsn)}`);
  if (!originAllowed(ctx, req)) return refused(403, `origin not allowed: ${req.headers.origin}`);

  const peer = { address: ctx.clientAddress(req), port: req.socket.remotePort ?? 0 };
  const capIp = peer.address === '' ? null : normaliseIp(peer.address);
  // Caps before the connect hook too, so a full mount does not pay for hooks it will refuse.
  const early = ctx.caps.check(capIp, null);
  if (early) return refused(early.status, early.reason);

  // The per-IP connect limit comes before the connect hook (often the expensive part).
  let limitHeaders: Readonly<Record<string, string>> | undefined;
  const limit = ctx.options.connectLimit;
  if (limit && peer.address !== '') {
    const decision = await limit(normaliseIp(peer.address));
    if (!decision.allowed) {
      ctx.gateway.stats.rateLimitedConnects++;
      if ('unavailable' in decision) return refused(503, 'rate limiter unavailable');
      return refused(429, 'connect rate limit', rateLimitHeaders(decision.state, true));
    }
    // Tell clients that are close to their limit (r ≤ 10% of q), as the IETF draft suggests.
    if (decision.state && decision.state.remaining <= decision.state.limit / 10)
      limitHeaders = rateLimitHeaders(decision.state, false);
  }
  // Admission counts the connection at once: concurrent handshakes cannot all pass a cap.
  const accepted = (init: SessionInit<A>): HandshakeResult<A> => {
    const refusal = ctx.caps.admit(init, capIp, capUser(init.assigns));
    if (refusal) return refused(refusal.status, refusal.reason);
    return limitHeaders ? { ok: true, init, headers: limitHeaders } : { ok: true, init };
  };

  const hook = ctx.options.connect;
  if (!hook) return accepted({ id: null, assigns: {} as A, params, peer, serializer });

  const info: ConnectInfo = { params, authToken, headers: req.headers, peer, transport, path };
  let result;
  try {
    result = await withTimeout(Promise.resolve(hook(info)), ctx.options.connectTimeoutMs);
  } catch (err) {
    // The hook's failure costs this connect only (500; the client retries like after any 5xx).
    ctx.gateway.stats.connectErrors++;
    ctx.logger.error({ err, transport, peer: peer.address }, 'connect hook threw');
    return refused(500, 'connect hook failed');
  }
  if (result === TIMED_OUT) {
    ctx.logger.error(
      { transport, timeoutMs: ctx.options.connectTimeoutMs },
      'connect hook timed out',
    );
    return refused(503, 'connect hook timed out');
  }
  if (result === false) return refused(403, 'connect refused');
  if (isRefusal(result))
    return refused(result.status, result.reason ?? 'connect refused', result.headers);
  if (
    result === null ||
    typeof result !== 'object' ||
    typeof result.assigns !== 'object' ||
    result.assigns === null
  ) {
    ctx.gateway.stats.connectErrors++;
    ctx.logger.error(
      { transport, peer: peer.address },
      'connect hook must return { assigns, id? }, false or refuse(...)',
    );
    return refused(500, 'connect hook returned an invalid value');
  }
  const id = result.id ?? null;
  if (id !== null && typeof id !== 'string')
    return refused(500, 'connect hook returned a non-string id');
  const expiresAt = result.expiresAt ?? null;
  if (expiresAt !== null && !Number.isFinite(expiresAt))
    return refused(500, 'connect hook returned a non-numeric expiresAt');
  return accepted({ id, assigns: result.assigns, params, peer, serializer, expiresAt });
}
