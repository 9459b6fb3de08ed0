import type { GenApiRequest } from './types.js';
import { GatewayError } from '../errors.js';
import { readTraceContext, type TraceContext } from '../nats/trace-context.js';

/** A request payload that cannot be decoded (PhoenixGenApi's DecodeError). */
export class DecodeError extends GatewayError {
  override readonly name = 'DecodeError';
  /** PhoenixGenApi's reason: a malformed payload, or required fields missing. */
  readonly reason: DecodeReason;
  constructor(reason: DecodeReason, message: string) {
    super('ERR_GENAPI_DECODE', message);
    this.reason = reason;
  }
}

/** Why a request payload did not decode (PhoenixGenApi's DecodeError reasons). */
export type DecodeReason = 'invalid_payload' | 'missing_field';

/** Who is asking, from the socket's server-side auth (the connect hook's assigns). */
export interface Identity {
  /** The user, or null (unauthenticated). */
  readonly userId: string | null;
  /** The device, or null. */
  readonly deviceId: string | null;
  /** Roles for `check_permission` role checks, or null. */
  readonly roles: readonly string[] | null;
}

export interface DecodeOptions {
  /** Largest request frame in bytes. Default 1 000 000 (PhoenixGenApi's max_payload_bytes). */
  readonly maxPayloadBytes: number;
  /** Use the socket's user_id over the payload's. Default true. */
  readonly overrideUserId: boolean;
  /** Use the socket's device_id over the payload's when the socket has one. Default true. */
  readonly overrideDeviceId: boolean;
  /** Accept `user_roles` from the client when the socket has none (migration only). Default false. */
  readonly trustClientRoles: boolean;
  /** Accept `user_id` from the client when the socket has none. Default false. */
  readonly trustClientUserId: boolean;
  /** Accept `device_id` from the client when the socket has none. Default false. */
  readonly trustClientDeviceId: boolean;
}

export interface DecodedRequest {
  readonly request: GenApiRequest;
  /** The client's request_id as sent (echoed in every response; may be a number). */
  readonly rawRequestId: unknown;
  /** The payload's `traceparent`/`tracestate` when valid, else null (invalid ones are ignored). */
  readonly trace: TraceContext | null;
}

const REQUIRED = ['request_type', 'request_id', 'service'] as const;
const LINE_BREAK = /[\r\n]/;

function blank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

function normaliseVersion(value: unknown): string | null {
  if (value === undefined || value === null || value === '' || value === '0.0.0') return null;
  if (typeof value !== 'string')
    throw new DecodeError('invalid_payload', 'Malformed request payload: version must be a string');
  return value;
}

function stringList(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null;
  return value.filter((item): item is string => typeof item === 'string' && item !== '');
}

/**
 * The socket's value, unless the payload explicitly wins (`override` false) or fills a gap the
 * socket leaves (`trust` true and the socket has none).
 */
function chooseIdentity(
  socket: string | null,
  payload: string | null,
  override: boolean,
  trust: boolean,
): string | null {
  if (!override) return payload ?? socket;
  return socket ?? (trust ? payload : null);
}

/** The request_id to echo when decoding failed: the payload's, or "unknown". */
export function requestIdOf(payload: unknown): unknown {
  const id =
    payload !== null && typeof payload === 'object'
      ? (payload as Record<string, unknown>).request_id
      : undefined;
  return blank(id) ? 'unknown' : id;
}

/**
 * PhoenixGenApi's Request.decode!: size check first, then required fields (in the fixed order
 * request_type, request_id, service), `args` null → {}. Identity comes from the socket: a
 * payload's user_id, device_id or roles counts only where the socket has none and the matching
 * trustClient* option says so, or where override* is false (the payload explicitly wins).
 * Otherwise a client could pick its own device_id and slip past device-keyed rate limits.
 */
export function decodeRequest(
  payload: unknown,
  frameBytes: number,
  identity: Identity,
  options: DecodeOptions,
): DecodedRequest {
  if (frameBytes > options.maxPayloadBytes) {
    throw new DecodeError(
      'invalid_payload',
      `Request payload exceeds maximum size of ${options.maxPayloadBytes} bytes (got ${frameBytes} bytes)`,
    );
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new DecodeError('invalid_payload', 'Malformed request payload: expected an object');
  }
  const fields = payload as Record<string, unknown>;
  const missing = REQUIRED.filter((name) => blank(fields[name]));
  if (missing.length > 0)
    throw new DecodeError('missing_field', `Missing required fields: ${missing.join(', ')}`);
  const { request_type: requestType, service, request_id: requestId } = fields;
  if (typeof requestType !== 'string')
    throw new DecodeError(
      'invalid_payload',
      'Malformed request payload: request_type must be a string',
    );
  if (typeof service !== 'string')
    throw new DecodeError('invalid_payload', 'Malformed request payload: service must be a string');
  if (typeof requestId !== 'string' && typeof requestId !== 'number') {
    throw new DecodeError(
      'invalid_payload',
      'Malformed request payload: request_id must be a string or a number',
    );
  }
  const args = fields.args ?? {};
  if (typeof args !== 'object' || Array.isArray(args))
    throw new DecodeError('invalid_payload', 'Malformed request payload: args must be an object');

  const payloadUser =
    typeof fields.user_id === 'string' && fields.user_id !== '' ? fields.user_id : null;
  const payloadDevice =
    typeof fields.device_id === 'string' && fields.device_id !== '' ? fields.device_id : null;
  const userId = chooseIdentity(
    identity.userId,
    payloadUser,
    options.overrideUserId,
    options.trustClientUserId,
  );
  const deviceId = chooseIdentity(
    identity.deviceId,
    payloadDevice,
    options.overrideDeviceId,
    options.trustClientDeviceId,
  );
  const roles =
    identity.roles !== null
      ? [...identity.roles]
      : options.trustClientRoles
        ? stringList(fields.user_roles)
        : null;
  // These travel to workers as NATS header values, which cannot hold line breaks.
  for (const [name, value] of [
    ['request_id', String(requestId)],
    ['user_id', userId],
    ['device_id', deviceId],
  ] as const) {
    if (value !== null && LINE_BREAK.test(value))
      throw new DecodeError(
        'invalid_payload',
        `Malformed request payload: ${name} must not contain line breaks`,
      );
  }

  return {
    rawRequestId: requestId,
    trace: readTraceContext(fields.traceparent, fields.tracestate),
    request: {
      request_id: String(requestId),
      request_type: requestType,
      service,
      version: normaliseVersion(fields.version),
      args: args as Record<string, unknown>,
      user_id: userId,
      device_id: deviceId,
      user_roles: roles,
    },
  };
}
