import type { Assigns, MaybePromise } from '../channel/types.js';
import { parsePublicHosts, type CheckOrigin } from '../http/check-origin.js';
import type { ConnectHook } from '../socket/connect.js';
import type { MessageRateOptions } from '../ratelimit/message-limit.js';
import type { LimitState } from '../ratelimit/headers.js';
import { OptionError } from './errors.js';
import {
  bool,
  capOption,
  checkKeys,
  normalizePath,
  positiveInt,
  stringList,
} from './option-checks.js';
import { SOCKET_DEFAULTS } from './socket-defaults.js';
import {
  checkOriginOption,
  resolveClientBounds,
  resolveLongPoll,
  resolveMessageRate,
  resolveWebSocket,
} from './socket-option-groups.js';

export { SOCKET_DEFAULTS };
export { normalizePath };

/** A per-IP connect limit's answer (the RateLimiter provides one; see rateLimits.connect). */
export type ConnectLimitDecision =
  | { readonly allowed: true; readonly state?: LimitState }
  | { readonly allowed: false; readonly state: LimitState }
  /** The limiter cannot decide (a fail-closed store is down): 503. */
  | { readonly allowed: false; readonly unavailable: true };
/** A per-IP connect limit, checked before the connect hook (`SocketOptions.connectLimit`). */
export type ConnectLimit = (ip: string) => ConnectLimitDecision | Promise<ConnectLimitDecision>;

/** The WebSocket transport of a socket mount (`SocketOptions.websocket`). */
export interface WebSocketOptions {
  /** Path under the mount. Default `/websocket`. */
  path?: string;
  /** Close a connection that sent nothing (frames, pings) for this long. Default 60 000 ms. */
  idleTimeoutMs?: number;
  /** Negotiate permessage-deflate. Default false (the JS client needs none). */
  compress?: boolean;
}

/**
 * A token bucket of client bytes per socket (`SocketOptions.inboundByteRate`): every frame takes
 * its size from the bucket before it is parsed; a frame the bucket cannot pay for closes the
 * socket (1008). The bucket refills at `bytesPerSecond` up to `burstBytes`.
 */
export interface InboundByteRateOptions {
  /** Sustained client bytes per second. Default 1 048 576 (1 MiB/s). */
  bytesPerSecond?: number;
  /** Bucket size. Default max(1 MiB, maxFrameSize): one largest frame always fits. */
  burstBytes?: number;
}

/** The LongPoll transport of a socket mount (`SocketOptions.longpoll`). */
export interface LongPollOptions {
  /** Path under the mount. Default `/longpoll`. */
  path?: string;
  /** How long a GET waits for messages before answering 204. Default 10 000 ms. */
  windowMs?: number;
  /** Lines of an ndjson POST that are processed; the rest are ignored (Phoenix: 100). */
  maxBatchLines?: number;
  /** Largest POST body accepted (413 above it). Default: maxFrameSize. */
  maxBodyBytes?: number;
}

/**
 * Decides whether a socket may join `topic` before the channel's own `join` runs: `true`, or a
 * refusal `{reason}` sent to the client as the join's error response.
 */
export type JoinAuthorizer = (
  topic: string,
  payload: unknown,
  assigns: Assigns,
) => MaybePromise<true | { readonly reason: string }>;

/** Checks a token a connected client pushes to extend its socket: a new expiry, or a refusal. */
export type TokenRefresher = (
  token: string,
  assigns: Assigns,
) => MaybePromise<{ readonly expiresAt: number | null } | { readonly reason: string }>;

/** Options of `gateway.socket(path, options)` (README: Socket options). */
export interface SocketOptions<A extends Assigns = Assigns> {
  /** Phoenix's connect/3. Default: accept everyone with empty assigns. */
  connect?: ConnectHook<A>;
  /**
   * Checked before every channel's `join` on this socket (the config's `auth.join` rules build
   * one): `true` lets the join run, `{reason}` refuses it with `{"reason": reason}`. Default: none.
   */
  authorizeJoin?: JoinAuthorizer;
  /**
   * Handles a client's new token, pushed as `access_token` on the `phoenix` topic with payload
   * `{"access_token": token}` (protocol/phoenix.md): `{expiresAt}` extends the socket's expiry,
   * `{reason}` refuses it (the socket keeps its old expiry). Default: none (the event is answered
   * `unmatched topic`).
   */
  refreshToken?: TokenRefresher;
  /** Browser Origin policy. Default true (Origin host must equal the Host header's host). */
  checkOrigin?: CheckOrigin;
  /** Read the auth token from the `base64url.bearer.phx.` subprotocol / X-Phoenix-AuthToken. Default true. */
  authToken?: boolean;
  /** Subprotocols accepted besides `phoenix`. */
  subprotocols?: readonly string[];
  /** Channels one socket may join at once. Default 100 (Phoenix's max_channels_per_transport). */
  maxChannels?: number;
  /** A join whose handler has not settled by then is answered `{"reason":"join timeout"}`. Default 10 000 ms. */
  joinTimeoutMs?: number;
  /** A connect hook that has not settled by then fails the connection with 503. Default 10 000 ms. */
  connectTimeoutMs?: number;
  // ---- bounded work per client (README: Socket options; protocol/phoenix.md §4) ----
  /** Largest client frame (WebSocket message or LongPoll line). Above it: close 1009. Default 65 536 bytes. */
  maxFrameSize?: number;
  /** Client bytes per socket, checked before a frame is parsed, or false. Above it: close 1008 `byte rate exceeded`. */
  inboundByteRate?: InboundByteRateOptions | false;
  /** Bytes a client may leave unread for longer than `slowConsumerGraceMs`. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** How long a backlog over `maxBufferedBytes` may last before the client is dropped. Default 5 000 ms. */
  slowConsumerGraceMs?: number;
  /** Backlog that drops the client at once, whatever the grace period. Default 32 MiB. */
  maxBufferedBytesHard?: number;
  /** Largest payload a channel may broadcast (its JSON or binary size). Default 8 MiB. */
  maxBroadcastBytes?: number;
  /** Frames queued behind a pending join before the socket stops reading. Default 1 000. */
  maxQueuedFrames?: number;
  /** Per-socket message rate, or false. Default 1000 per second, burst 1000; more than 50 denials in 10 s close the socket. */
  messageRate?: MessageRateOptions | false;
  /** Per-IP connect limit, checked before the connect hook (HTTP 429 with RateLimit headers). */
  connectLimit?: ConnectLimit | null;
  /** WebSocket transport options, or false to disable it. */
  websocket?: WebSocketOptions | boolean;
  /** LongPoll transport options, or false to disable it. */
  longpoll?: LongPollOptions | boolean;

  // ---- Edge defaults (issue 12): who may connect, from where, how many, and what they may join.
  /** Hosts `checkOrigin: true` accepts in an Origin (`example.com`, `*.example.com`). Default localhost, 127.0.0.1, [::1]. */
  publicHosts?: readonly string[];
  /** Proxies (IPs or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` name the client. Default none. */
  trustedProxies?: readonly string[];
  /** Connections this mount holds at once; more are refused with 503. Default 100 000; null: no cap. */
  maxConnections?: number | null;
  /** Connections one client IP (IPv6: its /64) holds at once; more get 429. Default 10 000; null: no cap. */
  maxConnectionsPerIp?: number | null;
  /** Connections one assigns `user_id` holds at once; more get 429. Default none (null). */
  maxConnectionsPerUser?: number | null;
  /** Longest topic a client may join, in UTF-8 bytes; longer joins are refused. Default 255. */
  maxTopicBytes?: number;
}

export interface ResolvedSocketOptions<A extends Assigns> {
  readonly path: string;
  readonly connect: ConnectHook<A> | null;
  readonly authorizeJoin: JoinAuthorizer | null;
  readonly refreshToken: TokenRefresher | null;
  readonly checkOrigin: CheckOrigin;
  readonly authToken: boolean;
  readonly subprotocols: readonly string[];
  readonly maxChannels: number;
  readonly joinTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxFrameSize: number;
  readonly inboundByteRate: Required<InboundByteRateOptions> | null;
  readonly maxBufferedBytes: number;
  readonly slowConsumerGraceMs: number;
  readonly maxBufferedBytesHard: number;
  readonly maxBroadcastBytes: number;
  readonly maxQueuedFrames: number;
  readonly messageRate: Required<MessageRateOptions> | null;
  readonly connectLimit: ConnectLimit | null;
  readonly websocket: Required<WebSocketOptions> | null;
  readonly longpoll: Required<LongPollOptions> | null;
  readonly publicHosts: readonly string[];
  readonly trustedProxies: readonly string[];
  readonly maxConnections: number | null;
  readonly maxConnectionsPerIp: number | null;
  readonly maxConnectionsPerUser: number | null;
  readonly maxTopicBytes: number;
}

const KNOWN_KEYS = new Set([
  'connect',
  'authorizeJoin',
  'refreshToken',
  'checkOrigin',
  'authToken',
  'subprotocols',
  'maxChannels',
  'joinTimeoutMs',
  'connectTimeoutMs',
  'maxFrameSize',
  'inboundByteRate',
  'maxBufferedBytes',
  'slowConsumerGraceMs',
  'maxBufferedBytesHard',
  'maxBroadcastBytes',
  'maxQueuedFrames',
  'messageRate',
  'connectLimit',
  'websocket',
  'longpoll',
  'publicHosts',
  'trustedProxies',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxConnectionsPerUser',
  'maxTopicBytes',
]);

/** Applies defaults and validates every option, naming the offending one in the error. */
export function resolveSocketOptions<A extends Assigns>(
  path: string,
  options: SocketOptions<A> = {},
): ResolvedSocketOptions<A> {
  checkKeys('socket options', options, KNOWN_KEYS);
  const maxFrameSize = positiveInt(
    'maxFrameSize',
    options.maxFrameSize,
    SOCKET_DEFAULTS.maxFrameSize,
  );
  const limits = resolveClientBounds(options, maxFrameSize);
  if (options.connect !== undefined && typeof options.connect !== 'function')
    throw new OptionError('connect must be a function');
  const subprotocols = options.subprotocols ?? [];
  if (!Array.isArray(subprotocols) || !subprotocols.every((entry) => typeof entry === 'string')) {
    throw new OptionError('subprotocols must be a list of strings');
  }

  const messageRate = resolveMessageRate(options.messageRate);
  if (
    options.connectLimit !== undefined &&
    options.connectLimit !== null &&
    typeof options.connectLimit !== 'function'
  ) {
    throw new OptionError('connectLimit must be a function (ip) => decision');
  }

  const websocket = resolveWebSocket(options.websocket);
  const longpoll = resolveLongPoll(options.longpoll, maxFrameSize);

  return {
    path: normalizePath('socket path', path, SOCKET_DEFAULTS.path),
    connect: options.connect ?? null,
    authorizeJoin: options.authorizeJoin ?? null,
    refreshToken: options.refreshToken ?? null,
    checkOrigin: checkOriginOption(options.checkOrigin),
    authToken: bool('authToken', options.authToken, true),
    subprotocols,
    maxChannels: positiveInt('maxChannels', options.maxChannels, SOCKET_DEFAULTS.maxChannels),
    joinTimeoutMs: positiveInt(
      'joinTimeoutMs',
      options.joinTimeoutMs,
      SOCKET_DEFAULTS.joinTimeoutMs,
    ),
    connectTimeoutMs: positiveInt(
      'connectTimeoutMs',
      options.connectTimeoutMs,
      SOCKET_DEFAULTS.connectTimeoutMs,
    ),
    maxFrameSize,
    ...limits,
    maxQueuedFrames: positiveInt(
      'maxQueuedFrames',
      options.maxQueuedFrames,
      SOCKET_DEFAULTS.maxQueuedFrames,
    ),
    messageRate,
    connectLimit: options.connectLimit ?? null,
    websocket,
    longpoll,
    publicHosts: parsePublicHosts(
      stringList('publicHosts', options.publicHosts, SOCKET_DEFAULTS.publicHosts),
    ),
    trustedProxies: stringList(
      'trustedProxies',
      options.trustedProxies,
      SOCKET_DEFAULTS.trustedProxies,
    ),
    maxConnections: capOption(
      'maxConnections',
      options.maxConnections,
      SOCKET_DEFAULTS.maxConnections,
    ),
    maxConnectionsPerIp: capOption(
      'maxConnectionsPerIp',
      options.maxConnectionsPerIp,
      SOCKET_DEFAULTS.maxConnectionsPerIp,
    ),
    maxConnectionsPerUser: capOption(
      'maxConnectionsPerUser',
      options.maxConnectionsPerUser,
      SOCKET_DEFAULTS.maxConnectionsPerUser,
    ),
    maxTopicBytes: positiveInt(
      'maxTopicBytes',
      options.maxTopicBytes,
      SOCKET_DEFAULTS.maxTopicBytes,
    ),
  };
}
