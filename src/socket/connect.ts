import type { IncomingHttpHeaders } from 'node:http';
import type { Assigns, MaybePromise, PeerAddress, TransportName } from '../channel/types.js';
import type { Params } from '../http/query.js';
import { OutOfRangeError } from '../errors.js';

/** What a connect hook learns about a connecting client (Phoenix's params + connect_info). */
export interface ConnectInfo {
  /** Query params decoded like Plug (nested keys, lists), including `vsn`. */
  readonly params: Params;
  /** From the `base64url.bearer.phx.` subprotocol (WebSocket) or `X-Phoenix-AuthToken` (LongPoll). */
  readonly authToken: string | null;
  /** The HTTP request headers. */
  readonly headers: IncomingHttpHeaders;
  /** The client's address. */
  readonly peer: PeerAddress;
  /** The transport it connects over. */
  readonly transport: TransportName;
  /** The request path, e.g. `/socket/websocket`. */
  readonly path: string;
}

/** Accepts the connection. `id` names the socket so `gateway.disconnect(id)` can close it. */
export interface ConnectAccept<A extends Assigns> {
  /** The socket assigns every channel sees. */
  readonly assigns: A;
  /** The socket id (`gateway.disconnect(id)`), or null for none. */
  readonly id?: string | null;
  /**
   * When the credential the client connected with expires (epoch ms): the socket is then closed
   * with 4001 "token expired" (within the timer wheel's tick), and the client reconnects with a
   * fresh one. Null or absent: never.
   */
  readonly expiresAt?: number | null;
}

/** Refuses the connection with an HTTP status (default 403) and optional headers. */
export interface ConnectRefusal {
  /** Marks the refusal. */
  readonly refuse: true;
  /** HTTP status (400..599). */
  readonly status: number;
  /** Response body. */
  readonly reason?: string;
  /** Extra response headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** What a connect hook returns: accept with assigns, `refuse(...)`, or `false` (403). */
export type ConnectResult<A extends Assigns> = ConnectAccept<A> | ConnectRefusal | false;

/**
 * Phoenix's `connect/3`: decide whether a client may connect and what its assigns are.
 * Return `false` or `refuse(...)` to refuse; throwing is a server error (HTTP 500).
 */
export type ConnectHook<A extends Assigns> = (info: ConnectInfo) => MaybePromise<ConnectResult<A>>;

/** Refuses a connect with an HTTP status (default 403), an optional reason body and headers. */
export function refuse(
  status = 403,
  reason?: string,
  headers?: Readonly<Record<string, string>>,
): ConnectRefusal {
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new OutOfRangeError(
      `refuse(): status must be an HTTP error status (400-599), got ${status}`,
    );
  }
  return {
    refuse: true,
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(headers === undefined ? {} : { headers }),
  };
}

export function isRefusal(result: unknown): result is ConnectRefusal {
  return (
    typeof result === 'object' &&
    result !== null &&
    (result as { refuse?: unknown }).refuse === true
  );
}
