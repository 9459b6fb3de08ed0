/**
 * Messages of authentication by a worker (protocol/nats.md §11): what a gateway asks an auth
 * service on `<p>.auth.<service>.connect` / `.join`, and how it reads the answers. Shared by the
 * gateway's `worker` strategy and the worker SDK's `serveAuth`, so both read one contract.
 */

/** Connect request body (schema `auth-connect-request.schema.json`). */
export interface AuthConnectRequestBody {
  /** The client's token (connect param `token`, else its `authToken`), or null. */
  token: string | null;
  /** The connect params without `token`. */
  params: Record<string, unknown>;
  /** Forwarded HTTP request headers, lower-case names (repeated headers joined with ", "). */
  headers: Record<string, string>;
  /** The client's address and port as the gateway sees it. */
  peer: { address: string; port: number };
  /** `websocket` or `longpoll`. */
  transport: string;
}

/** Join request body (schema `auth-join-request.schema.json`). */
export interface AuthJoinRequestBody {
  /** The topic being joined. */
  topic: string;
  /** The join payload as the client sent it. */
  payload: unknown;
  /** The socket's identity (null fields when it has none). */
  user_id: string | null;
  device_id: string | null;
  roles: string[];
  assigns: Record<string, unknown>;
}

/** An accepted connect, read from a reply. */
export interface AuthConnectAccept {
  readonly ok: true;
  readonly userId: string;
  readonly deviceId: string | null;
  readonly roles: readonly string[];
  readonly assigns: Readonly<Record<string, unknown>>;
  readonly expiresAt: number | null;
}

/** A refusal (connect or join): `reason` is for logs, never for clients. */
export interface AuthRefusal {
  readonly ok: false;
  readonly reason: string;
}

/** A reply that breaks the contract: `problem` says how (for the gateway's log). */
export interface AuthMalformed {
  readonly ok: null;
  readonly problem: string;
}

/** The longest `reason` kept from a refusal (the rest is cut: it only goes to logs). */
export const MAX_REASON_LENGTH = 200;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const malformed = (problem: string): AuthMalformed => ({ ok: null, problem });

/** A user id as the contract allows it: a non-empty string, or a safe integer (→ decimal). */
export function userIdOf(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return null;
}

function reasonOf(value: unknown): string {
  const reason = typeof value === 'string' && value !== '' ? value : 'refused';
  return reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason;
}

function refusalOrMalformed(body: Record<string, unknown>): AuthRefusal | AuthMalformed | null {
  if (body.ok === false) return { ok: false, reason: reasonOf(body.reason) };
  if (body.ok !== true) return malformed('"ok" must be true or false');
  return null;
}

/**
 * Reads a parsed connect reply (schema `auth-connect-reply.schema.json`): an accept with its
 * identity, a refusal, or what is wrong with it. Absent optional fields take their defaults
 * (device_id null, roles [], assigns {}, expires_at null).
 */
export function readConnectReply(body: unknown): AuthConnectAccept | AuthRefusal | AuthMalformed {
  if (!isObject(body)) return malformed('the reply is not a JSON object');
  const decided = refusalOrMalformed(body);
  if (decided) return decided;
  const userId = userIdOf(body.user_id);
  if (userId === null) return malformed('"user_id" must be a non-empty string or an integer');
  let deviceId: string | null = null;
  if (body.device_id !== undefined && body.device_id !== null) {
    deviceId = userIdOf(body.device_id);
    if (deviceId === null) return malformed('"device_id" must be a string, an integer or null');
  }
  const roles = body.roles ?? [];
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string'))
    return malformed('"roles" must be an array of strings');
  const assigns = body.assigns ?? {};
  if (!isObject(assigns)) return malformed('"assigns" must be an object');
  const expiresAt = body.expires_at ?? null;
  if (expiresAt !== null && !(typeof expiresAt === 'number' && Number.isSafeInteger(expiresAt)))
    return malformed('"expires_at" must be an integer (epoch ms) or null');
  return { ok: true, userId, deviceId, roles: roles, assigns, expiresAt };
}

/** Reads a parsed join reply (schema `auth-join-reply.schema.json`). */
export function readJoinReply(body: unknown): { ok: true } | AuthRefusal | AuthMalformed {
  if (!isObject(body)) return malformed('the reply is not a JSON object');
  return refusalOrMalformed(body) ?? { ok: true };
}
