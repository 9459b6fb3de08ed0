/**
 * The `worker` strategy: the gateway asks an auth service over NATS whether a client may connect
 * (`<p>.auth.<service>.connect`) and, optionally, whether a socket may join a topic
 * (`<p>.auth.<service>.join`). Protocol: protocol/nats.md §11. Fail closed: no connection, no
 * responders, no answer within `timeoutMs` or an answer that breaks the contract all refuse, as
 * `unavailable` (not the client's fault), never by hanging.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { ConfigError } from '../config/errors.js';
import {
  readConnectReply,
  readJoinReply,
  type AuthConnectRequestBody,
  type AuthJoinRequestBody,
} from '../nats/auth-messages.js';
import { H } from '../nats/headers.js';
import { isNoResponders } from '../nats/request-errors.js';
import type { Subjects } from '../nats/subjects.js';
import {
  authFailure,
  type AuthFailure,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

/** Options of the `worker` strategy (config file: `auth.worker`). */
export interface WorkerAuthOptions {
  /**
   * The auth service's name: one NATS subject token (no whitespace, `.`, `*` or `>`). The gateway
   * asks `<prefix>.auth.<service>.connect` and `.join`. Required.
   */
  readonly service: string;
  /**
   * How long one question waits for its answer, in ms (1..60000); then the connect or join is
   * refused as `unavailable`. Default 2000.
   */
  readonly timeoutMs?: number;
  /** Largest answer accepted, in bytes (64..1048576); larger ones refuse (`unavailable`). Default 65536. */
  readonly maxReplyBytes?: number;
  /**
   * The HTTP request headers sent to the worker (names, case-insensitive). Default null: every
   * header except `cookie`, `authorization` and `proxy-authorization`
   * (`WORKER_AUTH_DEFAULTS.withheldHeaders`), which carry other credentials. A list sends exactly
   * the headers it names (`["cookie"]` for a worker that reads a session cookie); `[]` sends none.
   */
  readonly forwardHeaders?: readonly string[] | null;
}

/** Defaults of `WorkerAuthOptions`. */
export const WORKER_AUTH_DEFAULTS = {
  timeoutMs: 2_000,
  maxReplyBytes: 65_536,
  forwardHeaders: null,
  /** Headers not forwarded unless `forwardHeaders` names them. */
  withheldHeaders: ['cookie', 'authorization', 'proxy-authorization'],
} as const;

/** Bounds of the numeric options. */
const LIMITS = {
  timeoutMs: { min: 1, max: 60_000 },
  maxReplyBytes: { min: 64, max: 1_048_576 },
} as const;

/** What the strategy needs of the gateway's NATS link (the cluster link has it). */
export interface AuthNatsLink {
  /** The gateway's NATS connection. */
  readonly nc: NatsConnection;
  /** Subjects under the gateway's prefix. */
  readonly subjects: Subjects;
  /** Whether the connection is up right now; while down, questions fail at once. */
  readonly connected?: () => boolean;
}

/** What a join check is asked: the topic, the join payload and the socket's identity. */
export interface WorkerJoinRequest {
  /** The topic being joined. */
  readonly topic: string;
  /** The join payload as the client sent it. */
  readonly payload: unknown;
  /** The socket's user id, or null. */
  readonly userId: string | null;
  /** The socket's device id, or null. */
  readonly deviceId: string | null;
  /** The socket's roles. */
  readonly roles: readonly string[];
  /** The socket's assigns (must be JSON-serialisable). */
  readonly assigns: Readonly<Record<string, unknown>>;
}

/**
 * A join check's answer. A refusal's `reason` is for logs only; `unavailable` is true when the
 * worker could not be asked or answered out of contract (the join is refused all the same).
 */
export type WorkerJoinDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string; readonly unavailable: boolean };

/** Asks the auth worker whether a socket may join a topic; never throws. */
export type WorkerJoinCheck = (request: WorkerJoinRequest) => Promise<WorkerJoinDecision>;

interface Resolved {
  readonly service: string;
  readonly timeoutMs: number;
  readonly maxReplyBytes: number;
  readonly forwardHeaders: ReadonlySet<string> | null;
}

const TOKEN = /^[^\s.*>]+$/;

function integerOption(
  value: unknown,
  name: keyof typeof LIMITS,
  fallback: number,
  at: string,
): number {
  if (value === undefined) return fallback;
  const { min, max } = LIMITS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(`${at}.${name} must be an integer between ${min} and ${max}`);
  return value;
}

/** Validates the options (from a JSON config: any shape), naming the setting that is wrong. */
function resolveOptions(options: WorkerAuthOptions, at = 'auth.worker'): Resolved {
  const raw = options as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(`${at} must be an object`);
  const { service, forwardHeaders } = options as { service?: unknown; forwardHeaders?: unknown };
  if (typeof service !== 'string' || !TOKEN.test(service))
    throw new ConfigError(
      `${at}.service must be a non-empty string without whitespace, ".", "*" or ">" (a NATS subject token)`,
    );
  let headers: Set<string> | null = null;
  if (forwardHeaders !== undefined && forwardHeaders !== null) {
    if (
      !Array.isArray(forwardHeaders) ||
      !forwardHeaders.every((name) => typeof name === 'string' && name !== '')
    )
      throw new ConfigError(`${at}.forwardHeaders must be null or an array of header names`);
    headers = new Set((forwardHeaders as string[]).map((name) => name.toLowerCase()));
  }
  return {
    service,
    timeoutMs: integerOption(options.timeoutMs, 'timeoutMs', WORKER_AUTH_DEFAULTS.timeoutMs, at),
    maxReplyBytes: integerOption(
      options.maxReplyBytes,
      'maxReplyBytes',
      WORKER_AUTH_DEFAULTS.maxReplyBytes,
      at,
    ),
    forwardHeaders: headers,
  };
}

const WITHHELD: ReadonlySet<string> = new Set(WORKER_AUTH_DEFAULTS.withheldHeaders);

function forwarded(
  headers: AuthRequest['headers'],
  allow: ReadonlySet<string> | null,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = key.toLowerCase();
    if (allow === null ? WITHHELD.has(name) : !allow.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One question's outcome: the parsed answer, or why there is none (for the log). */
type Asked = { readonly body: unknown } | { readonly failed: string };

/** Asks `subject` once; bounded by `timeoutMs` (nats.js times the request out). Never throws. */
async function ask(
  link: AuthNatsLink | null,
  subject: (link: AuthNatsLink) => string,
  body: unknown,
  options: Resolved,
): Promise<Asked> {
  const who = `auth worker "${options.service}"`;
  if (link === null || link.nc.isClosed() || link.connected?.() === false)
    return { failed: `${who} cannot be asked: the gateway is not connected to NATS` };
  const to = subject(link);
  let payload: Uint8Array;
  try {
    payload = encoder.encode(JSON.stringify(body));
  } catch (err) {
    return { failed: `${who}: the request is not JSON-serialisable: ${(err as Error).message}` };
  }
  let reply;
  try {
    // The worker learns how long the gateway waits, so it can stop in time (nats.md §11).
    const headers = natsHeaders();
    headers.set(H.timeout, String(options.timeoutMs));
    reply = await link.nc.request(to, payload, { timeout: options.timeoutMs, headers });
  } catch (err) {
    if (isNoResponders(err)) return { failed: `${who} is not running (no responders on ${to})` };
    if (isTimeout(err))
      return { failed: `${who} did not answer on ${to} within ${options.timeoutMs} ms` };
    return { failed: `${who}: the request on ${to} failed: ${(err as Error).message}` };
  }
  const serviceError = reply.headers?.get(H.serviceError);
  if (serviceError)
    return {
      failed: `${who} answered an error (${reply.headers?.get(H.serviceErrorCode) ?? '?'}): ${serviceError}`,
    };
  if (reply.data.length > options.maxReplyBytes)
    return {
      failed: `${who} answered ${reply.data.length} bytes, over maxReplyBytes (${options.maxReplyBytes})`,
    };
  try {
    return { body: JSON.parse(decoder.decode(reply.data)) as unknown };
  } catch {
    return { failed: `${who} answered something that is not JSON` };
  }
}

function isTimeout(err: unknown): boolean {
  const named = (value: unknown) => value instanceof Error && value.name === 'TimeoutError';
  return named(err) || (err instanceof Error && named(err.cause));
}

/**
 * The `worker` strategy: every connect is a question to the auth service `options.service`
 * (protocol/nats.md §11). `nats()` is the gateway's NATS link, or null while it has none (then
 * every connect is refused as `unavailable`). Throws ConfigError for bad options.
 */
export function createWorkerAuthStrategy(
  options: WorkerAuthOptions,
  nats: () => AuthNatsLink | null,
  now: () => number = Date.now,
): AuthStrategy {
  const resolved = resolveOptions(options);
  const who = `auth worker "${resolved.service}"`;
  return {
    name: 'worker',
    async authenticate(request: AuthRequest): Promise<Identity | AuthFailure> {
      const body: AuthConnectRequestBody = {
        token: request.token,
        params: { ...request.params },
        headers: forwarded(request.headers, resolved.forwardHeaders),
        peer: { address: request.peer.address, port: request.peer.port },
        transport: request.transport,
      };
      const asked = await ask(
        nats(),
        (link) => link.subjects.authConnect(resolved.service),
        body,
        resolved,
      );
      if ('failed' in asked) return authFailure('unavailable', asked.failed);
      const reply = readConnectReply(asked.body);
      if (reply.ok === null)
        return authFailure('unavailable', `${who} answered out of contract: ${reply.problem}`);
      if (!reply.ok) return authFailure('invalid', `${who} refused: ${reply.reason}`);
      if (reply.expiresAt !== null && reply.expiresAt <= now())
        return authFailure('expired', `${who} accepted with an expiry in the past`);
      return {
        userId: reply.userId,
        deviceId: reply.deviceId,
        roles: reply.roles,
        assigns: reply.assigns,
        expiresAt: reply.expiresAt,
      };
    },
  };
}

/**
 * A delegated join check: asks `<prefix>.auth.<service>.join` whether a socket may join a topic
 * (protocol/nats.md §11.3). Fails closed like the strategy; an auth service without a join check
 * has no responders there, so every join it is asked about is refused (`unavailable`).
 */
export function createWorkerJoinCheck(
  options: WorkerAuthOptions,
  nats: () => AuthNatsLink | null,
): WorkerJoinCheck {
  const resolved = resolveOptions(options);
  const who = `auth worker "${resolved.service}"`;
  return async (request) => {
    const body: AuthJoinRequestBody = {
      topic: request.topic,
      payload: request.payload === undefined ? {} : request.payload,
      user_id: request.userId,
      device_id: request.deviceId,
      roles: [...request.roles],
      assigns: { ...request.assigns },
    };
    const asked = await ask(
      nats(),
      (link) => link.subjects.authJoin(resolved.service),
      body,
      resolved,
    );
    if ('failed' in asked) return { ok: false, reason: asked.failed, unavailable: true };
    const reply = readJoinReply(asked.body);
    if (reply.ok === null)
      return {
        ok: false,
        reason: `${who} answered out of contract: ${reply.problem}`,
        unavailable: true,
      };
    if (!reply.ok)
      return { ok: false, reason: `${who} refused the join: ${reply.reason}`, unavailable: false };
    return { ok: true };
  };
}
