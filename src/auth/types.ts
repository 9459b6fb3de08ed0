/**
 * Authentication without code (the config file's `auth` section): each strategy turns the token
 * a client connects with into an identity, or says why not. The socket layer's connect hook is
 * built from a strategy (auth/connect.ts); strategies know nothing about sockets.
 */

/** Who a connecting client is, as a strategy established it. */
export interface Identity {
  /** The user id (a string: Phoenix integer ids become their decimal form). */
  readonly userId: string;
  /** The device id, or null. */
  readonly deviceId: string | null;
  /** Roles (gen_api permissions `{role: ...}`); empty when none. */
  readonly roles: readonly string[];
  /** Extra socket assigns (JWT claims beyond the mapped ones, a worker's `assigns`). */
  readonly assigns: Readonly<Record<string, unknown>>;
  /** Epoch ms at which the token expires (the socket is closed then), or null for never. */
  readonly expiresAt: number | null;
}

/**
 * Why a token was not accepted. `unavailable` means the strategy could not decide (a JWKS or an
 * auth worker unreachable): the connect still fails (fail closed), but it is not the client's
 * fault, so it is logged as such.
 */
export type AuthFailureReason = 'missing' | 'malformed' | 'invalid' | 'expired' | 'unavailable';

/** A refused token: a reason for counters and logs, a message for logs (never sent to clients). */
export interface AuthFailure {
  /** Marks a failure (an Identity has no such field). */
  readonly failed: true;
  /** The counter it is counted under. */
  readonly reason: AuthFailureReason;
  /** For the log line. */
  readonly message: string;
}

/** What a strategy sees of a connecting client, besides its token. */
export interface AuthRequest {
  /** The token: connect param `token`, else the `authToken` (subprotocol or header); null: none. */
  readonly token: string | null;
  /** The connect params (Plug-decoded), without `token`. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The HTTP request headers (lower-case names). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client's address as the gateway sees it (after trustedProxies). */
  readonly peer: { readonly address: string; readonly port: number };
  /** `websocket` or `longpoll`. */
  readonly transport: string;
}

/** One way of authenticating: Phoenix.Token, JWT, or a worker over NATS. */
export interface AuthStrategy {
  /** The strategy's name in logs and counters (`phoenixToken`, `jwt`, `worker`). */
  readonly name: string;
  /** Never throws: every failure is an AuthFailure. */
  authenticate(request: AuthRequest): Promise<Identity | AuthFailure>;
}

/** An AuthFailure with `reason` and `message`. */
export function authFailure(reason: AuthFailureReason, message: string): AuthFailure {
  return { failed: true, reason, message };
}

/** Whether a strategy's answer is a failure. */
export function isAuthFailure(value: Identity | AuthFailure): value is AuthFailure {
  return (value as { failed?: unknown }).failed === true;
}
