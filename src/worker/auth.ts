/**
 * Authentication by a worker, the worker side (protocol/nats.md §11): `defineAuthService` takes an
 * `authenticate(ctx)` function (and optionally `authorizeJoin(ctx)`), `serveAuth` answers the
 * gateways' questions on `<p>.auth.<name>.connect` / `.join` as a NATS micro service.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import type { Logger } from 'pino';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import { silentLogger } from '../log/logger.js';
import {
  readConnectReply,
  type AuthConnectRequestBody,
  type AuthJoinRequestBody,
} from '../nats/auth-messages.js';
import { ERROR_CODES, H, META, QUEUE_GROUP } from '../nats/headers.js';
import { readJsonObject } from '../nats/json-object.js';
import { DEFAULT_PREFIX, Subjects } from '../nats/subjects.js';

/** What `authenticate` knows about a connecting client. */
export interface AuthConnectContext {
  /** The client's token (connect param `token`, else its `authToken`), or null. */
  readonly token: string | null;
  /** The connect params, without `token`. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The HTTP request headers the gateway forwards (lower-case names; by default not `cookie` or `authorization`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The client's address and port as the gateway sees it. */
  readonly peer: { readonly address: string; readonly port: number };
  /** `websocket` or `longpoll`. */
  readonly transport: string;
  /** Epoch ms after which the answer is no use (the gateway's wait, or `timeoutMs`). */
  readonly deadline: number;
  /** Aborted at the deadline or when the service stops. */
  readonly signal: AbortSignal;
}

/** What `authorizeJoin` knows about a join. */
export interface AuthJoinContext {
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
  /** The socket's assigns. */
  readonly assigns: Readonly<Record<string, unknown>>;
  /** Epoch ms after which the answer is no use. */
  readonly deadline: number;
  /** Aborted at the deadline or when the service stops. */
  readonly signal: AbortSignal;
}

/** Who a client is, as `authenticate` decided. */
export interface AuthIdentity {
  /** The user id: a non-empty string, or an integer (sent as its decimal form). */
  readonly userId: string | number;
  /** The device id. Default null. */
  readonly deviceId?: string | number | null;
  /** Roles (gen_api permissions `{role: ...}`). Default none. */
  readonly roles?: readonly string[];
  /** Extra socket assigns (JSON). Default none. */
  readonly assigns?: Readonly<Record<string, unknown>>;
  /** When the identity expires (the gateway closes the socket then). Default never. */
  readonly expiresAt?: number | Date | null;
}

/** What `defineAuthService` takes. */
export interface AuthServiceOptions {
  /** The auth service's name (a NATS subject token): gateways name it in `auth.worker.service`. */
  name: string;
  /** The deployment version (semver) reported to `$SRV.PING`. Default "0.0.0". */
  version?: string;
  /** Reported to `$SRV.INFO`. Default "". */
  description?: string;
  /**
   * Decides a connect: an identity accepts it; null (or a throw, whose message is logged by the
   * gateway, never sent to the client) refuses it.
   */
  authenticate: (ctx: AuthConnectContext) => AuthIdentity | null | Promise<AuthIdentity | null>;
  /** Decides a join the gateway delegates: `true` allows; anything else, or a throw, refuses. */
  authorizeJoin?: (ctx: AuthJoinContext) => boolean | Promise<boolean>;
}

/** An auth service, checked and ready for `serveAuth`. */
export interface AuthServiceDefinition {
  /** The service's name. */
  readonly name: string;
  /** Its deployment version. */
  readonly version: string;
  /** Its description. */
  readonly description: string;
  /** The connect decision. */
  readonly authenticate: AuthServiceOptions['authenticate'];
  /** The join decision, or null (then the service does not answer join checks). */
  readonly authorizeJoin: NonNullable<AuthServiceOptions['authorizeJoin']> | null;
}

const TOKEN = /^[^\s.*>]+$/;

/** Defines an auth service; checks its name and functions at once. */
export function defineAuthService(options: AuthServiceOptions): AuthServiceDefinition {
  if (typeof options.name !== 'string' || !TOKEN.test(options.name))
    throw new InvalidArgumentError(
      `auth service name ${JSON.stringify(options.name)} must be a NATS subject token`,
    );
  if (typeof options.authenticate !== 'function')
    throw new InvalidArgumentError(`auth service ${options.name} needs an authenticate function`);
  if (options.authorizeJoin !== undefined && typeof options.authorizeJoin !== 'function')
    throw new InvalidArgumentError(`authorizeJoin of ${options.name} must be a function`);
  return {
    name: options.name,
    version: options.version ?? '0.0.0',
    description: options.description ?? '',
    authenticate: options.authenticate,
    authorizeJoin: options.authorizeJoin ?? null,
  };
}

/** Options of `serveAuth`. */
export interface ServeAuthOptions {
  /** A connected NATS client. */
  nats: NatsConnection;
  /** Subject prefix shared with the gateways. Default "genapi". */
  prefix?: string;
  /**
   * The longest an `authenticate` or `authorizeJoin` call may take, in ms (also bounded by the
   * gateway's own wait, header `Genapi-Timeout`); a call still running then is answered with a
   * refusal and its signal aborted. Default 5000.
   */
  timeoutMs?: number;
  /**
   * Questions this instance answers at once (a positive integer, or Infinity); more get a `503`
   * error reply, which the gateway counts as `unavailable`. Default 1000.
   */
  maxConcurrent?: number;
  /** A pino logger. Default: silent. */
  logger?: Logger;
}

/** Defaults of `ServeAuthOptions`. */
export const SERVE_AUTH_DEFAULTS = { timeoutMs: 5_000, maxConcurrent: 1_000 } as const;

/** An auth service being served. */
export interface RunningAuthService {
  /** The NATS micro service instance id. */
  readonly id: string;
  /** The service being served. */
  readonly definition: AuthServiceDefinition;
  /** Questions being answered right now. */
  readonly inflight: number;
  /** Stops taking questions (others get 503), waits for those in flight, then leaves NATS. */
  stop(): Promise<void>;
}

/** Discovery metadata: not `genapi_protocol`, so gateways never take it for a gen_api service. */
const AUTH_PROTOCOL_META = 'genapi_auth_protocol';

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** A connect request body as the contract has it, or null. */
function connectRequest(body: Record<string, unknown> | null): AuthConnectRequestBody | null {
  if (body === null) return null;
  const { token, params, headers, peer, transport } = body;
  if (token !== null && typeof token !== 'string') return null;
  if (!isObject(params) || !isObject(headers) || !isObject(peer)) return null;
  if (typeof peer.address !== 'string' || typeof peer.port !== 'number') return null;
  if (typeof transport !== 'string') return null;
  const stringHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (typeof value === 'string') stringHeaders[name] = value;
  return {
    token,
    params,
    headers: stringHeaders,
    peer: { address: peer.address, port: peer.port },
    transport,
  };
}

/** A join request body as the contract has it, or null. */
function joinRequest(body: Record<string, unknown> | null): AuthJoinRequestBody | null {
  if (body === null || typeof body.topic !== 'string') return null;
  const { user_id: userId, device_id: deviceId, roles, assigns } = body;
  if (userId !== null && typeof userId !== 'string') return null;
  if (deviceId !== null && deviceId !== undefined && typeof deviceId !== 'string') return null;
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string')))
    return null;
  if (assigns !== undefined && !isObject(assigns)) return null;
  return {
    topic: body.topic,
    payload: body.payload ?? {},
    user_id: userId,
    device_id: deviceId ?? null,
    roles: roles ?? [],
    assigns: assigns ?? {},
  };
}

/** The wire answer for what `authenticate` returned. */
function connectAnswer(identity: AuthIdentity | null): Record<string, unknown> {
  if (identity === null || identity === undefined) return { ok: false, reason: 'refused' };
  const expires = identity.expiresAt;
  const answer = {
    ok: true,
    user_id: identity.userId,
    device_id: identity.deviceId ?? null,
    roles: identity.roles ? [...identity.roles] : [],
    assigns: identity.assigns ?? {},
    expires_at: expires instanceof Date ? expires.getTime() : (expires ?? null),
  };
  // Checked here with the gateway's own reader: a mistake is reported where it was made.
  const read = readConnectReply(answer);
  if (read.ok === null)
    return { ok: false, reason: `authenticate returned an invalid identity: ${read.problem}` };
  if (!read.ok) return { ok: false, reason: read.reason };
  return { ...answer, user_id: read.userId, device_id: read.deviceId };
}

/**
 * Serves an auth service as a NATS micro service (`nats micro ls` lists it): endpoint `connect` on
 * `<prefix>.auth.<name>.connect` and, with `authorizeJoin`, `join` on `<prefix>.auth.<name>.join`,
 * both in queue group `genapi` (any instance answers).
 */
export async function serveAuth(
  definition: AuthServiceDefinition,
  options: ServeAuthOptions,
): Promise<RunningAuthService> {
  const nc = options.nats;
  const subjects = new Subjects(options.prefix ?? DEFAULT_PREFIX);
  const logger = (options.logger ?? silentLogger()).child({ authService: definition.name });
  const timeoutMs = options.timeoutMs ?? SERVE_AUTH_DEFAULTS.timeoutMs;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0))
    throw new InvalidArgumentError(
      `timeoutMs must be a positive integer, got ${String(timeoutMs)}`,
    );
  const maxConcurrent = options.maxConcurrent ?? SERVE_AUTH_DEFAULTS.maxConcurrent;
  if (!(maxConcurrent === Infinity || (Number.isInteger(maxConcurrent) && maxConcurrent > 0)))
    throw new InvalidArgumentError(
      `maxConcurrent must be a positive integer or Infinity, got ${String(maxConcurrent)}`,
    );

  const service: Service = await new Svcm(nc as never).add({
    name: definition.name,
    version: definition.version,
    description: definition.description,
    queue: QUEUE_GROUP,
    metadata: { [AUTH_PROTOCOL_META]: '1', [META.prefix]: subjects.prefix },
  });
  const id = service.info().id;
  const running = new Set<AbortController>();
  let inflight = 0;
  let draining = false;
  let drained: (() => void) | null = null;

  const respond = (msg: ServiceMsg, answer: Record<string, unknown>): void => {
    try {
      msg.respond(json(answer));
    } catch (err) {
      logger.warn({ err: errorMessage(err) }, 'auth answer not sent');
    }
  };

  /**
   * Runs one decision within its deadline: `decide` gets the deadline and a signal; its answer,
   * or a refusal when it throws or runs out of time, is sent once.
   */
  const handle = (
    msg: ServiceMsg,
    kind: 'connect' | 'join',
    decide: (deadline: number, signal: AbortSignal) => Promise<Record<string, unknown>>,
  ): void => {
    if (draining || inflight >= maxConcurrent) {
      const reason = draining
        ? 'service is draining'
        : `overloaded: ${inflight} questions in flight (maxConcurrent ${maxConcurrent})`;
      try {
        msg.respondError(ERROR_CODES.unavailable, reason);
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'auth answer not sent');
      }
      return;
    }
    const asked = Number(msg.headers?.get(H.timeout));
    const wait = asked > 0 ? Math.min(asked, timeoutMs) : timeoutMs;
    const deadline = Date.now() + wait;
    const controller = new AbortController();
    running.add(controller);
    inflight++;
    let answered = false;
    // The question ends with its answer, even if a late handler never settles.
    const answer = (value: Record<string, unknown>) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      running.delete(controller);
      inflight--;
      respond(msg, value);
      if (draining && inflight === 0) drained?.();
    };
    const timer = setTimeout(() => {
      logger.warn({ kind, timeoutMs: wait }, 'auth decision ran out of time');
      controller.abort(new CancelledError('deadline exceeded'));
      answer({ ok: false, reason: `${kind} decision exceeded its deadline (${wait} ms)` });
    }, wait);
    decide(deadline, controller.signal).then(answer, (err: unknown) =>
      answer({ ok: false, reason: errorMessage(err) }),
    );
  };

  service.addEndpoint('connect', {
    subject: subjects.authConnect(definition.name),
    queue: QUEUE_GROUP,
    metadata: { kind: 'auth-connect' },
    handler: (_err, msg) => {
      const request = connectRequest(readJsonObject(msg.data));
      if (request === null) {
        respond(msg, { ok: false, reason: 'malformed connect request' });
        return;
      }
      handle(msg, 'connect', async (deadline, signal) =>
        connectAnswer(await definition.authenticate({ ...request, deadline, signal })),
      );
    },
  });

  const authorizeJoin = definition.authorizeJoin;
  if (authorizeJoin !== null) {
    service.addEndpoint('join', {
      subject: subjects.authJoin(definition.name),
      queue: QUEUE_GROUP,
      metadata: { kind: 'auth-join' },
      handler: (_err, msg) => {
        const request = joinRequest(readJsonObject(msg.data));
        if (request === null) {
          respond(msg, { ok: false, reason: 'malformed join request' });
          return;
        }
        handle(msg, 'join', async (deadline, signal) => {
          const allowed = await authorizeJoin({
            topic: request.topic,
            payload: request.payload,
            userId: request.user_id,
            deviceId: request.device_id,
            roles: request.roles,
            assigns: request.assigns,
            deadline,
            signal,
          });
          return allowed === true ? { ok: true } : { ok: false, reason: 'denied' };
        });
      },
    });
  }
  logger.info({ id, version: definition.version }, 'auth service started');

  return {
    id,
    definition,
    get inflight() {
      return inflight;
    },
    async stop() {
      if (draining) return;
      draining = true;
      // Every question is answered within timeoutMs, so this wait is bounded too.
      if (inflight > 0)
        await new Promise<void>((resolve) => {
          drained = resolve;
        });
      for (const controller of running) controller.abort(new CancelledError('service stopping'));
      await service.stop();
      logger.info({ id }, 'auth service stopped');
    },
  };
}
