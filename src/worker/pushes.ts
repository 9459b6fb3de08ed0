import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { GatewayError, InvalidArgumentError } from '../errors.js';
import { H } from '../nats/headers.js';
import { readJsonObject } from '../nats/json-object.js';
import { isNoResponders } from '../nats/request-errors.js';
import { isWellFormedTopic, topicToken } from '../nats/topic-token.js';
import { DEFAULT_PREFIX, Subjects } from '../nats/subjects.js';

/**
 * Pushes from backend code to the gateways' clients (protocol/nats.md §9): broadcasts to a
 * Phoenix topic on every gateway, cluster-wide disconnects, and a topic's Presence. Each is one
 * plain NATS message, so this file is also the reference for a client written in another language.
 */

/** Sends events to clients: `ctx.broadcast` in handlers, `RunningService.broadcast`, `createPublisher`. */
export interface Broadcaster {
  /**
   * Sends `event` with `payload` to every subscriber of `topic` on every gateway (Phoenix's
   * `Endpoint.broadcast`). `payload` is JSON-serialisable (default `{}`) or a `Uint8Array`, which
   * V2 clients get as a binary frame. Broadcasts of one publisher to one topic arrive in order.
   * Throws InvalidArgumentError (bad topic, event or payload) or BroadcastTooLargeError.
   */
  broadcast(topic: string, event: string, payload?: unknown): void;
  /**
   * Closes every socket whose connect hook returned `socketId` (e.g. `user:42`), on every gateway,
   * with WebSocket close 1001 so the client reconnects (Phoenix's `"disconnect"` to `users_socket:<id>`).
   */
  disconnect(socketId: string): void;
}

/** A topic's presence as Phoenix's `presence_state` carries it: key → `{metas: [...]}`. */
export type PresenceState = Record<string, { metas: Record<string, unknown>[] }>;

/** A backend's handle to push to clients without serving any function (`createPublisher`). */
export interface Publisher extends Broadcaster {
  /**
   * The cluster-wide presence of `topic`, asked of one gateway (`<p>.presence.get`). Rejects with
   * NoGatewayError when no gateway listens at all, PresenceRequestError on a timeout, a failure
   * or a bad answer (`reason`).
   */
  presence(topic: string): Promise<PresenceState>;
}

/** Options of `createPublisher` (defaults: PUBLISHER_DEFAULTS). */
export interface PublisherOptions {
  /** Subject prefix shared with the gateways. Default "genapi". */
  prefix?: string;
  /** Longest topic token accepted (gateways keep longer topics local). Default 1024, as gateways. */
  maxTopicBytes?: number;
  /** How long `presence()` waits for a gateway. Default 2000 ms. */
  presenceTimeoutMs?: number;
}

/** Defaults of `PublisherOptions` (`createPublisher`). */
export const PUBLISHER_DEFAULTS = { maxTopicBytes: 1024, presenceTimeoutMs: 2_000 } as const;

/** Largest disconnect message gateways accept (protocol/nats.md §9.3). */
const MAX_DISCONNECT_BYTES = 4096;

/** A broadcast or disconnect larger than the NATS server's `max_payload`: nothing was sent. */
export class BroadcastTooLargeError extends GatewayError {
  override readonly name = 'BroadcastTooLargeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_BROADCAST_TOO_LARGE', message, options);
  }
}

/** Why `presence()` failed with a PresenceRequestError. */
export type PresenceFailure = 'timeout' | 'invalid_reply' | 'failed';

/** A presence request a gateway did not answer usefully: timed out, failed, or a bad answer. */
export class PresenceRequestError extends GatewayError {
  override readonly name = 'PresenceRequestError';
  /** What went wrong. Default `failed`. */
  readonly reason: PresenceFailure;
  constructor(message?: string, options?: ErrorOptions & { reason?: PresenceFailure }) {
    super('ERR_PRESENCE_REQUEST', message, options);
    this.reason = options?.reason ?? 'failed';
  }
}

/** No gateway answers `<p>.presence.get` on this NATS (none runs, or none with this prefix). */
export class NoGatewayError extends GatewayError {
  override readonly name = 'NoGatewayError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_NO_GATEWAY', message, options);
  }
}

const encoder = new TextEncoder();
const EMPTY = {};

/**
 * The NATS messages of pushes, validated: shared by `createPublisher`, `serve` and tests.
 * `broadcastMessage` returns the subject, body and (binary payloads) the event header.
 */
export class PushEncoder {
  readonly subjects: Subjects;

  constructor(
    prefix: string = DEFAULT_PREFIX,
    private readonly maxTopicBytes: number = PUBLISHER_DEFAULTS.maxTopicBytes,
  ) {
    this.subjects = new Subjects(prefix);
  }

  broadcastMessage(
    topic: string,
    event: string,
    payload: unknown = EMPTY,
  ): { subject: string; body: Uint8Array; binaryEvent: string | null } {
    if (typeof topic !== 'string')
      throw new InvalidArgumentError(`broadcast topic must be a string, got ${typeof topic}`);
    if (!isWellFormedTopic(topic))
      throw new InvalidArgumentError('broadcast topic is not valid Unicode (a lone surrogate)');
    const token = topicToken(topic);
    if (token.length > this.maxTopicBytes)
      throw new InvalidArgumentError(
        `broadcast topic is too long: its subject token has ${token.length} bytes (max ${this.maxTopicBytes})`,
      );
    if (typeof event !== 'string' || event.length === 0)
      throw new InvalidArgumentError('broadcast event must be a non-empty string');
    const subject = this.subjects.topic(token);
    if (payload instanceof Uint8Array) {
      // The event travels in a header: a header value is one line of text.
      if (/[\r\n]/.test(event))
        throw new InvalidArgumentError('a binary broadcast event cannot hold line breaks');
      return { subject, body: payload, binaryEvent: event };
    }
    if (typeof payload === 'function' || typeof payload === 'symbol')
      throw new InvalidArgumentError(
        `broadcast payload is not JSON-serialisable (a ${typeof payload})`,
      );
    let json: string;
    try {
      json = JSON.stringify({ event, payload });
    } catch (err) {
      // A cycle or a BigInt.
      throw new InvalidArgumentError(
        `broadcast payload is not JSON-serialisable: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return { subject, body: encoder.encode(json), binaryEvent: null };
  }

  disconnectMessage(socketId: string): { subject: string; body: Uint8Array } {
    if (typeof socketId !== 'string' || socketId.length === 0)
      throw new InvalidArgumentError('disconnect needs a non-empty socket id string');
    const body = encoder.encode(JSON.stringify({ id: socketId }));
    if (body.length > MAX_DISCONNECT_BYTES)
      throw new InvalidArgumentError(
        `disconnect socket id too long: ${body.length} bytes (max ${MAX_DISCONNECT_BYTES} for the message)`,
      );
    return { subject: this.subjects.socketDisconnect, body };
  }
}

/** Publishes on `nc`, refusing what the server's `max_payload` would refuse. */
function publish(
  nc: NatsConnection,
  subject: string,
  body: Uint8Array,
  binaryEvent: string | null,
): void {
  const max = nc.info?.max_payload;
  if (max !== undefined && body.length > max)
    throw new BroadcastTooLargeError(
      `message of ${body.length} bytes exceeds the NATS server's max_payload (${max})`,
    );
  if (binaryEvent === null) {
    nc.publish(subject, body);
    return;
  }
  const h = natsHeaders();
  h.set(H.broadcastEvent, binaryEvent);
  nc.publish(subject, body, { headers: h });
}

/** A Broadcaster over a NATS connection (the worker's own, in `serve`). */
export function natsBroadcaster(nc: NatsConnection, encode: PushEncoder): Broadcaster {
  return {
    broadcast(topic, event, payload) {
      const message = encode.broadcastMessage(topic, event, payload);
      publish(nc, message.subject, message.body, message.binaryEvent);
    },
    disconnect(socketId) {
      const message = encode.disconnectMessage(socketId);
      publish(nc, message.subject, message.body, null);
    },
  };
}

function named(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}

function isTimeout(err: unknown): boolean {
  return named(err, 'TimeoutError') || (err instanceof Error && named(err.cause, 'TimeoutError'));
}

/** A presence reply: `{"<key>": {"metas": [object, ...]}, ...}`, or null. */
function readPresence(data: Uint8Array): PresenceState | null {
  const body = readJsonObject(data);
  if (body === null) return null;
  for (const entry of Object.values(body)) {
    if (typeof entry !== 'object' || entry === null) return null;
    const metas = (entry as { metas?: unknown }).metas;
    if (!Array.isArray(metas)) return null;
    if (!metas.every((meta) => typeof meta === 'object' && meta !== null && !Array.isArray(meta)))
      return null;
  }
  return body as PresenceState;
}

/**
 * A publisher for backends that serve no functions (a cron job, an HTTP app, a queue consumer):
 * broadcasts, disconnects and presence over `nc`, a connection it does not own. Any NATS client
 * can do the same with the documented messages (protocol/nats.md §9); this only validates and
 * encodes them.
 */
export function createPublisher(nc: NatsConnection, options: PublisherOptions = {}): Publisher {
  const encode = new PushEncoder(
    options.prefix ?? DEFAULT_PREFIX,
    options.maxTopicBytes ?? PUBLISHER_DEFAULTS.maxTopicBytes,
  );
  const timeout = options.presenceTimeoutMs ?? PUBLISHER_DEFAULTS.presenceTimeoutMs;
  const pushes = natsBroadcaster(nc, encode);
  return {
    broadcast: (topic, event, payload) => pushes.broadcast(topic, event, payload),
    disconnect: (socketId) => pushes.disconnect(socketId),
    async presence(topic) {
      if (typeof topic !== 'string')
        throw new InvalidArgumentError(`presence topic must be a string, got ${typeof topic}`);
      const subject = encode.subjects.presenceGet;
      let reply;
      try {
        reply = await nc.request(subject, encoder.encode(JSON.stringify({ topic })), { timeout });
      } catch (err) {
        if (isNoResponders(err))
          throw new NoGatewayError(`no gateway answers ${subject}`, { cause: err });
        if (isTimeout(err))
          throw new PresenceRequestError(`no presence answer within ${timeout} ms`, {
            cause: err,
            reason: 'timeout',
          });
        throw new PresenceRequestError((err as Error).message, { cause: err, reason: 'failed' });
      }
      const failure = reply.headers?.get(H.serviceError);
      if (failure)
        throw new PresenceRequestError(`the gateway could not answer: ${failure}`, {
          reason: 'failed',
        });
      const state = readPresence(reply.data);
      if (state === null)
        throw new PresenceRequestError('the presence answer is not {"<key>": {"metas": [...]}}', {
          reason: 'invalid_reply',
        });
      return state;
    },
  };
}
