import {
  defineChannel,
  error,
  ok,
  type Assigns,
  type Channel,
  type ChannelHandler,
  type JoinResult,
  type MaybePromise,
  type ReplyRef,
  type SocketInfo,
} from '../channel/types.js';
import {
  decodeRequest,
  DecodeError,
  requestIdOf,
  type DecodeOptions,
  type Identity,
} from './request.js';
import { errorResponse, ERRORS } from './response.js';
import type { Executor, RateContext, RequestSink } from './executor.js';
import { normaliseIp } from '../ratelimit/policy.js';
import type { GenApiResponse } from './types.js';
import { readTraceContext, type TraceContext } from '../nats/trace-context.js';

/** Options of the gen_api channel (PhoenixGenApi's `use PhoenixGenApi, event: ...`). */
export interface GenApiChannelOptions {
  /** Topic patterns served. Default `["gen_api", "gen_api:*"]`. */
  topics?: readonly string[];
  /** The event of requests and of every response push. Default "phoenix_gen_api". */
  event?: string;
  /** The event a client pushes `{request_id}` on to cancel its stream. Default "phoenix_gen_api_cancel". */
  cancelEvent?: string;
  /** Refuse requests from sockets without a user_id ("Authentication required"). Default true. */
  requireVerifiedUserId?: boolean;
  /** The socket's user_id wins over the payload's. Default true. */
  overrideUserId?: boolean;
  /** The socket's device_id wins over the payload's (when the socket has one). Default true. */
  overrideDeviceId?: boolean;
  /** Accept `user_id` from clients whose socket has none (with requireVerifiedUserId false). Default false. */
  trustClientUserId?: boolean;
  /** Accept `device_id` from clients whose socket has none. Default false: device-keyed limits hold. */
  trustClientDeviceId?: boolean;
  /** Accept `user_roles` from clients whose socket has none. Default false (migration aid only). */
  trustClientRoles?: boolean;
  /** Largest request frame in bytes. Default 1 000 000. */
  maxPayloadBytes?: number;
  /** Requests one channel may have in flight; more get "Service temporarily unavailable". Default 100. */
  maxInflight?: number;
  /** A stream stops getting credit while this many bytes wait to reach its client. Default 262 144. */
  streamHighWaterBytes?: number;
  /** Who the socket is. Default: `user_id`, `device_id` and `roles` from the socket assigns. */
  identity?: (socket: SocketInfo) => Identity;
  /** Decides joins. Default: everyone may join. */
  join?: (topic: string, payload: unknown, channel: Channel) => MaybePromise<JoinResult>;
}

/** The defaults of the gen_api channel options. */
export const GEN_API_DEFAULTS = {
  topics: ['gen_api', 'gen_api:*'] as readonly string[],
  event: 'phoenix_gen_api',
  cancelEvent: 'phoenix_gen_api_cancel',
  maxPayloadBytes: 1_000_000,
  maxInflight: 100,
  streamHighWaterBytes: 262_144,
};

function stringOr(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Reads user_id/userId, device_id/deviceId and roles/user_roles (list or single string) from assigns. */
export function identityFromAssigns(socket: SocketInfo): Identity {
  const assigns = socket.assigns as Record<string, unknown>;
  const roles = assigns.roles ?? assigns.user_roles;
  return {
    userId: stringOr(assigns.user_id) ?? stringOr(assigns.userId),
    deviceId: stringOr(assigns.device_id) ?? stringOr(assigns.deviceId),
    roles: Array.isArray(roles)
      ? roles.filter((role): role is string => typeof role === 'string')
      : typeof roles === 'string'
        ? [roles]
        : null,
  };
}

interface SinkOptions {
  readonly event: string;
  readonly highWater: number;
}

/**
 * Where one request's pushes and reply go: its channel, on the gen_api event. One object per
 * request, no closures; it releases the channel's in-flight slot when the executor is done.
 */
class ChannelSink implements RequestSink {
  private replied = false;
  /** Pushes are encoded into frames: a worker's result travels as the JSON text it sent. */
  readonly rawResults = true;

  constructor(
    readonly owner: Channel,
    private readonly ref: ReplyRef,
    private readonly options: SinkOptions,
    readonly rateContext: RateContext,
    private readonly inflight: WeakMap<Channel, number>,
    readonly clientTrace: TraceContext | null,
  ) {}

  get signal(): AbortSignal {
    return this.owner.signal;
  }

  push(response: GenApiResponse): void {
    this.owner.push(this.options.event, response);
  }

  reply(status: 'ok' | 'error', response: string): void {
    if (this.replied) return;
    this.replied = true;
    this.owner.reply(this.ref, { status, response });
  }

  writable(): boolean {
    return this.owner.socket.bufferedAmount <= this.options.highWater;
  }

  /** Resolves once the socket's buffer is down to half the high water, or the channel ends. */
  whenWritable(): Promise<void> {
    return this.owner.socket.whenBufferedAtMost(this.options.highWater / 2, this.owner.signal);
  }

  settled(): void {
    const left = (this.inflight.get(this.owner) ?? 1) - 1;
    if (left <= 0) this.inflight.delete(this.owner);
    else this.inflight.set(this.owner, left);
  }
}

/**
 * The gen_api channel (PhoenixGenApi's `use PhoenixGenApi`): requests arrive on one event, every
 * response, ack, chunk and error is pushed on the same event, and the phx_reply carries the
 * request type (`ok`) or the error text (`error`). Requests run concurrently; each ends in one
 * reply.
 */
export function genApiChannel(
  executor: Executor,
  options: GenApiChannelOptions = {},
): ChannelHandler<Assigns> {
  const event = options.event ?? GEN_API_DEFAULTS.event;
  const cancelEvent = options.cancelEvent ?? GEN_API_DEFAULTS.cancelEvent;
  const requireUser = options.requireVerifiedUserId ?? true;
  const maxInflight = options.maxInflight ?? GEN_API_DEFAULTS.maxInflight;
  const highWater = options.streamHighWaterBytes ?? GEN_API_DEFAULTS.streamHighWaterBytes;
  const identityOf = options.identity ?? identityFromAssigns;
  const decodeOptions: DecodeOptions = {
    maxPayloadBytes: options.maxPayloadBytes ?? GEN_API_DEFAULTS.maxPayloadBytes,
    overrideUserId: options.overrideUserId ?? true,
    overrideDeviceId: options.overrideDeviceId ?? true,
    trustClientRoles: options.trustClientRoles ?? false,
    trustClientUserId: options.trustClientUserId ?? false,
    trustClientDeviceId: options.trustClientDeviceId ?? false,
  };
  const inflight = new WeakMap<Channel, number>();
  // Join params' traceparent/tracestate: the trace of every request without its own.
  const joinTraces = new WeakMap<Channel, TraceContext>();
  const contexts = new WeakMap<SocketInfo, RateContext>();
  const rateContext = (socket: SocketInfo): RateContext => {
    let context = contexts.get(socket);
    if (!context) {
      context = {
        ip: socket.peer.address === '' ? null : normaliseIp(socket.peer.address),
        socketId: socket.connectionId,
      };
      contexts.set(socket, context);
    }
    return context;
  };

  const sinkOptions: SinkOptions = { event, highWater };
  return defineChannel({
    join(topic, payload, channel) {
      const params = payload as { traceparent?: unknown; tracestate?: unknown } | null;
      const trace =
        params !== null && typeof params === 'object'
          ? readTraceContext(params.traceparent, params.tracestate)
          : null;
      if (trace !== null) joinTraces.set(channel, trace);
      return options.join ? options.join(topic, payload, channel) : ok();
    },

    handleIn(incoming, payload, channel) {
      if (incoming === cancelEvent) {
        const id = (payload as { request_id?: unknown } | null)?.request_id;
        if (id === undefined || id === null)
          return error(ERRORS.invalidRequest('Missing required fields: request_id'));
        // Streams are keyed by a request_id that decoded as a string or a number; no other value
        // can name one.
        const key = typeof id === 'string' || typeof id === 'number' ? String(id) : null;
        return key !== null && executor.cancel(channel, key)
          ? ok({ cancelled: true })
          : error(ERRORS.unknownRequest);
      }
      if (incoming !== event) return error({ reason: `unknown event ${incoming}` });

      const identity = identityOf(channel.socket);
      if (requireUser && identity.userId === null) {
        channel.push(event, errorResponse(requestIdOf(payload), ERRORS.authenticationRequired));
        return error(ERRORS.authenticationRequired);
      }
      let decoded;
      try {
        decoded = decodeRequest(payload, channel.messageSize, identity, decodeOptions);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        channel.push(
          event,
          errorResponse(requestIdOf(payload), ERRORS.invalidRequest(err.message)),
        );
        return error(err.message);
      }
      const { request, rawRequestId, trace } = decoded;
      const count = inflight.get(channel) ?? 0;
      if (count >= maxInflight) {
        channel.push(event, errorResponse(rawRequestId, ERRORS.unavailable, true));
        return ok(request.request_type);
      }
      inflight.set(channel, count + 1);

      // execute() answers the client whatever fails inside; a rejection is a defect after that.
      executor
        .execute(
          request,
          rawRequestId,
          new ChannelSink(
            channel,
            channel.replyRef(),
            sinkOptions,
            rateContext(channel.socket),
            inflight,
            trace ?? joinTraces.get(channel) ?? null,
          ),
        )
        .catch((err: unknown) =>
          executor.logger.error(
            { err, requestId: rawRequestId, topic: channel.topic },
            'gen_api request ended with an error',
          ),
        );
      return undefined;
    },
  });
}
